/**
 * Holds the analyzer's prediction for the running kernel (its probed rules) to that kernel's real
 * verifier, program by program: verdict, error line and "stack depth" line, word for word; the
 * EXPECT depths of the running version to what the kernel prints; and the committed fixture objects
 * to their sources. Where bpf() is refused the kernel tests skip and say why; where
 * clang-19 is missing the object check skips. A malformed header always fails.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { test } from 'node:test';

import { analyzeObject } from '../server/src/object/analyzeObject';
import { runningKernelProfile } from '../server/src/probe/runningKernel';
import type { KernelProfile } from '../server/src/rules/kernelProfile';
import { type Fixture, fixtureObjectExists, fixturesDirectory, listFixtures } from './support/fixtures';
import { kernelVerifierAvailable, repositoryRoot, runningKernelVersion, verifyProgram } from './support/kernel';
import { skipOrFail } from './support/unavailable';

/** The kernel whose lines are measured rather than derived; every program must have one. */
const REFERENCE_KERNEL = '6.18';

let fixtures: Fixture[] = [];
let headerError: unknown;
try {
  fixtures = listFixtures();
} catch (error) {
  headerError = error;
}

test('fixture headers parse and every program has a measured line', () => {
  if (headerError !== undefined) throw headerError;
  assert.ok(fixtures.length >= 20, `expected at least 20 fixtures, found ${fixtures.length}`);
  for (const fixture of fixtures) {
    assert.ok(fixtureObjectExists(fixture), `${basename(fixture.object)} is missing: run scripts/build-fixtures.sh`);
    const programs = new Set(fixture.expectations.map((expectation) => expectation.program));
    for (const program of programs) {
      const measured = fixture.expectations.find((expectation) => expectation.program === program && expectation.kernel === REFERENCE_KERNEL);
      assert.ok(measured, `${basename(fixture.source)}: prog=${program} has no kernel=${REFERENCE_KERNEL} line`);
      assert.ok(measured.depths, `${basename(fixture.source)}: prog=${program} kernel=${REFERENCE_KERNEL} has no depths`);
    }
  }
});

const runningKernel = runningKernelVersion();

/**
 * The analyzer's prediction for the running kernel, with the rules its probe measured (two builds
 * that both call themselves 6.18.44 give kprobes different private-stack rules, so no committed line
 * can say what this build does). Computed once: the probe loads a handful of tiny programs.
 */
let runningProfile: KernelProfile | undefined;
function runningKernelPrediction(): KernelProfile {
  runningProfile ??= runningKernelProfile().profile;
  return runningProfile;
}

for (const fixture of fixtures) {
  test(`the running kernel (${release()}) and the analyzer agree on ${basename(fixture.source)}`, async (t) => {
    const availability = kernelVerifierAvailable();
    if (!availability.available) {
      skipOrFail(t, availability.reason ?? 'the kernel verifier is not available');
      return;
    }
    const profile = runningKernelPrediction();
    // Where bpf() works the probe works too; an unprobed profile would hold the analyzer to a guess.
    assert.equal(profile.unprobed, undefined, `the running kernel was not probed: ${profile.unprobed?.join('; ')}`);
    const { report } = analyzeObject(new Uint8Array(readFileSync(fixture.object)), fixture.object, [profile]);
    const programs = [...new Set(fixture.expectations.map((expectation) => expectation.program))];
    for (const program of programs) {
      await t.test(program, () => {
        const kernel = verifyProgram(fixture.object, program);
        const ours = report.programs.find((candidate) => candidate.name === program);
        assert.ok(ours, `the analyzer does not report ${program}`);
        const verdict = ours.verdicts[0];
        const violation = verdict.violations.find((candidate) => candidate.reportedByKernel) ?? verdict.violations[0];
        assert.deepEqual(
          {
            accepted: verdict.accepted,
            // The kernel's error line carries nothing after the message the analyzer predicts.
            error: verdict.accepted ? undefined : violation?.message,
            line: verdict.stackDepthLine,
          },
          {
            accepted: kernel.accepted,
            error: kernel.error,
            line: kernel.stackDepths === undefined ? undefined : `stack depth ${kernel.stackDepths}`,
          },
          `verifier log:\n${kernel.log}`,
        );
        // The per-subprogram depths are a fact of the version, shared by its builds: the EXPECT line holds them.
        for (const expected of fixture.expectations.filter((line) => line.program === program && line.kernel === runningKernel)) {
          if (expected.depths !== undefined) assert.equal(kernel.stackDepths, expected.depths, `EXPECT prog=${program} kernel=${runningKernel} depths`);
        }
      });
    }
  });
}

function commandWorks(command: string): boolean {
  const run = spawnSync(command, ['--version'], { encoding: 'utf8' });
  return run.status === 0;
}

/**
 * The instructions and relocations of every section, as llvm-objdump prints them with raw bytes,
 * with the object's own path removed. Debug sections are left out on purpose: they carry build paths.
 */
function disassembly(objectPath: string): string {
  const run = spawnSync('llvm-objdump-19', ['-d', '-r', objectPath], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (run.status !== 0) throw new Error(`llvm-objdump-19 failed on ${objectPath}: ${run.stderr}`);
  return run.stdout.split(objectPath).join(basename(objectPath));
}

test('committed fixture objects are up to date with their sources', (t) => {
  if (headerError !== undefined) throw headerError;
  if (!commandWorks('clang-19') || !commandWorks('llvm-objdump-19')) {
    skipOrFail(t, 'clang-19 or llvm-objdump-19 is not installed');
    return;
  }
  const scratch = mkdtempSync(join(tmpdir(), 'bpf-stack-lens-fixtures-'));
  try {
    const build = spawnSync('bash', [join(repositoryRoot(), 'scripts', 'build-fixtures.sh'), scratch], {
      encoding: 'utf8',
    });
    assert.equal(build.status, 0, `scripts/build-fixtures.sh failed:\n${build.stderr}`);
    const stale: string[] = [];
    for (const fixture of fixtures) {
      const name = basename(fixture.object);
      const rebuilt = join(scratch, name);
      if (!existsSync(fixture.object) || disassembly(fixture.object) !== disassembly(rebuilt)) {
        stale.push(name);
      }
      // The .su files carry line numbers: a header edited without a rebuild shows up here.
      const usage = fixture.object.replace(/\.o$/, '.su');
      const rebuiltUsage = rebuilt.replace(/\.o$/, '.su');
      if (!existsSync(usage) || readFileSync(usage, 'utf8') !== readFileSync(rebuiltUsage, 'utf8')) {
        stale.push(basename(usage));
      }
    }
    const extra = readdirSync(fixturesDirectory()).filter(
      (file) => /\.bpf\.(o|su)$/.test(file) && !existsSync(join(fixturesDirectory(), file.replace(/\.(o|su)$/, '.c'))),
    );
    assert.deepEqual(extra, [], 'objects without a source: delete them');
    assert.deepEqual(stale, [], 'stale fixture builds: run scripts/build-fixtures.sh and commit the results');
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
});
