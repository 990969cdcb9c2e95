/**
 * `bpfStackLens.sourceEstimate.enabled`, changed while the server runs: off takes every estimate
 * away at once (its diagnostics, its half of the lens) and leaves what the built object measured;
 * on brings the estimate back.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import type { CodeLens, Diagnostic } from 'vscode-languageserver-protocol';
import { LspSession, compileBpf, hasClang, poll, seedWorkspace } from './harness';
import { skipUnlessCI } from '../support/unavailable';

const SETTINGS = { kernels: ['6.1', '6.18'] };
const ENTRY_LINE = 98;
const ESTIMATE = 'bpf-stack-lens (source estimate)';
const OBJECT = 'bpf-stack-lens (object)';

const skip = skipUnlessCI(hasClang() ? false : 'clang-19 is not installed (apt-get install clang-19)');

let session: LspSession;
let workspace: string;
let uri: string;

function from(source: string): Diagnostic[] {
  return (session.diagnostics(uri) ?? []).filter((diagnostic) => diagnostic.source === source);
}

/** The hover on entry's name, which names every analysis that has the function. */
async function entryHover(): Promise<string> {
  const hover: { contents: { value: string } } | null = await session.connection.sendRequest('textDocument/hover', {
    textDocument: { uri },
    position: { line: ENTRY_LINE, character: 5 },
  });
  return hover?.contents.value ?? '';
}

async function entryLens(): Promise<string | undefined> {
  const lenses: CodeLens[] = await session.connection.sendRequest('textDocument/codeLens', { textDocument: { uri } });
  return lenses.find((lens) => lens.range.start.line === ENTRY_LINE)?.command?.title;
}

before(async () => {
  if (skip) return;
  let source: string;
  ({ workspace, source } = seedWorkspace('bpf-stack-lens-setting-'));
  compileBpf(source, join(workspace, 'seed.bpf.o'));
  uri = pathToFileURL(source).href;
  session = new LspSession(SETTINGS);
  await session.initialize(workspace, SETTINGS);
  await session.connection.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'c', version: 1, text: readFileSync(source, 'utf8') } });
});

after(async () => {
  if (skip) return;
  await session.close();
  rmSync(workspace, { recursive: true, force: true });
});

test('turned off live, the estimate goes and the object stays; turned on, it comes back', { skip }, async () => {
  // With a fresh object the estimate explains the object's violation with its heavy items.
  await session.until(() => from(OBJECT).length === 1 && from(ESTIMATE).length > 0, "both analyses' diagnostics");
  await poll(entryHover, (value) => /Estimated from the source: 200 B \(the same\)/.test(value), 'the hover with both frames');
  // The lens reads the fresh object's numbers, with or without the estimate beside it.
  const lens = 'frame 200 B · tail call at 256 B: rejected on 6.1 · 240 B: passes on 6.18';
  assert.equal(await entryLens(), lens);

  await session.changeSettings({ ...SETTINGS, sourceEstimate: { enabled: false } });
  await session.until(() => from(ESTIMATE).length === 0, "the estimate's diagnostics to go");
  assert.equal(from(OBJECT).length, 1, "the object's diagnostic stays");
  assert.equal(await entryLens(), lens);
  assert.doesNotMatch(await entryHover(), /Estimated from the source/);

  await session.changeSettings(SETTINGS);
  await session.until(() => from(ESTIMATE).length > 0, "the estimate's diagnostics to come back");
  await poll(entryHover, (value) => /Estimated from the source: 200 B/.test(value), 'the estimate back in the hover');
});
