/**
 * The source-estimate provider end to end, over the real protocol: the seed source opened with no
 * object at all gets the verifier's message from the estimate, an unsaved edit takes it away, a
 * compile database's -DBPF_NO_GLOBAL_DATA puts libbpf's bpf_printk format on the stack, a fresh
 * object built with clang-19 takes precedence, and the first analysis of a file with a big header
 * shows progress.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import type { CodeLens, Diagnostic, Hover, MarkupContent } from 'vscode-languageserver-protocol';
import { LspSession, compileBpf, hasClang, poll, seedWorkspace, sleep } from './harness';
import { skipUnlessCI } from '../support/unavailable';

const TAIL_CALL_MESSAGE = 'tail_calls are not allowed when call stack of previous frames is 256 bytes. Too large';
const SETTINGS = { kernels: ['6.1', '6.18'] };
const ESTIMATE = 'bpf-stack-lens (source estimate)';
const OBJECT = 'bpf-stack-lens (object)';
/** 0-based lines of examples/workspace/seed.bpf.c. */
const TAIL_CALL_LINE = 82;
const ENTRY_LINE = 98;
const PRINTK_LINE = 119;

let session: LspSession;
let workspace: string;
let seedUri: string;
let seedPath: string;
let seedText: string;
/** The seed with libbpf's bpf_printk in place of the on-stack macro: its format is in .rodata unless BPF_NO_GLOBAL_DATA. */
let printkPath: string;
let printkUri: string;

function messageOf(diagnostic: Diagnostic): string {
  return typeof diagnostic.message === 'string' ? diagnostic.message : diagnostic.message.value;
}

function from(uri: string, source: string, code?: string): Diagnostic[] {
  return (session.diagnostics(uri) ?? []).filter((diagnostic) => diagnostic.source === source && (code === undefined || diagnostic.code === code));
}

/** The lens title over `entry`, whose name is on `line`. */
async function entryLens(uri: string, line = ENTRY_LINE): Promise<string | undefined> {
  const lenses: CodeLens[] = await session.connection.sendRequest('textDocument/codeLens', { textDocument: { uri } });
  return lenses.find((lens) => lens.range.start.line === line)?.command?.title;
}

async function open(uri: string, text: string): Promise<void> {
  await session.connection.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'c', version: 1, text } });
}

before(async () => {
  let seedSource: string;
  ({ workspace, source: seedSource } = seedWorkspace('bpf-stack-lens-estimate-'));
  seedPath = seedSource;
  seedUri = pathToFileURL(seedPath).href;
  seedText = readFileSync(seedPath, 'utf8');
  printkPath = join(workspace, 'printk.bpf.c');
  printkUri = pathToFileURL(printkPath).href;
  writeFileSync(printkPath, seedText.replace('stack_printk("acl-test', 'bpf_printk("acl-test'));
  session = new LspSession(SETTINGS);
  await session.initialize(workspace, SETTINGS, { workDoneProgress: true });
});

after(async () => {
  await session.close();
  rmSync(workspace, { recursive: true, force: true });
});

test('no object: the estimate gives the verifier message at the tail call', async () => {
  await open(seedUri, seedText);
  await session.until(() => from(seedUri, ESTIMATE, 'tail-call-depth').length > 0, 'the estimated tail-call diagnostic');
  const [diagnostic] = from(seedUri, ESTIMATE, 'tail-call-depth');
  assert.equal(from(seedUri, ESTIMATE, 'tail-call-depth').length, 1);
  assert.equal(diagnostic.range.start.line, TAIL_CALL_LINE);
  assert.equal(diagnostic.severity, 1);
  assert.equal(messageOf(diagnostic).split('\n')[0], TAIL_CALL_MESSAGE);
  assert.match(messageOf(diagnostic), /rejected on 6\.1; passes on 6\.18/);
  assert.deepEqual(from(seedUri, OBJECT), []);

  // The on-stack printk format is the heavy item on that chain: information, with its bytes, related to the violation.
  const contributors = from(seedUri, ESTIMATE, 'stack-contributor');
  assert.deepEqual(
    contributors.map((contributor) => contributor.range.start.line),
    [PRINTK_LINE],
  );
  assert.equal(contributors[0].severity, 3);
  assert.match(messageOf(contributors[0]), /^The format of the printk at line \d+ \(char\[45\], copied to the stack\) puts 48 B on the stack of entry/);
  assert.equal(contributors[0].relatedInformation?.[0].location.range.start.line, TAIL_CALL_LINE);

  assert.equal(await entryLens(seedUri), 'frame ≈200 B · tail call at 256 B: rejected on 6.1 · 240 B: passes on 6.18');
});

