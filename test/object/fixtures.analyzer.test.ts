/**
 * The object analyzer and the rule engine held to what each fixture states the kernel says: the
 * verifier's "stack depth" line, number for number, and its verdict, word for word, for every kernel
 * a fixture names. Runs on the committed objects, so it needs neither clang nor bpf().
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { analyzeObject } from '../../server/src/object/analyzeObject';
import { listFixtures } from '../support/fixtures';

for (const fixture of listFixtures()) {
  const name = fixture.source.split('/').pop()!;
  test(`analyzer agrees with the kernel on ${name}`, () => {
    const kernels = [...new Set(fixture.expectations.map((e) => e.kernel))];
    const analysis = analyzeObject(
      new Uint8Array(readFileSync(fixture.object)),
      fixture.object,
      kernels.map((version) => ({ version, jit: true })),
    );
    assert.equal(analysis.readable, true, analysis.report.problems.map((p) => p.message).join('; '));
    const mismatches: string[] = [];
    for (const expectation of fixture.expectations) {
      const program = analysis.report.programs.find((p) => p.name === expectation.program);
      if (!program) {
        mismatches.push(`${expectation.program}: no such program`);
        continue;
      }
      const where = `${expectation.program} on ${expectation.kernel}`;
      if (expectation.depths !== undefined && program.stackDepths !== expectation.depths) {
        mismatches.push(`${where}: stack depth ${program.stackDepths}, kernel says ${expectation.depths}`);
      }
      const verdict = program.verdicts.find((v) => v.kernel === expectation.kernel)!;
      const reported = verdict.violations.find((v) => v.reportedByKernel);
      if (verdict.accepted !== expectation.accepted) {
        mismatches.push(
          `${where}: ${verdict.accepted ? 'accepted' : `rejected (${reported?.message})`}, kernel says ${expectation.accepted ? 'accepted' : `rejected (${expectation.error})`}`,
        );
      } else if (!expectation.accepted && expectation.error !== undefined && reported?.message !== expectation.error) {
        mismatches.push(`${where}: "${reported?.message}", kernel says "${expectation.error}"`);
      }
    }
    assert.deepEqual(mismatches, []);
  });
}
