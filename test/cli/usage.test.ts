/**
 * The CLI's contract with scripts: exit 2 and one clear line on stderr for bad usage or input that is
 * not a BPF object, never a stack trace.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
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

test('every command answers --help with its own usage line, and exit 0', async () => {
  for (const command of ['check', 'dump', 'estimate', 'types', 'lsp']) {
    const result = await runCli([command, '--help']);
    assert.equal(result.code, 0, command);
    assert.match(result.stdout, new RegExp(`^usage:\\n  bpf-stack-lens ${command} `));
    assert.equal(result.stdout.trim().split('\n').length, 2, result.stdout);
  }
});

/*
 * The installed entry point loads `check` from the bundle and the other commands from out/, so a
 * usage error thrown by an out/ module must still be recognised as one by the bundle's main.
 */
test('through bin/bpf-stack-lens.js, a bad option of any command is exit 2 without a stack trace', () => {
  const bin = join(__dirname, '..', '..', '..', 'bin', 'bpf-stack-lens.js');
  for (const argv of [
    ['estimate', '--bogus', 'x.c'],
    ['types', '--bogus', 'x.h'],
    ['dump', '--bogus', 'x.o'],
    ['check', '--bogus', 'x.o'],
  ]) {
    const result = spawnSync(process.execPath, [bin, ...argv], { encoding: 'utf8' });
    assert.equal(result.status, 2, `${argv.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, new RegExp(`^bpf-stack-lens ${argv[0]}: unknown option --bogus\\n`));
    assert.doesNotMatch(result.stderr, /internal error|\n\s+at /);
  }
});

test('an object with no programs says why, on check and on dump', async () => {
  const library = join(__dirname, '..', '..', '..', 'test', 'object', 'data', 'library.bpf.o');
  const check = await runCli(['check', '--kernel', '6.18', library]);
  assert.equal(check.code, 0);
  assert.match(
    check.stdout,
    /warning: no programs: every function \(helper\) is in \.text; libbpf loads only functions of other sections \(SEC\("\.\.\."\)\) as programs/,
  );
  const dump = await runCli(['dump', library]);
  assert.equal(dump.code, 0);
  assert.match(dump.stderr, /no programs: every function \(helper\) is in \.text/);
});