test('deleting the printk line in the editor takes the diagnostic away without saving', async () => {
  await session.connection.sendNotification('textDocument/didChange', {
    textDocument: { uri: seedUri, version: 2 },
    contentChanges: [{ range: { start: { line: PRINTK_LINE, character: 0 }, end: { line: PRINTK_LINE + 1, character: 0 } }, text: '' }],
  });
  await session.until(() => from(seedUri, ESTIMATE).length === 0, 'the estimated diagnostics to go');
  assert.equal(readFileSync(seedPath, 'utf8'), seedText, 'nothing was saved');
  assert.match((await entryLens(seedUri)) ?? '', /^frame ≈152 B · tail call at 192 B: passes on 6\.1/);
});

test("compile_commands.json with -DBPF_NO_GLOBAL_DATA puts bpf_printk's format on the stack", async () => {
  await open(printkUri, readFileSync(printkPath, 'utf8'));
  // libbpf keeps the format in .rodata: 152 B, accepted everywhere.
  await poll(
    () => entryLens(printkUri),
    (title) => title?.startsWith('frame ≈152 B') === true,
    'the .rodata estimate',
  );
  assert.deepEqual(from(printkUri, ESTIMATE), []);

  const database = join(workspace, 'compile_commands.json');
  writeFileSync(
    database,
    JSON.stringify([
      {
        directory: workspace,
        file: 'printk.bpf.c',
        command: 'clang-19 -O2 -g -target bpf "-DBPF_NO_GLOBAL_DATA" -I/usr/include/x86_64-linux-gnu -c printk.bpf.c -o build/printk.bpf.o',
      },
    ]),
  );
  await session.connection.sendNotification('workspace/didChangeWatchedFiles', { changes: [{ uri: pathToFileURL(database).href, type: 1 }] });
  await session.until(() => from(printkUri, ESTIMATE, 'tail-call-depth').length === 1, 'the estimate with the format on the stack');
  assert.equal(messageOf(from(printkUri, ESTIMATE, 'tail-call-depth')[0]).split('\n')[0], TAIL_CALL_MESSAGE);
  const contributors = from(printkUri, ESTIMATE, 'stack-contributor');
  assert.deepEqual(
    contributors.map((contributor) => contributor.range.start.line),
    [PRINTK_LINE],
  );
  assert.match(messageOf(contributors[0]), /^The format of the printk at line \d+ .* puts 48 B/);

  // Hover reasons about the printk with the database's definitions too.
  const hover: Hover | null = await session.connection.sendRequest('textDocument/hover', {
    textDocument: { uri: printkUri },
    position: { line: PRINTK_LINE, character: 3 },
  });
  assert.match((hover?.contents as MarkupContent).value, /\*\*bpf_printk\*\* puts \*\*48 B\*\* on the stack of `entry`/);
});

const skipClang = skipUnlessCI(hasClang() ? false : 'clang-19 is not installed (apt-get install clang-19)');

