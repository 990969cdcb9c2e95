/**
 * The language server: one LanguageServer object holds the whole state (the open documents, the
 * object index, the estimates, the settings and what the client can do), and startServer wires
 * each message of the connection to one of its methods. Handlers stay thin — convert in
 * (convert.ts), call the feature in ide/, convert out — and everything that can fail on a user's
 * files is contained, so a bad object or a surprising client never takes the server down.
 */
import * as path from 'node:path';
import { quoteSourceLine } from '../common/safeRead';
import {
  type CancellationToken,
  type CodeAction,
  CodeActionKind,
  type CodeActionParams,
  type CodeLens,
  type CodeLensParams,
  CodeLensRefreshRequest,
  type Connection,
  type DidChangeTextDocumentParams,
  type DidChangeWatchedFilesParams,
  DidChangeConfigurationNotification,
  DidChangeWatchedFilesNotification,
  type Disposable,
  ErrorCodes,
  type Hover,
  type HoverParams,
  type InitializeParams,
  type InitializeResult,
  LSPErrorCodes,
  ProposedFeatures,
  ResponseError,
  TextDocumentSyncKind,
  type WorkDoneProgressReporter,
  createConnection,
} from 'vscode-languageserver/node';
import type { SourceLocation } from '../common/problem';
import { type KernelProfile, profileLabel } from '../rules/kernelProfile';
import { findCompileCommands } from '../source/compileCommands';
import { quickFixes } from './codeActions';
import { codeLenses } from '../ide/codeLens';
import { findingDataOf, offsetOf, pathToUri, rangeToSpan, toCodeAction, toCodeLens, toDiagnostic, toHover, uriToPath } from './convert';
import { stackFindings } from '../ide/diagnostics';
import { BufferCompiles, bufferCompileAllowed } from './bufferCompile';
import { bufferCompileFlags } from '../compile/compileFlags';
import { resolvedPath } from '../common/paths';
import { DocumentAnalyses, type DocumentStackAnalysis, againstUnsavedChanges, withBufferCompile } from '../ide/analysis';
import { OpenDocuments } from './documents';
import { hoverAt } from '../ide/hover';
import { ObjectIndex } from './objectWatcher';
import {
  CHECK_OBJECT_REQUEST,
  type CheckObjectParams,
  FILE_STATUS_REQUEST,
  type FileStatusParams,
  type InitializationOptions,
  STACK_REPORT_REQUEST,
  type StackReportParams,
  VERIFY_REQUEST,
  VERIFY_TARGETS_REQUEST,
  type VerifyParams,
  WORKSPACE_TRUST_NOTIFICATION,
  type WorkspaceTrustParams,
} from './protocol';
import { probeRunningKernel } from '../probe/kernelProbe';
import { DEFAULT_SETTINGS, type LensSettings, SETTINGS_SECTION, kernelProfilesOf, readSettings } from './settings';
import type { ProgressHandle } from './estimateThread';
import { SourceEstimates } from './sourceEstimate';
import { analysesReport, objectReport } from '../ide/stackReport';
import { type FileStatus, fileStatus } from '../ide/status';
import { type VerifyTargetChoice, verifyReport, verifyTargetChoices } from '../ide/verify';
import { packageRoot } from '../source/packageRoot';

/** Quiet time after an object's last change before it is read: a build rewrites a file in bursts. */
const OBJECT_DEBOUNCE_MS = 150;
/** Delay before the one retry of an object that was incomplete or changing when read. */
const OBJECT_RETRY_MS = 300;
/** Quiet time after the last edit of a document before its source is estimated again. */
const ESTIMATE_DEBOUNCE_MS = 200;
/** How long a CodeLens request from a client that cannot be asked to refresh waits for a running estimate. */
const LENS_ESTIMATE_WAIT_MS = 3000;

/** What the client said at initialize that it can do, which decides what the server asks of it. */
interface ClientAbilities {
  /** Answers workspace/configuration: the settings are pulled rather than taken as pushed. */
  pullsConfiguration: boolean;
  /** Takes a dynamic registration for configuration changes (eglot warns on every start otherwise). */
  registersConfiguration: boolean;
  /** Watches files for the server when asked, and the client does not watch the objects itself. */
  registersWatchers: boolean;
  /** Can be told to ask for CodeLens again (workspace/codeLens/refresh). */
  refreshesLenses: boolean;
  /** Shows work-done progress the server creates. */
  showsProgress: boolean;
}

