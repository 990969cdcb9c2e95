/**
 * Verify on real kernels: every program of some objects loaded into real verifiers — this machine's
 * kernel through bpf(), and lab kernels booted under QEMU — beside what the analyzer predicts for
 * that kernel, with the numbers of each stack-depth line mapped to their subprograms' source lines
 * (BTF line info). One core for `bpf-stack-lens verify` and the editor's "Verify on real kernels…",
 * so the two cannot disagree about what a kernel said. A target that gives no answer (no root, no
 * QEMU, no network for a package, a panic, a timeout) is one line, and the others still run.
 */
import { release } from 'node:os';
import { readRegularFile } from '../common/safeRead';
import {
  DEFAULT_QEMU,
  LAB_KERNELS,
  type LabKernel,
  LabError,
  type LabVerdict,
  bootKernel,
  cachedKernel,
  loaderNews,
  checkQemu,
  fetchKernel,
  kernelCacheFolder,
  verifyOnHost,
} from '../lab/kernelLab';
import { analyzeObject } from '../object/analyzeObject';
import type { DocumentStackAnalysis } from './analysis';
import { runningKernelProfile } from '../probe/runningKernel';
import { type KernelProfile, parseKernelProfiles } from '../rules/kernelProfile';
import type { ProgramReport } from '../rules/report';

/** A real verifier to ask: this machine's kernel, or a lab kernel under QEMU. */
export type VerifyTarget = { kind: 'host' } | { kind: 'lab'; kernel: LabKernel };

/** The name `--kernel` and the editor give this machine's kernel. */
export const HOST_TARGET = 'host';

/** The targets that names ("host", "6.1", "6.1.170", a package) mean, or the one line saying which name is unknown. */
export function verifyTargetsOf(names: readonly string[]): { targets: VerifyTarget[] } | { error: string } {
  const targets: VerifyTarget[] = [];
  for (const name of names) {
    if (name === HOST_TARGET || name === 'running') {
      targets.push({ kind: 'host' });
      continue;
    }
    const kernel = LAB_KERNELS.find((candidate) => candidate.label === name || candidate.package === name || name.startsWith(`${candidate.label}.`));
    if (!kernel) return { error: `no lab kernel "${name}" (lab kernels: ${HOST_TARGET}, ${LAB_KERNELS.map((k) => k.label).join(', ')})` };
    targets.push({ kind: 'lab', kernel });
  }
  return { targets };
}

export interface VerifyEntry {
  object: string;
  program: string;
  /** "host (6.18.44-…)" or the lab kernel's exact release. */
  kernel: string;
  real: {
    verdict: 'accepted' | 'rejected' | 'error';
    errno?: number;
    error?: string;
    stackDepthLine?: string;
    subprogramLines?: string[];
    /** What libbpf warned about while loading it (LabVerdict.loaderMessages), when anything. */
    loaderMessages?: string[];
  };
  predicted?: { verdict: 'accepted' | 'rejected'; error?: string; stackDepthLine?: string };
  agrees: boolean;
  /** Each subprogram of the stack-depth line with where it starts in the source. */
  subprograms: { index: number; name: string; file?: string; line?: number }[];
  /** Where the predicted violation matching the kernel's error is in the source. */
  errorSource?: { file: string; line: number };
}

export interface VerifyOptions {
  /** The package root: holds scripts/ and test/kernel/verifier-probe.c. */
  root: string;
  /** Where kernels and the loader are kept; default ROOT/.cache. */
  cacheDir?: string;
  /** The QEMU for lab kernels; default qemu-system-x86_64 on PATH. */
  qemu?: string;
  signal?: AbortSignal;
  /** One-line progress, with the target it is about (index from 0) and how many there are. */
  progress?: (message: string, step: { index: number; count: number }) => void;
  /** What the reader should know about the running kernel's profile (it could not be probed). */
  note?: (message: string) => void;
  /** A target that gave no verdicts, with the one-line reason, when it happens. */
  failed?: (reason: string) => void;
}

export interface VerifyRun {
  entries: VerifyEntry[];
  /** One line per target that gave no verdicts. */
  failures: string[];
  /** Cancelled through the signal: the entries are those of the targets done before. */
  cancelled: boolean;
}

