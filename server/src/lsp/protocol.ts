/**
 * The extension's own requests between client and server, beside the standard protocol. Only
 * names and plain types: the client imports this file, so it must not pull in server code.
 */

/** The status-bar summary of one file (made by ide/status.ts; the type is erased from the client's bundle). */
export const FILE_STATUS_REQUEST = 'bpfStackLens/fileStatus';
export interface FileStatusParams {
  uri: string;
}
export type { FileStatus } from '../ide/status';

/** The `check` text report of the objects built from one file. */
export const STACK_REPORT_REQUEST = 'bpfStackLens/stackReport';
export interface StackReportParams {
  uri: string;
}

/** The `check` text report of any object file, for the current settings. */
export const CHECK_OBJECT_REQUEST = 'bpfStackLens/checkObject';
export interface CheckObjectParams {
  path: string;
}

/**
 * Verify on real kernels: every program of the objects of `uri` (a .o, or a source whose objects the
 * server has found) loaded into each kernel named in `kernels` ("host", lab labels such as "6.1";
 * none means "host"), beside the prediction for that kernel. The answer is the report as text. It
 * takes from a second to minutes (QEMU), so it reports work-done progress on `workDoneToken` and
 * stops its loader or QEMU when the request is cancelled (the answer is then RequestCancelled).
 */
export const VERIFY_REQUEST = 'bpfStackLens/verify';
export interface VerifyParams {
  uri: string;
  kernels: string[];
  workDoneToken?: string | number;
}

/** The kernels the verify request can ask here, for the client to offer: each with what its use needs. */
export const VERIFY_TARGETS_REQUEST = 'bpfStackLens/verifyTargets';
export type { VerifyTargetChoice } from '../ide/verify';

/** What the client tells the server at initialize, beside the settings. */
export interface InitializationOptions {
  settings?: unknown;
  /** The client registers watchers for the object globs itself; the server need not. */
  clientWatchesObjects?: boolean;
  /** Whether the user trusts the workspace (VS Code workspace trust); absent from clients that do not say. */
  workspaceTrusted?: boolean;
  /** The client's command that shows a file's stack report (its uri as argument): CodeLens run it on click. */
  stackReportCommand?: string;
  /** The client's command that verifies a file's objects on real kernels (its uri as argument): the hover links to it. */
  verifyCommand?: string;
}

/** Client → server: the workspace's trust changed (VS Code grants trust while the window stays open). */
export const WORKSPACE_TRUST_NOTIFICATION = 'bpfStackLens/workspaceTrust';
export interface WorkspaceTrustParams {
  trusted: boolean;
}
