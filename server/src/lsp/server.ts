/**
 * The language server: wires the LSP connection to the open documents, the object index and the
 * feature modules. Handlers stay thin — convert in (convert.ts), call the feature, convert out — and
 * everything that can fail on a user's files is contained, so a bad object or a surprising client
 * never takes the server down.
 */
import * as path from 'node:path';
import { quoteSourceLine } from '../common/safeRead';
import {
  CodeActionKind,
  CodeLensRefreshRequest,
  type Connection,
  DidChangeConfigurationNotification,
  DidChangeWatchedFilesNotification,
  type Disposable,
  ErrorCodes,
  type InitializeParams,
  type InitializeResult,
  ProposedFeatures,
  ResponseError,
  TextDocumentSyncKind,
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
import { DocumentAnalyses, againstUnsavedChanges, withBufferCompile } from '../ide/analysis';
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
  WORKSPACE_TRUST_NOTIFICATION,
  type WorkspaceTrustParams,
} from './protocol';
import { probeRunningKernel } from '../probe/kernelProbe';
import { DEFAULT_SETTINGS, type LensSettings, SETTINGS_SECTION, kernelProfilesOf, readSettings } from './settings';
import type { ProgressHandle } from './estimateThread';
import { SourceEstimates } from './sourceEstimate';
import { analysesReport, objectReport } from '../ide/stackReport';
import { fileStatus } from '../ide/status';

/** Quiet time after an object's last change before it is read: a build rewrites a file in bursts. */
const OBJECT_DEBOUNCE_MS = 150;
/** Delay before the one retry of an object that was incomplete or changing when read. */
const OBJECT_RETRY_MS = 300;
/** Quiet time after the last edit of a document before its source is estimated again. */
const ESTIMATE_DEBOUNCE_MS = 200;
/** How long a CodeLens request from a client that cannot be asked to refresh waits for a running estimate. */
const LENS_ESTIMATE_WAIT_MS = 3000;