const NO_ABILITIES: ClientAbilities = {
  pullsConfiguration: false,
  registersConfiguration: false,
  registersWatchers: false,
  refreshesLenses: false,
  showsProgress: false,
};

/**
 * The server's whole state, and what each message does with it. The connection's handlers (in
 * startServer) call one method each; a method converts the protocol's values in, calls a feature
 * in ide/ (or a document store), and converts the answer out.
 */
class LanguageServer {
  private readonly documents: OpenDocuments;
  private readonly objects: ObjectIndex;
  private readonly estimates: SourceEstimates;
  private readonly bufferCompiles: BufferCompiles;
  /** Every analysis of every file: the objects, the estimates and the buffer compiles together. */
  private readonly analyses = new DocumentAnalyses();

  private client: ClientAbilities = NO_ABILITIES;
  private initializationOptions: InitializationOptions = {};
  /** What the client said about workspace trust: undefined when it says nothing (clients other than VS Code). */
  private workspaceTrusted: boolean | undefined;
  private workspaceFolders: string[] = [];
  private settings: LensSettings = DEFAULT_SETTINGS;
  /** The kernels every program is judged for, from the settings (the running kernel when they name none). */
  private profiles: KernelProfile[] = [];
  private watcherRegistration: Promise<Disposable> | undefined;
  /** The roots, globs and kernels the object index was last configured with. */
  private configuredObjectInputs: string | undefined;
  /** Closed sources whose objects' diagnostics are in Problems, so that they can be cleared. */
  private readonly closedSourcesWithDiagnostics = new Set<string>();
  /** When each file was last opened, edited or changed on disk, to say in the log how long its estimate took. */
  private readonly estimateRequestedAt = new Map<string, number>();

  constructor(private readonly connection: Connection) {
    const log = (message: string) => this.log(message);
    const beginProgress = (title: string) => (this.client.showsProgress ? beginWorkDoneProgress(connection, title) : Promise.resolve(undefined));
    this.documents = new OpenDocuments(log);
    this.objects = new ObjectIndex({ debounceMs: OBJECT_DEBOUNCE_MS, retryMs: OBJECT_RETRY_MS, log });
    this.estimates = new SourceEstimates({
      openText: (filePath) => this.documents.byPath(filePath)?.getText(),
      openBuffers: () => this.documents.textsByPath(),
      log,
      debounceMs: ESTIMATE_DEBOUNCE_MS,
      beginProgress,
    });
    this.bufferCompiles = new BufferCompiles({
      openText: (filePath) => this.documents.byPath(filePath)?.getText(),
      compileFlagsFor: (filePath) =>
        bufferCompileFlags(filePath, { ...this.estimates.configuredInputFor(filePath), settingsFlags: this.settings.bufferCompileFlags }),
      log,
      beginProgress,
    });
    this.analyses.register(this.objects);
    this.analyses.register(this.estimates);
    this.analyses.register(this.bufferCompiles);
    this.analyses.onDidChange((sourcePaths) => this.analysesChanged(sourcePaths));
  }

  log(message: string): void {
    this.connection.console.log(message);
  }

  initialize(params: InitializeParams): InitializeResult {
    this.initializationOptions = (params.initializationOptions ?? {}) as InitializationOptions;
    this.workspaceTrusted = typeof this.initializationOptions.workspaceTrusted === 'boolean' ? this.initializationOptions.workspaceTrusted : undefined;
    this.workspaceFolders = workspaceRoots(params);
    const workspace = params.capabilities.workspace;
    const pullsConfiguration = workspace?.configuration === true;
    this.client = {
      pullsConfiguration,
      registersConfiguration: pullsConfiguration && workspace?.didChangeConfiguration?.dynamicRegistration === true,
      registersWatchers: workspace?.didChangeWatchedFiles?.dynamicRegistration === true && this.initializationOptions.clientWatchesObjects !== true,
      refreshesLenses: workspace?.codeLens?.refreshSupport === true,
      showsProgress: params.capabilities.window?.workDoneProgress === true,
    };
    return {
      capabilities: {
        textDocumentSync: { openClose: true, change: TextDocumentSyncKind.Incremental, save: { includeText: false } },
        hoverProvider: true,
        codeActionProvider: { codeActionKinds: [CodeActionKind.QuickFix] },
        codeLensProvider: { resolveProvider: false },
      },
      serverInfo: { name: 'bpf-stack-lens' },
    };
  }

