/**
 * The VS Code extension: starts the bundled language server (dist/server.js) over IPC, watches the
 * configured object globs for it, shows the current file's verdict in the status bar, and adds the
 * commands to restart the server, check any object, and show the current file's stack report.
 */
import * as vscode from 'vscode';
import { LanguageClient, type LanguageClientOptions, type ServerOptions, TransportKind } from 'vscode-languageclient/node';
import {
  CHECK_OBJECT_REQUEST,
  type CheckObjectParams,
  FILE_STATUS_REQUEST,
  type FileStatus,
  type FileStatusParams,
  type InitializationOptions,
  STACK_REPORT_REQUEST,
  type StackReportParams,
  WORKSPACE_TRUST_NOTIFICATION,
  type WorkspaceTrustParams,
} from '../../server/src/lsp/protocol';

const SECTION = 'bpfStackLens';

let client: LanguageClient | undefined;
let statusItem: vscode.StatusBarItem;
let output: vscode.LogOutputChannel;

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
    vscode.window.onDidChangeActiveTextEditor(() => void updateStatus()),
    vscode.languages.onDidChangeDiagnostics(() => void updateStatus()),
    // The server compiles buffers in the background only in a trusted workspace.
    vscode.workspace.onDidGrantWorkspaceTrust(() => void client?.sendNotification(WORKSPACE_TRUST_NOTIFICATION, { trusted: true } satisfies WorkspaceTrustParams)),
    vscode.workspace.onDidChangeConfiguration((event) => {
      // The watchers are made from the globs at start, so new globs need a new client.
      if (event.affectsConfiguration(`${SECTION}.objectGlobs`)) void restart(context);
    }),
  );
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
  const watchers = [...globs, '**/*.{c,h}'].map((glob) => vscode.workspace.createFileSystemWatcher(glob));
  context.subscriptions.push(...watchers);
  // A WorkspaceConfiguration carries functions too; the server needs only the values.
  const initializationOptions: InitializationOptions = { settings: JSON.parse(JSON.stringify(configuration)),
    clientWatchesObjects: true,
    workspaceTrusted: vscode.workspace.isTrusted,
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ scheme: 'file', language: 'c' }],
    synchronize: { configurationSection: SECTION, fileEvents: watchers },
    initializationOptions,
    outputChannel: output,
  };
  client = new LanguageClient('bpfStackLens', 'BPF Stack Lens', serverOptions, clientOptions);
  await client.start();
  await updateStatus();
}

async function restart(context: vscode.ExtensionContext): Promise<void> {
  await client?.stop();
  await start(context);
}

/** Counts status requests, so that an answer overtaken by a newer request is dropped. */
let statusTicket = 0;

/** The status bar: the verdict for the file in the active editor, hidden for other languages. */
async function updateStatus(): Promise<void> {
  const ticket = ++statusTicket;
  const editor = vscode.window.activeTextEditor;
  if (!client || !editor || editor.document.languageId !== 'c') {
    statusItem.hide();
    return;
  }
  try {
    const params: FileStatusParams = { uri: editor.document.uri.toString() };
    const status = await client.sendRequest<FileStatus>(FILE_STATUS_REQUEST, params);
    // Diagnostics change in bursts; an older answer arriving last must not overwrite a newer one.
    if (ticket !== statusTicket) return;
    const icon = status.state === 'rejected' ? '$(error)' : status.state === 'passes' ? '$(check)' : status.state === 'stale' ? '$(history)' : '$(circle-slash)';
    statusItem.text = `${icon} ${status.text}`;
    statusItem.tooltip = status.tooltip;
    statusItem.show();
  } catch (error) {
    output.warn(`status: ${String(error)}`);
  }
}

/** Picks an object file and shows its `bpf-stack-lens check` report. */
async function analyzeObject(): Promise<void> {
  if (!client) return;
  const picked = await vscode.window.showOpenDialog({ canSelectMany: false, filters: { 'BPF objects': ['o'], 'All files': ['*'] }, openLabel: 'Check' });
  if (!picked?.[0]) return;
  const params: CheckObjectParams = { path: picked[0].fsPath };
  await showText(await client.sendRequest<string>(CHECK_OBJECT_REQUEST, params));
}

/** Shows the report of the objects built from the current file (or the file a lens was clicked in). */
async function showStackReport(uri?: string | vscode.Uri): Promise<void> {
  const target = uri?.toString() ?? vscode.window.activeTextEditor?.document.uri.toString();
  if (!client || !target) return;
  const params: StackReportParams = { uri: target };
  await showText(await client.sendRequest<string>(STACK_REPORT_REQUEST, params));
}

async function showText(content: string): Promise<void> {
  const document = await vscode.workspace.openTextDocument({ content, language: 'plaintext' });
  await vscode.window.showTextDocument(document, { preview: false });
}
