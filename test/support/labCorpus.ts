/**
 * The real-world corpus in the kernel lab: every program of the corpus (test/support/realworld.ts)
 * loaded in each lab kernel under QEMU, and what each verifier said turned into a KernelRun, so that
 * compareObjectAnalyzer holds `check --kernel <exact release>` to it exactly as it holds `check` to
 * the running kernel.
 *
 * Under TCG a kernel verifies a few programs a second, so the answers are cached in
 * .cache/lab/corpus/<package>_<package version>/<loader>.json, keyed by each object's content hash
 * (and the section overrides it is loaded with): the same kernel package, the same loader build
 * (its name is a hash of its source) and the same bytes give the same verdicts, so a second run
 * boots nothing, and a grown corpus boots only its new objects. The objects a run lacks are split
 * into boots of a few dozen, run `jobs` VMs at a time; each program has a time limit in the VM,
 * and a VM that prints nothing for longer than that is killed with the program it hung on named.
 * Nothing of this is committed (the corpus is not ours); test/lab/corpus.counts.json keeps only counts.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, constants } from 'node:os';
import { basename, join } from 'node:path';

import {
  type FetchedKernel,
  type LabKernel,
  LabError,
  type LabVerdict,
  type SectionOverride,
  bootKernel,
  buildLoader,
  fetchKernel,
  loaderNews,
  writeAtomically,
} from '../../server/src/lab/kernelLab';
import { parseKernelProfiles } from '../../server/src/rules/kernelProfile';
import { type Agreement, type CorpusObject, type KernelResult, type KernelRun, isCompared, loadedAsOf } from './realworld';

/*
 * Measured under TCG on a 2-core machine (see the README's kernel lab table): most programs take
 * well under a second; a few selftests that drive the verifier to its million-instruction limit
 * take minutes. The cap turns those into "no verdict (timed out)", listed, never agreement.
 */
export const PROGRAM_TIMEOUT_SECONDS = 30;
/**
 * CI's sample: one object in this many (corpusSample): 137 objects, 489 programs a kernel, none of
 * them over the time limit. Cold, the five kernels took 2.3 minutes (10 boots, two VMs) on two cores
 * at a load of 10; one in 8 (718 programs, one over the limit) took 4.7 at a load of 12.
 */
export const SAMPLE_EVERY = 10;
/** Under load a boot costs up to 30 s before its first program; 100 objects take one to three minutes. */
export const OBJECTS_PER_BOOT = 100;

/** What one program's load said, as kept in the cache (the verifier's log is not kept). */
interface StoredVerdict {
  program: string;
  section: string;
  status: LabVerdict['status'];
  errno: number;
  error?: string;
  stackDepthLine?: string;
  subprogramLines?: string[];
  timedOut?: number;
  /** For status "error": libbpf's news about the load (loaderNews), which says why it got no verdict. */
  loaderNews?: string[];
}

interface StoredObject {
  programs: StoredVerdict[];
  /** The per-program limit the object was loaded with, when one of its programs hit it. */
  timeout?: number;
}

type KernelCache = Record<string, StoredObject>;

export interface LabCorpusOptions {
  root: string;
  cacheDir?: string;
  /** Where the kernels' answers are kept; default CACHE/lab/corpus. */
  answersDir?: string;
  /** VMs at a time; default 2 (the machines have 2 cores; each TCG VM keeps one busy). */
  jobs?: number;
  programTimeoutSeconds?: number;
  objectsPerBoot?: number;
  /** One line per kernel and per boot. */
  progress?: (message: string) => void;
  signal?: AbortSignal;
}

export interface LabCorpusKernel {
  fetched: FetchedKernel;
  run: KernelRun;
  /** Objects whose answers came from the cache, and those booted now. */
  cachedObjects: number;
  bootedObjects: number;
  boots: number;
  /** Seconds this kernel's VMs ran (summed over its boots; they may overlap other kernels'). */
  bootSeconds: number;
  /** Programs the VM gave up on after the per-program limit. */
  timedOut: KernelResult[];
}

export interface LabCorpusRun {
  kernels: LabCorpusKernel[];
  /** Kernels that could not be fetched, or a boot of which failed, with the one-line reason. */
  failures: { kernel: LabKernel; reason: string }[];
  wallSeconds: number;
}

/** Which of the corpus's programs are loaded as another section's type, by object path. */
function overridesOf(object: CorpusObject): SectionOverride[] {
  return loadedAsOf(object).map((override) => ({ object: object.object, ...override }));
}