/** Asks every target about every program of `objects` (readable files), in turn. */
export async function verifyOnKernels(objects: readonly string[], targets: readonly VerifyTarget[], options: VerifyOptions): Promise<VerifyRun> {
  const run: VerifyRun = { entries: [], failures: [], cancelled: false };
  let qemuChecked = false;
  for (const [index, target] of targets.entries()) {
    const step = { index, count: targets.length };
    const lab = {
      root: options.root,
      cacheDir: options.cacheDir,
      qemu: options.qemu,
      signal: options.signal,
      progress: (message: string) => options.progress?.(message, step),
    };
    try {
      if (options.signal?.aborted) throw new LabError('cancelled');
      if (target.kind === 'host') {
        if (typeof process.getuid === 'function' && process.getuid() !== 0)
          throw new LabError("this machine's kernel needs root (CAP_BPF, CAP_PERFMON) to load programs; use a lab kernel instead");
        const { profile, note } = runningKernelProfile();
        if (note) options.note?.(note);
        lab.progress(`loading into this machine's kernel`);
        const predictions = predictionsFor(objects, profile);
        for (const real of await verifyOnHost(objects, lab))
          run.entries.push(entryOf(real, `host (${profile.probed?.release ?? profile.version})`, predictions.get(real.object)));
      } else {
        // Before a download that would be for nothing.
        if (!qemuChecked) await checkQemu(options.qemu || DEFAULT_QEMU, options.signal);
        qemuChecked = true;
        const fetched = await fetchKernel(target.kernel, lab);
        const { profiles } = parseKernelProfiles([fetched.release], true);
        const predictions = predictionsFor(objects, profiles[0]);
        lab.progress(`booting ${fetched.release} (${target.kernel.package}) under QEMU`);
        const boot = await bootKernel(fetched, objects, lab);
        for (const real of boot.verdicts) run.entries.push(entryOf(real, fetched.release, predictions.get(real.object)));
      }
    } catch (error) {
      if (!(error instanceof LabError)) throw error;
      if (options.signal?.aborted) {
        run.cancelled = true;
        return run;
      }
      run.failures.push(error.message);
      options.failed?.(error.message);
    }
  }
  return run;
}

function predictionsFor(objects: readonly string[], profile: KernelProfile): Map<string, ProgramReport[]> {
  const reports = new Map<string, ProgramReport[]>();
  for (const path of objects) {
    // An unreadable object has been reported by whoever chose the objects.
    const read = readRegularFile(path);
    if ('reason' in read) continue;
    reports.set(path, analyzeObject(new Uint8Array(read.bytes.buffer, read.bytes.byteOffset, read.bytes.byteLength), path, [profile]).report.programs);
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
    subprograms: (ours?.subprograms ?? []).map((sub, index) => ({
      index,
      name: sub.name,
      ...(sub.source ? { file: sub.source.file, line: sub.source.line } : {}),
    })),
  };
  if (real.status === 'error') entry.real.errno = real.errno;
  if (real.error !== undefined) entry.real.error = real.error;
  if (real.stackDepthLine !== undefined) entry.real.stackDepthLine = real.stackDepthLine;
  if (real.subprogramLines.length > 0) entry.real.subprogramLines = real.subprogramLines;
  if (real.loaderMessages.length > 0) entry.real.loaderMessages = real.loaderMessages;
  if (verdict) {
    entry.predicted = { verdict: verdict.accepted ? 'accepted' : 'rejected' };
    if (violation) entry.predicted.error = violation.message;
    if (verdict.stackDepthLine !== undefined) entry.predicted.stackDepthLine = verdict.stackDepthLine;
    entry.agrees =
      entry.predicted.verdict === entry.real.verdict &&
      entry.predicted.error === entry.real.error &&
      entry.predicted.stackDepthLine === entry.real.stackDepthLine;
    const matching = verdict.violations.find((v) => v.message === real.error);
    if (matching?.source) entry.errorSource = { file: matching.source.file, line: matching.source.line };
  }
  return entry;
}

/** Each program on each kernel: the kernel's verdict and stack-depth line over the prediction's, as `verify` prints them. */
export function formatVerifyText(entries: readonly VerifyEntry[]): string {
  const out: string[] = [];
  let object = '';
  for (const entry of entries) {
    if (entry.object !== object) {
      object = entry.object;
      out.push(object);
    }
    out.push(`  ${entry.program} on ${entry.kernel}: ${entry.agrees ? 'agrees' : 'DIFFERS'}`);
    out.push(`    kernel:    ${realVerdictText(entry)}${entry.real.error ? `: ${entry.real.error}` : ''}`);
    if (entry.predicted) out.push(`    predicted: ${entry.predicted.verdict}${entry.predicted.error ? `: ${entry.predicted.error}` : ''}`);
    if (entry.errorSource) out.push(`    at ${entry.errorSource.file}:${entry.errorSource.line}`);
    out.push(`    kernel:    ${entry.real.stackDepthLine ?? '(no stack depth line)'}`);
    if (entry.predicted) out.push(`    predicted: ${entry.predicted.stackDepthLine ?? '(no stack depth line)'}`);
    for (const line of entry.real.subprogramLines ?? []) out.push(`      ${line}`);
    out.push(...loaderMessageLines(entry.real.loaderMessages ?? []));
    const located = entry.subprograms.map((sub) => `${sub.index} ${sub.name}${sub.file ? ` (${sub.file}:${sub.line})` : ''}`);
    if (located.length > 0) out.push(`    subprograms: ${located.join(', ')}`);
  }
  return `${out.join('\n')}\n`;
}

