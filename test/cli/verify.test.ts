/**
 * `bpf-stack-lens verify`: real verdicts beside the predictions. On this machine's kernel (where bpf()
 * is allowed) and on one lab kernel under QEMU (where qemu is installed), every program of a fixture
 * is reported with the kernel's verdict, error and stack-depth line, the prediction, and the source
 * lines of the subprograms; bad input (an unknown kernel, a missing object, no root for this
 * machine's kernel) is a one-line error and exit 2.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import type { VerifyEntry } from '../../server/src/ide/verify';
import { runCli } from '../support/cli';
import { fixturesDirectory } from '../support/fixtures';
import { kernelVerifierAvailable, repositoryRoot } from '../support/kernel';
import { skipOrFail } from '../support/unavailable';

const OBJECT = join(fixturesDirectory(), 'private_stack.bpf.o');
const PROGRAMS = [
  'kprobe_400_400',
  'kprobe_400_400_tail',
  'kprobe_400_sub_tail',
  'kprobe_480_48',
  'perf_event_496_400',
  'raw_tp_48_48_400',
  'socket_400_400',
  'tracepoint_400_400_400',
];

function check(entries: VerifyEntry[], kernel: RegExp): void {
  assert.deepEqual(entries.map((entry) => entry.program).sort(), PROGRAMS);
  for (const entry of entries) {
    assert.match(entry.kernel, kernel);
    assert.notEqual(entry.real.verdict, 'error', `${entry.program}: no verdict`);
    assert.ok(entry.real.stackDepthLine?.startsWith('stack depth '), `${entry.program}: ${entry.real.stackDepthLine}`);
    assert.equal(entry.agrees, true, `${entry.program}: kernel ${JSON.stringify(entry.real)}, predicted ${JSON.stringify(entry.predicted)}`);
    assert.ok(
      entry.subprograms.length >= 2 && entry.subprograms.every((sub) => sub.file?.endsWith('private_stack.bpf.c') && (sub.line ?? 0) > 0),
      `${entry.program}: subprograms without source lines`,
    );
  }
  const rejected = entries.find((entry) => entry.program === 'socket_400_400');
  assert.equal(rejected?.real.error, 'combined stack size of 2 calls is 800. Too large');
  assert.match(`${rejected?.errorSource?.file}:${rejected?.errorSource?.line}`, /private_stack\.bpf\.c:\d+$/);
}

test('verify on this machine: the kernel and the prediction side by side, with source lines', async (t) => {
  const availability = kernelVerifierAvailable();
  if (!availability.available) {
    skipOrFail(t, availability.reason ?? 'bpf() is not available');
    return;
  }
  const { code, stdout } = await runCli(['verify', '--format', 'json', OBJECT]);
  assert.equal(code, 1, 'socket_400_400 is rejected');
  check((JSON.parse(stdout) as { results: VerifyEntry[] }).results, /^host \(/);
  const text = await runCli(['verify', OBJECT]);
  assert.match(text.stdout, /socket_400_400 on host \(.*\): agrees\n {4}kernel: {4}rejected: combined stack size of 2 calls is 800\. Too large/);
});

test("verify on this machine says what libbpf said: the kernel refused the object's BTF, and why", async (t) => {
  const availability = kernelVerifierAvailable();
  if (!availability.available) {
    skipOrFail(t, availability.reason ?? 'bpf() is not available');
    return;
  }
  // A __naked function with a named parameter and no body for it: its BTF FUNC's parameter has no
  // name, which btf_check_func_type_match refuses ("Invalid arg#1"); libbpf loads without BTF.
  const naked = join(fixturesDirectory(), 'naked_parameters.bpf.o');
  const { code, stdout } = await runCli(['verify', naked]);
  assert.equal(code, 0, stdout);
  assert.match(
    stdout,
    /naked_with_parameter on host \(.*\): agrees\n(?: {4}.*\n)*? {4}loader: {4}the kernel's BTF log ends: \[\d+\] FUNC naked_with_parameter type_id=\d+ Invalid arg#1\n/,
  );
  assert.match(stdout, /^ {4}loader: {4}libbpf: Error loading \.BTF into kernel: -22\. BTF is optional, ignoring\.$/m);
  // The routine "failed to load" lines are not repeated under a verdict that says so.
  assert.doesNotMatch(stdout, /loader: .*failed to load/);
  const json = await runCli(['verify', '--format', 'json', naked]);
  const entry = (JSON.parse(json.stdout) as { results: VerifyEntry[] }).results.find((result) => result.program === 'naked_with_parameter');
  assert.ok(entry?.real.loaderMessages?.includes('-- END BTF LOAD LOG --'), JSON.stringify(entry?.real));
});

test('verify --kernel 7.3 boots the lab kernel and shows its own line format', { timeout: 10 * 60 * 1000 }, async (t) => {
  const qemu = spawnSync('qemu-system-x86_64', ['--version']);
  if (qemu.error || qemu.status !== 0) {
    skipOrFail(t, 'qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)');
    return;
  }
  const { code, stdout, stderr } = await runCli(['verify', '--kernel', '7.3', '--format', 'json', OBJECT]);
  assert.equal(code, 1, stderr);
  assert.match(stderr, /booting 7\.3-rc7 \(linux-binary-7\.3-amd64\) under QEMU/);
  const entries = (JSON.parse(stdout) as { results: VerifyEntry[] }).results;
  check(entries, /^7\.3-rc7$/);
  assert.ok(entries.every((entry) => /^stack depth max \d+$/.test(entry.real.stackDepthLine ?? '') && (entry.real.subprogramLines?.length ?? 0) >= 2));
});

test('verify: an unknown kernel or a missing object is one line and exit 2', async () => {
  const unknown = await runCli(['verify', '--kernel', '9.9', OBJECT]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /^bpf-stack-lens verify: no lab kernel "9\.9" \(lab kernels: host, 5\.10, 6\.1, 6\.12, 7\.2, 7\.3\)/);
  const missing = await runCli(['verify', '--kernel', '7.2', '/nonexistent/x.bpf.o']);
  assert.equal(missing.code, 2);
  assert.equal(missing.stderr, 'bpf-stack-lens: /nonexistent/x.bpf.o: no such file\n');
});

test('verify on this machine without root: one line saying so, exit 2, from the CLI and in the editor report alike', async (t) => {
  const setpriv = spawnSync('setpriv', ['--version']);
  if (typeof process.getuid !== 'function' || process.getuid() !== 0 || setpriv.error) {
    skipOrFail(t, 'needs root and setpriv (util-linux) to run as an unprivileged user');
    return;
  }
  const scratch = mkdtempSync(join(tmpdir(), 'bpf-stack-lens-unprivileged-'));
  try {
    const object = join(scratch, 'private_stack.bpf.o');
    copyFileSync(OBJECT, object);
    chmodSync(scratch, 0o755);
    chmodSync(object, 0o644);
    // The checkout itself may sit where nobody cannot reach it (a clone in a mktemp -d folder, 0700):
    // the command line's own files go into the scratch folder, which nobody can read.
    const checkout = join(scratch, 'checkout');
    for (const part of ['bin', 'package.json', join('out', 'server')]) cpSync(join(repositoryRoot(), part), join(checkout, part), { recursive: true });
    spawnSync('chmod', ['-R', 'a+rX', checkout]);
    const asNobody = (script: string[]) =>
      spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, ...script], { encoding: 'utf8', cwd: checkout });
    const cli = asNobody([join(checkout, 'bin', 'bpf-stack-lens.js'), 'verify', object]);
    const line = "this machine's kernel needs root (CAP_BPF, CAP_PERFMON) to load programs; use a lab kernel instead";
    assert.equal(cli.status, 2, cli.stderr);
    assert.equal(cli.stdout, '');
    assert.equal(cli.stderr, `bpf-stack-lens verify: ${line}\n`);
    const editor = asNobody([
      '-e',
      `require(${JSON.stringify(join(checkout, 'out', 'server', 'src', 'ide', 'verify.js'))}).verifyReport(${JSON.stringify(object)}, [], ['host'], { root: ${JSON.stringify(checkout)} }).then((report) => process.stdout.write(report.text))`,
    ]);
    assert.equal(editor.stdout, `Verify on real kernels: ${object}\nkernels: host\n\nno answer: ${line}\n`, editor.stderr);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
});
