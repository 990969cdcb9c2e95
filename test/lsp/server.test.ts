/**
 * The language server end to end, over the real protocol: the seed source opened in a temporary
 * workspace, its object built with clang-19, and the server held to what an editor would show —
 * the verifier's message at the tail call with the chain of frames, hover, quick fixes, CodeLens —
 * through deletes, half-written objects, rebuild bursts, a stale object, and the fix that makes the
 * diagnostic go away.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, unlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import type { CodeAction, CodeLens, Diagnostic, Hover, MarkupContent } from 'vscode-languageserver-protocol';
import { LspSession, applyEdits, compileBpf, hasClang, poll, seedWorkspace, sleep } from './harness';
import { skipUnlessCI } from '../support/unavailable';

const TAIL_CALL_MESSAGE = 'tail_calls are not allowed when call stack of previous frames is 256 bytes. Too large';
const SETTINGS = { kernels: ['6.1', '6.18'] };
/** 0-based lines of examples/workspace/seed.bpf.c. */
const TAIL_CALL_LINE = 82;
const DO_TAIL_CALL_LINE = 94;
const ENTRY_LINE = 98;
const PRINTK_LINE = 119;
const PROCESS_CALL_LINE = 120;
/** Debounce (150 ms) plus the one retry (300 ms) plus slack: after this the server has given up on a file. */
const SETTLE_MS = 1200;

const skip = skipUnlessCI(hasClang() ? false : 'clang-19 is not installed (apt-get install clang-19)');

let session: LspSession;
let workspace: string;
let source: string;
let uri: string;
let objectPath: string;
let text: string;

const FileChangeType = { Created: 1, Changed: 2, Deleted: 3 } as const;

async function notifyObject(type: number, path = objectPath): Promise<void> {
  await session.connection.sendNotification('workspace/didChangeWatchedFiles', { changes: [{ uri: pathToFileURL(path).href, type }] });
}

/** Protocol 3.18 lets a diagnostic's message be markup; this server sends plain strings. */
function messageOf(diagnostic: Diagnostic): string {
  return typeof diagnostic.message === 'string' ? diagnostic.message : diagnostic.message.value;
}

function ours(): Diagnostic[] {
  return (session.diagnostics(uri) ?? []).filter((diagnostic) => diagnostic.source === 'bpf-stack-lens (object)');
}

before(async () => {
  if (skip) return;
  ({ workspace, source } = seedWorkspace('bpf-stack-lens-lsp-'));
  uri = pathToFileURL(source).href;
  mkdirSync(join(workspace, 'build'));
  objectPath = join(workspace, 'build', 'seed.bpf.o');
  text = readFileSync(source, 'utf8');
  session = new LspSession(SETTINGS);
  await session.initialize(workspace, SETTINGS);
  await session.connection.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'c', version: 1, text } });
});

after(async () => {
  if (skip) return;
  await session.close();
  rmSync(workspace, { recursive: true, force: true });
});

test('no object yet: the source gets no diagnostics', { skip }, async () => {
  await session.until(() => session.diagnostics(uri) !== undefined, 'the first publish');
  assert.deepEqual(ours(), []);
});

test('a built object gives the verifier message at the tail call, with the chain', { skip }, async () => {
  compileBpf(source, objectPath);
  await notifyObject(FileChangeType.Created);
  await session.until(() => ours().length > 0, 'the tail-call diagnostic');
  const [diagnostic] = ours();
  assert.equal(ours().length, 1, 'one diagnostic: 6.1 and 6.18 are folded into it');
  assert.equal(diagnostic.range.start.line, TAIL_CALL_LINE);
  assert.equal(diagnostic.severity, 1);
  assert.equal(diagnostic.code, 'tail-call-depth');
  assert.equal(messageOf(diagnostic).split('\n')[0], TAIL_CALL_MESSAGE);
  assert.match(messageOf(diagnostic), /rejected on 6\.1; passes on 6\.18/);
  const related = diagnostic.relatedInformation ?? [];
  assert.deepEqual(
    related.map((info) => info.location.range.start.line),
    [ENTRY_LINE, PROCESS_CALL_LINE, DO_TAIL_CALL_LINE],
  );
  assert.ok(related.every((info) => info.location.uri === uri));
  assert.match(related[0].message, /^entry: frame 200 B, 224 B rounded on 6\.1 \(frames round up to 32 B before 6\.9 or without the JIT\), 224 B so far/);
  assert.match(related[1].message, /^calls process: frame 24 B, 32 B rounded on 6\.1, 256 B so far/);
  assert.match(related[2].message, /^do_tail tail-calls with 256 B/);
});

