/**
 * Finds files that ship beside the compiled code. tsc copies neither the tree-sitter queries nor the
 * grammar's wasm into out/, and a bundle puts the code somewhere else again, so paths are resolved
 * from the package root (the nearest folder with a package.json) rather than from __dirname.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

let cachedRoot: string | undefined;

export function packageRoot(): string {
  if (cachedRoot !== undefined) return cachedRoot;
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'grammars'))) {
      cachedRoot = dir;
      return dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  // Nothing found: fall back to the layout of the source tree (server/src/source → root).
  cachedRoot = path.resolve(__dirname, '..', '..', '..');
  return cachedRoot;
}

/** Path of a file that ships with the package, such as `grammars/tree-sitter-c.wasm`. */
export function packageFile(...segments: string[]): string {
  return path.join(packageRoot(), ...segments);
}
