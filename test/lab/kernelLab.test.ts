/**
 * The measured files are still what the kernels say: boots every lab kernel under QEMU (one boot per
 * kernel, all fixture objects) and compares its verdicts, error lines and stack-depth lines with
 * test/fixtures/programs/measured/<release>.json. Says which kernels ran. Off this machine's tools
 * (no qemu, a package gone from the archive) it skips saying why; in CI all five must run, and a
 * missing package fails naming it. Kernels are cached in .cache/kernels, so only the first run fetches.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';

import { LAB_KERNELS, runLab } from '../../server/src/lab/kernelLab';
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
  const ran = run.boots.map((boot) => `${boot.fetched.release} (${boot.fetched.kernel.package}, ${boot.verdicts.length} programs, ${boot.bootSeconds.toFixed(0)} s${boot.fetched.cached ? ', cached' : ''})`);
  t.diagnostic(`kernels that ran: ${ran.join('; ') || 'none'}`);
  for (const boot of run.boots) {
    await t.test(boot.fetched.release, () => {
      const path = measuredFilePath(boot.fetched.release);
      assert.ok(existsSync(path), `no measured file for ${boot.fetched.release}: run bash scripts/kernel-lab.sh measure`);
      const committed = JSON.parse(readFileSync(path, 'utf8')) as MeasuredFile;
      assert.deepEqual(toMeasured(boot).objects, committed.objects, `${boot.fetched.release} now says something else: run bash scripts/kernel-lab.sh measure and review the diff`);
    });
  }
  if (run.failures.length > 0) {
    const reasons = run.failures.map((failure) => `${failure.kernel.package}: ${failure.reason}`).join('; ');
    // A package gone from the archive or a kernel that no longer boots is a broken lab in CI.
    skipOrFail(t, `not every lab kernel ran: ${reasons}`);
  }
});
