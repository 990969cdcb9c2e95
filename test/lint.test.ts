/**
 * The repository passes its linter and its formatter, as `npm run lint` checks them: ESLint with
 * eslint.config.mjs, and Prettier with .prettierrc.json over what .prettierignore leaves. Both
 * configs say which files they cover, so this test names none. A failure lists every offending
 * file; `npm run format` rewrites the ones Prettier names. Without the tools installed (no
 * `npm ci`) the test skips, and in CI it fails instead.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { test } from 'node:test';

import { repositoryRoot } from './support/kernel';
import { skipUnlessCI } from './support/unavailable';

const root = repositoryRoot();

interface ToolRun {
  /** The exit code, or undefined when the tool could not be started at all. */
  code: number | undefined;
  stdout: string;
  stderr: string;
}

/** The command-line script of an installed package (its package.json "bin"), or undefined. */
function commandOf(packageName: string): string | undefined {
  let manifestPath: string;
  try {
    manifestPath = require.resolve(`${packageName}/package.json`, { paths: [root] });
  } catch {
    return undefined;
  }
  const { bin } = JSON.parse(readFileSync(manifestPath, 'utf8')) as { bin: string | Record<string, string> };
  return join(dirname(manifestPath), typeof bin === 'string' ? bin : bin[packageName]);
}

function runTool(command: string, args: string[]): Promise<ToolRun> {
  return new Promise((resolve) => {
    execFile(process.execPath, [command, ...args], { cwd: root, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : undefined;
      resolve({ code, stdout, stderr: code === undefined ? `${stderr}${error?.message ?? ''}` : stderr });
    });
  });
}

const eslint = commandOf('eslint');
const prettier = commandOf('prettier');
// Both start now, side by side: each takes several seconds and they use one core each. Their caches
// (as npm run lint keeps them) are keyed on each file's content and the config, so a second run
// looks again only at what changed.
const eslintRun = eslint ? runTool(eslint, ['--cache', '--cache-location', 'node_modules/.cache/eslint/', '--format', 'json', '.']) : undefined;
const prettierRun = prettier ? runTool(prettier, ['--list-different', '--cache', '.']) : undefined;

/** ESLint's JSON report, the part read here. */
interface LintResult {
  filePath: string;
  messages: { ruleId: string | null; line?: number; column?: number; message: string }[];
}

test('ESLint finds no problem', { skip: skipUnlessCI(!eslint && 'eslint is not installed (run npm ci)') }, async () => {
  const run = await eslintRun!;
  // Exit 2 (or no start at all) is ESLint failing to run: a broken config, a crash.
  assert.ok(run.code === 0 || run.code === 1, `eslint did not run (exit ${run.code}):\n${run.stderr}`);
  const results = JSON.parse(run.stdout) as LintResult[];
  const problems = results.flatMap((result) =>
    result.messages.map((message) => {
      const where = `${relative(root, result.filePath)}:${message.line ?? 0}:${message.column ?? 0}`;
      return `${where} ${message.ruleId ?? 'error'}: ${message.message}`;
    }),
  );
  const files = results.filter((result) => result.messages.length > 0).length;
  if (problems.length > 0) assert.fail(`ESLint finds ${problems.length} problem(s) in ${files} file(s):\n  ${problems.join('\n  ')}\n${run.stderr}`);
  assert.equal(run.code, 0, run.stderr);
});

test('Prettier would change no file', { skip: skipUnlessCI(!prettier && 'prettier is not installed (run npm ci)') }, async () => {
  const run = await prettierRun!;
  // --list-different exits 1 when it names files, 2 when it cannot run (a bad config or pattern).
  assert.ok(run.code === 0 || run.code === 1, `prettier did not run (exit ${run.code}):\n${run.stderr}`);
  const files = run.stdout.split('\n').filter((line) => line.length > 0);
  if (files.length > 0) assert.fail(`Prettier would reformat ${files.length} file(s); npm run format rewrites them:\n  ${files.join('\n  ')}\n${run.stderr}`);
  assert.equal(run.code, 0, run.stderr);
});
