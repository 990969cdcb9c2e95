/**
 * The CLI's commands on a committed fixture: exit codes, the JSON shape other tools rely on, SARIF,
 * the disassembly with the on-stack format string, and the types report.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { repositoryRoot } from '../support/kernel';
import { runCli } from '../support/cli';
import { buildRealWorldCorpus } from '../support/realworld';
import { skipOrFail } from '../support/unavailable';

const fixture = join(repositoryRoot(), 'test', 'fixtures', 'programs', 'seed_acl_stack_fmt.bpf.o');

test('check --format json keeps the documented shape and exits 1 on a violation', async () => {
  const result = await runCli(['check', '--kernel', '6.18,6.1', '--format', 'json', fixture]);
  assert.equal(result.code, 1, result.stderr);
  const { objects } = JSON.parse(result.stdout);
  const program = objects[0].programs.find((p: { name: string }) => p.name === 'acl_overlay');
  assert.deepEqual(Object.keys(objects[0]).sort(), ['path', 'problems', 'programs']);
  assert.equal(program.section, 'tc');
  assert.equal(program.stackDepths, '200+16+0');
  assert.deepEqual(
    program.verdicts.map((v: { kernel: string; accepted: boolean }) => [v.kernel, v.accepted]),
    [
      ['6.18', true],
      ['6.1', false],
    ],
  );
  const violation = program.verdicts[1].violations[0];
  assert.equal(violation.rule, 'tail-call-depth');
  assert.equal(violation.message, 'tail_calls are not allowed when call stack of previous frames is 256 bytes. Too large');
  assert.equal(violation.depth, 256);
  assert.equal(violation.chain[0], 'acl_overlay');
  assert.equal(typeof violation.source.line, 'number');
});

test('check exits 0 when every kernel accepts every program', async () => {
  const accepted = join(repositoryRoot(), 'test', 'fixtures', 'programs', 'shared_subprogs.bpf.o');
  assert.equal((await runCli(['check', '--kernel', '6.18', accepted])).code, 0);
});

test('check --format sarif is SARIF 2.1.0 with a located result per violation', async () => {
  const result = await runCli(['check', '--kernel', '6.1', '--format', 'sarif', fixture]);
  const sarif = JSON.parse(result.stdout);
  assert.equal(sarif.version, '2.1.0');
  const results = sarif.runs[0].results;
  assert.ok(results.length >= 2);
  assert.equal(results[0].ruleId, 'tail-call-depth');
  assert.ok(results[0].locations[0].physicalLocation.region.startLine > 0);
});

test('dump shows the format string being built on the stack before bpf_trace_printk', async () => {
  const result = await runCli(['dump', fixture, '--prog', 'acl_overlay']);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /call bpf_trace_printk#6/);
  assert.match(result.stdout, /writes 8 B at fp-\d+ "[^"]*acl/);
  assert.equal((await runCli(['dump', fixture, '--prog', 'nope'])).code, 2);
});

test("types lays out the seed example's records as clang does", async () => {
  const result = await runCli(['types', join(repositoryRoot(), 'examples', 'workspace', 'seed.bpf.c')]);
  const types = JSON.parse(result.stdout) as { name: string; size: number }[];
  assert.equal(types.find((t) => t.name === 'tunnel')?.size, 44);
  assert.equal(types.find((t) => t.name === 'sflow')?.size, 48);
});

test('estimate takes defines from compile_commands.json before -D: BPF_NO_GLOBAL_DATA puts the printk format on the stack', async () => {
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const workspace = mkdtempSync(join(tmpdir(), 'bpf-stack-lens-ccdb-'));
  const source = join(workspace, 'log.bpf.c');
  writeFileSync(
    source,
    '#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\nSEC("tc")\nint entry(struct __sk_buff *skb)\n{\n\tbpf_printk("len=%u proto=%u\\n", skb->len, skb->protocol);\n\treturn 0;\n}\nchar LICENSE[] SEC("license") = "GPL";\n',
  );
  const database = join(workspace, 'compile_commands.json');
  writeFileSync(
    database,
    JSON.stringify([{ directory: workspace, file: 'log.bpf.c', arguments: ['clang-19', '-target', 'bpf', '-DBPF_NO_GLOBAL_DATA', '-c', 'log.bpf.c'] }]),
  );
  const frameOf = async (argv: string[]) => {
    const result = await runCli(['estimate', '--kernel', '6.18', '--format', 'json', ...argv, source]);
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout).functions.find((f: { name: string }) => f.name === 'entry');
  };
  const rodata = await frameOf([]);
  assert.equal(rodata.frameBytes, 0, 'libbpf keeps the format in .rodata by default');
  const stack = await frameOf(['--compile-commands', database]);
  assert.equal(stack.frameBytes, 24, 'the 17-byte format (with its NUL) takes three slots on the stack');
  assert.equal(stack.items[0].what, 'printk-format');
  const undefinedAgain = await frameOf(['--compile-commands', database, '-D', 'BPF_NO_GLOBAL_DATA_UNUSED']);
  assert.equal(undefinedAgain.frameBytes, 24, '-D adds to the database, it does not replace it');
  assert.equal((await runCli(['estimate', '--compile-commands', join(workspace, 'missing.json'), source])).code, 2);
});

test('estimate says which headers it could not find, in the JSON and in the text', async () => {
  const directory = mkdtempSync(join(tmpdir(), 'bpf-stack-lens-missing-'));
  const source = join(directory, 'prog.bpf.c');
  writeFileSync(source, '#include "vmlinux_missing.h"\n\nint prog(void *ctx)\n{\n\tchar buf[64];\n\treturn buf[0];\n}\n');
  const json = await runCli(['estimate', '--kernel', '6.18', '--format', 'json', source]);
  const report = JSON.parse(json.stdout);
  assert.deepEqual(report.problems[0], { message: "'vmlinux_missing.h' file not found", offset: 0, line: 1, column: 1 });
  const text = await runCli(['estimate', '--kernel', '6.18', source]);
  assert.match(text.stdout, /note: line 1: 'vmlinux_missing\.h' file not found; its types count 0 bytes here/);
});

test("a program that reaches bpf_throw shows the verifier's default exception callback as an added subprogram", async (t) => {
  const { corpus, reason } = await buildRealWorldCorpus();
  if (!corpus) return skipOrFail(t, reason ?? 'the real-world corpus did not build');
  // The kernel's own selftest of bpf_throw, from the 6.12 tree.
  const exceptions = corpus.objects.find((object) => object.package === 'linux-source-6.12' && object.relativeSource.endsWith('/progs/exceptions.c'))?.object;
  assert.ok(exceptions, 'the corpus has no exceptions.c selftest');
  const json = JSON.parse((await runCli(['check', '--kernel', '6.18', '--format', 'json', exceptions])).stdout);
  const program = json.objects[0].programs.find((candidate: { name: string }) => candidate.name === 'exception_throw_always_1');
  assert.equal(program.stackDepths, '0+0');
  assert.equal(program.subprograms.length, 1);
  assert.deepEqual(program.addedSubprograms, ['default exception callback']);
  const text = (await runCli(['check', '--kernel', '6.18', exceptions])).stdout;
  assert.match(
    text,
    /program exception_throw_always_1 .*stack depth 0\+0\n.*\n {4}\+ {2}default exception callback: 0 B, added by the verifier after its check/,
  );
});

test("estimate lists the file's own functions; the headers' inline functions only with --all-functions, named with their header", async () => {
  const source = join(repositoryRoot(), 'examples', 'workspace', 'seed.bpf.c');
  const own = await runCli(['estimate', '--kernel', '6.18', source]);
  const functionLines = own.stdout.split('\n').filter((line) => /^ {2}\w+ \(/.test(line));
  assert.deepEqual(
    functionLines.map((line) => line.trim().split(' ')[0]),
    ['do_tail', 'process', 'entry'],
  );
  assert.match(own.stdout, /\(\d+ inline function\(s\) from headers not listed: --all-functions lists them\)/);
  const all = await runCli(['estimate', '--kernel', '6.18', '--all-functions', source]);
  assert.match(all.stdout, /^ {2}__arch_swab32 \(swab\.h line \d+\) inline: 0 bytes$/m);
  assert.doesNotMatch(all.stdout, /not listed/);
});