  initialized(): void {
    if (this.client.registersConfiguration)
      void this.connection.client.register(DidChangeConfigurationNotification.type, { section: SETTINGS_SECTION }).catch(() => undefined);
    this.configure().catch((error) => this.log(`cannot apply the settings: ${String(error)}`));
  }

  configurationChanged(params: { settings: unknown }): void {
    const pushed = (params.settings as Record<string, unknown> | undefined)?.[SETTINGS_SECTION];
    this.configure(pushed).catch((error) => this.log(`cannot apply the settings: ${String(error)}`));
  }

  workspaceTrustChanged(params: WorkspaceTrustParams): void {
    this.workspaceTrusted = params.trusted === true;
    this.configureBufferCompiles();
  }

  opened(textDocument: { uri: string; languageId: string; version: number; text: string }): void {
    this.documents.opened(textDocument.uri, textDocument.languageId, textDocument.version, textDocument.text);
    this.publish(textDocument.uri);
    const filePath = this.documents.pathOf(textDocument.uri);
    if (filePath) {
      this.requestEstimate(filePath);
      this.estimates.opened(filePath);
      this.bufferCompiles.opened(filePath);
    }
  }

  changed(params: DidChangeTextDocumentParams): void {
    const { textDocument, contentChanges } = params;
    const differed = this.documents.differsFromDisk(textDocument.uri);
    this.documents.changed(textDocument.uri, textDocument.version, contentChanges);
    const filePath = this.documents.pathOf(textDocument.uri);
    if (filePath) {
      this.requestEstimate(filePath);
      this.estimates.edited(filePath);
      this.bufferCompiles.edited(filePath);
    }
    // The first unsaved edit makes the objects stale at once, and an undo back to the file's text
    // makes them fresh at once; the estimate follows after its quiet time.
    if (this.documents.differsFromDisk(textDocument.uri) !== differed) this.publish(textDocument.uri);
  }

  saved(uri: string): void {
    this.publish(uri);
  }

  closed(uri: string): void {
    const filePath = this.documents.pathOf(uri);
    this.documents.closed(uri);
    if (filePath) {
      this.estimates.closed(filePath);
      this.bufferCompiles.closed(filePath);
      // Files that read this header from its buffer read it from disk now.
      this.estimates.fileChanged(filePath);
    }
    void this.connection.sendDiagnostics({ uri, diagnostics: [] });
    // Closed, the file keeps what its objects say.
    this.publishClosedSources();
  }

  watchedFilesChanged(params: DidChangeWatchedFilesParams): void {
    // Only an array of changes is one; a string of 5,000 characters would be 5,000 of them.
    const changes = Array.isArray(params?.changes) ? params.changes : [];
    for (const change of changes) {
      const filePath = uriToPath(change.uri);
      if (!filePath) continue;
      this.objects.fileChanged(filePath);
      this.estimates.fileChanged(filePath);
      this.bufferCompiles.fileChanged(filePath);
      // A source saved outside the editor changes whether its objects are stale.
      const open = this.documents.uris().find((uri) => this.documents.pathOf(uri) === resolvedPath(filePath));
      if (open) this.publish(open);
    }
  }

  async hover(params: HoverParams): Promise<Hover | null> {
    const snapshot = await this.documents.snapshot(params.textDocument.uri);
    if (!snapshot?.path) return null;
    const verifyCommand = typeof this.initializationOptions.verifyCommand === 'string' ? this.initializationOptions.verifyCommand : undefined;
    const content = hoverAt(snapshot, offsetOf(snapshot.document, params.position), this.analysesOf(params.textDocument.uri), this.settingsFor(snapshot.path), {
      verifyCommand,
    });
    return content ? toHover(snapshot.document, content) : null;
  }

