/**
 * `bpf-stack-lens check ... | head`: the reader closes the pipe after its first bytes. The command
 * must drop the rest of its output without a crash on stderr, and still exit with its verdict.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { repositoryRoot } from '../support/kernel';

test('a reader that closes the pipe early ends the output quietly, with the verdict as exit code', async () => {
  const root = repositoryRoot();
  const corpus = join(root, 'test', 'fixtures', 'realworld');
  // Enough JSON (megabytes) that the pipe is still being written when the reader goes.
  const objects = readdirSync(corpus, { recursive: true, encoding: 'utf8' }).filter((file) => file.endsWith('.o')).map((file) => join(corpus, file));
  const child = spawn(process.execPath, [join(root, 'bin', 'bpf-stack-lens.js'), 'check', '--format', 'json', '--kernel', '6.1', ...objects], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const firstChunk = await new Promise<string>((resolve) => child.stdout.once('data', (chunk) => resolve(String(chunk))));
  child.stdout.destroy();
  const code = await new Promise<number | null>((resolve) => child.on('close', (exitCode) => resolve(exitCode)));
  assert.match(firstChunk, /^\{/);
  assert.equal(stderr, '', 'nothing on stderr');
  assert.equal(code, 1, 'the verdict: some real-world program breaks a stack rule on 6.1');
});
