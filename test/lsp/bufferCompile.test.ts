/**
 * The background compile of the buffer, over the protocol: a compile_commands.json entry for the
 * seed file, no built object; the buffer's compiled numbers replace the estimate (and equal what
 * clang's own object of the same text measures), an edit brings the estimate back until the new
 * compile lands, a buffer that does not compile keeps the estimate with a status note, and an
 * untrusted workspace, the setting off, a command carrying -fplugin or a compiler inside the
 * workspace compile nothing.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import type { Diagnostic } from 'vscode-languageserver-protocol';
import { bufferCompileAllowed } from '../../server/src/lsp/bufferCompile';
import { analyzeObject } from '../../server/src/object/analyzeObject';
import { parseKernelProfiles } from '../../server/src/rules/kernelProfile';
import { CLANG, LspSession, compileBpf, hasClang, poll, seedWorkspace } from './harness';

const COMPILED = 'bpf-stack-lens (compiled from the buffer)';
const ESTIMATE = 'bpf-stack-lens (source estimate)';
const KERNELS = ['6.1', '6.18'];
/** `__u32 key = 0;` in entry(), 0-based: edits go after it. */
const AFTER_KEY_LINE = 104;
const BIGGER_FRAME = '\tchar pad[64];\n\tbpf_skb_load_bytes(skb, 0, pad, sizeof(pad));\n';
const NOT_C = '\tthis is not C;\n';

const reason = hasClang() ? undefined : `${CLANG} is not installed (apt-get install clang-19)`;
if (reason && process.env.CI === 'true') throw new Error(`cannot test the buffer compile: ${reason}`);
const skip = reason ?? false;

let workspace: string;
let source: string;
let text: string;
let uri: string;
let session: LspSession;
let version = 1;

function from(origin: string): Diagnostic[] {
  return (session.diagnostics(uri) ?? []).filter((diagnostic) => diagnostic.source === origin);
}

function settings(bufferCompile: Record<string, unknown>): unknown {
  return { kernels: KERNELS, bufferCompile: { debounceMs: 100, ...bufferCompile } };
}

/** The first line of every violation message clang's own object of `edited` gets. */
function clangMessages(edited: string): string[] {
  const editedSource = join(workspace, 'clang-check', 'seed.bpf.c');
  mkdirSync(join(workspace, 'clang-check'), { recursive: true });
  writeFileSync(editedSource, edited);
  compileBpf(editedSource, join(workspace, 'clang-check', 'seed.bpf.o'));
  const bytes = readFileSync(join(workspace, 'clang-check', 'seed.bpf.o'));
  const { report } = analyzeObject(new Uint8Array(bytes), 'seed.bpf.o', parseKernelProfiles(KERNELS, true).profiles);
  return [...new Set(report.programs.flatMap((program) => program.verdicts.flatMap((verdict) => verdict.violations.map((violation) => violation.message))))];
}

function firstLine(diagnostic: Diagnostic): string {
  return String(diagnostic.message).split('\n')[0];
}

async function edit(line: number, insert: string): Promise<void> {
  const lines = text.split('\n');
  lines.splice(line, 0, ...insert.replace(/\n$/, '').split('\n'));
  text = lines.join('\n');
  await session.connection.sendNotification('textDocument/didChange', { textDocument: { uri, version: ++version }, contentChanges: [{ text }] });
}

async function status(): Promise<{ text: string; tooltip: string; state: string }> {
  return session.connection.sendRequest('bpfStackLens/fileStatus', { uri });
}

before(async () => {
  if (skip) return;
  ({ workspace, source } = seedWorkspace('bpf-stack-lens-buffer-compile-'));
  writeFileSync(
    join(workspace, 'compile_commands.json'),
    JSON.stringify([
      {
        directory: workspace,
        file: 'seed.bpf.c',
        arguments: ['clang-19', '-O2', '-g', '-target', 'bpf', '-I/usr/include/x86_64-linux-gnu', '-c', 'seed.bpf.c', '-o', 'seed.bpf.o'],
      },
    ]),
  );
  text = readFileSync(source, 'utf8');
  uri = pathToFileURL(source).href;
  session = new LspSession(settings({ enabled: 'on' }));
  await session.initialize(workspace, settings({ enabled: 'on' }));
  await session.connection.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'c', version, text } });
});

