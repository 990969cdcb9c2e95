/**
 * The fixtures' measured expectations: what each lab kernel's verifier said about every program of
 * every fixture object, one file per kernel release (test/fixtures/programs/measured/<release>.json),
 * written by `bash scripts/kernel-lab.sh measure` and reviewed as diffs. Also that script's entry point.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { basename, join } from 'node:path';

import { LAB_KERNELS, type LabBoot, type LabKernel, LabError, fetchKernel, runLab } from '../../server/src/lab/kernelLab';
import { kernelStackLines, predictedStackLines } from '../../server/src/lab/verifierLog';
import type { ProgramReport } from '../../server/src/rules/report';
import { type Fixture, type FixtureExpectation, fixturesDirectory } from './fixtures';
import {
  type CountsFile,
  PROGRAM_TIMEOUT_SECONDS,
  SAMPLE_EVERY,
  corpusSample,
  countsFilePath,
  countsOf,
  reasonsNotCompared,
  runCorpusInLab,
} from './labCorpus';
import { buildRealWorldCorpus, compareObjectAnalyzer } from './realworld';
import { repositoryRoot } from './kernel';

export interface MeasuredProgram {
  verdict: 'accepted' | 'rejected' | 'error';
  /** The verifier's error line, for a rejected program. */
  error?: string;
  /** The `stack depth ...` line exactly as the kernel printed it. */
  stackDepth?: string;
  /** 7.3's per-subprogram lines. */
  subprograms?: string[];
  /** For verdict "error": the errno bpf() failed with before the verifier ran. */
  errno?: number;
}

export interface MeasuredFile {
  release: string;
  package: string;
  packageVersion: string;
  procVersion: string;
  /** __BPF_FUNC_MAX_ID of the kernel's enum bpf_func_id, from its BTF (one more than its highest helper id). */
  bpfFuncMaxId?: number;
  /** Object file name → program → what the kernel said. */
  objects: Record<string, Record<string, MeasuredProgram>>;
}

/** What this machine lacks to run the kernel lab, in words for a skip or a CI failure; undefined when nothing. */
export function missingLabTool(): string | undefined {
  if (process.platform !== 'linux') return `the kernel lab needs Linux, this is ${process.platform}`;
  const qemu = spawnSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8' });
  if (qemu.error || qemu.status !== 0) return 'qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)';
  if (!existsSync('/bin/busybox') && !existsSync('/usr/bin/busybox')) return 'busybox is not installed (apt-get install busybox-static)';
  return undefined;
}

export function measuredDirectory(): string {
  return join(fixturesDirectory(), 'measured');
}

/** Every committed measured file, by release. */
export function readMeasuredFiles(): MeasuredFile[] {
  const folder = measuredDirectory();
  if (!existsSync(folder)) return [];
  return readdirSync(folder)
    .filter((name) => name.endsWith('.json'))
    .sort()
    .map((name) => JSON.parse(readFileSync(join(folder, name), 'utf8')) as MeasuredFile);
}

/** The fixture objects the lab measures, sorted by name. */
export function fixtureObjects(): string[] {
  const folder = fixturesDirectory();
  return readdirSync(folder)
    .filter((name) => name.endsWith('.bpf.o'))
    .sort()
    .map((name) => join(folder, name));
}

export function toMeasured(boot: LabBoot): MeasuredFile {
  const objects: MeasuredFile['objects'] = {};
  for (const verdict of boot.verdicts) {
    const entry: MeasuredProgram = { verdict: verdict.status === 'ok' ? 'accepted' : verdict.status };
    if (verdict.error !== undefined) entry.error = verdict.error;
    if (verdict.stackDepthLine !== undefined) entry.stackDepth = verdict.stackDepthLine;
    if (verdict.subprogramLines.length > 0) entry.subprograms = verdict.subprogramLines;
    if (verdict.status === 'error') entry.errno = verdict.errno;
    (objects[basename(verdict.object)] ??= {})[verdict.program] = entry;
  }
  return {
    release: boot.fetched.release,
    package: boot.fetched.kernel.package,
    packageVersion: boot.fetched.packageVersion,
    procVersion: boot.procVersion,
    ...(boot.bpfFuncMaxId === undefined ? {} : { bpfFuncMaxId: boot.bpfFuncMaxId }),
    objects,
  };
}

export function measuredFilePath(release: string): string {
  return join(measuredDirectory(), `${release}.json`);
}

