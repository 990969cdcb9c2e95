// What the Neovim and Emacs tests share: the README's editor snippets (the tests run those very
// blocks, so the README cannot drift from what works), a copy of the seed with its object built by
// clang-19, and a home of their own for the editor, so that a user's config never takes part.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const repo = join(here, '..', '..');
/** The placeholder the README's snippets use for the clone. */
const CLONE_PLACEHOLDER = '/path/to/bpf-stack-lens';

/**
 * The fenced block of README.md whose first line is `firstLine` (such as `-- bpf-stack-lens for
 * Neovim 0.7`), with the clone's placeholder path replaced by this checkout's.
 */
export function readmeSnippet(firstLine) {
  const readme = readFileSync(join(repo, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/^```[a-z]*\n([\s\S]*?)^```$/gm)].map((match) => match[1]);
  const found = blocks.filter((block) => block.split('\n')[0] === firstLine);
  if (found.length !== 1) throw new Error(`README.md has ${found.length} blocks starting with "${firstLine}", not 1`);
  return found[0].split(CLONE_PLACEHOLDER).join(repo);
}

/**
 * A scratch folder with a copy of the seed and its object (the README's workspace layout: the
 * object next to the source) and an empty home for the editor. Returns their paths.
 */
export function seedProject(prefix) {
  const scratch = mkdtempSync(join(tmpdir(), prefix));
  const project = join(scratch, 'project');
  const home = join(scratch, 'home');
  mkdirSync(project);
  mkdirSync(home);
  const source = join(project, 'seed.bpf.c');
  copyFileSync(join(repo, 'examples', 'workspace', 'seed.bpf.c'), source);
  execFileSync('clang-19', ['-O2', '-g', '-target', 'bpf', '-I/usr/include/x86_64-linux-gnu', '-c', source, '-o', join(project, 'seed.bpf.o')]);
  return { scratch, project, home, source };
}

/** The environment for an editor started in `home`: its config, state and cache folders there. */
export function editorEnvironment(home, extra = {}) {
  return {
    ...process.env,
    HOME: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_DATA_HOME: join(home, '.local', 'share'),
    XDG_STATE_HOME: join(home, '.local', 'state'),
    XDG_CACHE_HOME: join(home, '.cache'),
    ...extra,
  };
}

/** The line (0-based) and column of the first occurrence of `text` in the seed. */
export function positionOf(sourceText, text) {
  const lines = sourceText.split('\n');
  const line = lines.findIndex((candidate) => candidate.includes(text));
  if (line < 0) throw new Error(`"${text}" is not in the seed`);
  return { line, character: lines[line].indexOf(text) };
}
