/**
 * The CLI's contract with scripts: exit 2 and one clear line on stderr for bad usage or input that is
 * not a BPF object, never a stack trace.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli } from '../support/cli';

const scratch = mkdtempSync(join(tmpdir(), 'bpf-stack-lens-cli-'));

test('no command, an unknown command or an unknown option is a usage error', async () => {
  for (const argv of [[], ['frobnicate'], ['check', '--bogus', 'x.o'], ['check'], ['check', '--format', 'xml', 'x.o'], ['check', '--kernel', 'six', 'x.o']]) {
    const result = await runCli(argv);
    assert.equal(result.code, 2, argv.join(' '));
    assert.match(result.stderr, /^bpf-stack-lens/);
    assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
  }
});

test('a missing file, a directory and a text file are unreadable input', async () => {
  const text = join(scratch, 'notes.o');
  writeFileSync(text, 'this is not an object file\n');
  const cases: [string, RegExp][] = [
    [join(scratch, 'missing.o'), /missing\.o: no such file/],
    [scratch, /is a directory/],
    [text, /notes\.o: .*not an ELF/i],
  ];
  for (const [path, message] of cases) {
    const result = await runCli(['check', '--kernel', '6.18', path]);
    assert.equal(result.code, 2, path);
    assert.match(result.stderr, message);
    assert.equal(result.stderr.trim().split('\n').length, 1, `one line for ${path}: ${result.stderr}`);
  }
});

test('--help and --version answer on stdout', async () => {
  assert.match((await runCli(['--help'])).stdout, /bpf-stack-lens check/);
  assert.equal((await runCli(['--version'])).stdout, 'test\n');
});
