/**
 * The fast run of the fuzzer (fuzz.ts): a few thousand seeded inputs to the object analyzer, a
 * hundred to the source estimator, a few hundred messages to a real server, and the committed
 * corpus held to its generator. Any uncaught exception fails with the seed that replays it
 * (`node out/test/fuzz/fuzz.js --seed S --inputs 1`).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { craftObject } from './craftObject';
import { CORPUS, CORPUS_DIR, fuzzMessageLoop, fuzzTarget } from './fuzz';

const SEED = 0x5eed;

test('the committed corpus is what the generator writes', () => {
  for (const [name, shape] of Object.entries(CORPUS)) {
    const committed = new Uint8Array(fs.readFileSync(path.join(CORPUS_DIR, name)));
    assert.deepEqual(committed, craftObject(shape), `${name} drifted: node out/test/fuzz/fuzz.js --write-corpus`);
  }
});

test('2,000 mutated objects go through the whole check without an uncaught exception', async () => {
  const statistics = await fuzzTarget('object', 2000, SEED);
  assert.equal(statistics.inputs, 2000);
  assert.deepEqual(statistics.uncaught, []);
});

test('100 mutated sources go through the estimator without an uncaught exception', async () => {
  const statistics = await fuzzTarget('estimate', 100, SEED);
  assert.deepEqual(statistics.uncaught, []);
});

test('300 random messages leave the server answering', async () => {
  const statistics = await fuzzMessageLoop(300, SEED);
  assert.equal(statistics.inputs, 300);
  assert.deepEqual(statistics.uncaught, []);
});
