/**
 * `bpf-stack-lens verify [--kernel V[,V...]] [--format text|json] OBJ...`
 * Loads every program of each object into real verifiers and shows what each said beside what
 * `check` predicts for that kernel: the running kernel ("host", the default; needs bpf()) and, opt-in
 * by --kernel, lab kernels booted under QEMU (5.10, 6.1, 6.12, 7.2, 7.3, or their exact releases).
 * The numbers of each stack-depth line are mapped to their subprograms' source lines (BTF line info).
 * Progress goes to stderr; Ctrl-C cancels. Exit 0 when every kernel accepts every program, 1 when
 * one rejects one, 2 for bad usage or a kernel that gave no answer (one line saying why).
 */
import { analyzeObject } from '../object/analyzeObject';
import { runningKernelProfile } from '../probe/runningKernel';
import { LAB_KERNELS, type LabKernel, LabError, type LabVerdict, fetchKernel, bootKernel, verifyOnHost } from '../lab/kernelLab';
import { type KernelProfile, parseKernelProfiles } from '../rules/kernelProfile';
import type { ProgramReport } from '../rules/report';
import { packageRoot } from '../source/packageRoot';
import { type FlagSpec, UsageError, parseArgs } from './args';
import { type CommandIo, readInput } from './io';
import { writeJsonReport } from './jsonOutput';

export const VERIFY_FLAGS: Record<string, FlagSpec> = {
  '--kernel': { value: true, repeat: true },
  '--format': { value: true },
};

type Target = { kind: 'host' } | { kind: 'lab'; kernel: LabKernel };

function targetsOf(values: string[] | undefined): Target[] {
  const names = (values ?? ['host']).flatMap((value) => value.split(',')).map((value) => value.trim()).filter(Boolean);
  if (names.length === 0) throw new UsageError('--kernel needs at least one kernel');
  return names.map((name): Target => {
    if (name === 'host' || name === 'running') return { kind: 'host' };
    const kernel = LAB_KERNELS.find((candidate) => candidate.label === name || candidate.package === name || name.startsWith(`${candidate.label}.`));
    if (!kernel) throw new UsageError(`no lab kernel "${name}" (lab kernels: host, ${LAB_KERNELS.map((k) => k.label).join(', ')})`);
    return { kind: 'lab', kernel };
  });
}

export interface VerifyEntry {
  object: string;
  program: string;
  /** "host (6.18.44-…)" or the lab kernel's exact release. */
  kernel: string;
  real: { verdict: 'accepted' | 'rejected' | 'error'; errno?: number; error?: string; stackDepthLine?: string; subprogramLines?: string[] };
  predicted?: { verdict: 'accepted' | 'rejected'; error?: string; stackDepthLine?: string };
  agrees: boolean;
  /** Each subprogram of the stack-depth line with where it starts in the source. */
  subprograms: { index: number; name: string; file?: string; line?: number }[];
  /** Where the predicted violation matching the kernel's error is in the source. */
  errorSource?: { file: string; line: number };
}

function predictionsFor(objects: string[], profile: KernelProfile, io: CommandIo): Map<string, ProgramReport[]> {
  const reports = new Map<string, ProgramReport[]>();
  const silent: CommandIo = { ...io, stderr: () => undefined };
  for (const path of objects) {
    const bytes = readInput(path, silent);
    if (!bytes) continue;
    reports.set(path, analyzeObject(bytes, path, [profile]).report.programs);
  }
  return reports;
}

function entryOf(real: LabVerdict, kernel: string, programs: ProgramReport[] | undefined): VerifyEntry {
  const ours = programs?.find((program) => program.name === real.program);
  const verdict = ours?.verdicts[0];
  const violation = verdict && !verdict.accepted ? (verdict.violations.find((v) => v.reportedByKernel) ?? verdict.violations[0]) : undefined;
  const entry: VerifyEntry = {
    object: real.object,
    program: real.program,
    kernel,
    real: { verdict: real.status === 'ok' ? 'accepted' : real.status },
    agrees: false,
    subprograms: (ours?.subprograms ?? []).map((sub, index) => ({ index, name: sub.name, ...(sub.source ? { file: sub.source.file, line: sub.source.line } : {}) })),
  };
  if (real.status === 'error') entry.real.errno = real.errno;
  if (real.error !== undefined) entry.real.error = real.error;
  if (real.stackDepthLine !== undefined) entry.real.stackDepthLine = real.stackDepthLine;
  if (real.subprogramLines.length > 0) entry.real.subprogramLines = real.subprogramLines;
  if (verdict) {
    entry.predicted = { verdict: verdict.accepted ? 'accepted' : 'rejected' };
    if (violation) entry.predicted.error = violation.message;
    if (verdict.stackDepthLine !== undefined) entry.predicted.stackDepthLine = verdict.stackDepthLine;
    entry.agrees = entry.predicted.verdict === entry.real.verdict && entry.predicted.error === entry.real.error && entry.predicted.stackDepthLine === entry.real.stackDepthLine;
    const matching = verdict.violations.find((v) => v.message === real.error);
    if (matching?.source) entry.errorSource = { file: matching.source.file, line: matching.source.line };
  }
  return entry;
}