test('a fresh object takes over from the estimate', { skip: skipClang }, async () => {
  mkdirSync(join(workspace, 'build'), { recursive: true });
  const objectPath = join(workspace, 'build', 'printk.bpf.o');
  compileBpf(printkPath, objectPath, ['-DBPF_NO_GLOBAL_DATA']);
  await session.connection.sendNotification('workspace/didChangeWatchedFiles', { changes: [{ uri: pathToFileURL(objectPath).href, type: 1 }] });
  await session.until(() => from(printkUri, OBJECT, 'tail-call-depth').length === 1, 'the object diagnostic');
  const [measured] = from(printkUri, OBJECT, 'tail-call-depth');
  assert.equal(measured.range.start.line, TAIL_CALL_LINE);
  assert.equal(measured.severity, 1);
  assert.deepEqual(from(printkUri, ESTIMATE, 'tail-call-depth'), [], "the estimate's same-rule diagnostic is suppressed");
  // The estimate still says what the frame is made of, now about the object's violation.
  const contributors = from(printkUri, ESTIMATE, 'stack-contributor');
  assert.equal(contributors.length, 1);
  assert.match(contributors[0].relatedInformation?.[0].message ?? '', /^tail_calls are not allowed/);
  assert.equal(await entryLens(printkUri), 'frame 200 B · tail call at 256 B: rejected on 6.1 · 240 B: passes on 6.18');
  const hover: Hover | null = await session.connection.sendRequest('textDocument/hover', {
    textDocument: { uri: printkUri },
    position: { line: ENTRY_LINE, character: 5 },
  });
  assert.match(
    (hover?.contents as MarkupContent).value,
    /frame \*\*200 B\*\*, measured in `printk\.bpf\.o`[^\n]*\n\nEstimated from the source: 200 B \(the same\)/,
  );

  // An unsaved edit makes the object stale: the estimate's diagnostic is back, the object's is information.
  await session.connection.sendNotification('textDocument/didChange', {
    textDocument: { uri: printkUri, version: 2 },
    contentChanges: [{ range: { start: { line: 0, character: 2 }, end: { line: 0, character: 2 } }, text: ' ' }],
  });
  await session.until(() => from(printkUri, ESTIMATE, 'tail-call-depth').length === 1, 'the estimate to show again');
  // One diagnostic for the problem: the stale object's word is a line of the estimate's.
  assert.deepEqual(from(printkUri, OBJECT, 'tail-call-depth'), []);
  assert.match(
    String(from(printkUri, ESTIMATE, 'tail-call-depth')[0].message),
    /printk\.bpf\.o \(stale: the text in the editor is not the file on disk \(unsaved changes\), which printk\.bpf\.o was built from\) said: tail_calls/,
  );

  // Undo back to the saved text: the object describes the buffer again, with no save.
  await session.connection.sendNotification('textDocument/didChange', {
    textDocument: { uri: printkUri, version: 3 },
    contentChanges: [{ range: { start: { line: 0, character: 2 }, end: { line: 0, character: 3 } }, text: '' }],
  });
  await session.until(
    () =>
      from(printkUri, OBJECT, 'tail-call-depth').length === 1 &&
      from(printkUri, OBJECT, 'tail-call-depth')[0].severity === 1 &&
      from(printkUri, ESTIMATE, 'tail-call-depth').length === 0,
    'the object fresh again after the undo',
  );
  assert.doesNotMatch(String(from(printkUri, OBJECT, 'tail-call-depth')[0].message), /stale/);
  const status: { text: string; state: string; stale?: string } = await session.connection.sendRequest('bpfStackLens/fileStatus', { uri: printkUri });
  assert.equal(status.text, 'BPF stack: rejected on 6.1; passes on 6.18');
  assert.equal(status.stale, undefined);
});

