/**
 * The CLI's commands on a committed fixture: exit codes, the JSON shape other tools rely on, SARIF,
 * the disassembly with the on-stack format string, and the types report.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { repositoryRoot } from '../support/kernel';
import { runCli } from '../support/cli';

const fixture = join(repositoryRoot(), 'test', 'fixtures', 'programs', 'seed_acl_stack_fmt.bpf.o');

test('check --format json keeps the documented shape and exits 1 on a violation', async () => {
  const result = await runCli(['check', '--kernel', '6.18,6.1', '--format', 'json', fixture]);
  assert.equal(result.code, 1, result.stderr);
  const { objects } = JSON.parse(result.stdout);
  const program = objects[0].programs.find((p: { name: string }) => p.name === 'acl_overlay');
  assert.deepEqual(Object.keys(objects[0]).sort(), ['path', 'problems', 'programs']);
  assert.equal(program.section, 'tc');
  assert.equal(program.stackDepths, '200+16+0');
  assert.deepEqual(program.verdicts.map((v: { kernel: string; accepted: boolean }) => [v.kernel, v.accepted]), [['6.18', true], ['6.1', false]]);
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

test('types lays out the seed example\'s records as clang does', async () => {
  const result = await runCli(['types', join(repositoryRoot(), 'examples', 'workspace', 'seed.bpf.c')]);
  const types = JSON.parse(result.stdout) as { name: string; size: number }[];
  assert.equal(types.find((t) => t.name === 'tunnel')?.size, 44);
  assert.equal(types.find((t) => t.name === 'sflow')?.size, 48);
});
