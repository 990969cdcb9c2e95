/**
 * `bpf-stack-lens check ... | head`: the reader closes the pipe after its first bytes. The command
 * must drop the rest of its output without a crash on stderr, and still exit with its verdict.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { repositoryRoot } from '../support/kernel';
import { buildRealWorldCorpus } from '../support/realworld';
import { skipOrFail } from '../support/unavailable';

test('a reader that closes the pipe early ends the output quietly, with the verdict as exit code', async (t) => {
  const root = repositoryRoot();
  const { corpus, reason } = await buildRealWorldCorpus();
  if (!corpus) return skipOrFail(t, reason ?? 'the real-world corpus did not build');
  // Enough JSON (megabytes) that the pipe is still being written when the reader goes.
  const objects = corpus.objects.map((object) => object.object);
  const child = spawn(process.execPath, [join(root, 'bin', 'bpf-stack-lens.js'), 'check', '--format', 'json', '--kernel', '6.1', ...objects], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const firstChunk = await new Promise<string>((resolve) => child.stdout.once('data', (chunk) => resolve(String(chunk))));
  child.stdout.destroy();
  const code = await new Promise<number | null>((resolve) => child.on('close', (exitCode) => resolve(exitCode)));
  assert.match(firstChunk, /^\{/);
  assert.equal(stderr, '', 'nothing on stderr');
  assert.equal(code, 1, 'the verdict: some real-world program breaks a stack rule on 6.1');
});
