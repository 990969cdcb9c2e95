/**
 * The VS Code extension: starts the bundled language server (dist/server.js) over IPC, watches the
 * configured object globs, the sources and the compile database for it, shows the current file's
 * verdict in the status bar, and adds the commands to restart the server, check any object, show
 * the current file's stack report, and verify the current file's objects on real kernels (each a
 * read-only document).
 */
import * as vscode from 'vscode';
import { LanguageClient, type LanguageClientOptions, type ServerOptions, TransportKind, WorkDoneProgress } from 'vscode-languageclient/node';
import {
  CHECK_OBJECT_REQUEST,
  type CheckObjectParams,
  FILE_STATUS_REQUEST,
  type FileStatus,
  type FileStatusParams,
  type InitializationOptions,
  STACK_REPORT_REQUEST,
  type StackReportParams,
  VERIFY_REQUEST,
  VERIFY_TARGETS_REQUEST,
  type VerifyParams,
  type VerifyTargetChoice,
  WORKSPACE_TRUST_NOTIFICATION,
  type WorkspaceTrustParams,
} from '../../server/src/lsp/protocol';

const SECTION = 'bpfStackLens';
/** The scheme of the read-only report documents: `bpf-stack-lens-report:/NAME?QUERY`. */
const REPORT_SCHEME = 'bpf-stack-lens-report';
/** A C file holds BPF programs when it places a function in a section, as libbpf's SEC() does. */
const BPF_PROGRAM_MARK = /\bSEC\s*\(|__attribute__\s*\(\(\s*section\s*\(/;

let client: LanguageClient | undefined;
let statusItem: vscode.StatusBarItem;
let output: vscode.LogOutputChannel;
/** Tells VS Code to read a report document again, each time it is shown. */
const reportChanged = new vscode.EventEmitter<vscode.Uri>();
/** The command that verifies a file's objects on real kernels; the hover links to it. */
const VERIFY_COMMAND = 'bpfStackLens.verifyOnKernels';
/** Verify reports by document: a verify run takes up to minutes, so showing its report again does not run it again. */
const verifyReports = new Map<string, string>();
let verifyRuns = 0;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  output = vscode.window.createOutputChannel('BPF Stack Lens', { log: true });
  statusItem = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Left, 100);
  statusItem.command = 'bpfStackLens.showStackReport';
  context.subscriptions.push(
    output,
    statusItem,
    vscode.commands.registerCommand('bpfStackLens.restartServer', () => restart(context)),
    vscode.commands.registerCommand('bpfStackLens.analyzeObject', analyzeObject),
    vscode.commands.registerCommand('bpfStackLens.showStackReport', showStackReport),
    vscode.commands.registerCommand(VERIFY_COMMAND, verifyOnKernels),
    reportChanged,
    vscode.workspace.registerTextDocumentContentProvider(REPORT_SCHEME, { onDidChange: reportChanged.event, provideTextDocumentContent: reportContent }),
    vscode.window.onDidChangeActiveTextEditor(() => void updateStatus()),
    vscode.languages.onDidChangeDiagnostics(() => void updateStatus()),
    // The server compiles buffers in the background only in a trusted workspace.
    vscode.workspace.onDidGrantWorkspaceTrust(
      () => void client?.sendNotification(WORKSPACE_TRUST_NOTIFICATION, { trusted: true } satisfies WorkspaceTrustParams),
    ),
    vscode.workspace.onDidChangeConfiguration((event) => {
      // The watchers are made from the globs at start, so new globs need a new client.
      if (event.affectsConfiguration(`${SECTION}.objectGlobs`)) void restart(context);
    }),
  );
  // Restricted Mode: VS Code withholds the workspace's values of the settings package.json marks as
  // restricted (they name files to read); everything else works, since nothing from the workspace runs.
  if (!vscode.workspace.isTrusted)
    output.info("Restricted Mode: objects and sources are analysed; the workspace's includePaths and compileCommands are not applied.");
  await start(context);
}

export async function deactivate(): Promise<void> {
  await client?.stop();
  client = undefined;
}

async function start(context: vscode.ExtensionContext): Promise<void> {
  const serverModule = context.asAbsolutePath('dist/server.js');
  const serverOptions: ServerOptions = {
    run: { module: serverModule, transport: TransportKind.ipc },
    debug: { module: serverModule, transport: TransportKind.ipc, options: { execArgv: ['--nolazy', '--inspect=6019'] } },
  };
  const configuration = vscode.workspace.getConfiguration(SECTION);
  const globs = configuration.get<string[]>('objectGlobs', ['**/*.o']);
  // The server leaves watching to this client: the objects, the sources (whose times decide
  // staleness) and the compile database (its flags decide the estimate).
  const watchers = [...globs, '**/*.{c,h}', '**/compile_commands.json'].map((glob) => vscode.workspace.createFileSystemWatcher(glob));
  context.subscriptions.push(...watchers);
  // A WorkspaceConfiguration carries functions too; the server needs only the values.
  const initializationOptions: InitializationOptions = {
    settings: JSON.parse(JSON.stringify(configuration)),
    clientWatchesObjects: true,
    workspaceTrusted: vscode.workspace.isTrusted,
    // A click on a CodeLens opens the stack report of its file.
    stackReportCommand: 'bpfStackLens.showStackReport',
    verifyCommand: VERIFY_COMMAND,
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ scheme: 'file', language: 'c' }],
    synchronize: { configurationSection: SECTION, fileEvents: watchers },
    initializationOptions,
    outputChannel: output,
    // The hover's one command link; every other link in server markdown stays inert.
    markdown: { isTrusted: { enabledCommands: [VERIFY_COMMAND] } },
    middleware: {
      provideCodeActions: (document, range, context, token, next) => whileRunning(() => next(document, range, context, token)),
      provideHover: (document, position, token, next) => whileRunning(() => next(document, position, token)),
      provideCodeLenses: (document, token, next) => whileRunning(() => next(document, token)),
    },
  };
  client = new LanguageClient('bpfStackLens', 'BPF Stack Lens', serverOptions, clientOptions);
  await client.start();
  await updateStatus();
}

