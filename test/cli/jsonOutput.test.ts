/**
 * The CLI's JSON is written in chunks (cli/jsonOutput.ts): the text must be exactly what
 * JSON.stringify(value, null, 2) gave, for real reports and for the corners of JSON's rules, and
 * past the cap it stops with a message instead of building one string that may not fit.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jsonCapMessage, writeJson, writeJsonReport } from '../../server/src/cli/jsonOutput';
import { withSharedSubprograms } from '../../server/src/cli/sharedSubprograms';
import { analyzeObject } from '../../server/src/object/analyzeObject';
import { parseKernelProfiles } from '../../server/src/rules/kernelProfile';
import { craftObject } from '../fuzz/craftObject';

function written(value: unknown, cap?: number): { text: string; chunks: number; complete: boolean } {
  const chunks: string[] = [];
  const complete = writeJson({ stdout: (text) => chunks.push(text) }, value, cap);
  return { text: chunks.join(''), chunks: chunks.length, complete };
}

test('the streamed JSON is JSON.stringify(value, null, 2) and a newline, corners of JSON included', () => {
  const deep = { a: { b: { c: { d: { e: { f: { g: [1, { h: 'x\ny' }] } } } } } } };
  const values: unknown[] = [
    {},
    [],
    { empty: {}, list: [], nothing: null, skipped: undefined, fn: () => 1, text: 'quote " and \\ and \u2028' },
    [undefined, () => 1, Symbol('s'), NaN, Infinity, -0, 1e21, true],
    { when: new Date(0), nested: { toJSON: (key: string) => `key ${key}` } },
    deep,
    [[[[[[[[[]]]]]]]]],
    'a string',
    42,
    null,
  ];
  for (const value of values) {
    const result = written(value);
    assert.equal(result.text, `${JSON.stringify(value, null, 2)}\n`, JSON.stringify(value));
    assert.equal(result.complete, true);
  }
});

test('a large object report is written in many chunks, equal to the one-string JSON', () => {
  const report = analyzeObject(craftObject({ chain: 40, programs: 600 }), 'shared.o', parseKernelProfiles(['6.18', '6.1'], true).profiles).report;
  const value = { objects: [withSharedSubprograms(report)] };
  const result = written(value);
  assert.equal(result.text, `${JSON.stringify(value, null, 2)}\n`);
  assert.ok(result.chunks > 10, `${result.chunks} chunks`);
});

test('past the cap the output stops at the cap and the report says so on stderr', () => {
  const value = { items: Array.from({ length: 5000 }, (_, index) => ({ index, name: `item ${index}` })) };
  const result = written(value, 10_000);
  assert.equal(result.complete, false);
  assert.equal(result.text.length, 10_000);
  assert.ok(`${JSON.stringify(value, null, 2)}\n`.startsWith(result.text));
  const errors: string[] = [];
  assert.equal(writeJsonReport({ stdout: () => undefined, stderr: (text) => errors.push(text) }, value, 10_000), false);
  assert.deepEqual(errors, [jsonCapMessage(10_000)]);
  assert.match(errors[0], /larger than .* output stopped there, and the JSON written is incomplete/);
});
