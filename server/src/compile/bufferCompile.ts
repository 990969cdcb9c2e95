/**
 * The background compile of a buffer: the text as the editor has it (unsaved edits included),
 * compiled by clang to a private object and measured by the object analyzer, so that exact numbers
 * replace the estimate within seconds of a pause in typing. The CLI's `estimate --compile` and the
 * language server share it.
 *
 * The text goes to a private temporary directory (mode 0700, outside any workspace), never next to
 * the user's files; the file's own directory is added to the quote-include path, so `#include "x.h"`
 * resolves as it would beside the file, and -ffile-prefix-map makes the object's line info name the
 * real file. The compiler is one the user chose (a setting) or found on PATH, always an absolute path
 * outside every workspace folder, and only the safe subset of recorded flags reaches it
 * (compileFlags.ts).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Problem } from '../common/problem';
import { analyzeObject } from '../object/analyzeObject';
import type { ProgramReport } from '../rules/report';
import type { KernelProfile } from '../rules/kernelProfile';

/** Compiler names tried on PATH when no setting names one, newest first after the unversioned name. */
const CLANG_NAMES = ['clang', ...Array.from({ length: 10 }, (_, index) => `clang-${21 - index}`)];
/** How much of clang's stderr a failure keeps. */
const MAX_STDERR_CHARS = 4000;

export interface ClangChoice {
  clang?: string;
  /** Why no compiler could be used ("… is inside the workspace"). */
  problem?: string;
}

/**
 * The compiler for buffer compiles: `setting` (an absolute path, or a name looked up on PATH) or the
 * first clang on PATH, as a real absolute path; refused when it lies inside one of `workspaceRoots`,
 * since a compiler the workspace ships would be code from the workspace. Relative PATH entries are
 * skipped for the same reason.
 */
export function resolveClang(setting: string, workspaceRoots: readonly string[], searchPath = process.env.PATH ?? ''): ClangChoice {
  const names = setting ? [setting] : CLANG_NAMES;
  const directories = searchPath.split(path.delimiter).filter((directory) => path.isAbsolute(directory));
  const roots = workspaceRoots.map(realOrSelf);
  for (const name of names) {
    const candidates = path.isAbsolute(name) ? [name] : name.includes('/') ? [] : directories.map((directory) => path.join(directory, name));
    for (const candidate of candidates) {
      if (!isExecutableFile(candidate)) continue;
      const real = realOrSelf(candidate);
      const root = roots.find((workspaceRoot) => real === workspaceRoot || real.startsWith(`${workspaceRoot}${path.sep}`));
      if (root) return { problem: `${candidate} is inside the workspace ${root}; a compiler from the workspace is never run` };
      return { clang: real };
    }
  }
  return {
    problem: setting ? `${setting}: no such compiler (bpfStackLens.bufferCompile.clang must be an absolute path or a name on PATH)` : 'no clang on PATH',
  };
}

export interface BufferCompileRequest {
  /** The absolute path of the file the buffer belongs to. */
  file: string;
  text: string;
  /** The safe flags (safeCompileFlags), in order. */
  flags: readonly string[];
  /** The compiler, as resolveClang chose it. */
  clang: string;
  profiles: KernelProfile[];
  /** Aborting kills clang and resolves with `cancelled`. */
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Called once when the compile has run `slowAfterMs` without finishing, for a progress report. */
  onSlow?: () => void;
  slowAfterMs?: number;
}

export type BufferCompileResult =
  | { kind: 'compiled'; programs: ProgramReport[]; problems: Problem[]; milliseconds: number }
  /** clang rejected the buffer (its errors are the C language server's to show) or could not run. */
  | { kind: 'failed'; message: string }
  | { kind: 'cancelled' }
  | { kind: 'timed out'; timeoutMs: number };