/**
 * A request still in flight when the window reloads or the server restarts fails with "Channel has
 * been closed"; its answer is moot, so it ends quietly instead of as a provider failure in the log.
 */
async function whileRunning<T>(request: () => vscode.ProviderResult<T>): Promise<T | null | undefined> {
  try {
    return await request();
  } catch (error) {
    if (!client?.isRunning()) return undefined;
    throw error;
  }
}

async function restart(context: vscode.ExtensionContext): Promise<void> {
  await client?.stop();
  await start(context);
}

/** Counts status requests, so that an answer overtaken by a newer request is dropped. */
let statusTicket = 0;

/**
 * The status bar: the verdict for the file in the active editor; hidden for other languages, and
 * for C files with no BPF program and no object built from them (userspace loaders and tools).
 */
async function updateStatus(): Promise<void> {
  const ticket = ++statusTicket;
  const editor = vscode.window.activeTextEditor;
  if (!client || !editor || editor.document.languageId !== 'c' || !client.isRunning()) {
    statusItem.hide();
    return;
  }
  try {
    const params: FileStatusParams = { uri: editor.document.uri.toString() };
    const status = await client.sendRequest<FileStatus>(FILE_STATUS_REQUEST, params);
    // Diagnostics change in bursts; an older answer arriving last must not overwrite a newer one.
    if (ticket !== statusTicket) return;
    if (status.state === 'none' && !BPF_PROGRAM_MARK.test(editor.document.getText())) {
      statusItem.hide();
      return;
    }
    const icon =
      status.state === 'rejected' ? '$(error)' : status.state === 'passes' ? '$(check)' : status.state === 'stale' ? '$(history)' : '$(circle-slash)';
    statusItem.text = `${icon} ${status.text}`;
    statusItem.tooltip = status.tooltip;
    statusItem.show();
  } catch (error) {
    // A server that is stopping has nothing to say about the file.
    if (client?.isRunning()) output.warn(`status: ${String(error)}`);
  }
}

/** Picks an object file and shows its `bpf-stack-lens check` report. */
async function analyzeObject(): Promise<void> {
  if (!client) return;
  const picked = await vscode.window.showOpenDialog({ canSelectMany: false, filters: { 'BPF objects': ['o'], 'All files': ['*'] }, openLabel: 'Check' });
  if (!picked?.[0]) return;
  await showReport(picked[0].fsPath, { check: picked[0].fsPath });
}

