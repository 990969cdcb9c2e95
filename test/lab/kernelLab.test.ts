/**
 * The measured files are still what the kernels say: boots every lab kernel under QEMU (one boot per
 * kernel, all fixture objects) and compares its verdicts, error lines and stack-depth lines with
 * test/fixtures/programs/measured/<release>.json. Says which kernels ran. Off this machine's tools
 * (no qemu, a package gone from the archive) it skips saying why; in CI all five must run, and a
 * missing package fails naming it. Kernels are cached in .cache/kernels, so only the first run fetches.
 * And the loader's time limit per program (which the real-world corpus in the lab relies on) works
 * inside a real kernel.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { LAB_KERNELS, bootKernel, fetchKernel, runLab } from '../../server/src/lab/kernelLab';
import { type MeasuredFile, fixtureObjects, measuredFilePath, missingLabTool, toMeasured } from '../support/kernelLab';
import { repositoryRoot } from '../support/kernel';
import { skipOrFail } from '../support/unavailable';

test('every lab kernel, booted under QEMU, says what its measured file says', { timeout: 30 * 60 * 1000 }, async (t) => {
  const missing = missingLabTool();
  if (missing) {
    skipOrFail(t, missing);
    return;
  }
  const progress: string[] = [];
  const run = await runLab(LAB_KERNELS, fixtureObjects(), { root: repositoryRoot(), progress: (message) => progress.push(message) });
  const ran = run.boots.map(
    (boot) =>
      `${boot.fetched.release} (${boot.fetched.kernel.package}, ${boot.verdicts.length} programs, ${boot.bootSeconds.toFixed(0)} s${boot.fetched.cached ? ', cached' : ''})`,
  );
  t.diagnostic(`kernels that ran: ${ran.join('; ') || 'none'}`);
  for (const boot of run.boots) {
    await t.test(boot.fetched.release, () => {
      const path = measuredFilePath(boot.fetched.release);
      assert.ok(existsSync(path), `no measured file for ${boot.fetched.release}: run bash scripts/kernel-lab.sh measure`);
      const committed = JSON.parse(readFileSync(path, 'utf8')) as MeasuredFile;
      assert.deepEqual(
        toMeasured(boot).objects,
        committed.objects,
        `${boot.fetched.release} now says something else: run bash scripts/kernel-lab.sh measure and review the diff`,
      );
    });
  }
  if (run.failures.length > 0) {
    const reasons = run.failures.map((failure) => `${failure.kernel.package}: ${failure.reason}`).join('; ');
    // A package gone from the archive or a kernel that no longer boots is a broken lab in CI.
    skipOrFail(t, `not every lab kernel ran: ${reasons}`);
  }
});

/*
 * A bounded loop of 300,000 iterations: the verifier walks it to its million-instruction limit,
 * about 0.3 s on the host and 5 to 20 s under TCG, long enough to be cut off by a small time limit.
 */
const SLOW_PROGRAM = `
#define SEC(name) __attribute__((section(name), used))
SEC("socket") int walks_a_million(void *ctx)
{
	volatile int sum = 0;
	for (int i = 0; i < 300000; i++)
		sum += i;
	return sum;
}
char _license[] SEC("license") = "GPL";
`;

test("a lab kernel cuts off a program over the loader's time limit and says so", { timeout: 10 * 60 * 1000 }, async (t) => {
  const missing = missingLabTool();
  if (missing) return skipOrFail(t, missing);
  const folder = mkdtempSync(join(tmpdir(), 'bpf-stack-lens-slow-'));
  const object = join(folder, 'slow.bpf.o');
  writeFileSync(join(folder, 'slow.bpf.c'), SLOW_PROGRAM);
  const built = spawnSync('clang-19', ['-O2', '-g', '-target', 'bpf', '-c', join(folder, 'slow.bpf.c'), '-o', object], { encoding: 'utf8' });
  if (built.status !== 0) return skipOrFail(t, `clang-19 does not build the slow program: ${built.error?.message ?? built.stderr}`);
  const fetched = await fetchKernel(LAB_KERNELS[0], { root: repositoryRoot() });
  const boot = await bootKernel(fetched, [object], { root: repositoryRoot(), programTimeoutSeconds: 0.2 });
  assert.deepEqual(
    boot.verdicts.map((verdict) => [verdict.program, verdict.status, verdict.errno, verdict.timedOut]),
    [['walks_a_million', 'error', 11, 0.2]],
    `${fetched.release}: the program should have been cut off with EAGAIN after 0.2 s`,
  );
});

/*
 * The two ways a lab kernel fails to answer, each a one-line message naming the kernel and how far it
 * got, which `verify` and the editor's "Verify on real kernels…" show as they are.
 */
test('a lab kernel that does not answer in time is stopped with a one-line message', { timeout: 5 * 60 * 1000 }, async (t) => {
  const missing = missingLabTool();
  if (missing) return skipOrFail(t, missing);
  const fetched = await fetchKernel(LAB_KERNELS[0], { root: repositoryRoot() });
  const started = Date.now();
  // TCG takes several seconds to boot: two are not enough to reach the loader.
  await assert.rejects(bootKernel(fetched, fixtureObjects().slice(0, 1), { root: repositoryRoot(), timeoutSeconds: 2 }), (error: Error) => {
    assert.equal(
      error.message,
      `kernel ${fetched.release} (${fetched.kernel.package}) timed out after 2 s under QEMU (0 programs judged, before its loader started)`,
    );
    return true;
  });
  assert.ok(Date.now() - started < 60_000, 'the VM was not stopped at its time limit');
});

test('a lab kernel that panics is stopped at the panic with a one-line message', { timeout: 5 * 60 * 1000 }, async (t) => {
  const missing = missingLabTool();
  if (missing) return skipOrFail(t, missing);
  const fetched = await fetchKernel(LAB_KERNELS[0], { root: repositoryRoot() });
  // A stand-in for QEMU that prints what a real kernel prints when its init dies, then hangs as the
  // VM would (panic=-1 reboots, and -no-reboot keeps it from coming back).
  const folder = mkdtempSync(join(tmpdir(), 'bpf-stack-lens-panic-'));
  const qemu = join(folder, 'qemu-panics');
  writeFileSync(
    qemu,
    [
      '#!/bin/sh',
      'if [ "$1" = --version ]; then echo "QEMU emulator version 7.2.0"; exit 0; fi',
      "printf '[    1.234567] Run /init as init process\\r\\n'",
      "printf '[    1.345678] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100\\r\\n'",
      'exec sleep 600',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  const started = Date.now();
  await assert.rejects(bootKernel(fetched, fixtureObjects().slice(0, 1), { root: repositoryRoot(), qemu }), (error: Error) => {
    assert.equal(
      error.message,
      `kernel ${fetched.release} (${fetched.kernel.package}) panicked, before its loader started: Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100`,
    );
    return true;
  });
  assert.ok(Date.now() - started < 60_000, 'the VM was not stopped at the panic');
});
