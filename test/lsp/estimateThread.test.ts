/**
 * The estimate's worker thread as the server drives it, with stand-in worker scripts: a newer
 * request supersedes a queued or running one (which then yields nothing), and a worker that dies is
 * logged and started again, its estimate retried once.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { type EstimateInput, EstimateThread } from '../../server/src/lsp/estimateThread';

const scripts = mkdtempSync(join(tmpdir(), 'bpf-stack-lens-worker-'));
after(() => rmSync(scripts, { recursive: true, force: true }));

/**
 * A stand-in worker: "CRASH" in the text exits the thread, "SLOW" spins until the server supersedes
 * the request (as the real one checks between its steps), anything else is estimated at once.
 */
const STAND_IN = `
const { parentPort, workerData } = require('node:worker_threads');
const superseded = new Int32Array(workerData.superseded);
parentPort.on('message', (request) => {
  if (request.text.includes('CRASH')) process.exit(7);
  if (request.text.includes('SLOW')) {
    const deadline = Date.now() + 10000;
    while (Atomics.load(superseded, 0) !== request.id && Date.now() < deadline) {}
    if (Atomics.load(superseded, 0) === request.id) return parentPort.postMessage({ kind: 'superseded', id: request.id });
  }
  parentPort.postMessage({ kind: 'estimated', id: request.id, report: { file: request.filePath, functions: [], programs: [] }, dependencies: [request.filePath] });
});
`;

function thread(logs: string[]): EstimateThread {
  const workerScript = join(scripts, 'stand-in.js');
  writeFileSync(workerScript, STAND_IN);
  return new EstimateThread({ log: (message) => logs.push(message), openBuffers: () => new Map(), beginProgress: async () => undefined, workerScript });
}

function input(filePath: string, text: string): () => EstimateInput {
  return () => ({ filePath, text, profiles: [], includeDirs: [], defines: [] });
}

test('a worker that dies is logged and replaced; its estimate is retried once', async () => {
  const logs: string[] = [];
  const estimates = thread(logs);
  try {
    assert.equal(await estimates.estimate('/crash.c', input('/crash.c', 'CRASH')), undefined);
    const stops = logs.filter((line) => /the source-estimate worker stopped while estimating \/crash\.c \(exit code 7\); starting a new one/.test(line));
    assert.equal(stops.length, 2, logs.join('\n'));
    assert.ok(
      logs.some((line) => /\/crash\.c: not estimated, the worker stopped on it twice/.test(line)),
      logs.join('\n'),
    );
    const result = await estimates.estimate('/fine.c', input('/fine.c', 'int x;'));
    assert.equal(result?.text, 'int x;');
    assert.deepEqual(result?.dependencies, ['/fine.c']);
  } finally {
    estimates.dispose();
  }
});

test('a newer request replaces the queued one and supersedes the running one', async () => {
  const logs: string[] = [];
  const estimates = thread(logs);
  try {
    const running = estimates.estimate('/a.c', input('/a.c', 'SLOW'));
    const queued = estimates.estimate('/b.c', input('/b.c', 'old'));
    let madeStale = 0;
    // The queued request's input is never even made: the newer one takes its place.
    const replaced = estimates.estimate('/b.c', () => {
      madeStale++;
      return input('/b.c', 'stale')();
    });
    const newest = estimates.estimate('/b.c', input('/b.c', 'new'));
    assert.equal(await queued, undefined);
    assert.equal(await replaced, undefined);
    assert.equal(madeStale, 0);
    const started = Date.now();
    estimates.supersede('/a.c');
    assert.equal(await running, undefined);
    assert.ok(Date.now() - started < 5000, 'the running estimate stopped when superseded');
    assert.equal((await newest)?.text, 'new');
    assert.deepEqual(logs, []);
  } finally {
    estimates.dispose();
  }
});
