/**
 * One options function for the CLI and the editor: a compile_commands.json entry whose `-include
 * config.h` defines the macro that selects `char buf[400]` gives clang's 400 bytes through
 * `estimate`, through the language server, and through `estimate --compile`, which measures the
 * object clang builds from the file. --compile refuses a command that would load a plugin.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { analyzeObject } from '../../server/src/object/analyzeObject';
import { parseKernelProfiles } from '../../server/src/rules/kernelProfile';
import { CLANG, LspSession, hasClang, poll } from '../lsp/harness';
import { runCli } from '../support/cli';

const PROGRAM = `static long (*probe_read)(void *dst, unsigned int size, const void *src) = (void *)113;

__attribute__((section("kprobe/sys_open"), used))
int open_probe(void *ctx)
{
#ifdef BIG_FRAME
	char buf[400];
#else
	char buf[16];
#endif
	probe_read(buf, sizeof(buf), ctx);
	return buf[1];
}
`;

const reason = hasClang() ? undefined : `${CLANG} is not installed (apt-get install clang-19)`;
if (reason && process.env.CI === 'true') throw new Error(`cannot test -include and --compile: ${reason}`);
const skip = reason ?? false;

let directory: string;
let program: string;
let database: string;

function writeDatabase(extra: string[]): void {
  writeFileSync(
    database,
    JSON.stringify([{ directory, file: 'prog.c', arguments: ['clang-19', '-O2', '-g', '-target', 'bpf', '-include', 'config.h', ...extra, '-c', 'prog.c'] }]),
  );
}

/** The frame clang gives open_probe, measured in its object. */
function clangFrame(): number {
  const object = join(directory, 'prog.o');
  execFileSync(CLANG, ['-O2', '-g', '-target', 'bpf', '-include', join(directory, 'config.h'), '-c', program, '-o', object]);
  const { report } = analyzeObject(new Uint8Array(readFileSync(object)), object, parseKernelProfiles(['6.18'], true).profiles);
  return report.programs[0].subprograms[0].stackDepth;
}

before(() => {
  if (skip) return;
  directory = mkdtempSync(join(tmpdir(), 'bpf-stack-lens-include-'));
  program = join(directory, 'prog.c');
  database = join(directory, 'compile_commands.json');
  writeFileSync(program, PROGRAM);
  writeFileSync(join(directory, 'config.h'), '#define BIG_FRAME 1\n');
  writeDatabase([]);
});

after(() => {
  if (skip) return;
  rmSync(directory, { recursive: true, force: true });
});

test("a database entry's -include gives clang's frame in the CLI and in the editor", { skip }, async () => {
  const clang = clangFrame();
  assert.equal(clang, 400);

  const cli = await runCli(['estimate', '--compile-commands', database, '--kernel', '6.18', '--format', 'json', program]);
  assert.equal(cli.code, 0, cli.stderr);
  assert.equal(JSON.parse(cli.stdout).functions.find((fn: { name: string }) => fn.name === 'open_probe').frameBytes, clang);

  const settings = { kernels: ['6.18'], compileCommands: database };
  const session = new LspSession(settings);
  try {
    await session.initialize(directory, settings);
    const uri = pathToFileURL(program).href;
    await session.connection.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'c', version: 1, text: PROGRAM } });
    const report = await poll(
      () => session.connection.sendRequest<string>('bpfStackLens/stackReport', { uri }),
      (text) => /open_probe \(line \d+\) SEC\("kprobe\/sys_open"\): \d+ bytes/.test(text),
      "the editor's estimate",
    );
    assert.match(report, new RegExp(`open_probe \\(line \\d+\\) SEC\\("kprobe/sys_open"\\): ${clang} bytes`));
  } finally {
    await session.close();
  }
});

test('estimate --compile measures the object clang builds from the file', { skip }, async () => {
  const json = await runCli(['estimate', '--compile', '--compile-commands', database, '--kernel', '6.18', '--format', 'json', program]);
  assert.equal(json.code, 0, json.stderr);
  const report = JSON.parse(json.stdout);
  assert.equal(report.compiledFromBuffer.clang.startsWith('/'), true);
  assert.ok(report.compiledFromBuffer.flags.includes(join(directory, 'config.h')));
  assert.equal(report.programs[0].subprograms[0].stackDepth, clangFrame());
  const text = await runCli(['estimate', '--compile', '--compile-commands', database, '--kernel', '6.18', program]);
  assert.match(text.stdout, /programs: compiled from the buffer by \/\S+ in \d+ ms \(exact\)/);
});

test('estimate --compile refuses a command that loads a plugin, and keeps the estimate', { skip }, async () => {
  writeDatabase([`-fplugin=${join(directory, 'evil.so')}`]);
  try {
    const result = await runCli(['estimate', '--compile', '--compile-commands', database, '--kernel', '6.18', '--format', 'json', program]);
    assert.equal(result.code, 0);
    assert.match(result.stderr, /not compiled: the compile command carries -fplugin=/);
    assert.equal(JSON.parse(result.stdout).compiledFromBuffer, undefined);
  } finally {
    writeDatabase([]);
  }
});

test('estimate --compile of a file that does not compile keeps the estimate and says why', { skip }, async () => {
  const broken = join(directory, 'broken.c');
  writeFileSync(broken, `${PROGRAM}\nthis is not C;\n`);
  const result = await runCli(['estimate', '--compile', '--kernel', '6.18', '--format', 'json', broken]);
  assert.match(result.stderr, /does not compile:[\s\S]*error:[\s\S]*the numbers are the estimate's/);
  assert.equal(JSON.parse(result.stdout).compiledFromBuffer, undefined);
});
