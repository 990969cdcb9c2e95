/**
 * The frame-walk cache on disk: a new process (simulated by a new cache, which loads its stores
 * afresh once the last one wrote its own) estimates an unchanged file from the cache without a
 * syntax tree, re-walks only the functions that changed, and never reuses walks once a header they
 * could depend on changed.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { EstimateSession, estimateSource } from '../../server/src/source/estimateSource';
import { FrameEstimateCache } from '../../server/src/source/frameEstimate';
import { describeCode } from '../../server/src/source/frameEstimate/walkCache';
import { HeaderIndex } from '../../server/src/source/headerIndex';
import { parseKernelProfiles } from '../../server/src/rules/kernelProfile';

const { profiles } = parseKernelProfiles(['6.18'], true);

const HEADER = (size: number) => `#pragma once
typedef unsigned int __u32;
struct blob { char bytes[${size}]; };
static long (*bpf_probe_read_kernel)(void *dst, __u32 size, const void *src) = (void *) 113;
`;

const MAIN = `#include "blob.h"
#define SEC(name) __attribute__((section(name), used))
static __attribute__((noinline)) int helper(void *ctx)
{
	struct blob b;
	bpf_probe_read_kernel(&b, sizeof(b), ctx);
	return b.bytes[0];
}

static inline int small(void *ctx)
{
	char a[24];
	bpf_probe_read_kernel(a, sizeof(a), ctx);
	return a[1];
}

SEC("tc") int entry(void *ctx)
{
	char buf[64];
	bpf_probe_read_kernel(buf, sizeof(buf), ctx);
	return buf[0] + helper(ctx) + small(ctx);
}
`;

async function estimate(main: string, text: string, cacheDir: string | null, persistent: boolean) {
  const cache = new FrameEstimateCache(1000, persistent);
  const session = new EstimateSession(cache);
  try {
    const report = await estimateSource(main, text, profiles, { index: new HeaderIndex({ cacheDir }) }, session);
    return { report, cache, hadTree: session.hasDocument };
  } finally {
    session.dispose();
  }
}

test('walks persist on disk: unchanged files need no tree, edits re-walk one function, header changes re-walk all', async () => {
  const directory = mkdtempSync(join(tmpdir(), 'bsl-frames-'));
  const cacheDir = join(directory, 'cache');
  const main = join(directory, 'main.bpf.c');
  try {
    writeFileSync(join(directory, 'blob.h'), HEADER(40));
    writeFileSync(main, MAIN);

    const cold = await estimate(main, MAIN, cacheDir, true);
    assert.equal(cold.cache.diskHits, 0);
    cold.cache.flush();
    assert.ok(
      readdirSync(cacheDir).some((name) => name.startsWith('frames-')),
      'the walks are written beside the header index',
    );

    // A new process, same text: every function from disk, no tree built.
    const warm = await estimate(main, MAIN, cacheDir, true);
    assert.deepEqual(warm.report, cold.report);
    assert.equal(warm.cache.diskHits, 3);
    assert.equal(warm.hadTree, false);
    warm.cache.flush();

    // One function edited: the others come from disk, and the result is what a fresh walk gives.
    const edited = MAIN.replace('char a[24]', 'char a[120]');
    const partly = await estimate(main, edited, cacheDir, true);
    assert.equal(partly.cache.diskHits, 2);
    assert.equal(partly.cache.misses, 1);
    const fresh = await estimate(main, edited, null, false);
    assert.deepEqual(partly.report, fresh.report);
    partly.cache.flush();

    // The header's struct grows: nothing stored may be reused.
    writeFileSync(join(directory, 'blob.h'), HEADER(200));
    const afterHeader = await estimate(main, MAIN, cacheDir, true);
    assert.equal(afterHeader.cache.diskHits, 0);
    const freshAfterHeader = await estimate(main, MAIN, null, false);
    assert.deepEqual(afterHeader.report, freshAfterHeader.report);
    assert.notDeepEqual(afterHeader.report, cold.report);
    afterHeader.cache.flush();
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test('a corrupt frame cache file is a miss, not an error', async () => {
  const directory = mkdtempSync(join(tmpdir(), 'bsl-frames-'));
  const cacheDir = join(directory, 'cache');
  const main = join(directory, 'main.bpf.c');
  try {
    writeFileSync(join(directory, 'blob.h'), HEADER(40));
    writeFileSync(main, MAIN);
    const cold = await estimate(main, MAIN, cacheDir, true);
    cold.cache.flush();
    for (const folder of readdirSync(cacheDir).filter((name) => name.startsWith('frames-'))) {
      for (const file of readdirSync(join(cacheDir, folder))) writeFileSync(join(cacheDir, folder, file), '{not json');
    }
    const again = await estimate(main, MAIN, cacheDir, true);
    assert.equal(again.cache.diskHits, 0);
    assert.deepEqual(again.report, cold.report);
    again.cache.flush();
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test('the walks are stored under a code key that covers every compiled module of the server, wherever it sits', () => {
  const described = describeCode().map((line) => line.split(':')[0].split(sep).join('/'));
  // The walker, the modules beside the cache's own folder, and those of other folders it depends on.
  for (const module of [
    'source/frameEstimate/walker.js',
    'source/frameEstimate/walkCache.js',
    'source/translationUnit.js',
    'source/declarations.js',
    'rules/report.js',
  ]) {
    assert.ok(
      described.some((name) => name.endsWith(`server/src/${module}`)),
      `${module} is not in the code key:\n${described.join('\n')}`,
    );
  }
  assert.ok(described.some((name) => name.endsWith('grammars/tree-sitter-c.wasm')));
});