/** The cache key of an object: its bytes and how its programs are loaded. */
function objectKey(object: CorpusObject, overrides: readonly SectionOverride[]): string {
  const hash = createHash('sha256').update(new Uint8Array(readFileSync(object.object)));
  for (const override of overrides) hash.update(`\0${override.program}=${override.section}`);
  return hash.digest('hex');
}

function cachePath(answersDir: string, fetched: FetchedKernel, loader: string): string {
  return join(answersDir, `${fetched.kernel.package}_${fetched.packageVersion}`, `${basename(loader)}.json`);
}

function readCache(path: string): KernelCache {
  if (!existsSync(path)) return {};
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as KernelCache;
  } catch {
    return {}; // A cache that does not parse is measured again.
  }
}

/** Adds `entries` to the file, keeping what another run wrote since this one read it. */
function addToCache(path: string, entries: KernelCache): void {
  writeAtomically(path, JSON.stringify({ ...readCache(path), ...entries }));
}

function stored(verdict: LabVerdict): StoredVerdict {
  const entry: StoredVerdict = { program: verdict.program, section: verdict.section, status: verdict.status, errno: verdict.errno };
  if (verdict.error !== undefined) entry.error = verdict.error;
  if (verdict.status !== 'error' && verdict.stackDepthLine !== undefined) entry.stackDepthLine = verdict.stackDepthLine;
  if (verdict.status !== 'error' && verdict.subprogramLines.length > 0) entry.subprogramLines = verdict.subprogramLines;
  if (verdict.timedOut !== undefined) entry.timedOut = verdict.timedOut;
  if (verdict.status === 'error') {
    const news = loaderNews(verdict.loaderMessages);
    if (news.length > 0) entry.loaderNews = news;
  }
  return entry;
}

/** A cached program's answer as the comparison's KernelResult. */
function kernelResult(object: CorpusObject, stored: StoredVerdict): KernelResult {
  // Answers kept before labVerdict called a log of statistics alone "error" (see there) say "rejected" without an error.
  const entry: StoredVerdict = stored.status === 'rejected' && stored.error === undefined ? { ...stored, status: 'error' } : stored;
  const result: KernelResult = { object: object.object, program: entry.program, section: entry.section, status: entry.status };
  if (entry.status !== 'error' && entry.stackDepthLine !== undefined) {
    result.stackDepthLine = entry.stackDepthLine;
    result.stackDepth = entry.stackDepthLine.replace(/^stack depth /, '');
    result.subprogramLines = entry.subprogramLines ?? [];
  }
  if (entry.status === 'rejected') result.error = entry.error;
  else if (entry.status === 'error') {
    result.error =
      entry.timedOut !== undefined
        ? `timed out after ${entry.timedOut} s in the VM`
        : entry.program === ''
          ? `libbpf cannot open the object (${errnoName(entry.errno)})`
          : `refused before the verifier judged it: ${entry.loaderNews?.[0] ?? 'no log, or statistics alone'} (${errnoName(entry.errno)})`;
  }
  return result;
}

/** "ENOENT (errno 2)", for a reason a reader can look up. */
function errnoName(errno: number): string {
  const name = Object.entries(constants.errno).find(([, value]) => value === errno)?.[0];
  return name === undefined ? `errno ${errno}` : `${name}, errno ${errno}`;
}

/** Whether a cached object can stand for a load with this time limit. */
function usable(entry: StoredObject | undefined, programTimeoutSeconds: number): entry is StoredObject {
  return entry !== undefined && (entry.timeout === undefined || entry.timeout >= programTimeoutSeconds);
}

interface PendingBoot {
  kernel: number;
  objects: { object: CorpusObject; key: string; overrides: SectionOverride[] }[];
}

/**
 * Loads every program of `objects` in each of `kernels`, from the cache where it can, and returns
 * one KernelRun per kernel that ran (profile: that exact release, JIT on, as the lab's kernels run).
 */
