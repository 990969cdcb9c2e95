/**
 * The kernel harness: loads one program of a BPF object into the running kernel through
 * test/kernel/verifier-probe.c and reports what the real verifier said, so fixtures can hold their
 * EXPECT comments to the kernel rather than to our own reading of verifier.c.
 *
 * The probe is compiled on first use into /work/main/.cache (git-ignored), under a name derived from
 * its source and the compiler command, so an edited probe is rebuilt and concurrent test runs never
 * see a half-written binary.
 */

import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { release } from 'node:os';
import { dirname, join, resolve } from 'node:path';

export interface KernelAvailability {
  available: boolean;
  /** Why the verifier cannot be used here, in words fit for a skipped test's message. */
  reason?: string;
}

export interface VerifierVerdict {
  accepted: boolean;
  /** The verifier's own "stack depth" line without its prefix, e.g. "200+144+0". */
  stackDepths?: string;
  /** The verifier's error line when the program was rejected. */
  error?: string;
  /** The whole verifier log (log level 4: errors and statistics). */
  log: string;
}

/** The repository root: the nearest folder above this file that holds the probe's source. */
export function repositoryRoot(): string {
  let folder = __dirname;
  for (;;) {
    if (existsSync(join(folder, 'test', 'kernel', 'verifier-probe.c')) && existsSync(join(folder, 'package.json'))) {
      return folder;
    }
    const parent = dirname(folder);
    if (parent === folder) throw new Error(`cannot find test/kernel/verifier-probe.c above ${__dirname}`);
    folder = parent;
  }
}

/** "6.18" for the running kernel, the form fixtures use in `kernel=`. */
export function runningKernelVersion(): string {
  const match = /^(\d+)\.(\d+)/.exec(release());
  return match ? `${match[1]}.${match[2]}` : release();
}

/*
 * Dynamic libbpf first; the static archive is the fallback for machines that ship libbpf.a but not
 * the development symlink libbpf.so.
 */
const LINK_VARIANTS: readonly (readonly string[])[] = [['-lbpf'], ['/usr/lib/x86_64-linux-gnu/libbpf.a', '-lelf', '-lz']];

let cachedProbe: { path?: string; reason?: string } | undefined;

/** Compiles the probe if needed; returns its path, or why it could not be built. */
export function probeBinary(): { path?: string; reason?: string } {
  if (cachedProbe) return cachedProbe;
  const root = repositoryRoot();
  const sourcePath = join(root, 'test', 'kernel', 'verifier-probe.c');
  const source = readFileSync(sourcePath, 'utf8');
  const cacheDir = join(root, '.cache');
  const failures: string[] = [];
  for (const link of LINK_VARIANTS) {
    const hash = createHash('sha256').update(source).update(link.join(' ')).digest('hex').slice(0, 16);
    const binary = join(cacheDir, `verifier-probe-${hash}`);
    if (existsSync(binary)) return (cachedProbe = { path: binary });
    mkdirSync(cacheDir, { recursive: true });
    // Build beside the final name and rename: a concurrent run sees either nothing or a whole binary.
    const partial = `${binary}.${process.pid}.tmp`;
    const build = spawnSync('gcc', ['-O2', '-o', partial, sourcePath, ...link], { encoding: 'utf8' });
    if (build.status === 0) {
      renameSync(partial, binary);
      return (cachedProbe = { path: binary });
    }
    rmSync(partial, { force: true });
    failures.push(build.error ? build.error.message : (build.stderr || `gcc exited with ${build.status}`).trim());
  }
  return (cachedProbe = { reason: `the verifier probe does not compile: ${failures.join(' / ')}` });
}

let cachedAvailability: KernelAvailability | undefined;

/**
 * Whether this machine can run the real verifier: Linux, root (the fixtures use helpers and program
 * types that need CAP_BPF and CAP_PERFMON), a probe that compiles against libbpf, and a bpf() call
 * that the kernel actually allows (containers and seccomp profiles often refuse it with EPERM).
 */
export function kernelVerifierAvailable(): KernelAvailability {
  if (cachedAvailability) return cachedAvailability;
  cachedAvailability = checkAvailability();
  return cachedAvailability;
}