/** The command line for a buffer compile: the safe flags, then what the object analyzer needs (BPF, BTF line info, an object). */
export function bufferCompileArguments(file: string, flags: readonly string[], privateSource: string, object: string): string[] {
  const targetsBpf = flags.some((flag, index) => (flags[index - 1] === '-target' && /bpf/.test(flag)) || /^--target=bpf/.test(flag));
  const optimizes = flags.some((flag) => flag.startsWith('-O'));
  return [
    ...flags,
    ...(targetsBpf ? [] : ['-target', 'bpf']),
    ...(optimizes ? [] : ['-O2']),
    '-g',
    '-iquote',
    path.dirname(file),
    `-ffile-prefix-map=${path.dirname(privateSource)}=${path.dirname(file)}`,
    '-c',
    privateSource,
    '-o',
    object,
  ];
}

/** Compiles the buffer and analyses the object; never throws. */
export async function compileBuffer(request: BufferCompileRequest): Promise<BufferCompileResult> {
  const started = Date.now();
  let directory: string | undefined;
  try {
    directory = fs.mkdtempSync(path.join(os.tmpdir(), 'bpf-stack-lens-compile-'));
    const privateSource = path.join(directory, path.basename(request.file));
    const object = path.join(directory, 'buffer.o');
    fs.writeFileSync(privateSource, request.text, { mode: 0o600 });
    const outcome = await runClang(request, bufferCompileArguments(request.file, request.flags, privateSource, object), directory);
    if (outcome.kind !== 'exited') return outcome;
    if (outcome.code !== 0) return { kind: 'failed', message: outcome.stderr.trim() || `${request.clang} exited with ${outcome.code}` };
    const buffer = fs.readFileSync(object);
    const analysis = analyzeObject(new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength), request.file, request.profiles);
    if (!analysis.readable) return { kind: 'failed', message: analysis.report.problems.map((problem) => problem.message).join('; ') };
    return { kind: 'compiled', programs: analysis.report.programs, problems: analysis.report.problems, milliseconds: Date.now() - started };
  } catch (error) {
    return { kind: 'failed', message: `cannot compile the buffer: ${(error as Error).message}` };
  } finally {
    if (directory) fs.rmSync(directory, { recursive: true, force: true });
  }
}

type ClangOutcome =
  { kind: 'exited'; code: number; stderr: string } | { kind: 'failed'; message: string } | { kind: 'cancelled' } | { kind: 'timed out'; timeoutMs: number };

function runClang(request: BufferCompileRequest, args: string[], directory: string): Promise<ClangOutcome> {
  return new Promise((resolve) => {
    if (request.signal?.aborted) return resolve({ kind: 'cancelled' });
    const child = spawn(request.clang, args, { cwd: directory, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let ended: ClangOutcome | undefined;
    const end = (outcome: ClangOutcome) => {
      if (ended) return;
      ended = outcome;
      clearTimeout(slowTimer);
      clearTimeout(timeoutTimer);
      request.signal?.removeEventListener('abort', abort);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      // Wait for the process to be gone before the caller removes its directory ('exit', not 'close':
      // a grandchild may hold stderr open after the compiler itself is dead).
      if (child.exitCode === null && child.signalCode === null) child.once('exit', () => resolve(outcome));
      else resolve(outcome);
    };
    const abort = () => end({ kind: 'cancelled' });
    request.signal?.addEventListener('abort', abort);
    const slowTimer = request.onSlow ? setTimeout(request.onSlow, request.slowAfterMs ?? 1000) : undefined;
    const timeoutTimer = request.timeoutMs ? setTimeout(() => end({ kind: 'timed out', timeoutMs: request.timeoutMs ?? 0 }), request.timeoutMs) : undefined;
    child.stderr?.on('data', (chunk) => {
      if (stderr.length < MAX_STDERR_CHARS) stderr += String(chunk);
    });
    child.on('error', (error) => end({ kind: 'failed', message: `cannot run ${request.clang}: ${error.message}` }));
    child.on('close', (code) => end({ kind: 'exited', code: code ?? 1, stderr: stderr.slice(0, MAX_STDERR_CHARS) }));
  });
}

function isExecutableFile(candidate: string): boolean {
  try {
    fs.accessSync(candidate, fs.constants.X_OK);
    return fs.statSync(candidate).isFile();
  } catch {
    return false;
  }
}

function realOrSelf(file: string): string {
  try {
    return fs.realpathSync(file);
  } catch {
    return path.resolve(file);
  }
}
