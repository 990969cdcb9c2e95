/** File paths compared as the file system sees them. */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** An absolute path with symbolic links resolved where the file exists, so the two sides compare equal. */
export function resolvedPath(filePath: string): string {
  const absolute = path.resolve(filePath);
  try {
    return fs.realpathSync.native(absolute);
  } catch {
    return absolute;
  }
}
