/**
 * What the protocol-level tests share: the real server spawned as `bpf-stack-lens lsp --stdio` and
 * driven by vscode-jsonrpc's message connection, the way an editor drives it; clang-19 for building
 * objects; and applying the server's text edits to a string.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type MessageConnection, StreamMessageReader, StreamMessageWriter, createMessageConnection } from 'vscode-jsonrpc/node';
import type { Diagnostic, PublishDiagnosticsParams, TextEdit } from 'vscode-languageserver-protocol';
import { TextDocument } from 'vscode-languageserver-textdocument';

export const REPO = resolve(__dirname, '..', '..', '..');
export const SEED_SOURCE = join(REPO, 'examples', 'workspace', 'seed.bpf.c');
export const CLANG = process.env.CLANG ?? 'clang-19';

export function hasClang(): boolean {
  try {
    execFileSync(CLANG, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Builds a BPF object the way examples/workspace/build.sh does, with any extra flags (`-DNAME`). */
export function compileBpf(source: string, object: string, extraFlags: string[] = []): void {
  execFileSync(CLANG, ['-O2', '-g', '-target', 'bpf', '-I/usr/include/x86_64-linux-gnu', ...extraFlags, '-c', source, '-o', object], { stdio: 'pipe' });
}

/** A temporary workspace holding a copy of the seed source. */
export function seedWorkspace(prefix: string): { workspace: string; source: string } {
  const workspace = mkdtempSync(join(tmpdir(), prefix));
  const source = join(workspace, 'seed.bpf.c');
  copyFileSync(SEED_SOURCE, source);
  return { workspace, source };
}

export function applyEdits(text: string, edits: TextEdit[]): string {
  return TextDocument.applyEdits(TextDocument.create('file:///x.c', 'c', 0, text), edits);
}

export class LspSession {
  readonly connection: MessageConnection;
  readonly logs: string[] = [];
  /** Every publishDiagnostics, in order, for checking that nothing wrong was ever published. */
  readonly published: PublishDiagnosticsParams[] = [];
  /** Every window/workDoneProgress/create token and $/progress value, in the order they came. */
  readonly progress: (
    { kind: 'create'; token: unknown } | { kind: 'progress'; token: unknown; value: { kind: string; title?: string; message?: string; percentage?: number } }
  )[] = [];
  private readonly process: ChildProcess;
  private readonly latest = new Map<string, Diagnostic[]>();
  private waiters: (() => void)[] = [];
  private stderr = '';
  exited = false;

  /** What the client answers to workspace/configuration; change it, then send didChangeConfiguration. */
  settings: unknown;

  constructor(settings: unknown) {
    this.settings = settings;
    this.process = spawn(process.execPath, [join(REPO, 'bin', 'bpf-stack-lens.js'), 'lsp', '--stdio'], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.process.stderr?.on('data', (chunk) => (this.stderr += String(chunk)));
    this.process.on('exit', () => (this.exited = true));
    this.connection = createMessageConnection(new StreamMessageReader(this.process.stdout!), new StreamMessageWriter(this.process.stdin!));
    this.connection.onNotification('textDocument/publishDiagnostics', (params: PublishDiagnosticsParams) => {
      this.published.push(params);
      this.latest.set(params.uri, params.diagnostics);
      for (const wake of this.waiters) wake();
    });
    this.connection.onNotification('window/logMessage', (params: { message: string }) => {
      this.logs.push(params.message);
      for (const wake of this.waiters) wake();
    });
    this.connection.onNotification('window/showMessage', (params: { message: string }) => {
      this.logs.push(params.message);
    });
    this.connection.onRequest('workspace/configuration', (params: { items: unknown[] }) => params.items.map(() => this.settings));
    this.connection.onRequest('client/registerCapability', () => null);
    this.connection.onRequest('client/unregisterCapability', () => null);
    this.connection.onRequest('workspace/codeLens/refresh', () => null);
    this.connection.onRequest('window/workDoneProgress/create', (params: { token: unknown }) => {
      this.progress.push({ kind: 'create', token: params.token });
      return null;
    });
    this.connection.onNotification('$/progress', (params: { token: unknown; value: { kind: string } }) => {
      this.progress.push({ kind: 'progress', token: params.token, value: params.value });
      for (const wake of this.waiters) wake();
    });
    this.connection.listen();
  }

  /** The server's process id, to find the children it runs (a loader, QEMU). */
  get pid(): number | undefined {
    return this.process.pid;
  }

  /**
   * `window` is the client's window capabilities, such as `{ workDoneProgress: true }`; `options`
   * goes into the initialization options beside the settings (such as `stackReportCommand`).
   */
  async initialize(workspace: string, settings: unknown, window: Record<string, unknown> = {}, options: Record<string, unknown> = {}): Promise<void> {
    const workspaceUri = `file://${workspace}`;
    await this.connection.sendRequest('initialize', {
      processId: process.pid,
      rootUri: workspaceUri,
      workspaceFolders: [{ uri: workspaceUri, name: 'ws' }],
      initializationOptions: { ...options, settings },
      capabilities: {
        workspace: { configuration: true, didChangeWatchedFiles: { dynamicRegistration: true }, codeLens: { refreshSupport: true } },
        textDocument: { publishDiagnostics: { relatedInformation: true } },
        window,
      },
    });
    await this.connection.sendNotification('initialized', {});
  }

  /** Changes the settings the way VS Code does: the client answers with the new ones, and tells the server to ask. */
  async changeSettings(settings: unknown): Promise<void> {
    this.settings = settings;
    await this.connection.sendNotification('workspace/didChangeConfiguration', { settings: null });
  }

  diagnostics(uri: string): Diagnostic[] | undefined {
    return this.latest.get(uri);
  }

  /** Resolves when `condition` holds (checked now and after every message), or fails after `timeoutMs`. */
  async until(condition: () => boolean, what: string, timeoutMs = 15000): Promise<void> {
    if (condition()) return;
    await new Promise<void>((resolvePromise, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== wake);
        reject(new Error(`timed out waiting for ${what}; server stderr: ${this.stderr}; logs: ${this.logs.join(' | ')}`));
      }, timeoutMs);
      const wake = () => {
        if (!condition()) return;
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== wake);
        resolvePromise();
      };
      this.waiters.push(wake);
    });
  }

  async close(): Promise<void> {
    try {
      await Promise.race([this.connection.sendRequest('shutdown'), sleep(2000)]);
      await this.connection.sendNotification('exit');
    } catch {
      // The server may be gone already; killing it below is enough.
    }
    await sleep(100);
    this.connection.dispose();
    if (!this.exited) this.process.kill();
  }
}

/**
 * Asks until `ask` gives something `holds` accepts, and returns it: requests are answered from
 * whatever analyses exist at the time, and the estimate comes in on its own thread when it is done.
 */
export async function poll<T>(ask: () => Promise<T>, holds: (value: T) => boolean, what: string, timeoutMs = 30000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await ask();
    if (holds(value)) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}; last: ${JSON.stringify(value)}`);
    await sleep(50);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolvePromise) => setTimeout(resolvePromise, ms));
}