  async codeActions(params: CodeActionParams): Promise<CodeAction[]> {
    const snapshot = await this.documents.snapshot(params.textDocument.uri);
    if (!snapshot) return [];
    const ours = params.context.diagnostics.filter((diagnostic) => findingDataOf(diagnostic) !== undefined);
    const fixes = quickFixes(
      snapshot,
      rangeToSpan(snapshot.document, params.range),
      ours.map(findingDataOf),
      this.analysesOf(params.textDocument.uri),
      this.settingsFor(snapshot.path),
    );
    return fixes.map((fix) =>
      toCodeAction(
        snapshot.document,
        fix,
        fix.diagnostics.map((index) => ours[index]),
      ),
    );
  }

  async codeLenses(params: CodeLensParams): Promise<CodeLens[]> {
    // A client that cannot be told to ask again would keep lenses without the estimate that is about
    // to come in, so its request waits a little for it; other requests never wait.
    const filePath = this.documents.pathOf(params.textDocument.uri);
    if (!this.client.refreshesLenses && filePath) await atMost(this.estimates.settled(filePath), LENS_ESTIMATE_WAIT_MS);
    const snapshot = await this.documents.snapshot(params.textDocument.uri);
    if (!snapshot?.path) return [];
    const command = typeof this.initializationOptions.stackReportCommand === 'string' ? this.initializationOptions.stackReportCommand : undefined;
    return codeLenses(snapshot, this.analysesOf(params.textDocument.uri), command).map((lens) => toCodeLens(snapshot.document, lens));
  }

  fileStatus(params: FileStatusParams): FileStatus {
    return fileStatus(this.analysesOf(uriParam(params, 'fileStatus')));
  }

  stackReport(params: StackReportParams): string {
    return analysesReport(this.analysesOf(uriParam(params, 'stackReport')), (location) => lineText(location, this.documents, this.workspaceFolders));
  }

  checkObject(params: CheckObjectParams): string {
    // A number here would be read as a file descriptor (descriptor 2 froze the server).
    if (typeof params?.path !== 'string' || params.path === '')
      throw new ResponseError(ErrorCodes.InvalidParams, 'checkObject needs a path (a non-empty string)');
    return objectReport(params.path, this.profiles, this.workspaceFolders);
  }

  verifyTargets(): Promise<VerifyTargetChoice[]> {
    return verifyTargetChoices({ root: packageRoot(), qemu: this.settings.verifyQemu });
  }

  /**
   * Verify on real kernels, with progress on the client's token (else on one the server creates, when
   * the client shows those) and the loader or QEMU stopped when the request is cancelled.
   */
  async verify(params: VerifyParams, cancel: CancellationToken): Promise<string> {
    const uri = uriParam(params, 'verify');
    const kernels = params.kernels ?? [];
    if (!Array.isArray(kernels) || !kernels.every((kernel) => typeof kernel === 'string'))
      throw new ResponseError(ErrorCodes.InvalidParams, 'verify needs kernels (an array of strings)');
    const filePath = this.documents.pathOf(uri) ?? pathOfUri(uri);
    if (!filePath) throw new ResponseError(ErrorCodes.InvalidParams, 'verify needs a file: uri');
    const controller = new AbortController();
    const stop = () => controller.abort();
    cancel.onCancellationRequested(stop);
    let progress: WorkDoneProgressReporter | undefined;
    if (params.workDoneToken !== undefined) progress = this.connection.window.attachWorkDoneProgress(params.workDoneToken);
    else if (this.client.showsProgress) {
      const created = await this.connection.window.createWorkDoneProgress().catch(() => undefined);
      created?.token.onCancellationRequested(stop);
      progress = created;
    }
    progress?.begin('Verifying on real kernels', 0, undefined, true);
    try {
      const report = await verifyReport(filePath, this.analysesOf(uri), kernels, {
        root: packageRoot(),
        qemu: this.settings.verifyQemu,
        signal: controller.signal,
        progress: (message, step) => progress?.report(Math.round((100 * step.index) / step.count), `${message} (${step.index + 1}/${step.count})`),
        note: (note) => this.log(`verify: ${note}`),
      });
      if (report.cancelled) throw new ResponseError(LSPErrorCodes.RequestCancelled, 'verify was cancelled');
      return report.text;
    } finally {
      progress?.done();
    }
  }

