/**
 * Where the external tools we run (bpftool) are. A repository can put `./bpftool` in itself, and a
 * PATH with `.` or an empty entry (which means the current directory) would run it, then cache its
 * output machine-wide as the running kernel's vmlinux.h. So a tool is looked for only in absolute
 * PATH entries outside the current directory, then in the usual system folders; an environment
 * variable (BPF_STACK_LENS_BPFTOOL for bpftool) names it explicitly. The result carries the tool's
 * real path and version, for keying whatever is cached from its output.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export type ResolvedTool = { path: string; version: string } | { reason: string };

const SYSTEM_FOLDERS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
const resolved = new Map<string, ResolvedTool>();

/** The tool's absolute real path and its `--version` line, or why it cannot be used. */
export function resolveTool(name: string, environment: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): ResolvedTool {
  const explicit = environment[`BPF_STACK_LENS_${name.toUpperCase()}`];
  const candidates = explicit ? [explicit] : searchPath(name, environment.PATH ?? '', cwd);
  if (explicit && !path.isAbsolute(explicit)) return { reason: `BPF_STACK_LENS_${name.toUpperCase()} must be an absolute path, not ${explicit}` };
  for (const candidate of candidates) {
    let real: string;
    try {
      real = fs.realpathSync.native(candidate);
      fs.accessSync(real, fs.constants.X_OK);
      if (!fs.statSync(real).isFile()) continue;
    } catch {
      continue;
    }
    if (!explicit && isInside(real, cwd)) continue;
    const stat = fs.statSync(real);
    const key = `${real}\0${stat.size}\0${stat.mtimeMs}`;
    const known = resolved.get(key);
    if (known) return known;
    const result = { path: real, version: versionOf(real) };
    resolved.set(key, result);
    return result;
  }
  return { reason: `${name} is not installed (looked in absolute PATH entries outside ${cwd} and ${SYSTEM_FOLDERS.join(', ')})` };
}

/** PATH's absolute entries that are not the current directory or under it, then the system folders. */
function searchPath(name: string, pathVariable: string, cwd: string): string[] {
  const folders = pathVariable.split(path.delimiter).filter((entry) => entry !== '' && path.isAbsolute(entry) && !isInside(path.resolve(entry), cwd));
  return [...new Set([...folders, ...SYSTEM_FOLDERS])].map((folder) => path.join(folder, name));
}

function versionOf(tool: string): string {
  try {
    const output = execFileSync(tool, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000, cwd: '/' });
    return output.split('\n')[0].trim();
  } catch {
    return 'unknown version';
  }
}

function isInside(file: string, folder: string): boolean {
  let real = folder;
  try {
    real = fs.realpathSync.native(folder);
  } catch {
    // An unreadable folder is compared as spelled.
  }
  const relative = path.relative(real, file);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}