test('hover on a function name shows its frame and the chain to the tail call', { skip }, async () => {
  const hover: Hover | null = await session.connection.sendRequest('textDocument/hover', {
    textDocument: { uri },
    position: { line: ENTRY_LINE, character: 5 },
  });
  const value = (hover?.contents as MarkupContent).value;
  assert.match(value, /\*\*entry\*\* — frame \*\*200 B\*\*/);
  assert.match(value, /6\.1: 224 B · 6\.18: 208 B/);
  assert.match(
    value,
    /6\.1: entry 224 B \(total 224 B\) → process 32 B \(total 256 B\) → tail call in do_tail at \*\*256 B\*\* of callers' frames — \*\*rejected\*\* \(must stay below 256 B\): entry must lose 8 B \(200 → 192 B\) to pass/,
  );
  assert.match(value, /6\.18: entry 208 B \(total 208 B\) → process 32 B \(total 240 B\) → tail call in do_tail at \*\*240 B\*\* of callers' frames — passes/);
  assert.equal(hover?.range?.start.line, ENTRY_LINE);
});

test('hover on the printk shows the bytes its stack format costs', { skip }, async () => {
  const hover: Hover | null = await session.connection.sendRequest('textDocument/hover', {
    textDocument: { uri },
    position: { line: PRINTK_LINE, character: 3 },
  });
  const value = (hover?.contents as MarkupContent).value;
  assert.match(value, /\*\*stack_printk\*\* puts \*\*48 B\*\* on the stack of `entry`/);
  assert.match(value, /45 bytes with the NUL/);
});

test('CodeLens above each measured function', { skip }, async () => {
  // The estimate runs on its worker and requests do not wait for it: ask until it has come in.
  const lenses = await poll(
    (): Promise<CodeLens[]> => session.connection.sendRequest('textDocument/codeLens', { textDocument: { uri } }),
    (candidates) => candidates.length === 3,
    'the lenses',
  );
  const entry = lenses.find((lens) => lens.range.start.line === ENTRY_LINE);
  assert.equal(entry?.command?.title, 'frame 200 B · tail call at 256 B: rejected on 6.1 · 240 B: passes on 6.18');
  assert.equal(lenses.length, 3, 'entry, process and do_tail');
});

test('quick fixes at the printk and on the diagnostic', { skip }, async () => {
  const atPrintk: CodeAction[] = await session.connection.sendRequest('textDocument/codeAction', {
    textDocument: { uri },
    range: { start: { line: PRINTK_LINE, character: 2 }, end: { line: PRINTK_LINE, character: 2 } },
    context: { diagnostics: [] },
  });
  assert.deepEqual(
    atPrintk.map((action) => action.title.split(' (')[0]),
    ['Remove this stack_printk', 'Move the format of this stack_printk to .rodata', 'Move this stack_printk into a noinline helper entry_printk_0()'],
  );
  // VS Code asks with the bare cursor, often in the indentation before the statement.
  const inIndentation: CodeAction[] = await session.connection.sendRequest('textDocument/codeAction', {
    textDocument: { uri },
    range: { start: { line: PRINTK_LINE, character: 0 }, end: { line: PRINTK_LINE, character: 0 } },
    context: { diagnostics: [] },
  });
  assert.equal(inIndentation.length, 3, 'the whole line of the printk offers its fixes');
  // One snapshot: the server may publish again meanwhile (the estimate's "largest:" line arrives
  // after the object's diagnostic), and the fix must carry the diagnostics it was asked about.
  const diagnostics = ours();
  const onDiagnostic: CodeAction[] = await session.connection.sendRequest('textDocument/codeAction', {
    textDocument: { uri },
    range: diagnostics[0].range,
    context: { diagnostics },
  });
  assert.equal(onDiagnostic.length, 3, 'the printk in entry is on the chain to the tail call');
  assert.deepEqual(onDiagnostic[0].diagnostics, diagnostics);
});

test('deleting the object takes its diagnostics away', { skip }, async () => {
  unlinkSync(objectPath);
  await notifyObject(FileChangeType.Deleted);
  await session.until(() => ours().length === 0, 'the diagnostics to go');
});

test('a truncated object publishes nothing and does not crash the server', { skip }, async () => {
  compileBpf(source, join(workspace, 'whole.o.tmp'));
  const whole = new Uint8Array(readFileSync(join(workspace, 'whole.o.tmp')));
  const publishedBefore = session.published.length;
  writeFileSync(objectPath, whole.subarray(0, Math.floor(whole.length * 0.9)));
  await notifyObject(FileChangeType.Created);
  await sleep(SETTLE_MS);
  const fromObjects = session.published
    .slice(publishedBefore)
    .flatMap((params) => params.diagnostics.filter((diagnostic) => diagnostic.source === 'bpf-stack-lens (object)'));
  assert.deepEqual(fromObjects, [], 'nothing published from the truncated file');
  assert.deepEqual(ours(), []);
  assert.ok(
    session.logs.some((line) => line.includes('seed.bpf.o: ignored')),
    session.logs.join('\n'),
  );
  assert.equal(session.exited, false);
  const hover: Hover | null = await session.connection.sendRequest('textDocument/hover', {
    textDocument: { uri },
    position: { line: ENTRY_LINE, character: 5 },
  });
  const value = (hover?.contents as MarkupContent | undefined)?.value ?? '';
  assert.doesNotMatch(value, /measured in/, 'the server still answers, with nothing measured to say');
  assert.match(value, /estimated from the source/);

  // A build burst: the file is half-written, then whole, within the debounce.
  writeFileSync(objectPath, whole.subarray(0, whole.length >> 1));
  await notifyObject(FileChangeType.Changed);
  await sleep(40);
  writeFileSync(objectPath, whole);
  await notifyObject(FileChangeType.Changed);
  await session.until(() => ours().length === 1, 'the diagnostic from the whole object');
  assert.equal(messageOf(ours()[0]).split('\n')[0], TAIL_CALL_MESSAGE);
  rmSync(join(workspace, 'whole.o.tmp'));
});

test('removing the printk: stale information until the rebuild, then no diagnostic', { skip }, async () => {
  const actions: CodeAction[] = await session.connection.sendRequest('textDocument/codeAction', {
    textDocument: { uri },
    range: { start: { line: PRINTK_LINE, character: 2 }, end: { line: PRINTK_LINE, character: 2 } },
    context: { diagnostics: [] },
  });
  const remove = actions.find((action) => action.title.startsWith('Remove'));
  const edits = remove?.edit?.changes?.[uri] ?? [];
  assert.equal(edits.length, 1);
  text = applyEdits(text, edits);
  assert.ok(!text.includes('stack_printk("acl-test'));
  // Incremental sync: send just the edit, as an editor does.
  await session.connection.sendNotification('textDocument/didChange', {
    textDocument: { uri, version: 2 },
    contentChanges: edits.map((edit) => ({ range: edit.range, text: edit.newText })),
  });
  await sleep(20);
  writeFileSync(source, text);
  await session.connection.sendNotification('textDocument/didSave', { textDocument: { uri } });
  // Unsaved, the edit already makes the object stale; saved, the object is older than the file.
  await session.until(() => ours().length === 1 && ours()[0].severity === 3 && /older than/.test(messageOf(ours()[0])), 'the stale diagnostic as information');
  assert.match(messageOf(ours()[0]), /stale: seed\.bpf\.o is older than seed\.bpf\.c/);

  compileBpf(source, objectPath);
  await notifyObject(FileChangeType.Changed);
  await session.until(() => ours().length === 0, 'the diagnostic to go after the rebuild');
  const lenses: CodeLens[] = await session.connection.sendRequest('textDocument/codeLens', { textDocument: { uri } });
  const entry = lenses.find((lens) => lens.command?.title.startsWith('frame 152 B'));
  assert.ok(entry, lenses.map((lens) => lens.command?.title).join('\n'));
  assert.doesNotMatch(entry.command?.title ?? '', /rejected/);
});

test('the status and report requests describe the file', { skip }, async () => {
  const status: { text: string; state: string } = await session.connection.sendRequest('bpfStackLens/fileStatus', { uri });
  assert.equal(status.text, 'BPF stack: passes on 6.1, 6.18');
  const report: string = await session.connection.sendRequest('bpfStackLens/stackReport', { uri });
  assert.match(report, /program entry \(SEC\("tc"\), sched_cls\): stack depth 152\+24\+0/);
});