  shutdown(): void {
    this.objects.dispose();
    this.estimates.dispose();
    this.bufferCompiles.dispose();
  }

  /** Every analysis of a document, objects counted stale while the buffer differs from the file on disk. */
  private analysesOf(uri: string): DocumentStackAnalysis[] {
    const filePath = this.documents.pathOf(uri) ?? pathOfUri(uri);
    return filePath ? withBufferCompile(againstUnsavedChanges(this.analyses.analysesFor(filePath), this.documents.differsFromDisk(uri))) : [];
  }

  /** The settings as they apply to one file: its definitions include the compile database's. */
  private settingsFor(filePath: string | undefined): LensSettings {
    return filePath ? { ...this.settings, defines: this.estimates.definesFor(filePath) } : this.settings;
  }

  private requestEstimate(filePath: string): void {
    this.estimateRequestedAt.set(resolvedPath(filePath), performance.now());
  }

  private configureBufferCompiles(): void {
    this.bufferCompiles.configure({
      enabled: bufferCompileAllowed(this.settings.bufferCompile, this.workspaceTrusted),
      debounceMs: this.settings.bufferCompileDebounceMs,
      clangSetting: this.settings.bufferCompileClang,
      profiles: this.profiles,
      roots: this.workspaceFolders,
    });
  }

  private publish(uri: string): void {
    const filePath = this.documents.pathOf(uri);
    if (!filePath) return;
    const findings = stackFindings(filePath, this.analysesOf(uri), { currentText: (file) => this.documents.byPath(file)?.getText() });
    void this.connection.sendDiagnostics({ uri, diagnostics: findings.map((finding) => toDiagnostic(finding, (file) => this.documents.byPath(file))) });
  }

  /**
   * Problems lists the whole workspace, not only the open files: the sources under the workspace
   * folders that no editor has open get their objects' diagnostics (there is no estimate of them).
   */
  private publishClosedSources(): void {
    const open = new Set(this.documents.uris().map((uri) => this.documents.pathOf(uri)));
    const underFolders = (filePath: string) => this.workspaceFolders.some((root) => !path.relative(resolvedPath(root), filePath).startsWith('..'));
    const sources = this.objects.sourcePaths().filter((sourcePath) => !open.has(sourcePath) && underFolders(sourcePath));
    const published = this.closedSourcesWithDiagnostics;
    for (const sourcePath of new Set([...sources, ...published])) {
      if (open.has(sourcePath)) {
        published.delete(sourcePath);
        continue;
      }
      const findings = sources.includes(sourcePath) ? stackFindings(sourcePath, this.objects.analysesFor(sourcePath)) : [];
      if (findings.length === 0 && !published.has(sourcePath)) continue;
      void this.connection.sendDiagnostics({ uri: pathToUri(sourcePath), diagnostics: findings.map((finding) => toDiagnostic(finding, () => undefined)) });
      if (findings.length > 0) published.add(sourcePath);
      else published.delete(sourcePath);
    }
  }

  private analysesChanged(sourcePaths: string[] | 'all'): void {
    if (sourcePaths !== 'all') for (const sourcePath of sourcePaths) this.logEstimate(sourcePath);
    this.publishClosedSources();
    for (const uri of this.documents.uris()) {
      const filePath = this.documents.pathOf(uri);
      if (sourcePaths === 'all' || (filePath && sourcePaths.includes(filePath))) this.publish(uri);
    }
    if (this.client.refreshesLenses) this.connection.sendRequest(CodeLensRefreshRequest.type).catch(() => undefined);
  }