/** The text listing shows this many of libbpf's messages a program; JSON has them all. */
const LOADER_MESSAGES_SHOWN = 4;

function loaderMessageLines(messages: readonly string[]): string[] {
  const news = loaderNews(messages);
  const shown = news.slice(0, LOADER_MESSAGES_SHOWN).map((message) => `    loader:    ${message}`);
  if (news.length > LOADER_MESSAGES_SHOWN) shown.push(`    loader:    (${news.length - LOADER_MESSAGES_SHOWN} more lines in --format json)`);
  return shown;
}

/* Why a load got no verdict: libbpf's first telling message; without one, bpf() itself refused it. */
function noVerdictReason(entry: VerifyEntry): string {
  return loaderNews(entry.real.loaderMessages ?? [])[0] ?? 'bpf() refused before the verifier ran';
}

function realVerdictText(entry: VerifyEntry): string {
  return entry.real.verdict === 'error' ? `no verdict (errno ${entry.real.errno}: ${noVerdictReason(entry)})` : entry.real.verdict;
}

/**
 * One sentence per program where a kernel and the prediction part: which way (a false accept is
 * the one that matters most: the analyzer passed what the kernel refuses), and what each said.
 */
export function disagreements(entries: readonly VerifyEntry[]): string[] {
  return entries
    .filter((entry) => !entry.agrees && entry.real.verdict !== 'error')
    .map((entry) => {
      const at = `${entry.program} on ${entry.kernel}`;
      if (!entry.predicted) return `${at}: the kernel ${entry.real.verdict} it, and the analyzer found no such program in the object`;
      if (entry.predicted.verdict !== entry.real.verdict) {
        const kernelSaid = entry.real.error ? ` (${entry.real.error})` : '';
        const predictedSaid = entry.predicted.error ? ` (${entry.predicted.error})` : '';
        const which =
          entry.real.verdict === 'rejected' ? 'the analyzer passes a program this kernel rejects' : 'the analyzer rejects a program this kernel accepts';
        return `${at}: ${which}: kernel ${entry.real.verdict}${kernelSaid}, predicted ${entry.predicted.verdict}${predictedSaid}`;
      }
      if (entry.predicted.error !== entry.real.error)
        return `${at}: both rejected it, for different reasons: kernel "${entry.real.error ?? ''}", predicted "${entry.predicted.error ?? ''}"`;
      return `${at}: same verdict, different stack depth line: kernel "${entry.real.stackDepthLine ?? '(none)'}", predicted "${entry.predicted.stackDepthLine ?? '(none)'}"`;
    });
}

/**
 * The editor's report of a run: what was asked, then plainly where a kernel disagrees with the
 * prediction, the targets that gave no answer, and then the same listing as `verify`.
 */
export function formatVerifyReport(objects: readonly string[], targetNames: readonly string[], run: VerifyRun, notes: readonly string[] = []): string {
  const out = [`Verify on real kernels: ${objects.join(', ')}`, `kernels: ${targetNames.join(', ')}`, ...notes.map((note) => `note: ${note}`), ''];
  const differing = disagreements(run.entries);
  const noVerdict = run.entries.filter((entry) => entry.real.verdict === 'error');
  if (run.cancelled) out.push('Cancelled: the kernels below are those that finished before.');
  if (differing.length > 0) {
    out.push(`The real kernels DISAGREE with the prediction on ${differing.length} of ${run.entries.length} program verdicts:`);
    for (const line of differing) out.push(`  ${line}`);
  } else if (run.entries.length > noVerdict.length) {
    const judged = run.entries.length - noVerdict.length;
    out.push(
      `Every kernel agrees with the prediction (${judged} program verdict${judged === 1 ? '' : 's'}: verdict, error and stack depth line, word for word).`,
    );
  }
  if (noVerdict.length > 0)
    out.push(`${noVerdict.length} program(s) got no verdict: the verifier never judged them (${[...new Set(noVerdict.map(realVerdictText))].join('; ')}).`);
  for (const failure of run.failures) out.push(`no answer: ${failure}`);
  if (run.entries.length > 0) out.push('', formatVerifyText(run.entries).trimEnd());
  return `${out.join('\n')}\n`;
}

