/**
 * The analyzer held to the kernel lab, without QEMU: for every lab kernel's committed measured file
 * (test/fixtures/programs/measured/<release>.json, written by `bash scripts/kernel-lab.sh measure`),
 * `analyzeObject` with that exact release's profile must give each program the kernel's verdict,
 * error line and stack-depth line, word for word. test/lab/kernelLab.test.ts checks that the files
 * are still what the kernels say.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { analyzeObject } from '../../server/src/object/analyzeObject';
import { LAB_KERNELS } from '../../server/src/lab/kernelLab';
import { MEASURED_HELPER_ID_LIMITS, parseKernelProfiles, parseKernelVersion, ruleSetFor } from '../../server/src/rules/kernelProfile';
import { KNOWN_DIFFERENCES, compareWithMeasured, fixtureObjects, readMeasuredFiles } from '../support/kernelLab';

const files = readMeasuredFiles();

export function analyzeFor(object: string, release: string) {
  const { profiles, errors } = parseKernelProfiles([release], true);
  assert.deepEqual(errors, []);
  return analyzeObject(new Uint8Array(readFileSync(object)), object, profiles).report.programs;
}

test('every lab kernel has a measured file covering every fixture object', () => {
  assert.equal(files.length, LAB_KERNELS.length, `measured files: ${files.map((f) => f.release).join(', ')}`);
  for (const kernel of LAB_KERNELS)
    assert.ok(
      files.some((file) => file.package === kernel.package),
      `no measured file for ${kernel.package}`,
    );
  const objects = fixtureObjects().map((path) => path.split('/').pop()!);
  for (const file of files) assert.deepEqual(Object.keys(file.objects).sort(), objects, `${file.release}: run bash scripts/kernel-lab.sh measure`);
});

test("each lab kernel's highest helper id is the profile's, as measured in its BTF", () => {
  for (const file of files) {
    assert.equal(typeof file.bpfFuncMaxId, 'number', `${file.release}: no bpfFuncMaxId; run bash scripts/kernel-lab.sh measure`);
    const version = parseKernelVersion(file.release)!;
    const key = `${version.major}.${version.minor}${version.patch === undefined ? '' : `.${version.patch}`}`;
    assert.equal(MEASURED_HELPER_ID_LIMITS[key], file.bpfFuncMaxId, `${file.release}: MEASURED_HELPER_ID_LIMITS`);
    assert.equal(ruleSetFor({ version: file.release, jit: true }).helperIdLimit, file.bpfFuncMaxId, file.release);
    // Stable updates add no helpers: the release's upstream limit is the same.
    assert.equal(ruleSetFor({ version: key.split('.').slice(0, 2).join('.'), jit: true }).helperIdLimit, file.bpfFuncMaxId, `${file.release} as major.minor`);
  }
  assert.deepEqual(Object.keys(MEASURED_HELPER_ID_LIMITS).length, files.length, 'a measured limit without a measured file');
});

for (const file of files) {
  test(`the analyzer predicts what ${file.release} (${file.package}) said`, () => {
    const agreement = compareWithMeasured(file, analyzeFor);
    const differing = [...new Set(agreement.differences.map((line) => line.slice(0, line.indexOf(':'))))].sort();
    assert.deepEqual(
      differing,
      [...(KNOWN_DIFFERENCES[file.release] ?? [])].sort(),
      `${agreement.verdictsAgree}/${agreement.judged} verdicts, ${agreement.linesAgree}/${agreement.judged} lines, ${agreement.falseAccepts} false accepts:\n${agreement.differences.join('\n')}`,
    );
  });
}
