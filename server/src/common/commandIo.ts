/**
 * What every command of the one binary shares, `lsp` included: where its output goes, and reading
 * the files named on its command line.
 */
import { readFileSync } from 'node:fs';

export interface CommandIo {
  stdout(text: string): void;
  stderr(text: string): void;
  version: string;
}

/** Reads a file, or says on stderr why it cannot and returns undefined. */
export function readInput(path: string, io: Pick<CommandIo, 'stderr'>): Uint8Array | undefined {
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
