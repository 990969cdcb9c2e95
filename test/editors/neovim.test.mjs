// Neovim, headless, with the README's own snippets as its init.lua (read from README.md, so the
// README shows what is tested): Debian 12's Neovim 0.7 (`apt-get install neovim`) with the 0.7
// snippet, and Debian 13's Neovim 0.10 (unpacked into .cache/editors/ by scripts/editors.sh) with the
// 0.10+ snippet. Each opens a copy of the seed next to its clang-19 object and must show what a user
// sees: the tail-call diagnostic for 6.1 (which only the snippet's settings ask for: the running
// kernel passes it), the hover on `entry`, and the CodeLens. Run with `node --test test/editors/`
// after `npm run build`. Skips on a developer machine without the tools; fails in CI.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { skipUnlessCI } from '../../out/test/support/unavailable.js';
import { editorTools, hasCommand } from './code-server-driver.mjs';
import { editorEnvironment, positionOf, readmeSnippet, repo, seedProject } from './lsp-clients.mjs';

const TAIL_CALL = /^tail_calls are not allowed when call stack of previous frames is 256 bytes\. Too large/;

/** Runs one Neovim on the seed with `snippet` as its init.lua; returns what the driver saw. */
function runNeovim(nvim, snippet) {
  const { scratch, project, home, source } = seedProject('bpf-stack-lens-nvim-');
  try {
    const init = join(home, '.config', 'nvim', 'init.lua');
    mkdirSync(join(home, '.config', 'nvim'), { recursive: true });
    writeFileSync(init, snippet);
    const hover = positionOf(readFileSync(source, 'utf8'), 'entry(');
    const resultFile = join(scratch, 'result.json');
    const run = spawnSync(nvim, ['--headless', '-u', init, '-c', `luafile ${join(repo, 'test', 'editors', 'neovim-driver.lua')}`, source], {
      cwd: project,
      encoding: 'utf8',
      timeout: 90000,
      env: editorEnvironment(home, { BSL_RESULT: resultFile, BSL_HOVER_LINE: String(hover.line), BSL_HOVER_CHARACTER: String(hover.character + 1) }),
    });
    const output = `${run.stdout}${run.stderr}${run.error ? String(run.error) : ''}`;
    assert.ok(existsSync(resultFile), `Neovim wrote no result:\n${output}`);
    if (process.env.BSL_DEBUG) console.error(readFileSync(resultFile, 'utf8'), output);
    return {
      result: JSON.parse(readFileSync(resultFile, 'utf8')),
      output,
      project,
      tailCallLine: positionOf(readFileSync(source, 'utf8'), 'bpf_tail_call(').line,
    };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** What every Neovim must show on the seed. */
function assertSeenOnSeed({ result, output, project, tailCallLine }) {
  assert.doesNotMatch(output, /Error detected|\bE\d{2,4}:/, 'Neovim reported no error');
  assert.deepEqual(
    result.clients.map((client) => client.name),
    ['bpf-stack-lens'],
    `one client on the buffer\n${output}`,
  );
  assert.equal(result.clients[0].root, project, 'the root is the project folder');
  const atTailCall = result.diagnostics.filter((diagnostic) => diagnostic.lnum === tailCallLine && TAIL_CALL.test(diagnostic.message));
  assert.equal(atTailCall.length, 1, `the tail-call diagnostic, once: ${JSON.stringify(result.diagnostics, null, 1)}\n${output}`);
  assert.equal(atTailCall[0].severity, 1, 'an error');
  assert.match(atTailCall[0].message, /rejected on 6\.1/);
  assert.match(String(result.hover), /\*\*entry\*\*.*200 B/);
  assert.ok(
    result.lenses.some((lens) => lens.title === 'frame 200 B · tail call at 256 B: rejected on 6.1 · 240 B: passes on 6.18'),
    `a lens with entry's frame and the tail call's bytes per kernel: ${JSON.stringify(result.lenses)}`,
  );
  // A typed line makes the object stale (one diagnostic, which says so); the undo makes it fresh again.
  assert.equal(result.edited.length, 1, `one diagnostic while edited: ${JSON.stringify(result.edited, null, 1)}`);
  assert.match(result.edited[0].message, /stale/);
  assert.equal(result.modified, false, 'the undo left the buffer unmodified');
  assert.equal(result.undone.length, 1, `one diagnostic after the undo: ${JSON.stringify(result.undone, null, 1)}`);
  assert.equal(result.undone[0].severity, 1, 'an error again');
  assert.equal(result.undone[0].lnum, tailCallLine);
  assert.doesNotMatch(result.undone[0].message, /stale|unsaved/);
}

const clang = hasCommand('clang-19') ? false : 'clang-19 is not installed (bash scripts/setup.sh)';

test(
  'Neovim 0.7 with the README snippet: diagnostic, hover and CodeLens on the seed',
  {
    skip: skipUnlessCI(clang || (!hasCommand('nvim') && 'nvim is not installed (bash scripts/setup.sh)')),
    timeout: 120000,
  },
  () => {
    const version = execFileSync('nvim', ['--version'], { encoding: 'utf8' }).split('\n')[0];
    assert.match(version, /^NVIM v0\.7\./, "the system Neovim is Debian 12's 0.7");
    const seen = runNeovim('nvim', readmeSnippet('-- bpf-stack-lens for Neovim 0.7'));
    assert.match(seen.result.version, /^0\.7\./);
    assertSeenOnSeed(seen);
  },
);

function currentNeovim() {
  const { tools, reason } = editorTools();
  if (reason) return { reason };
  if (!tools.nvimCurrent) return { reason: 'Neovim 0.10 is not in .cache/editors (bash scripts/editors.sh)' };
  return { nvim: tools.nvimCurrent };
}
const current = clang ? { reason: clang } : currentNeovim();

test('Neovim 0.10+ with the README snippet: diagnostic, hover and CodeLens on the seed', { skip: skipUnlessCI(current.reason), timeout: 120000 }, () => {
  const seen = runNeovim(current.nvim, readmeSnippet('-- bpf-stack-lens for Neovim 0.10+'));
  assert.match(seen.result.version, /^0\.(1\d|[2-9]\d)\./, `Neovim 0.10 or later, not ${seen.result.version}`);
  assertSeenOnSeed(seen);
});
