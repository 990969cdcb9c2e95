/**
 * Globs from the workspace's settings, matched by picomatch. The settings file is the repository's
 * to write, so a pattern is bounded before it is compiled: a glob with many `**` segments costs
 * time exponential in them on a deep path (six of them on a 40-folder path took 25 s in the old
 * hand-written converter and still a quarter of a second per file in picomatch).
 */
import picomatch from 'picomatch';

/** Longer globs than this are refused; real ones are a few dozen characters. */
export const MAX_GLOB_LENGTH = 256;
/** At most this many `**` segments per glob: matching cost grows steeply with each (1.6 ms per path at 5). */
export const MAX_GLOBSTARS = 4;

export type GlobMatcher = (relativePath: string) => boolean;

/** A matcher for a glob over '/'-separated relative paths, or why the glob is refused. */
export function compileGlob(glob: string): { matcher: GlobMatcher } | { error: string } {
  if (glob.length === 0) return { error: 'an empty glob matches nothing' };
  if (glob.length > MAX_GLOB_LENGTH) return { error: `a glob of ${glob.length} characters is longer than the ${MAX_GLOB_LENGTH} allowed` };
  const globstars = glob.split('**').length - 1;
  if (globstars > MAX_GLOBSTARS) return { error: `${globstars} "**" segments are more than the ${MAX_GLOBSTARS} allowed` };
  try {
    const matcher = picomatch(glob, { dot: true, strictBrackets: true });
    return { matcher: (relativePath) => matcher(relativePath.split('\\').join('/')) };
  } catch (error) {
    return { error: (error as Error).message };
  }
}
