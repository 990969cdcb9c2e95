/**
 * clang's own headers (stddef.h, stdbool.h, stdarg.h, limits.h...) live in its resource directory,
 * not in /usr/include: `clang -target bpf` searches /usr/local/include, <resource dir>/include, then
 * /usr/include. Without it every glibc header that needs size_t breaks. The directory is found on
 * disk rather than by running clang, so that loading the estimator costs a few stats: the clang the
 * project targets (19) first, else the newest installed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The clang major version bpf-stack-lens is measured against. */
const PREFERRED_CLANG_MAJOR = 19;

/** Folders holding one folder per clang version, each with an include/ inside (Debian's llvm-N layout apart). */
const VERSION_PARENTS = ['/usr/lib/clang', '/usr/local/lib/clang', '/usr/lib64/clang'];

function subdirectories(directory: string): string[] {
  try {
    return fs
      .readdirSync(directory, { withFileTypes: true })
      .filter((entry) => entry.isDirectory() || entry.isSymbolicLink())
      .map((entry) => entry.name);
  } catch {
    return [];
  }
}

/** Every `<resource dir>/include` with stddef.h in it, with the clang major version it belongs to. */
function installedResourceIncludes(): { major: number; directory: string }[] {
  const found: { major: number; directory: string }[] = [];
  const add = (major: number, directory: string) => {
    if (Number.isFinite(major) && fs.existsSync(path.join(directory, 'stddef.h'))) found.push({ major, directory });
  };
  // Debian and Ubuntu: /usr/lib/llvm-19/lib/clang/19/include.
  for (const name of subdirectories('/usr/lib')) {
    const match = /^llvm-(\d+)$/.exec(name);
    if (!match) continue;
    for (const version of subdirectories(path.join('/usr/lib', name, 'lib', 'clang')))
      add(Number(match[1]), path.join('/usr/lib', name, 'lib', 'clang', version, 'include'));
  }
  for (const parent of VERSION_PARENTS) for (const version of subdirectories(parent)) add(Number.parseInt(version, 10), path.join(parent, version, 'include'));
  return found;
}

let cached: string | undefined | null = null;

/** clang's resource include directory, preferring clang 19; undefined when no clang is installed. */
export function clangResourceIncludeDir(): string | undefined {
  if (cached !== null) return cached;
  const installed = installedResourceIncludes();
  installed.sort((a, b) => Number(b.major === PREFERRED_CLANG_MAJOR) - Number(a.major === PREFERRED_CLANG_MAJOR) || b.major - a.major);
  cached = installed[0]?.directory;
  return cached;
}