function formatText(entries: VerifyEntry[]): string {
  const out: string[] = [];
  let object = '';
  for (const entry of entries) {
    if (entry.object !== object) {
      object = entry.object;
      out.push(object);
    }
    const real = entry.real.verdict === 'error' ? `no verdict (errno ${entry.real.errno}: bpf() refused before the verifier ran)` : entry.real.verdict;
    out.push(`  ${entry.program} on ${entry.kernel}: ${entry.agrees ? 'agrees' : 'DIFFERS'}`);
    out.push(`    kernel:    ${real}${entry.real.error ? `: ${entry.real.error}` : ''}`);
    if (entry.predicted) out.push(`    predicted: ${entry.predicted.verdict}${entry.predicted.error ? `: ${entry.predicted.error}` : ''}`);
    if (entry.errorSource) out.push(`    at ${entry.errorSource.file}:${entry.errorSource.line}`);
    out.push(`    kernel:    ${entry.real.stackDepthLine ?? '(no stack depth line)'}`);
    if (entry.predicted) out.push(`    predicted: ${entry.predicted.stackDepthLine ?? '(no stack depth line)'}`);
    for (const line of entry.real.subprogramLines ?? []) out.push(`      ${line}`);
    const located = entry.subprograms.map((sub) => `${sub.index} ${sub.name}${sub.file ? ` (${sub.file}:${sub.line})` : ''}`);
    if (located.length > 0) out.push(`    subprograms: ${located.join(', ')}`);
  }
  return `${out.join('\n')}\n`;
}

export async function verifyCommand(argv: string[], io: CommandIo): Promise<number> {
  const args = parseArgs(argv, VERIFY_FLAGS);
  const format = args.flags.get('--format')?.[0] ?? 'text';
  if (!['text', 'json'].includes(format)) throw new UsageError(`--format must be text or json, not "${format}"`);
  if (args.positionals.length === 0) throw new UsageError('verify needs at least one object file');
  const targets = targetsOf(args.flags.get('--kernel'));
  // Only readable objects go to the kernels; the others are reported once and make the exit 2.
  const objects = args.positionals.filter((path) => readInput(path, io) !== undefined);
  if (objects.length === 0) return 2;
  const controller = new AbortController();
  const cancel = (): void => controller.abort();
  process.once('SIGINT', cancel);
  const options = { root: packageRoot(), progress: (message: string) => io.stderr(`bpf-stack-lens verify: ${message}\n`), signal: controller.signal };
  const entries: VerifyEntry[] = [];
  let failed = false;
  try {
    for (const target of targets) {
      try {
        if (target.kind === 'host') {
          if (typeof process.getuid === 'function' && process.getuid() !== 0) throw new LabError("this machine's kernel needs root (CAP_BPF, CAP_PERFMON) to load programs; use --kernel with a lab kernel");
          const { profile, note } = runningKernelProfile();
          if (note) io.stderr(`bpf-stack-lens: ${note}\n`);
          options.progress(`loading into this machine's kernel`);
          const predictions = predictionsFor(objects, profile, io);
          for (const real of await verifyOnHost(objects, options)) entries.push(entryOf(real, `host (${profile.probed?.release ?? profile.version})`, predictions.get(real.object)));
        } else {
          const fetched = await fetchKernel(target.kernel, options);
          const { profiles } = parseKernelProfiles([fetched.release], true);
          const predictions = predictionsFor(objects, profiles[0], io);
          options.progress(`booting ${fetched.release} (${target.kernel.package}) under QEMU`);
          const boot = await bootKernel(fetched, objects, options);
          for (const real of boot.verdicts) entries.push(entryOf(real, fetched.release, predictions.get(real.object)));
        }
      } catch (error) {
        if (!(error instanceof LabError)) throw error;
        if (controller.signal.aborted) {
          io.stderr('bpf-stack-lens verify: cancelled\n');
          return 2;
        }
        io.stderr(`bpf-stack-lens verify: ${error.message}\n`);
        failed = true;
      }
    }
  } finally {
    process.removeListener('SIGINT', cancel);
  }
  if (format === 'json') {
    if (!writeJsonReport(io, { results: entries })) return 2;
  } else if (entries.length > 0) io.stdout(formatText(entries));
  if (failed || objects.length < args.positionals.length || entries.some((entry) => entry.real.verdict === 'error')) return 2;
  return entries.some((entry) => entry.real.verdict === 'rejected') ? 1 : 0;
}