export async function runCorpusInLab(kernels: readonly LabKernel[], objects: readonly CorpusObject[], options: LabCorpusOptions): Promise<LabCorpusRun> {
  const started = Date.now();
  const cacheDir = options.cacheDir ?? join(options.root, '.cache');
  const programTimeoutSeconds = options.programTimeoutSeconds ?? PROGRAM_TIMEOUT_SECONDS;
  const objectsPerBoot = options.objectsPerBoot ?? OBJECTS_PER_BOOT;
  const jobs = Math.max(1, options.jobs ?? Math.min(2, availableParallelism()));
  const say = options.progress ?? (() => undefined);
  const loader = await buildLoader({ root: options.root, cacheDir });
  const keyed = objects.map((object) => {
    const overrides = overridesOf(object);
    return { object, key: objectKey(object, overrides), overrides };
  });

  const failures: LabCorpusRun['failures'] = [];
  const states: { fetched: FetchedKernel; path: string; cache: KernelCache; cachedObjects: number; boots: number; bootSeconds: number; failed: boolean }[] = [];
  const pending: PendingBoot[] = [];
  for (const kernel of kernels) {
    let fetched: FetchedKernel;
    try {
      fetched = await fetchKernel(kernel, { root: options.root, cacheDir, progress: say, signal: options.signal });
    } catch (error) {
      if (!(error instanceof LabError) || options.signal?.aborted) throw error;
      failures.push({ kernel, reason: error.message });
      continue;
    }
    const path = cachePath(options.answersDir ?? join(cacheDir, 'lab', 'corpus'), fetched, loader);
    const cache = readCache(path);
    const missing = keyed.filter((entry) => !usable(cache[entry.key], programTimeoutSeconds));
    const index = states.length;
    states.push({ fetched, path, cache, cachedObjects: keyed.length - missing.length, boots: 0, bootSeconds: 0, failed: false });
    for (let first = 0; first < missing.length; first += objectsPerBoot) pending.push({ kernel: index, objects: missing.slice(first, first + objectsPerBoot) });
    const boots = Math.ceil(missing.length / objectsPerBoot);
    say(
      `${fetched.release}: ${keyed.length} objects, ${keyed.length - missing.length} from the cache, ${missing.length} to load in ${boots} boot${boots === 1 ? '' : 's'}`,
    );
  }

  let nextBoot = 0;
  let finishedBoots = 0;
  const worker = async (): Promise<void> => {
    while (nextBoot < pending.length) {
      if (options.signal?.aborted) throw new LabError('cancelled');
      const boot = pending[nextBoot++];
      const state = states[boot.kernel];
      if (state.failed) continue;
      const paths = boot.objects.map((entry) => entry.object.object);
      const bootOnce = () =>
        bootKernel(state.fetched, paths, {
          root: options.root,
          cacheDir,
          signal: options.signal,
          programTimeoutSeconds,
          // Booting a loaded machine's TCG VM takes up to a minute before the first line.
          idleTimeoutSeconds: programTimeoutSeconds + 120,
          // The idle limit ends a hung VM; the whole boot's limit only bounds one that never stops talking.
          timeoutSeconds: 4 * 3600,
          progressEvery: 0,
          sections: boot.objects.flatMap((entry) => entry.overrides),
        });
      try {
        // One retry: a boot can fail for the host's load alone (a missed timer at boot); twice is the lab's failure.
        const result = await bootOnce().catch((error: unknown) => {
          if (!(error instanceof LabError) || options.signal?.aborted) throw error;
          say(`${state.fetched.release}: ${error.message}; booting again`);
          return bootOnce();
        });
        const byObject = new Map<string, StoredVerdict[]>();
        for (const verdict of result.verdicts) byObject.set(verdict.object, [...(byObject.get(verdict.object) ?? []), stored(verdict)]);
        const entries: KernelCache = {};
        for (const entry of boot.objects) {
          const programs = byObject.get(entry.object.object) ?? [];
          const timedOut = programs.some((program) => program.timedOut !== undefined);
          entries[entry.key] = timedOut ? { programs, timeout: programTimeoutSeconds } : { programs };
        }
        Object.assign(state.cache, entries);
        addToCache(state.path, entries);
        state.boots++;
        finishedBoots++;
        state.bootSeconds += result.bootSeconds;
        const timedOut = result.verdicts.filter((verdict) => verdict.timedOut !== undefined).length;
        say(
          `${state.fetched.release}: boot ${state.boots} (${finishedBoots}/${pending.length} of the run): ${boot.objects.length} objects, ` +
            `${result.verdicts.length} programs in ${result.bootSeconds.toFixed(0)} s (${(result.verdicts.length / result.bootSeconds).toFixed(1)}/s)${timedOut > 0 ? `, ${timedOut} timed out` : ''}`,
        );
      } catch (error) {
        if (!(error instanceof LabError) || options.signal?.aborted) throw error;
        state.failed = true;
        failures.push({ kernel: state.fetched.kernel, reason: error.message });
        say(`${state.fetched.release}: ${error.message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: jobs }, () => worker()));

  const ran = states.filter((state) => !state.failed);
  return {
    kernels: ran.map((state) => {
      const results = keyed.flatMap(({ object, key }) => (state.cache[key]?.programs ?? []).map((entry) => kernelResult(object, entry)));
      const profile = parseKernelProfiles([state.fetched.release], true).profiles[0];
      return {
        fetched: state.fetched,
        run: { kernel: state.fetched.release, profile, results },
        cachedObjects: state.cachedObjects,
        bootedObjects: keyed.length - state.cachedObjects,
        boots: state.boots,
        bootSeconds: state.bootSeconds,
        timedOut: results.filter(isTimedOut),
      };
    }),
    failures,
    wallSeconds: (Date.now() - started) / 1000,
  };
}

/**
 * The deterministic sample CI runs: the objects whose package and source path hash to 0 modulo
 * `every`. Chosen by name, not by position, so that a grown corpus keeps the same objects in it.
 */
export function corpusSample(objects: readonly CorpusObject[], every: number): CorpusObject[] {
  return objects.filter((object) => createHash('sha256').update(`${object.package} ${object.relativeSource}`).digest().readUInt32BE(0) % every === 0);
}

/** The lab's numbers for one kernel on a set of objects: what test/lab/corpus-counts.json keeps. */
export interface CorpusCounts {
  objects: number;
  programs: number;
  /** Accepted, or rejected by a stack rule: the programs whose stack the kernel judged. */
  judged: number;
  verdictsAgree: number;
  linesAgree: number;
  falseAccepts: number;
  /** Rejected for something else than the stack (not compared). */
  rejectedOtherwise: number;
  /** Never reached a verdict in the VM: no attach target, a section libbpf does not know, a timeout. */
  noVerdict: number;
  timedOut: number;
}

/** test/lab/corpus-counts.json: the numbers `bash scripts/kernel-lab.sh measure --corpus` measured. */
export interface CountsFile {
  /** The corpus's packages, "name version". */
  corpus: string[];
  sampleEvery: number;
  programTimeoutSeconds: number;
  /** By exact release: the CI sample's numbers and the whole corpus's. */
  sample: Record<string, CorpusCounts>;
  all: Record<string, CorpusCounts>;
}

export function countsFilePath(root: string): string {
  return join(root, 'test', 'lab', 'corpus-counts.json');
}

export function countsOf(run: KernelRun, agreement: Agreement, objects: number): CorpusCounts {
  return {
    objects,
    programs: run.results.length,
    judged: agreement.judged,
    verdictsAgree: agreement.verdictsAgree,
    linesAgree: agreement.linesAgree,
    falseAccepts: agreement.falseAccepts.length,
    rejectedOtherwise: agreement.rejectedOtherwise,
    noVerdict: agreement.noVerdict,
    timedOut: run.results.filter(isTimedOut).length,
  };
}

export function isTimedOut(result: KernelResult): boolean {
  return result.status === 'error' && /^timed out /.test(result.error ?? '');
}

/**
 * Why the programs that were not compared were not: the kernel's messages with their numbers
 * replaced by N, most frequent first, each with a first example, e.g.
 * "412 rejected: invalid func unknown#N (e.g. progs/foo.c:bar)". `nameOf` names an object.
 */
export function reasonsNotCompared(run: KernelRun, nameOf: (object: string) => string, top = 12): string[] {
  const reasons = new Map<string, { count: number; example: string }>();
  for (const result of run.results) {
    if (isCompared(result)) continue;
    const reason = `${result.status === 'error' ? 'no verdict' : 'rejected'}: ${(result.error ?? '(no message)').replace(/\d+/g, 'N').slice(0, 100)}`;
    const seen = reasons.get(reason);
    if (seen) seen.count++;
    else reasons.set(reason, { count: 1, example: `${nameOf(result.object)}:${result.program}` });
  }
  const sorted = [...reasons].sort((a, b) => b[1].count - a[1].count || a[0].localeCompare(b[0]));
  const shown = sorted.slice(0, top).map(([reason, { count, example }]) => `${count} ${reason} (e.g. ${example})`);
  const rest = sorted.slice(top).reduce((total, [, { count }]) => total + count, 0);
  return rest > 0 ? [...shown, `${rest} for ${sorted.length - top} other reasons`] : shown;
}