after(async () => {
  if (skip) return;
  await session.close();
  rmSync(workspace, { recursive: true, force: true });
});

test('the buffer compiled in the background replaces the estimate, and follows unsaved edits', { skip }, async () => {
  await session.until(() => from(COMPILED).length > 0, "the compiled buffer's diagnostics");
  const original = clangMessages(text);
  assert.deepEqual([...new Set(from(COMPILED).map((diagnostic) => firstLine(diagnostic)))], original);
  assert.match(String(from(COMPILED)[0].message), /compiled from the buffer/);
  const hover = await session.connection.sendRequest<{ contents: { value: string } } | null>('textDocument/hover', {
    textDocument: { uri },
    position: { line: 98, character: 5 },
  });
  assert.match(hover?.contents.value ?? '', /measured in `seed\.bpf\.c \(compiled from the buffer\)`/);

  await edit(AFTER_KEY_LINE, BIGGER_FRAME);
  const edited = clangMessages(text);
  assert.notDeepEqual(edited, original, 'the edit changes what the kernel says');
  await session.until(
    () => from(COMPILED).some((diagnostic) => diagnostic.severity === 1 && firstLine(diagnostic) === edited[0]),
    'the compile of the edited buffer, unsaved',
  );
  assert.equal(readFileSync(source, 'utf8').includes('char pad[64]'), false, "nothing was written to the user's file");
});

test('a buffer that does not compile keeps the estimate, with a status note', { skip }, async () => {
  await edit(AFTER_KEY_LINE, NOT_C);
  await session.until(() => from(COMPILED).length === 0 && from(ESTIMATE).length > 0, 'the estimate back in charge');
  const note = await pollStatus((current) => /exact numbers wait for a compiling buffer/.test(current.tooltip));
  // The live verdict leads (the estimate's); the status names the compile that is behind, and why.
  assert.notEqual(note.state, 'stale');
  assert.match(note.text, /\(estimate; buffer compile stale\)$/);
  // Mending the buffer brings the compiled numbers back.
  const lines = text.split('\n');
  lines.splice(AFTER_KEY_LINE, 1);
  text = lines.join('\n');
  await session.connection.sendNotification('textDocument/didChange', { textDocument: { uri, version: ++version }, contentChanges: [{ text }] });
  await session.until(() => from(COMPILED).length > 0, 'the compiled numbers again');
});

test('an untrusted workspace, or the setting off, compiles nothing; auto compiles once trusted', { skip }, async () => {
  await session.until(() => from(COMPILED).length > 0, 'the compiled numbers');
  await session.connection.sendNotification('bpfStackLens/workspaceTrust', { trusted: false });
  await session.until(() => from(COMPILED).length === 0 && from(ESTIMATE).length > 0, 'the estimate alone in an untrusted workspace');
  await session.connection.sendNotification('bpfStackLens/workspaceTrust', { trusted: true });
  await session.until(() => from(COMPILED).length > 0, 'the compiled numbers once trusted');
  await session.changeSettings(settings({ enabled: 'off' }));
  await session.until(() => from(COMPILED).length === 0, 'no compile with the setting off');
  await session.changeSettings(settings({ enabled: 'auto' }));
  await session.until(() => from(COMPILED).length > 0, 'auto compiles in the trusted workspace');
});