function checkAvailability(): KernelAvailability {
  if (process.platform !== 'linux') return { available: false, reason: `bpf() needs Linux, this is ${process.platform}` };
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    return { available: false, reason: 'bpf() refused: the fixtures need root (CAP_BPF and CAP_PERFMON)' };
  }
  const probe = probeBinary();
  if (!probe.path) return { available: false, reason: probe.reason };
  const check = spawnSync(probe.path, ['--check'], { encoding: 'utf8' });
  if (check.error) return { available: false, reason: `the verifier probe did not run: ${check.error.message}` };
  const report = parseReport(check.stdout);
  if (report.fields.get('status') !== 'ok') {
    const message = report.fields.get('message') ?? `errno ${report.fields.get('errno') ?? '?'}`;
    return { available: false, reason: `bpf() refused: ${message}` };
  }
  return { available: true };
}

/**
 * Loads `program` from `objectPath` into the running kernel and returns the verifier's verdict.
 * Throws when no verdict was reached (the object does not open, the program does not exist, or
 * bpf() failed before the verifier ran), because none of those is an answer a test could expect.
 */
export function verifyProgram(objectPath: string, program: string, options: { section?: string } = {}): VerifierVerdict {
  const { binary, args, env } = probeCommand(objectPath, program, options);
  const run = spawnSync(binary, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, env });
  if (run.error) throw new Error(`verifier probe failed to run: ${run.error.message}`);
  return verdictOf(objectPath, program, run.stdout, run.stderr);
}

/** verifyProgram without blocking, so that a caller can keep several loads going (the real-world corpus). */
export function verifyProgramAsync(objectPath: string, program: string, options: { section?: string } = {}): Promise<VerifierVerdict> {
  const { binary, args, env } = probeCommand(objectPath, program, options);
  return new Promise((resolvePromise, reject) => {
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', (error) => reject(new Error(`verifier probe failed to run: ${error.message}`)));
    child.on('close', () => {
      try {
        resolvePromise(verdictOf(objectPath, program, stdout, stderr));
      } catch (error) {
        reject(error);
      }
    });
  });
}

function probeCommand(objectPath: string, program: string, options: { section?: string }): { binary: string; args: string[]; env: NodeJS.ProcessEnv } {
  const probe = probeBinary();
  if (!probe.path) throw new Error(probe.reason);
  // PROBE_SECTION loads the program as if its section had that name (objects for iproute2's loader).
  const env = { ...process.env };
  if (options.section) env.PROBE_SECTION = options.section;
  else delete env.PROBE_SECTION;
  return { binary: probe.path, args: [resolve(objectPath), program], env };
}

function verdictOf(objectPath: string, program: string, stdout: string, stderr: string): VerifierVerdict {
  const report = parseReport(stdout);
  const status = report.fields.get('status');
  if (status !== 'ok' && status !== 'rejected') {
    const detail = (stderr || stdout).trim();
    throw new Error(`no verdict for ${program} in ${objectPath} (errno ${report.fields.get('errno') ?? '?'}): ${detail}`);
  }
  const verdict: VerifierVerdict = { accepted: status === 'ok', log: report.log };
  const depths = report.fields.get('stack_depth');
  if (depths !== undefined) verdict.stackDepths = depths;
  const error = report.fields.get('error');
  if (status === 'rejected' && error !== undefined) verdict.error = error;
  return verdict;
}

/** Splits the probe's "key value" lines from the verbatim log that follows "--- log ---". */
function parseReport(stdout: string): { fields: Map<string, string>; log: string } {
  const marker = '--- log ---\n';
  const markerAt = stdout.indexOf(marker);
  const head = markerAt === -1 ? stdout : stdout.slice(0, markerAt);
  const log = markerAt === -1 ? '' : stdout.slice(markerAt + marker.length);
  const fields = new Map<string, string>();
  for (const line of head.split('\n')) {
    const space = line.indexOf(' ');
    if (space > 0) fields.set(line.slice(0, space), line.slice(space + 1));
  }
  return { fields, log };
}