  /**
   * One line per new estimate of an open file, for whoever has to find out why a number is what it
   * is: how long it took, what it found, and which includes it could not resolve (whose types then
   * count 0 bytes).
   */
  private logEstimate(sourcePath: string): void {
    const estimate = this.estimates.analysesFor(sourcePath)[0];
    const requested = this.estimateRequestedAt.get(sourcePath);
    if (!estimate || requested === undefined) return;
    this.estimateRequestedAt.delete(sourcePath);
    const unresolved = (estimate.problems ?? [])
      .filter((problem) => / file not found/.test(problem.message))
      .map((problem) => problem.message.replace(/ file not found.*$/, ''));
    const elapsed = Math.round(performance.now() - requested);
    this.log(
      `${sourcePath}: estimated ${estimate.frames?.length ?? 0} function(s), ${estimate.programs.length} program(s) in ${elapsed} ms after the last change (of which ${ESTIMATE_DEBOUNCE_MS} ms quiet time)` +
        (unresolved.length > 0
          ? `; includes not found: ${unresolved.join(', ')} (set bpfStackLens.includePaths or a compile_commands.json)`
          : '; every include found'),
    );
  }

  /** What the settings amount to, in the log: the kernels judged for and where the estimate's flags come from. */
  private logConfiguration(kernelsFromSettings: boolean): void {
    const { settings, workspaceFolders } = this;
    const database = findCompileCommands(settings.compileCommands, workspaceFolders);
    const searched = workspaceFolders.flatMap((root) => [`${root}/compile_commands.json`, `${root}/build/compile_commands.json`]).join(', ');
    this.log(`kernels: ${this.profiles.map(profileLabel).join(', ')}${kernelsFromSettings ? '' : ' (the running kernel: bpfStackLens.kernels is empty)'}`);
    this.log(`workspace folders: ${workspaceFolders.join(', ') || 'none'}; objects: ${settings.objectGlobs.join(', ')}`);
    this.log(
      `compile database: ${database ?? (settings.compileCommands ? `${settings.compileCommands} (not found)` : `none (looked for ${searched || 'none without a workspace folder'})`)}`,
    );
    this.log(
      `include paths from the settings: ${settings.includePaths.join(', ') || 'none'}; definitions: ${
        Object.entries(settings.defines)
          .map(([name, value]) => `${name}=${value}`)
          .join(' ') || 'none'
      }`,
    );
  }

  /** Reads the settings (pulled from the client when it can answer), then rescans with them. */
  private async configure(pushed?: unknown): Promise<void> {
    let raw: unknown = pushed ?? this.initializationOptions.settings;
    if (this.client.pullsConfiguration) raw = await this.connection.workspace.getConfiguration(SETTINGS_SECTION).catch(() => raw);
    const read = readSettings(raw);
    this.settings = read.settings;
    // Judging "the running kernel" needs its probed facts; the probe runs in a child process.
    if (this.settings.kernels.length === 0) await probeRunningKernel();
    const kernels = kernelProfilesOf(this.settings);
    this.profiles = kernels.profiles;
    for (const note of [...read.errors, ...kernels.notes]) void this.connection.window.showWarningMessage(`bpf-stack-lens: ${note}`);
    this.logConfiguration(this.settings.kernels.length > 0);
    this.registerWatchers();
    this.estimates.configure(this.settings, this.profiles, this.workspaceFolders);
    this.configureBufferCompiles();
    // A rescan forgets every object until it is read again: only settings the objects depend on warrant one.
    const objectInputs = JSON.stringify([this.workspaceFolders, this.settings.objectGlobs, this.profiles]);
    if (objectInputs === this.configuredObjectInputs) return;
    this.configuredObjectInputs = objectInputs;
    await this.objects.configure(this.workspaceFolders, this.settings.objectGlobs, this.profiles);
  }

  /** Asks the client to watch the objects (and the sources, whose times decide staleness), when it can and does not already. */
  private registerWatchers(): void {
    if (!this.client.registersWatchers) return;
    const previous = this.watcherRegistration;
    this.watcherRegistration = this.connection.client.register(DidChangeWatchedFilesNotification.type, {
      watchers: [...this.settings.objectGlobs, '**/*.{c,h}', '**/compile_commands.json'].map((globPattern) => ({ globPattern })),
    });
    void previous?.then((registration) => registration.dispose()).catch(() => undefined);
  }
}