test('the first analysis of a file with a big header reports progress', async () => {
  const structs: string[] = [];
  for (let index = 0; index < 5000; index++) {
    structs.push(
      `struct generated_${index} {\n\tunsigned long long bytes;\n\tunsigned int count;\n\tchar name[24];\n\tstruct generated_${Math.max(index - 1, 0)} *previous;\n};\n`,
    );
  }
  writeFileSync(join(workspace, 'generated.h'), structs.join(''));
  const bigPath = join(workspace, 'big.bpf.c');
  // The struct's address goes to a helper, so clang keeps it on the stack (a struct only read by
  // member would live in registers, and the estimate knows it).
  const bigText =
    '#include "generated.h"\nstatic long (*bpf_probe_read_kernel)(void *dst, unsigned int size, const void *src) = (void *) 113;\n__attribute__((section("tc"), used))\nint entry(void *ctx)\n{\n\tstruct generated_4999 item = {};\n\tbpf_probe_read_kernel(&item, sizeof(item), ctx);\n\treturn item.count;\n}\n';
  writeFileSync(bigPath, bigText);
  const before = session.progress.length;
  await open(pathToFileURL(bigPath).href, bigText);
  await session.until(
    () => session.progress.slice(before).some((event) => event.kind === 'progress' && event.value.kind === 'end'),
    'the end of progress',
    60000,
  );
  const events = session.progress.slice(before);
  assert.equal(events[0].kind, 'create');
  const kinds = events.flatMap((event) => (event.kind === 'progress' && event.token === events[0].token ? [event.value.kind] : []));
  assert.equal(kinds[0], 'begin');
  assert.ok(kinds.includes('report'), kinds.join(','));
  assert.equal(kinds.at(-1), 'end');
  const report = events.find((event) => event.kind === 'progress' && event.value.kind === 'report');
  assert.match(report?.kind === 'progress' ? (report.value.message ?? '') : '', /generated\.h/);
  await poll(
    () => entryLens(pathToFileURL(bigPath).href, 3),
    (title) => title?.startsWith('frame ≈48 B') === true,
    'the estimate of the big file',
    60000,
  );

  // Only the first analysis indexes: an edit later shows no progress.
  const afterFirst = session.progress.length;
  await session.connection.sendNotification('textDocument/didChange', {
    textDocument: { uri: pathToFileURL(bigPath).href, version: 2 },
    contentChanges: [{ range: { start: { line: 1, character: 0 }, end: { line: 1, character: 0 } }, text: '\n' }],
  });
  await sleep(800);
  assert.equal(session.progress.length, afterFirst);
});

test('a header the estimate cannot find is a warning on its #include line, and goes once it is found', async () => {
  const headerDirectory = join(workspace, 'generated');
  const missingPath = join(workspace, 'missing_header.bpf.c');
  const missingUri = pathToFileURL(missingPath).href;
  const text =
    '#include "flow_types.h"\nstatic long (*bpf_probe_read_kernel)(void *dst, unsigned int size, const void *src) = (void *) 113;\n__attribute__((section("tc"))) int prog(void *ctx)\n{\n\tstruct flow f = {};\n\tbpf_probe_read_kernel(&f, sizeof(f), ctx);\n\treturn f.bytes[0];\n}\n';
  writeFileSync(missingPath, text);
  await open(missingUri, text);
  await session.until(() => from(missingUri, ESTIMATE, 'estimate-header').length > 0, 'the header warning');
  const [warning] = from(missingUri, ESTIMATE, 'estimate-header');
  assert.equal(warning.range.start.line, 0);
  assert.equal(warning.severity, 2);
  assert.match(messageOf(warning), /^'flow_types\.h' file not found: its types count 0 bytes in the stack estimate/);

  // With the header on the include path the warning goes, and the frame has the struct's bytes.
  mkdirSync(headerDirectory, { recursive: true });
  writeFileSync(join(headerDirectory, 'flow_types.h'), 'struct flow { unsigned char bytes[96]; };\n');
  await session.changeSettings({ ...SETTINGS, includePaths: [headerDirectory] });
  await session.until(() => from(missingUri, ESTIMATE, 'estimate-header').length === 0, 'the header warning to go');
  await poll(
    () => entryLens(missingUri, 2),
    (title) => /^frame ≈96 B/.test(title ?? ''),
    "the frame with the header's struct",
  );
  await session.changeSettings(SETTINGS);
});