export function startServer(connection: Connection = createConnection(ProposedFeatures.all)): Connection {
  const log = (message: string) => connection.console.log(message);
  process.on('uncaughtException', (error) => log(`internal error: ${error.stack ?? error}`));
  process.on('unhandledRejection', (error) => log(`internal error: ${error instanceof Error ? error.stack : String(error)}`));

  const documents = new OpenDocuments(log);
  const objects = new ObjectIndex({ debounceMs: OBJECT_DEBOUNCE_MS, retryMs: OBJECT_RETRY_MS, log });
  let showsProgress = false;
  const estimates = new SourceEstimates({
    openText: (filePath) => documents.byPath(filePath)?.getText(),
    openBuffers: () => documents.textsByPath(),
    log,
    debounceMs: ESTIMATE_DEBOUNCE_MS,
    beginProgress: (title) => (showsProgress ? beginProgress(connection, title) : Promise.resolve(undefined)),
  });
  /** When each file was last opened, edited or changed on disk, to say in the log how long its estimate took. */
  const estimateRequested = new Map<string, number>();
  const requestEstimate = (filePath: string) => estimateRequested.set(resolvedPath(filePath), performance.now());
  const bufferCompiles = new BufferCompiles({
    openText: (filePath) => documents.byPath(filePath)?.getText(),
    compileFlagsFor: (filePath) => bufferCompileFlags(filePath, { ...estimates.configuredInputFor(filePath), settingsFlags: settings.bufferCompileFlags }),
    log,
    beginProgress: (title) => (showsProgress ? beginProgress(connection, title) : Promise.resolve(undefined)),
  });
  /** What the client said about workspace trust: undefined when it says nothing (clients other than VS Code). */
  let workspaceTrusted: boolean | undefined;
  const configureBufferCompiles = () =>
    bufferCompiles.configure({
      enabled: bufferCompileAllowed(settings.bufferCompile, workspaceTrusted),
      debounceMs: settings.bufferCompileDebounceMs,
      clangSetting: settings.bufferCompileClang,
      profiles,
      roots,
    });
  const analyses = new DocumentAnalyses();
  analyses.register(objects);
  analyses.register(estimates);
  analyses.register(bufferCompiles);

  let settings: LensSettings = DEFAULT_SETTINGS;
  let profiles: KernelProfile[] = [];
  let roots: string[] = [];
  let initializationOptions: InitializationOptions = {};
  let pullsConfiguration = false;
  let registersConfiguration = false;
  let registersWatchers = false;
  let refreshesLenses = false;
  let watcherRegistration: Promise<Disposable> | undefined;
  /** The roots, globs and kernels the object index was last configured with. */
  let configuredObjectInputs: string | undefined;

  /** Every analysis of a document, objects counted stale while the buffer differs from the file on disk. */
  const analysesOf = (uri: string) => {
    const filePath = documents.pathOf(uri) ?? pathOfUri(uri);
    return filePath ? withBufferCompile(againstUnsavedChanges(analyses.analysesFor(filePath), documents.differsFromDisk(uri))) : [];
  };

  /** The settings as they apply to one file: its definitions include the compile database's. */
  const settingsFor = (filePath: string | undefined): LensSettings => (filePath ? { ...settings, defines: estimates.definesFor(filePath) } : settings);

  const publish = (uri: string) => {
    const filePath = documents.pathOf(uri);
    if (!filePath) return;
    const findings = stackFindings(filePath, analysesOf(uri), { currentText: (file) => documents.byPath(file)?.getText() });
    void connection.sendDiagnostics({ uri, diagnostics: findings.map((finding) => toDiagnostic(finding, (file) => documents.byPath(file))) });
  };

  /**
   * Problems lists the whole workspace, not only the open files: the sources under the workspace
   * folders that no editor has open get their objects' diagnostics (there is no estimate of them).
   */
  const publishedClosed = new Set<string>();
  const publishClosedSources = () => {
    const open = new Set(documents.uris().map((uri) => documents.pathOf(uri)));
    const underRoots = (filePath: string) => roots.some((root) => !path.relative(resolvedPath(root), filePath).startsWith('..'));
    const sources = objects.sourcePaths().filter((sourcePath) => !open.has(sourcePath) && underRoots(sourcePath));
    for (const sourcePath of new Set([...sources, ...publishedClosed])) {
      if (open.has(sourcePath)) {
        publishedClosed.delete(sourcePath);
        continue;
      }
      const findings = sources.includes(sourcePath) ? stackFindings(sourcePath, objects.analysesFor(sourcePath)) : [];
      if (findings.length === 0 && !publishedClosed.has(sourcePath)) continue;
      void connection.sendDiagnostics({ uri: pathToUri(sourcePath), diagnostics: findings.map((finding) => toDiagnostic(finding, () => undefined)) });
      if (findings.length > 0) publishedClosed.add(sourcePath);
      else publishedClosed.delete(sourcePath);
    }
  };

  analyses.onDidChange((sourcePaths) => {
    if (sourcePaths !== 'all') for (const sourcePath of sourcePaths) logEstimate(sourcePath);
    publishClosedSources();
    for (const uri of documents.uris()) {
      const filePath = documents.pathOf(uri);
      if (sourcePaths === 'all' || (filePath && sourcePaths.includes(filePath))) publish(uri);
    }
    if (refreshesLenses) connection.sendRequest(CodeLensRefreshRequest.type).catch(() => undefined);
  });

  /**
   * One line per new estimate of an open file, for whoever has to find out why a number is what it
   * is: how long it took, what it found, and which includes it could not resolve (whose types then
   * count 0 bytes).
   */
  const logEstimate = (sourcePath: string) => {
    const estimate = estimates.analysesFor(sourcePath)[0];
    const requested = estimateRequested.get(sourcePath);
    if (!estimate || requested === undefined) return;
    estimateRequested.delete(sourcePath);
    const unresolved = (estimate.problems ?? []).filter((problem) => / file not found/.test(problem.message)).map((problem) => problem.message.replace(/ file not found.*$/, ''));
    const elapsed = Math.round(performance.now() - requested);
    log(
      `${sourcePath}: estimated ${estimate.frames?.length ?? 0} function(s), ${estimate.programs.length} program(s) in ${elapsed} ms after the last change (of which ${ESTIMATE_DEBOUNCE_MS} ms quiet time)` +
        (unresolved.length > 0 ? `; includes not found: ${unresolved.join(', ')} (set bpfStackLens.includePaths or a compile_commands.json)` : '; every include found'),
    );
  };

  /** What the settings amount to, in the log: the kernels judged for and where the estimate's flags come from. */
  const logConfiguration = (kernelsFromSettings: boolean) => {
    const database = findCompileCommands(settings.compileCommands, roots);
    const searched = roots.flatMap((root) => [`${root}/compile_commands.json`, `${root}/build/compile_commands.json`]).join(', ');
    log(`kernels: ${profiles.map(profileLabel).join(', ')}${kernelsFromSettings ? '' : ' (the running kernel: bpfStackLens.kernels is empty)'}`);
    log(`workspace folders: ${roots.join(', ') || 'none'}; objects: ${settings.objectGlobs.join(', ')}`);
    log(`compile database: ${database ?? (settings.compileCommands ? `${settings.compileCommands} (not found)` : `none (looked for ${searched || 'none without a workspace folder'})`)}`);
    log(`include paths from the settings: ${settings.includePaths.join(', ') || 'none'}; definitions: ${Object.entries(settings.defines).map(([name, value]) => `${name}=${value}`).join(' ') || 'none'}`);
  };

  /** Reads the settings (pulled from the client when it can answer), then rescans with them. */
  const configure = async (pushed?: unknown) => {
    let raw: unknown = pushed ?? initializationOptions.settings;
    if (pullsConfiguration) raw = await connection.workspace.getConfiguration(SETTINGS_SECTION).catch(() => raw);
    const read = readSettings(raw);
    settings = read.settings;
    // Judging "the running kernel" needs its probed facts; the probe runs in a child process.
    if (settings.kernels.length === 0) await probeRunningKernel();
    const kernels = kernelProfilesOf(settings);
    profiles = kernels.profiles;
    for (const note of [...read.errors, ...kernels.notes]) void connection.window.showWarningMessage(`bpf-stack-lens: ${note}`);
    logConfiguration(settings.kernels.length > 0);
    registerWatchers();
    estimates.configure(settings, profiles, roots);
    configureBufferCompiles();
    // A rescan forgets every object until it is read again: only settings the objects depend on warrant one.
    const objectInputs = JSON.stringify([roots, settings.objectGlobs, profiles]);
    if (objectInputs === configuredObjectInputs) return;
    configuredObjectInputs = objectInputs;
    await objects.configure(roots, settings.objectGlobs, profiles);
  };

  /** Asks the client to watch the objects (and the sources, whose times decide staleness), when it can and does not already. */
  const registerWatchers = () => {
    if (!registersWatchers) return;
    const previous = watcherRegistration;
    watcherRegistration = connection.client.register(DidChangeWatchedFilesNotification.type, {
      watchers: [...settings.objectGlobs, '**/*.{c,h}', '**/compile_commands.json'].map((globPattern) => ({ globPattern })),
    });
    void previous?.then((registration) => registration.dispose()).catch(() => undefined);
  };

  connection.onInitialize((params: InitializeParams): InitializeResult => {
    initializationOptions = (params.initializationOptions ?? {}) as InitializationOptions;
    workspaceTrusted = typeof initializationOptions.workspaceTrusted === 'boolean' ? initializationOptions.workspaceTrusted : undefined;
    roots = workspaceRoots(params);
    const workspace = params.capabilities.workspace;
    pullsConfiguration = workspace?.configuration === true;
    // Registering with a client that cannot take it makes eglot warn on every start.
    registersConfiguration = pullsConfiguration && workspace?.didChangeConfiguration?.dynamicRegistration === true;
    registersWatchers = workspace?.didChangeWatchedFiles?.dynamicRegistration === true && initializationOptions.clientWatchesObjects !== true;
    refreshesLenses = workspace?.codeLens?.refreshSupport === true;
    showsProgress = params.capabilities.window?.workDoneProgress === true;
    return {
      capabilities: {
        textDocumentSync: { openClose: true, change: TextDocumentSyncKind.Incremental, save: { includeText: false } },
        hoverProvider: true,
        codeActionProvider: { codeActionKinds: [CodeActionKind.QuickFix] },
        codeLensProvider: { resolveProvider: false },
      },
      serverInfo: { name: 'bpf-stack-lens' },
    };
  });

  connection.onInitialized(() => {
    if (registersConfiguration) void connection.client.register(DidChangeConfigurationNotification.type, { section: SETTINGS_SECTION }).catch(() => undefined);
    configure().catch((error) => log(`cannot apply the settings: ${String(error)}`));
  });

  connection.onDidChangeConfiguration((params) => {
    const pushed = (params.settings as Record<string, unknown> | undefined)?.[SETTINGS_SECTION];
    configure(pushed).catch((error) => log(`cannot apply the settings: ${String(error)}`));
  });

  connection.onNotification(WORKSPACE_TRUST_NOTIFICATION, (params: WorkspaceTrustParams) => {
    workspaceTrusted = params.trusted === true;
    configureBufferCompiles();
  });

  connection.onDidOpenTextDocument(({ textDocument }) => {
    documents.opened(textDocument.uri, textDocument.languageId, textDocument.version, textDocument.text);
    publish(textDocument.uri);
    const filePath = documents.pathOf(textDocument.uri);
    if (filePath) {
      requestEstimate(filePath);
      estimates.opened(filePath);
      bufferCompiles.opened(filePath);
    }
  });
  connection.onDidChangeTextDocument(({ textDocument, contentChanges }) => {
    const differed = documents.differsFromDisk(textDocument.uri);
    documents.changed(textDocument.uri, textDocument.version, contentChanges);
    const filePath = documents.pathOf(textDocument.uri);
    if (filePath) {
      requestEstimate(filePath);
      estimates.edited(filePath);
      bufferCompiles.edited(filePath);
    }
    // The first unsaved edit makes the objects stale at once, and an undo back to the file's text
    // makes them fresh at once; the estimate follows after its quiet time.
    if (documents.differsFromDisk(textDocument.uri) !== differed) publish(textDocument.uri);
  });
  connection.onDidSaveTextDocument(({ textDocument }) => {
    publish(textDocument.uri);
  });
  connection.onDidCloseTextDocument(({ textDocument }) => {
    const filePath = documents.pathOf(textDocument.uri);
    documents.closed(textDocument.uri);
    if (filePath) {
      estimates.closed(filePath);
      bufferCompiles.closed(filePath);
      // Files that read this header from its buffer read it from disk now.
      estimates.fileChanged(filePath);
    }
    void connection.sendDiagnostics({ uri: textDocument.uri, diagnostics: [] });
    // Closed, the file keeps what its objects say.
    publishClosedSources();
  });

  connection.onDidChangeWatchedFiles((params) => {
    // Only an array of changes is one; a string of 5,000 characters would be 5,000 of them.
    const changes = Array.isArray(params?.changes) ? params.changes : [];
    for (const change of changes) {
      const filePath = uriToPath(change.uri);
      if (!filePath) continue;
      objects.fileChanged(filePath);
      estimates.fileChanged(filePath);
      bufferCompiles.fileChanged(filePath);
      // A source saved outside the editor changes whether its objects are stale.
      const open = documents.uris().find((uri) => documents.pathOf(uri) === resolvedPath(filePath));
      if (open) publish(open);
    }
  });

  connection.onHover(async (params) => {
    const snapshot = await documents.snapshot(params.textDocument.uri);
    if (!snapshot?.path) return null;
    const content = hoverAt(snapshot, offsetOf(snapshot.document, params.position), analysesOf(params.textDocument.uri), settingsFor(snapshot.path));
    return content ? toHover(snapshot.document, content) : null;
  });

  connection.onCodeAction(async (params) => {
    const snapshot = await documents.snapshot(params.textDocument.uri);
    if (!snapshot) return [];
    const ours = params.context.diagnostics.filter((diagnostic) => findingDataOf(diagnostic) !== undefined);
    const fixes = quickFixes(snapshot, rangeToSpan(snapshot.document, params.range), ours.map(findingDataOf), analysesOf(params.textDocument.uri), settingsFor(snapshot.path));
    return fixes.map((fix) => toCodeAction(snapshot.document, fix, fix.diagnostics.map((index) => ours[index])));
  });

  connection.onCodeLens(async (params) => {
    // A client that cannot be told to ask again would keep lenses without the estimate that is about
    // to come in, so its request waits a little for it; other requests never wait.
    const filePath = documents.pathOf(params.textDocument.uri);
    if (!refreshesLenses && filePath) await atMost(estimates.settled(filePath), LENS_ESTIMATE_WAIT_MS);
    const snapshot = await documents.snapshot(params.textDocument.uri);
    if (!snapshot?.path) return [];
    const command = typeof initializationOptions.stackReportCommand === 'string' ? initializationOptions.stackReportCommand : undefined;
    return codeLenses(snapshot, analysesOf(params.textDocument.uri), command).map((lens) => toCodeLens(snapshot.document, lens));
  });

  connection.onRequest(FILE_STATUS_REQUEST, (params: FileStatusParams) => fileStatus(analysesOf(uriParam(params, 'fileStatus'))));
  connection.onRequest(STACK_REPORT_REQUEST, (params: StackReportParams) => analysesReport(analysesOf(uriParam(params, 'stackReport')), (location) => lineText(location, documents, roots)));
  connection.onRequest(CHECK_OBJECT_REQUEST, (params: CheckObjectParams) => {
    // A number here would be read as a file descriptor (descriptor 2 froze the server).
    if (typeof params?.path !== 'string' || params.path === '') throw new ResponseError(ErrorCodes.InvalidParams, 'checkObject needs a path (a non-empty string)');
    return objectReport(params.path, profiles, roots);
  });

  connection.onShutdown(() => {
    objects.dispose();
    estimates.dispose();
    bufferCompiles.dispose();
  });
  connection.listen();
  return connection;
}

/** A work-done progress in the client, begun with `title`; undefined when the client refuses to create it. */
async function beginProgress(connection: Connection, title: string): Promise<ProgressHandle | undefined> {
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
