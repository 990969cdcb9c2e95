/**
 * The skip rule itself: a test that cannot set itself up is skipped with its reason on a developer
 * machine, and fails with that reason in CI (`CI=true`), whether it says so in its options or
 * from inside the test.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const helpers = JSON.stringify(join(__dirname, 'unavailable.js'));
const CASES = {
  'options.test.js': `const { test } = require('node:test'); const { skipUnlessCI } = require(${helpers});
test('needs a tool', { skip: skipUnlessCI('frobnicate is not installed') }, () => {});`,
  'inside.test.js': `const { test } = require('node:test'); const { skipOrFail } = require(${helpers});
test('needs a tool', (t) => { skipOrFail(t, 'frobnicate is not installed'); });`,
};

function run(file: string, ci: boolean): { status: number | null; output: string } {
  const env = { ...process.env };
  delete env.CI;
  // Set by the runner for its own children: without removing it the inner run would report to this one.
  delete env.NODE_TEST_CONTEXT;
  if (ci) env.CI = 'true';
  const result = spawnSync(process.execPath, ['--test', file], { encoding: 'utf8', env });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

for (const [name, source] of Object.entries(CASES)) {
  test(`${name}: skipped with the reason outside CI, failed with it in CI`, () => {
    const folder = mkdtempSync(join(tmpdir(), 'bpf-stack-lens-skip-'));
    try {
      const file = join(folder, name);
      writeFileSync(file, source);
      const developer = run(file, false);
      assert.equal(developer.status, 0, developer.output);
      assert.match(developer.output, /# skipped 1/);
      assert.match(developer.output, /frobnicate is not installed/);
      const ci = run(file, true);
      assert.notEqual(ci.status, 0, ci.output);
      assert.match(ci.output, /cannot set up in CI \(CI=true\): frobnicate is not installed/);
      assert.doesNotMatch(ci.output, /# skipped [1-9]/);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
}