/** Shows the report of the objects built from the current file (or the file a lens was clicked in). */
async function showStackReport(uri?: string | vscode.Uri): Promise<void> {
  const target = uri?.toString() ?? vscode.window.activeTextEditor?.document.uri.toString();
  if (!client || !target) return;
  await showReport(vscode.Uri.parse(target).fsPath, { source: target });
}

/**
 * Verify on real kernels: the objects of the current .c or .o file (or the one a hover link or the
 * explorer names) loaded into the kernels picked, each real verdict beside the prediction, in a
 * report document. Progress shows in a notification whose Cancel stops the loader or QEMU.
 */
async function verifyOnKernels(uri?: string | vscode.Uri): Promise<void> {
  const target = uri?.toString() ?? vscode.window.activeTextEditor?.document.uri.toString();
  if (!client?.isRunning()) {
    void vscode.window.showWarningMessage('BPF Stack Lens: the language server is not running (BPF Stack Lens: Restart the language server).');
    return;
  }
  if (!target || !/\.(c|o)$/.test(vscode.Uri.parse(target).path)) {
    void vscode.window.showInformationMessage(
      'BPF Stack Lens: open a BPF .c file (one with a built object) or pick a .o in the explorer to verify it on real kernels.',
    );
    return;
  }
  const choices = await client.sendRequest<VerifyTargetChoice[]>(VERIFY_TARGETS_REQUEST);
  const items = choices.map((choice) => ({
    label: choice.label,
    description: choice.description,
    detail: choice.detail,
    picked: choice.ready,
    name: choice.name,
  }));
  const picked = await vscode.window.showQuickPick(items, {
    canPickMany: true,
    title: 'Verify on real kernels',
    placeHolder: 'Kernels to load the programs into (lab kernels boot under QEMU; the first use of one downloads its Debian package)',
  });
  if (!picked || picked.length === 0) return;
  const describedPath = vscode.Uri.parse(target).fsPath;
  const text = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: 'Verifying on real kernels', cancellable: true },
    async (progress, cancel) => {
      const workDoneToken = `bpfStackLens.verify.${++verifyRuns}`;
      const listening = client!.onProgress(WorkDoneProgress.type, workDoneToken, (value) => {
        if (value.kind !== 'end' && value.message) progress.report({ message: value.message });
      });
      try {
        const params: VerifyParams = { uri: target, kernels: picked.map((item) => item.name), workDoneToken };
        return await client!.sendRequest<string>(VERIFY_REQUEST, params, cancel);
      } catch (error) {
        // A cancel ends quietly; anything else is said once, not as a failed command.
        if (!cancel.isCancellationRequested)
          void vscode.window.showErrorMessage(`BPF Stack Lens: verify failed: ${error instanceof Error ? error.message : String(error)}`);
        return undefined;
      } finally {
        listening.dispose();
      }
    },
  );
  if (text === undefined) return;
  const key = String(verifyRuns);
  verifyReports.set(key, text);
  await showReport(describedPath, { verify: key }, 'verified on real kernels');
}

/**
 * Opens the report as a read-only document named after the file it describes, so closing it never
 * asks to save anything; showing it again reads it afresh.
 */
async function showReport(describedPath: string, query: { check: string } | { source: string } | { verify: string }, what = 'stack report'): Promise<void> {
  const name = `${describedPath.split('/').pop() ?? describedPath} — ${what}`;
  const uri = vscode.Uri.from({ scheme: REPORT_SCHEME, path: `/${name}`, query: new URLSearchParams(query).toString() });
  reportChanged.fire(uri);
  const document = await vscode.workspace.openTextDocument(uri);
  await vscode.window.showTextDocument(document, { preview: false });
}

/** The text of a report document: the server's `check` report of an object, or of a source's objects. */
async function reportContent(uri: vscode.Uri): Promise<string> {
  if (!client) return 'The BPF Stack Lens server is not running (BPF Stack Lens: Restart the language server).';
  const query = new URLSearchParams(uri.query);
  const verify = query.get('verify');
  if (verify !== null)
    return verifyReports.get(verify) ?? 'This verify report is gone (the window was reloaded): run BPF Stack Lens: Verify on real kernels… again.';
  const check = query.get('check');
  if (check !== null) {
    const params: CheckObjectParams = { path: check };
    return client.sendRequest<string>(CHECK_OBJECT_REQUEST, params);
  }
  const params: StackReportParams = { uri: query.get('source') ?? '' };
  return client.sendRequest<string>(STACK_REPORT_REQUEST, params);
}
