/**
 * What a test does when this machine lacks something it needs. On a developer machine it is skipped
 * and says what is missing; in CI (`CI=true`), where scripts/setup.sh has installed everything, a
 * missing piece is a broken set-up, so the test fails with the same reason instead of skipping.
 * Every skip in test/ goes through here.
 */

export const IN_CI = process.env.CI === 'true';

/** The part of node:test's context these helpers use (its class is not exported by @types/node 20.9). */
interface TestContext {
  skip(message?: string): void;
  diagnostic(message: string): void;
}

/** The error a test fails with in CI when it cannot set itself up. */
export class SetupError extends Error {
  constructor(reason: string) {
    super(`cannot set up in CI (CI=true): ${reason}`);
    this.name = 'SetupError';
  }
}

/**
 * For node:test's `skip` option: `reason` (a string saying what is missing) or false when nothing is.
 * In CI a reason throws at once, so the test file fails with it before any of its tests would skip.
 */
export function skipUnlessCI(reason: string | false | undefined | null): string | false {
  if (!reason) return false;
  if (IN_CI) throw new SetupError(reason);
  return reason;
}

/** Inside a running test: skips it with `reason`, or in CI fails it with that reason. */
export function skipOrFail(t: TestContext, reason: string): void {
  if (IN_CI) throw new SetupError(reason);
  t.skip(reason);
}

/** Inside a running test that checks what it can and leaves one part out: says so, or in CI fails. */
export function skipPartOrFail(t: TestContext, reason: string): void {
  if (IN_CI) throw new SetupError(reason);
  t.diagnostic(`skipped part: ${reason}`);
}
