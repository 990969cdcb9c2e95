// Emacs, headless (`emacs --batch`), with the README's eglot snippet as its init file (read from
// README.md, so the README shows what is tested): Debian 12's Emacs 28 and elpa-eglot 1.9. It opens
// a copy of the seed next to its clang-19 object and must show what a user sees: eglot connected,
// the tail-call error for 6.1 in flymake (which only the snippet's eglot-workspace-configuration
// asks for: the running kernel passes it), the hover on `entry`, and no eglot warning. Run with
// `node --test test/editors/` after `npm run build`. Skips on a developer machine without the
// tools; fails in CI.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { skipUnlessCI } from '../../out/test/support/unavailable.js';
import { hasCommand } from './code-server-driver.mjs';
import { editorEnvironment, positionOf, readmeSnippet, repo, seedProject } from './lsp-clients.mjs';

const eglotInstalled = () => spawnSync('emacs', ['--batch', '--eval', "(require 'eglot)"], { stdio: 'ignore' }).status === 0;
const skip = skipUnlessCI(
  !hasCommand('clang-19')
    ? 'clang-19 is not installed (bash scripts/setup.sh)'
    : !hasCommand('emacs')
      ? 'emacs is not installed (bash scripts/setup.sh)'
      : !eglotInstalled() && 'eglot is not installed (apt-get install elpa-eglot, or bash scripts/setup.sh)',
);

test(
  'Emacs eglot with the README snippet: diagnostic and hover on the seed, no warning; fresh after a change on disk and a rebuild',
  { skip, timeout: 120000 },
  () => {
    const { scratch, project, home, source } = seedProject('bpf-stack-lens-emacs-');
    // Read before Emacs runs: the driver rewrites the file on disk.
    const tailCallLine = positionOf(readFileSync(source, 'utf8'), 'bpf_tail_call(').line + 1;
    try {
      const init = join(home, 'init.el');
      writeFileSync(init, readmeSnippet(';; bpf-stack-lens for Emacs eglot'));
      const resultFile = join(scratch, 'result.json');
      const run = spawnSync('emacs', ['--batch', '-l', init, '-l', join(repo, 'test', 'editors', 'emacs-driver.el')], {
        cwd: project,
        encoding: 'utf8',
        timeout: 90000,
        env: editorEnvironment(home, { BSL_SOURCE: source, BSL_RESULT: resultFile }),
      });
      const output = `${run.stdout}${run.stderr}${run.error ? String(run.error) : ''}`;
      assert.ok(existsSync(resultFile), `Emacs wrote no result:\n${output}`);
      const result = JSON.parse(readFileSync(resultFile, 'utf8'));
      if (process.env.BSL_DEBUG) console.error(result, output);
      assert.match(result.emacs, /^28\./, "Debian 12's Emacs 28");
      assert.equal(result.server, 'bpf-stack-lens', `eglot connected to bpf-stack-lens\n${output}`);
      assert.equal(result.root.replace(/\/$/, ''), project);
      assert.doesNotMatch(output, /Warning \(eglot\)|unsupported capability|Server died/, 'eglot warned about nothing');
      const atTailCall = result.diagnostics.filter(
        (diagnostic) =>
          diagnostic.line === tailCallLine &&
          diagnostic.message.includes('tail_calls are not allowed when call stack of previous frames is 256 bytes. Too large'),
      );
      assert.equal(atTailCall.length, 1, `the tail-call diagnostic, once: ${JSON.stringify(result.diagnostics, null, 1)}\n${output}`);
      assert.equal(atTailCall[0].type, 'eglot-error');
      assert.match(atTailCall[0].message, /rejected on 6\.1/);
      assert.match(String(result.hover), /\*\*entry\*\*.*200 B/);
      // A line added on disk, the buffer reverted, the object rebuilt: one fresh error, a line lower.
      const rebuilt = result.rebuilt.filter((diagnostic) => diagnostic.message.includes('[tail-call-depth]'));
      assert.equal(rebuilt.length, 1, `one tail-call diagnostic after the rebuild: ${JSON.stringify(result.rebuilt, null, 1)}\n${output}`);
      assert.equal(rebuilt[0].line, tailCallLine + 1);
      assert.equal(rebuilt[0].type, 'eglot-error');
      assert.doesNotMatch(rebuilt[0].message, /stale|unsaved/);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  },
);