function selectKernels(labels: string[]): LabKernel[] {
  if (labels.length === 0) return [...LAB_KERNELS];
  return labels.map((label) => {
    const kernel = LAB_KERNELS.find((candidate) => candidate.label === label || candidate.package === label);
    if (!kernel) throw new LabError(`no lab kernel ${label} (lab kernels: ${LAB_KERNELS.map((k) => k.label).join(', ')})`);
    return kernel;
  });
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const root = repositoryRoot();
  const progress = (message: string): void => void process.stderr.write(`kernel-lab: ${message}\n`);
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  // A VM outlives its node process unless killed: end them on SIGTERM as on Ctrl-C.
  process.once('SIGTERM', () => controller.abort());
  const options = { root, progress, signal: controller.signal };
  if (command === 'fetch') {
    for (const kernel of selectKernels(rest)) {
      const fetched = await fetchKernel(kernel, options);
      process.stdout.write(`${fetched.release} ${kernel.package} ${fetched.vmlinuz}${fetched.cached ? ' (cached)' : ''}\n`);
    }
    return 0;
  }
  if (command === 'measure' && rest.includes('--corpus')) return measureCorpus(selectKernels(rest.filter((arg) => arg !== '--corpus')), options);
  if (command === 'measure') {
    const started = Date.now();
    const run = await runLab(selectKernels(rest), fixtureObjects(), options);
    mkdirSync(measuredDirectory(), { recursive: true });
    for (const boot of run.boots) {
      writeFileSync(measuredFilePath(boot.fetched.release), `${JSON.stringify(toMeasured(boot), null, 2)}\n`);
      process.stdout.write(
        `${boot.fetched.release}: ${boot.verdicts.length} programs, boot ${boot.bootSeconds.toFixed(1)} s${boot.fetched.cached ? ' (kernel cached)' : ''} → ${measuredFilePath(boot.fetched.release)}\n`,
      );
    }
    for (const failure of run.failures) process.stderr.write(`kernel-lab: ${failure.kernel.package}: ${failure.reason}\n`);
    process.stdout.write(`total ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    return run.failures.length === 0 ? 0 : 1;
  }
  if (command === 'boot') {
    const [label, ...objects] = rest;
    if (!label || objects.length === 0) throw new LabError('usage: kernel-lab.sh boot LABEL OBJ...');
    const run = await runLab(selectKernels([label]), objects, options);
    for (const boot of run.boots)
      for (const verdict of boot.verdicts) process.stdout.write(`${JSON.stringify({ release: boot.fetched.release, ...verdict })}\n`);
    for (const failure of run.failures) process.stderr.write(`kernel-lab: ${failure.reason}\n`);
    return run.failures.length === 0 ? 0 : 1;
  }
  process.stderr.write('usage: kernel-lab.sh fetch|measure [--corpus] [LABEL...] | boot LABEL OBJ...\n');
  return 2;
}

/**
 * `measure --corpus`: every object of the real-world corpus in each kernel (cached answers reused),
 * the analyzer held to each, the table printed, and test/lab/corpus-counts.json rewritten with the
 * numbers of the whole corpus and of the CI sample (the same answers, a subset of the objects).
 */
async function measureCorpus(kernels: LabKernel[], options: { root: string; progress: (message: string) => void; signal: AbortSignal }): Promise<number> {
  const { corpus, reason } = await buildRealWorldCorpus();
  if (!corpus) throw new LabError(reason ?? 'the corpus did not build');
  const path = countsFilePath(options.root);
  const previous = existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as CountsFile) : undefined;
  const run = await runCorpusInLab(kernels, corpus.objects, { ...options, programTimeoutSeconds: PROGRAM_TIMEOUT_SECONDS });
  const sample = new Set(corpusSample(corpus.objects, SAMPLE_EVERY).map((object) => object.object));
  const sources = new Map(corpus.objects.map((object) => [object.object, `${object.package} ${object.relativeSource}`]));
  const counts: CountsFile = {
    corpus: corpus.packages.map((entry) => `${entry.name} ${entry.version}`),
    sampleEvery: SAMPLE_EVERY,
    programTimeoutSeconds: PROGRAM_TIMEOUT_SECONDS,
    sample: previous?.sampleEvery === SAMPLE_EVERY ? { ...previous.sample } : {},
    all: { ...previous?.all },
  };
  const table = [
    '| kernel | objects | programs | judged | verdicts agree | lines agree | false accepts | rejected otherwise | no verdict (timed out) | boots, VM seconds |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const kernel of run.kernels) {
    const release = kernel.fetched.release;
    const agreement = compareObjectAnalyzer(kernel.run);
    const all = countsOf(kernel.run, agreement, corpus.objects.length);
    counts.all[release] = all;
    const sampled = { ...kernel.run, results: kernel.run.results.filter((result) => sample.has(result.object)) };
    counts.sample[release] = countsOf(sampled, compareObjectAnalyzer(sampled), sample.size);
    table.push(
      `| ${release} | ${all.objects} | ${all.programs} | ${all.judged} | ${all.verdictsAgree} | ${all.linesAgree} | ${all.falseAccepts} | ${all.rejectedOtherwise} | ${all.noVerdict} (${all.timedOut}) | ${kernel.boots}, ${kernel.bootSeconds.toFixed(0)} s |`,
    );
    for (const difference of [...agreement.disagreements, ...agreement.falseClaims]) {
      const where = sources.get(difference.result.object) ?? difference.result.object;
      process.stdout.write(`${release} differs: ${difference.description.replace(difference.result.object, where)}\n`);
    }
    for (const line of reasonsNotCompared(kernel.run, (object) => sources.get(object) ?? object, 20))
      process.stdout.write(`${release} not compared: ${line}\n`);
  }
  writeFileSync(path, `${JSON.stringify(counts, null, 2)}\n`);
  process.stdout.write(`${table.join('\n')}\n${run.wallSeconds.toFixed(0)} s in all → ${path}\n`);
  for (const failure of run.failures) process.stderr.write(`kernel-lab: ${failure.kernel.package}: ${failure.reason}\n`);
  return run.failures.length === 0 ? 0 : 1;
}

/**
 * scripts/kernel-lab.sh's entry. Not run when this file is loaded: `node --test out/test/` runs every
 * file under out/test, support modules included, and a usage error there would fail the suite.
 */
export function runCommandLine(args: string[]): void {
  main(args).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`kernel-lab: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}

/*
 * What the analyzer does not model yet, as measured: none today. Programs using what an old kernel
 * lacks (callbacks by address before 5.13, may_goto before 6.9, helpers past the kernel's
 * __BPF_FUNC_MAX_ID, sleepable uprobes before 6.0) are modeled by the kernel-lacks-feature rule.
 * Listed so that the test fails both when a new difference appears and when one of these is fixed
 * (then delete its line).
 */
export const KNOWN_DIFFERENCES: Record<string, string[]> = {};

/**
 * A fixture's expectations from the lab: one per program of every measured kernel (kernel = the
 * exact release), leaving out the programs KNOWN_DIFFERENCES lists for that release.
 */
export function labExpectations(fixture: Fixture): FixtureExpectation[] {
  const object = basename(fixture.object);
  return readMeasuredFiles().flatMap((file) =>
    Object.entries(file.objects[object] ?? {}).flatMap(([program, measured]) => {
      if (measured.verdict === 'error' || KNOWN_DIFFERENCES[file.release]?.includes(`${object} ${program}`)) return [];
      const expectation: FixtureExpectation = { program, kernel: file.release, accepted: measured.verdict === 'accepted' };
      if (measured.error !== undefined) expectation.error = measured.error;
      return [expectation];
    }),
  );
}

export interface Agreement {
  release: string;
  /** Programs the kernel gave a verdict for (accepted or rejected). */
  judged: number;
  verdictsAgree: number;
  /** Stack-depth lines (and 7.3's per-subprogram stack numbers) equal word for word. */
  linesAgree: number;
  /** Programs the analyzer accepts and the kernel rejects. */
  falseAccepts: number;
  /** One line per difference: "obj prog: ours … kernel …". */
  differences: string[];
}

/**
 * The analyzer's prediction for `file`'s kernel (`--kernel <exact release>`, JIT on as in the lab)
 * held to what that kernel said: verdict, error line and stack-depth line, word for word.
 */
export function compareWithMeasured(file: MeasuredFile, analyze: (object: string, release: string) => ProgramReport[]): Agreement {
  const agreement: Agreement = { release: file.release, judged: 0, verdictsAgree: 0, linesAgree: 0, falseAccepts: 0, differences: [] };
  for (const [object, programs] of Object.entries(file.objects)) {
    const reports = analyze(join(fixturesDirectory(), object), file.release);
    for (const [program, measured] of Object.entries(programs)) {
      if (measured.verdict === 'error') {
        agreement.differences.push(`${object} ${program}: the kernel gave no verdict (errno ${measured.errno})`);
        continue;
      }
      agreement.judged++;
      const ours = reports.find((report) => report.name === program);
      const verdict = ours?.verdicts[0];
      if (!ours || !verdict) {
        agreement.differences.push(`${object} ${program}: the analyzer does not report it`);
        continue;
      }
      const message = verdict.accepted ? undefined : (verdict.violations.find((v) => v.reportedByKernel) ?? verdict.violations[0])?.message;
      const kernelAccepts = measured.verdict === 'accepted';
      if (verdict.accepted === kernelAccepts && (kernelAccepts || message === measured.error)) agreement.verdictsAgree++;
      else {
        if (verdict.accepted && !kernelAccepts) agreement.falseAccepts++;
        agreement.differences.push(
          `${object} ${program}: ours ${verdict.accepted ? 'accepted' : `"${message}"`}, kernel ${kernelAccepts ? 'accepted' : `"${measured.error}"`}`,
        );
      }
      const ourLines = predictedStackLines(verdict);
      const kernelLines = kernelStackLines(measured.stackDepth, measured.subprograms);
      if (JSON.stringify(ourLines) === JSON.stringify(kernelLines)) agreement.linesAgree++;
      else agreement.differences.push(`${object} ${program}: ours ${JSON.stringify(ourLines)}, kernel ${JSON.stringify(kernelLines)}`);
    }
  }
  return agreement;
}
