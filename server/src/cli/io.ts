/** What the commands share: where output goes, reading inputs, and kernel profiles from flags. */
import { readFileSync } from 'node:fs';
import { runningKernelProfile } from '../probe/runningKernel';
import { type KernelProfile, parseKernelProfiles } from '../rules/kernelProfile';
import { type ParsedArgs, UsageError } from './args';

export interface CommandIo {
  stdout(text: string): void;
  stderr(text: string): void;
  version: string;
}

/** Reads a file, or says on stderr why it cannot and returns undefined. */
export function readInput(path: string, io: CommandIo): Uint8Array | undefined {
  try {
    const buffer = readFileSync(path);
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : String(error);
    io.stderr(`bpf-stack-lens: ${path}: ${reason}\n`);
    return undefined;
  }
}

/** --kernel V[,V...] and --no-jit; without --kernel, the running kernel. */
export function profilesFromFlags(args: ParsedArgs, io: CommandIo): KernelProfile[] {
  const jit = !args.booleans.has('--no-jit');
  const versions = args.flags.get('--kernel');
  if (!versions) {
    const { profile, note } = runningKernelProfile();
    if (note) io.stderr(`bpf-stack-lens: ${note}\n`);
    return [{ ...profile, jit: jit && profile.jit }];
  }
  const { profiles, errors } = parseKernelProfiles(versions, jit);
  if (errors.length > 0) throw new UsageError(errors.join('; '));
  if (profiles.length === 0) throw new UsageError('--kernel needs at least one version');
  return profiles;
}

let stdoutClosed = false;
let stdoutWatched = false;

/**
 * Writes to the process's stdout. A reader that stops early (`check | head`) closes the pipe: like
 * any Unix tool the command then drops the rest of its output instead of crashing on EPIPE, and
 * still exits with its verdict.
 */
export function writeProcessStdout(text: string): void {
  if (!stdoutWatched) {
    stdoutWatched = true;
    process.stdout.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
      stdoutClosed = true;
    });
  }
  if (!stdoutClosed) process.stdout.write(text);
}
