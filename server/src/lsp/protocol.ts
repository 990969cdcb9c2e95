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

/** What the client tells the server at initialize, beside the settings. */
export interface InitializationOptions {
  settings?: unknown;
  /** The client registers watchers for the object globs itself; the server need not. */
  clientWatchesObjects?: boolean;
  /** Whether the user trusts the workspace (VS Code workspace trust); absent from clients that do not say. */
  workspaceTrusted?: boolean;
  /** The client's command that shows a file's stack report (its uri as argument): CodeLens run it on click. */
  stackReportCommand?: string;
}

/** Client → server: the workspace's trust changed (VS Code grants trust while the window stays open). */
export const WORKSPACE_TRUST_NOTIFICATION = 'bpfStackLens/workspaceTrust';
export interface WorkspaceTrustParams {
  trusted: boolean;
}