export function startServer(connection: Connection = createConnection(ProposedFeatures.all)): Connection {
  const server = new LanguageServer(connection);
  process.on('uncaughtException', (error) => server.log(`internal error: ${error.stack ?? error}`));
  process.on('unhandledRejection', (error) => server.log(`internal error: ${error instanceof Error ? error.stack : String(error)}`));
  connection.onInitialize((params) => server.initialize(params));
  connection.onInitialized(() => server.initialized());
  connection.onDidChangeConfiguration((params) => server.configurationChanged(params));
  connection.onNotification(WORKSPACE_TRUST_NOTIFICATION, (params: WorkspaceTrustParams) => server.workspaceTrustChanged(params));
  connection.onDidOpenTextDocument(({ textDocument }) => server.opened(textDocument));
  connection.onDidChangeTextDocument((params) => server.changed(params));
  connection.onDidSaveTextDocument(({ textDocument }) => server.saved(textDocument.uri));
  connection.onDidCloseTextDocument(({ textDocument }) => server.closed(textDocument.uri));
  connection.onDidChangeWatchedFiles((params) => server.watchedFilesChanged(params));
  connection.onHover((params) => server.hover(params));
  connection.onCodeAction((params) => server.codeActions(params));
  connection.onCodeLens((params) => server.codeLenses(params));
  connection.onRequest(FILE_STATUS_REQUEST, (params: FileStatusParams) => server.fileStatus(params));
  connection.onRequest(STACK_REPORT_REQUEST, (params: StackReportParams) => server.stackReport(params));
  connection.onRequest(CHECK_OBJECT_REQUEST, (params: CheckObjectParams) => server.checkObject(params));
  connection.onRequest(VERIFY_TARGETS_REQUEST, () => server.verifyTargets());
  connection.onRequest(VERIFY_REQUEST, (params: VerifyParams, cancel) => server.verify(params, cancel));
  connection.onShutdown(() => server.shutdown());
  connection.listen();
  return connection;
}

/** A work-done progress in the client, begun with `title`; undefined when the client refuses to create it. */
async function beginWorkDoneProgress(connection: Connection, title: string): Promise<ProgressHandle | undefined> {
  try {
    const reporter = await connection.window.createWorkDoneProgress();
    reporter.begin(title, 0, undefined, false);
    return { report: (message, percentage) => reporter.report(percentage, message), done: () => reporter.done() };
  } catch {
    return undefined;
  }
}

/** Resolves when `promise` does, or after `ms`, whichever comes first. */
function atMost(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]).finally(() => clearTimeout(timer));
}

function pathOfUri(uri: string): string | undefined {
  const filePath = uriToPath(uri);
  return filePath && resolvedPath(filePath);
}

/** A request's `uri` parameter, checked: the client is the workspace's to script. */
function uriParam(params: unknown, request: string): string {
  const uri = (params as { uri?: unknown } | null | undefined)?.uri;
  if (typeof uri !== 'string') throw new ResponseError(ErrorCodes.InvalidParams, `${request} needs a uri (a string)`);
  return uri;
}

function workspaceRoots(params: InitializeParams): string[] {
  const uris = params.workspaceFolders?.map((folder) => folder.uri) ?? (params.rootUri ? [params.rootUri] : []);
  const roots = uris.flatMap((uri) => uriToPath(uri) ?? []);
  if (roots.length === 0 && params.rootPath) roots.push(params.rootPath);
  return roots;
}

/** A source line as the editor has it, else as it is on disk. */
function lineText(location: SourceLocation, documents: OpenDocuments, roots: readonly string[]): string | undefined {
  const open = documents.byPath(location.file);
  if (open) return open.getText({ start: { line: location.line - 1, character: 0 }, end: { line: location.line, character: 0 } }).replace(/\r?\n$/, '');
  const onDisk = quoteSourceLine(location.file, location.line, { roots });
  if (onDisk === undefined) return undefined;
  return 'text' in onDisk ? onDisk.text : `(line not quoted: ${onDisk.withheld})`;
}
