/**
 * The source estimate runs on a worker thread, over the real protocol: while the headers of a file
 * that includes megabytes of generated structs are being indexed (cold: every run generates new
 * ones, so no cache from an earlier run helps), a hover on a function measured in a built object is
 * answered at once; and an edit during that indexing supersedes the run, which stops at its next
 * header and never publishes a result for the old text.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import type { CodeLens, Hover, MarkupContent } from 'vscode-languageserver-protocol';
import { LspSession, compileBpf, hasClang, poll, seedWorkspace } from './harness';
import { skipUnlessCI } from '../support/unavailable';

const SETTINGS = { kernels: ['6.1'] };
const ENTRY_LINE = 98;
/** Structs in 1 MB of generated header. */
const STRUCTS_PER_MB = 7500;

const skip = skipUnlessCI(hasClang() ? false : 'clang-19 is not installed (apt-get install clang-19)');

let session: LspSession;
let workspace: string;
let seedUri: string;

/**
 * Writes `headers` headers of generated structs, `megabytes` each, that no earlier run has indexed,
 * and a file including them all whose `entry` has `body`; entryLine is the 0-based line of its name.
 */
function bigSource(name: string, body: string, headers: number, megabytes: number): { uri: string; text: string; entryLine: number } {
  const nonce = `${process.pid}_${Date.now()}_${name.replace(/\W/g, '_')}`;
  const includes: string[] = [];
  for (let header = 0; header < headers; header++) {
    const structs: string[] = [];
    for (let index = 0; index < megabytes * STRUCTS_PER_MB; index++) {
      const previous = `g${header}_${Math.max(index - 1, 0)}_${nonce}`;
      structs.push(
        `struct g${header}_${index}_${nonce} {\n\tunsigned long long bytes;\n\tunsigned int count;\n\tchar name[24];\n\tstruct ${previous} *previous;\n};\n`,
      );
    }
    const headerName = `${name}_${header}.h`;
    writeFileSync(join(workspace, headerName), structs.join(''));
    includes.push(`#include "${headerName}"`);
  }
  const text = `${includes.join('\n')}\n\n__attribute__((section("tc"), used))\nint entry(void *ctx)\n{\n${body}\n}\n`;
  const filePath = join(workspace, `${name}.bpf.c`);
  writeFileSync(filePath, text);
  // After the includes, a blank line and the attribute.
  return { uri: pathToFileURL(filePath).href, text, entryLine: headers + 2 };
}

/** The progress events of the first progress created after `from` events. */
function progressAfter(from: number): { token: unknown; kinds: string[] } | undefined {
  const events = session.progress.slice(from);
  const created = events.find((event) => event.kind === 'create');
  if (!created) return undefined;
  const kinds = events.flatMap((event) => (event.kind === 'progress' && event.token === created.token ? [event.value.kind] : []));
  return { token: created.token, kinds };
}

async function lensTitle(uri: string, line: number): Promise<string | undefined> {
  const lenses: CodeLens[] = await session.connection.sendRequest('textDocument/codeLens', { textDocument: { uri } });
  return lenses.find((lens) => lens.range.start.line === line)?.command?.title;
}

before(async () => {
  let source: string;
  ({ workspace, source } = seedWorkspace('bpf-stack-lens-worker-'));
  if (skip) return;
  compileBpf(source, join(workspace, 'seed.bpf.o'));
  seedUri = pathToFileURL(source).href;
  session = new LspSession(SETTINGS);
  await session.initialize(workspace, SETTINGS, { workDoneProgress: true });
  await session.connection.sendNotification('textDocument/didOpen', {
    textDocument: { uri: seedUri, languageId: 'c', version: 1, text: readFileSync(source, 'utf8') },
  });
  await session.until(
    () => (session.diagnostics(seedUri) ?? []).some((diagnostic) => diagnostic.source === 'bpf-stack-lens (object)'),
    "the object's diagnostics",
  );
});

after(async () => {
  if (skip) return;
  await session.close();
  rmSync(workspace, { recursive: true, force: true });
});

test('a hover on a measured function is answered while a cold header index runs', { skip }, async () => {
  // One header: indexing it is one long synchronous step, which would hold up a server that ran it on its own thread.
  const big = bigSource('hover', '\tvolatile char buffer[32] = {};\n\treturn buffer[1];', 1, 6);
  const from = session.progress.length;
  await session.connection.sendNotification('textDocument/didOpen', { textDocument: { uri: big.uri, languageId: 'c', version: 1, text: big.text } });
  await session.until(() => progressAfter(from)?.kinds.includes('begin') === true, 'the indexing to begin', 30000);

  const hover: Hover | null = await session.connection.sendRequest('textDocument/hover', {
    textDocument: { uri: seedUri },
    position: { line: ENTRY_LINE, character: 5 },
  });
  const endedBeforeTheAnswer = progressAfter(from)?.kinds.includes('end');
  assert.match((hover?.contents as MarkupContent).value, /\*\*entry\*\* — frame \*\*200 B\*\*, measured in `seed\.bpf\.o`/);
  assert.equal(endedBeforeTheAnswer, false, 'the hover was answered while the headers were being indexed');

  await session.until(() => progressAfter(from)?.kinds.at(-1) === 'end', 'the indexing to end', 60000);
  await poll(
    () => lensTitle(big.uri, big.entryLine),
    (title) => title?.startsWith('frame ≈32 B') === true,
    'the estimate of the big file',
    60000,
  );
});

test('an edit during the indexing supersedes the run: it stops, and the old text is never published', { skip }, async () => {
  // 600 B is over the 512 B limit: an estimate of this text would publish an error.
  const headers = 4;
  const big = bigSource('superseded', '\tvolatile char buffer[600] = {};\n\treturn buffer[1];', headers, 1.5);
  const from = session.progress.length;
  const publishedFrom = session.published.length;
  await session.connection.sendNotification('textDocument/didOpen', { textDocument: { uri: big.uri, languageId: 'c', version: 1, text: big.text } });
  await session.until(() => progressAfter(from)?.kinds.includes('begin') === true, 'the indexing to begin', 30000);
  const first = progressAfter(from);
  await session.connection.sendNotification('textDocument/didChange', {
    textDocument: { uri: big.uri, version: 2 },
    contentChanges: [{ text: big.text.replace('buffer[600]', 'buffer[8]') }],
  });

  // The superseded run ends its progress before indexing every header.
  await session.until(
    () => {
      const events = session.progress.slice(from).flatMap((event) => (event.kind === 'progress' && event.token === first?.token ? [event.value.kind] : []));
      return events.includes('end');
    },
    'the superseded run to end its progress',
    60000,
  );
  const firstKinds = session.progress.slice(from).flatMap((event) => (event.kind === 'progress' && event.token === first?.token ? [event.value.kind] : []));
  assert.ok(firstKinds.filter((kind) => kind === 'report').length < headers, `the superseded run stopped early: ${firstKinds.join(',')}`);

  await poll(
    () => lensTitle(big.uri, big.entryLine),
    (title) => title?.startsWith('frame ≈8 B') === true,
    'the estimate of the edited text',
    60000,
  );
  const estimated = session.published
    .slice(publishedFrom)
    .filter((params) => params.uri === big.uri)
    .flatMap((params) => params.diagnostics.filter((diagnostic) => diagnostic.source === 'bpf-stack-lens (source estimate)'));
  assert.deepEqual(estimated, [], 'no diagnostic of the superseded text was ever published');
});