/** A target as the editor offers it: whether it can run here, and what its first use costs. */
export interface VerifyTargetChoice {
  /** What `--kernel` and the verify request take: "host" or the lab kernel's label. */
  name: string;
  label: string;
  description: string;
  /** Why it cannot run here, or what its first use does. */
  detail: string;
  /** Worth preselecting: runs here without fetching anything. */
  ready: boolean;
}

/** Every target, for the editor's pick: this machine's kernel and each lab kernel. */
export async function verifyTargetChoices(options: Pick<VerifyOptions, 'root' | 'cacheDir' | 'qemu'>): Promise<VerifyTargetChoice[]> {
  const privileged = typeof process.getuid !== 'function' || process.getuid() === 0;
  const qemu = options.qemu || DEFAULT_QEMU;
  const qemuMissing = await checkQemu(qemu).then(
    () => undefined,
    (error: unknown) => (error instanceof Error ? error.message : String(error)),
  );
  const host: VerifyTargetChoice = {
    name: HOST_TARGET,
    label: "This machine's kernel",
    description: `Linux ${release()}, through bpf()`,
    detail: privileged ? 'loads every program into the running kernel' : 'needs root (CAP_BPF, CAP_PERFMON): the editor does not run as root',
    ready: privileged,
  };
  const labs = LAB_KERNELS.map((kernel): VerifyTargetChoice => {
    const cached = cachedKernel(kernel, options);
    const fetch = cached ? `cached (${cached.release})` : `first use downloads the Debian package ${kernel.package} into ${kernelCacheFolder(kernel, options)}`;
    return {
      name: kernel.label,
      label: `Linux ${kernel.label} under QEMU`,
      description: kernel.package,
      // The time is the lab's, measured on these machines (README: 5-7 s a kernel idle, up to 34 s loaded).
      detail: qemuMissing ? `${qemuMissing}; ${fetch}` : `boots under ${qemu} (TCG: 5-35 s); ${fetch}`,
      ready: false,
    };
  });
  return [host, ...labs];
}

/**
 * The objects verifying a file means: the file itself when it is an object, else the objects the
 * workspace holds that were built from it (not the buffer's background compiles, which are
 * temporary), with why any of them may not describe the text.
 */
export function objectsToVerify(filePath: string, analyses: readonly DocumentStackAnalysis[]): { objects: string[]; notes: string[] } {
  if (filePath.endsWith('.o')) return { objects: [filePath], notes: [] };
  const built = analyses.filter((analysis) => analysis.origin === 'object' && !analysis.compiledFromBuffer);
  return {
    objects: [...new Set(built.map((analysis) => analysis.path))],
    notes: built.flatMap((analysis) => (analysis.staleReason ? [`${analysis.staleReason}: the kernels judge the object as it was built`] : [])),
  };
}

/**
 * The editor's verify, as a report: the objects of `filePath` on the kernels `kernelNames` names
 * (none: this machine's), or the one line that says why nothing could be asked.
 */
export async function verifyReport(
  filePath: string,
  analyses: readonly DocumentStackAnalysis[],
  kernelNames: readonly string[],
  options: VerifyOptions,
): Promise<{ text: string; cancelled: boolean }> {
  const names = kernelNames.length > 0 ? kernelNames : [HOST_TARGET];
  const parsed = verifyTargetsOf(names);
  if ('error' in parsed) return { text: `Cannot verify: ${parsed.error}\n`, cancelled: false };
  const { objects, notes } = objectsToVerify(filePath, analyses);
  if (objects.length === 0)
    return {
      text: `Cannot verify ${filePath}: no BPF object built from it was found in the workspace (build it; settings: bpfStackLens.objectGlobs).\n`,
      cancelled: false,
    };
  // Only regular files: a FIFO named by a client would block the server, and the loader with it.
  const unreadable: string[] = [];
  const readable = objects.filter((object) => {
    const read = readRegularFile(object);
    if ('reason' in read) unreadable.push(`cannot read ${object}: ${read.reason}`);
    return !('reason' in read);
  });
  if (readable.length === 0) return { text: `Cannot verify: ${unreadable.join('; ')}\n`, cancelled: false };
  const run = await verifyOnKernels(readable, parsed.targets, options);
  return { text: formatVerifyReport(readable, names, run, [...notes, ...unreadable]), cancelled: run.cancelled };
}