test('a compile command carrying -fplugin, or a compiler inside the workspace, is refused', { skip }, async () => {
  const planted = join(workspace, 'bin', 'clang');
  const marker = join(workspace, 'planted-compiler-ran');
  mkdirSync(join(workspace, 'bin'), { recursive: true });
  writeFileSync(planted, `#!/bin/sh\ntouch '${marker}'\nexec ${CLANG} "$@"\n`);
  chmodSync(planted, 0o755);
  await session.changeSettings(settings({ enabled: 'on', clang: planted }));
  await pollStatus((current) => /inside the workspace/.test(current.tooltip));
  assert.equal(from(COMPILED).length, 0);
  assert.equal(existsSync(marker), false, "the workspace's compiler never ran");

  const database = join(workspace, 'compile_commands.json');
  writeFileSync(
    database,
    JSON.stringify([
      {
        directory: workspace,
        file: 'seed.bpf.c',
        arguments: ['clang-19', '-O2', '-target', 'bpf', `-fplugin=${join(workspace, 'evil.so')}`, '-c', 'seed.bpf.c'],
      },
    ]),
  );
  await session.connection.sendNotification('workspace/didChangeWatchedFiles', { changes: [{ uri: pathToFileURL(database).href, type: 2 }] });
  await session.changeSettings(settings({ enabled: 'on' }));
  await pollStatus((current) => /carries -fplugin=/.test(current.tooltip));
  assert.equal(from(COMPILED).length, 0);
});

async function pollStatus(
  holds: (current: { text: string; tooltip: string; state: string }) => boolean,
): Promise<{ text: string; tooltip: string; state: string }> {
  const deadline = Date.now() + 15000;
  for (;;) {
    const current = await status();
    if (holds(current)) return current;
    if (Date.now() > deadline) assert.fail(`the status never said so; last: ${JSON.stringify(current)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test('an edit kills the compile under way, and a long compile shows progress', { skip }, async () => {
  // A compiler outside the workspace that takes two seconds and logs what it does.
  const tools = mkdtempSync(join(tmpdir(), 'bpf-stack-lens-slow-clang-'));
  const log = join(tools, 'log');
  const slowClang = join(tools, 'clang');
  writeFileSync(slowClang, `#!/bin/sh\necho start >> '${log}'\nsleep 2\necho compile >> '${log}'\nexec ${CLANG} "$@"\n`);
  chmodSync(slowClang, 0o755);
  const slowSession = new LspSession(settings({ enabled: 'on', clang: slowClang, debounceMs: 0 }));
  try {
    writeFileSync(
      join(workspace, 'compile_commands.json'),
      JSON.stringify([
        { directory: workspace, file: 'seed.bpf.c', arguments: ['clang-19', '-O2', '-target', 'bpf', '-I/usr/include/x86_64-linux-gnu', '-c', 'seed.bpf.c'] },
      ]),
    );
    await slowSession.initialize(workspace, settings({ enabled: 'on', clang: slowClang, debounceMs: 0 }), { workDoneProgress: true });
    await slowSession.connection.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'c', version: 1, text } });
    await poll(async () => existsSync(log), Boolean, 'the first compile to start');
    await slowSession.connection.sendNotification('textDocument/didChange', {
      textDocument: { uri, version: 2 },
      contentChanges: [{ text: `${text}\n/* edited */\n` }],
    });
    await slowSession.until(
      () => (slowSession.diagnostics(uri) ?? []).some((diagnostic) => diagnostic.source === COMPILED),
      'the compile of the edited buffer',
      30000,
    );
    assert.deepEqual(readFileSync(log, 'utf8').trim().split('\n'), ['start', 'start', 'compile'], 'the first compile was killed before it reached clang');
    const titles = slowSession.progress.flatMap((entry) => (entry.kind === 'progress' && entry.value.kind === 'begin' ? [entry.value.title] : []));
    assert.ok(titles.includes('Compiling seed.bpf.c from the buffer'), `progress titles: ${titles.join(', ')}`);
    await slowSession.until(() => slowSession.progress.some((entry) => entry.kind === 'progress' && entry.value.kind === 'end'), 'the progress to end');
  } finally {
    await slowSession.close();
    rmSync(tools, { recursive: true, force: true });
  }
});

test('trust decides first: auto compiles only where the client reports a trusted workspace, on also where it reports nothing', () => {
  assert.equal(bufferCompileAllowed('auto', true), true);
  assert.equal(bufferCompileAllowed('auto', undefined), false, 'clients that report no trust: off by default');
  assert.equal(bufferCompileAllowed('on', undefined), true);
  assert.equal(bufferCompileAllowed('on', false), false, 'never in a workspace the client reports untrusted');
  assert.equal(bufferCompileAllowed('off', true), false);
});
