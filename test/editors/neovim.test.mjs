// A real LSP client other than our own: Neovim's built-in one (Debian's 0.7.2, `apt-get install
// neovim`), headless, on a copy of the seed with its object built by clang-19. Skips when either
// is missing. Run with `node --test test/editors/` after `npm run build`.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..');

function available(command, args) {
  try {
    execFileSync(command, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const skip = !available('nvim', ['--version'])
  ? 'nvim is not installed (apt-get install neovim)'
  : !available('clang-19', ['--version'])
    ? 'clang-19 is not installed'
    : false;

test('Neovim shows the tail-call diagnostic, hover and CodeLens', { skip, timeout: 60000 }, () => {
  const workspace = mkdtempSync(join(tmpdir(), 'bpf-stack-lens-nvim-'));
  try {
    const source = join(workspace, 'seed.bpf.c');
    copyFileSync(join(repo, 'examples', 'workspace', 'seed.bpf.c'), source);
    execFileSync('clang-19', ['-O2', '-g', '-target', 'bpf', '-I/usr/include/x86_64-linux-gnu', '-c', source, '-o', join(workspace, 'seed.bpf.o')]);
    const resultFile = join(workspace, 'result.json');
    const run = spawnSync('nvim', ['--headless', '--clean', '-c', `luafile ${join(here, 'neovim.lua')}`, source], {
      cwd: workspace,
      encoding: 'utf8',
      timeout: 45000,
      env: { ...process.env, BSL_NODE: process.execPath, BSL_BIN: join(repo, 'bin', 'bpf-stack-lens.js'), BSL_WORKSPACE: workspace, BSL_RESULT: resultFile },
    });
    const result = JSON.parse(readFileSync(resultFile, 'utf8'));
    assert.equal(result.diagnostics.length, 1, `${run.stdout}${run.stderr}`);
    const [diagnostic] = result.diagnostics;
    assert.equal(diagnostic.lnum, 82);
    assert.equal(diagnostic.source, 'bpf-stack-lens (object)');
    assert.match(diagnostic.message, /^tail_calls are not allowed when call stack of previous frames is 256 bytes\. Too large\nrejected on 6\.1; passes on 6\.18/);
    assert.match(result.hover, /\*\*entry\*\* — frame \*\*200 B\*\*/);
    assert.ok(result.lenses.includes('frame 200 B measured · 200 B estimated · 256 B at tail call (6.1, rejected) · 240 B (6.18)'), result.lenses.join('\n'));
  } finally {
    rmSync(workspace, { recursive: true, force: true });
  }
});
