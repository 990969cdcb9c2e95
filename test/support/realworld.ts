/**
 * The real-world corpus: BPF programs we did not write (kernel selftests, samples and tools/bpf from
 * two Debian kernel trees, xdp-tools, bcc's libbpf-tools as PCP vendors them and as Debian built
 * them, systemd, suricata), fetched from Debian's packages and built with clang-19 by
 * scripts/corpus.sh into the git-ignored .cache/corpus. Nothing of theirs is committed, not even
 * what a verifier said of them: a kernel's answers are measured live (measureOnRunningKernel) as a
 * list of KernelResults, and compareObjectAnalyzer / compareEstimator hold our analyzers to any such
 * list, so the kernel lab's virtual machines can feed the same comparison with their own kernels'.
 *
 * A program is compared when the verifier judged its stack: it was accepted, or rejected by a
 * stack rule. The rest never reached the verifier here (fentry without ftrace, missing test
 * modules, section names the system libbpf does not know) or were rejected for reasons that are
 * not about the stack; they stay to prove the analyzers never claim a stack violation there.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync, renameSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';

import { runningKernelProfile } from '../../server/src/probe/runningKernel';
import { SLEEPABLE_TRACING_ONLY_MESSAGE } from '../../server/src/rules/kernelProfile';
import { CALLBACK_LDIMM64_MESSAGE, FUNC_INFO_MISMATCH_MESSAGE, MAY_GOTO_UNKNOWN_MESSAGE } from '../../server/src/rules/stackRules';
import { analyzeObject } from '../../server/src/object/analyzeObject';
import { runningKernelBuildId } from '../../server/src/probe/kernelProbe';
import { kernelStackLines, predictedStackLines } from '../../server/src/lab/verifierLog';
import type { KernelProfile } from '../../server/src/rules/kernelProfile';
import type { VerdictReport } from '../../server/src/rules/report';
import { EstimateSession, estimateSource } from '../../server/src/source/estimateSource';
import { FrameEstimateCache } from '../../server/src/source/frameEstimate';
import { kernelVerifierAvailable, probeBinary, repositoryRoot, verifyProgramAsync } from './kernel';

/** One C file of the corpus that clang built, and how (the estimator is given the same). */
export interface CorpusObject {
  package: string;
  version: string;
  /** The C source; for an extracted object, the executable it was cut out of. */
  source: string;
  /** The source's path inside its package, e.g. "tools/testing/selftests/bpf/progs/exceptions.c". */
  relativeSource: string;
  object: string;
  /**
   * Cut out of a binary package's executable (a libbpf skeleton), as its distribution built it:
   * there is no C source to estimate, nor flags to build it again with.
   */
  extracted: boolean;
  includeDirs: string[];
  defines: Record<string, string>;
  /** The package's build in the cache (.cache/corpus/build/NAME_VERSION/KEY), which its kernel answers are kept beside. */
  packageKey: string;
}

export interface RealWorldCorpus {
  manifest: string;
  packages: { name: string; version: string }[];
  objects: CorpusObject[];
  /** C files clang did not build, with its first error: listed, not fatal. */
  failures: { package: string; source: string; error: string }[];
}

let corpusBuild: Promise<{ corpus?: RealWorldCorpus; reason?: string }> | undefined;

/**
 * Runs scripts/corpus.sh (which builds only what its cache lacks; the first run fetches and builds
 * for some minutes, its progress lines go to stderr) and reads its manifest; or says why it could not.
 */
export function buildRealWorldCorpus(): Promise<{ corpus?: RealWorldCorpus; reason?: string }> {
  corpusBuild ??= new Promise((resolve) => {
    const child = spawn('bash', [join(repositoryRoot(), 'scripts', 'corpus.sh')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      process.stderr.write(chunk);
    });
    child.on('error', (error) => resolve({ reason: `scripts/corpus.sh did not run: ${error.message}` }));
    child.on('close', (status) => {
      if (status !== 0) return resolve({ reason: `scripts/corpus.sh failed: ${stderr.trim().split('\n').pop() ?? `exit ${status}`}` });
      resolve({ corpus: readManifest(stdout.trim().split('\n').pop() ?? '') });
    });
  });
  return corpusBuild;
}

export function readManifest(manifest: string): RealWorldCorpus {
  const corpus: RealWorldCorpus = { manifest, packages: [], objects: [], failures: [] };
  const packages = new Map<string, string>();
  for (const line of readFileSync(manifest, 'utf8').split('\n')) {
    if (line === '') continue;
    const [status, name, version, source, object, includes, defines, error, packageKey] = line.split('\t');
    packages.set(name, version);
    if (status !== 'built' && status !== 'extracted') {
      corpus.failures.push({ package: `${name} ${version}`, source, error });
      continue;
    }
    // The package's folder is NAME_VERSION, an epoch's colon written as %3a (as apt names files).
    const folder = `/${name}_${version.replace(':', '%3a')}/`;
    const relativeSource = source.slice(source.indexOf(folder) + folder.length);
    const defined: Record<string, string> = { __TARGET_ARCH_x86: '1' };
    for (const flag of defines.split(' ').filter(Boolean)) {
      const [macro, value] = flag.replace(/^-D/, '').split('=');
      defined[macro] = value ?? '1';
    }
    // clang's -idirafter: the multiarch folder after everything else.
    const includeDirs = [...includes.split(':').filter(Boolean), '/usr/include/x86_64-linux-gnu'];
    corpus.objects.push({
      package: name,
      version,
      source,
      relativeSource,
      object,
      extracted: status === 'extracted',
      includeDirs,
      defines: defined,
      packageKey,
    });
  }
  corpus.packages = [...packages].map(([name, version]) => ({ name, version }));
  return corpus;
}

/** What one kernel's verifier said about one program. */
export interface KernelResult {
  /** The CorpusObject's object path. */
  object: string;
  program: string;
  section: string;
  /** ok and rejected are the verifier's verdicts; error means it never gave one. */
  status: 'ok' | 'rejected' | 'error';
  /** The verifier's "stack depth" line, e.g. "0+8+0". */
  stackDepth?: string;
  /**
   * The whole "stack depth ..." line and 7.3's "subprog N ..." lines, as a kernel of the lab printed
   * them in its own format (see verifierLog.ts). When present the analyzer's lines for that kernel
   * (its verdict's stackDepthLine) are compared with them instead of its stackDepths with stackDepth.
   */
  stackDepthLine?: string;
  subprogramLines?: string[];
  /** The verifier's error line for a rejection; why there was no verdict for an error. */
  error?: string;
}

/** A kernel's answers on the corpus, and the profile our analyzers judge for to compare with them. */
export interface KernelRun {
  kernel: string;
  profile: KernelProfile;
  results: KernelResult[];
}

/*
 * Objects written for iproute2's loader (ip route ... encap bpf, tc filter ... bpf) use section names
 * libbpf cannot map to a program type ("tcx/" is newer than the system libbpf 1.1): the probe loads
 * them as the type their loader gives them. Keyed by the source's path in its package.
 */
const LOADED_AS = new Map<string, string>([
  ['samples/bpf/lwt_len_hist.bpf.c:do_len_hist', 'lwt_out'],
  ['samples/bpf/test_cgrp2_tc.bpf.c:handle_egress', 'tc'],
  ['tools/testing/selftests/bpf/progs/sockmap_parse_prog.c:bpf_prog1', 'sk_skb/stream_parser'],
  ['tools/testing/selftests/bpf/progs/test_lwt_seg6local.c:__encap_srh', 'lwt_xmit'],
  ['tools/testing/selftests/bpf/progs/test_lwt_seg6local.c:__add_egr_x', 'lwt_seg6local'],
  ['tools/testing/selftests/bpf/progs/test_lwt_seg6local.c:__pop_egr', 'lwt_seg6local'],
  ['tools/testing/selftests/bpf/progs/test_lwt_seg6local.c:__inspect_t', 'lwt_seg6local'],
  ['tools/testing/selftests/bpf/progs/test_tc_edt.c:tc_prog', 'tc'],
  ['tools/testing/selftests/bpf/progs/test_xdp_vlan.c:xdp_prognum0', 'xdp'],
  ['tools/testing/selftests/bpf/progs/test_xdp_vlan.c:xdp_prognum1', 'xdp'],
  ['tools/testing/selftests/bpf/progs/test_xdp_vlan.c:xdp_prognum2', 'xdp'],
  ['tools/testing/selftests/bpf/progs/test_xdp_vlan.c:xdp_prognum3', 'xdp'],
  ['tools/testing/selftests/bpf/progs/test_xdp_vlan.c:_tc_progA', 'tc'],
  ['tools/testing/selftests/bpf/progs/test_xdp_meta.c:ing_cls', 'tc'],
  ['tools/testing/selftests/bpf/progs/test_xdp_meta.c:ing_xdp', 'xdp'],
  ['tools/testing/selftests/bpf/progs/test_tc_bpf.c:pkt_ptr', 'tc'],
]);

/** The program type the probe loads `program` of `object` as, where its section name does not say. */
export function loadedAs(object: CorpusObject, program: string): string | undefined {
  return LOADED_AS.get(`${object.relativeSource}:${program}`);
}

/** Every program of `object` that loadedAs names a type for, with that type. */
export function loadedAsOf(object: CorpusObject): { program: string; section: string }[] {
  const prefix = `${object.relativeSource}:`;
  return [...LOADED_AS].filter(([key]) => key.startsWith(prefix)).map(([key, section]) => ({ program: key.slice(prefix.length), section }));
}

/**
 * libbpf's programs, listed by llvm-readelf rather than by our own reader (so a program the analyzer
 * misses is still loaded and counted): function symbols in executable sections other than .text.
 */
export function listPrograms(object: string): { name: string; section: string }[] {
  const out = spawnSync(process.env.LLVM_READELF ?? 'llvm-readelf-19', ['-S', '-s', '-W', object], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (out.status !== 0) throw new Error(`llvm-readelf-19 failed on ${object}: ${out.error?.message ?? out.stderr}`);
  const sections = new Map<number, { name: string; type: string; flags: string }>();
  const programs: { name: string; section: string }[] = [];
  for (const line of out.stdout.split('\n')) {
    const section = /^\s*\[\s*(\d+)\]\s+(\S+)\s+(\S+)\s+[0-9a-f]+\s+[0-9a-f]+\s+[0-9a-f]+\s+[0-9a-f]+\s+(\S*)/.exec(line);
    if (section) {
      sections.set(Number(section[1]), { name: section[2], type: section[3], flags: section[4] });
      continue;
    }
    const symbol = /^\s*\d+:\s+[0-9a-f]+\s+\d+\s+FUNC\s+\S+\s+\S+\s+(\d+)\s+(\S+)/.exec(line);
    const home = symbol && sections.get(Number(symbol[1]));
    if (symbol && home && home.type === 'PROGBITS' && home.flags.includes('X') && home.name !== '.text') programs.push({ name: symbol[2], section: home.name });
  }
  return programs;
}

/**
 * Loads every program of the corpus into the running kernel and returns what its verifier said,
 * with the profile `check` without --kernel uses (the running kernel, probed by build-id); or why
 * bpf() cannot be used here. The answers are kept per package, beside its build in the cache
 * (PACKAGE_KEY.kernel-BUILDID-PROBE.json, the key naming the compiler and the package's jobs), under
 * the kernel's build-id and the probe's name (a hash of its source): the same kernel build gives
 * the same objects the same verdicts, so the second test file of a run, and a later run on this
 * kernel, use them instead of loading all again, and a package added to the corpus is the only one
 * loaded. A package that scripts/corpus.sh took from its earlier layout (one folder for all
 * packages) takes its answers from that folder's file of the same name.
 */
export async function measureOnRunningKernel(
  corpus: RealWorldCorpus,
  options: { progress?: (done: number, total: number) => void } = {},
): Promise<{ run?: KernelRun; reason?: string }> {
  const availability = kernelVerifierAvailable();
  if (!availability.available) return { reason: availability.reason ?? 'the kernel verifier is not available' };
  const { profile } = runningKernelProfile({ probe: 'now' });
  if (!profile.probed) return { reason: profile.unprobed?.join('; ') ?? 'the running kernel could not be probed' };
  const keptName = `kernel-${runningKernelBuildId()}-${basename(probeBinary().path ?? 'probe')}.json`;
  const results: KernelResult[] = [];
  for (const packageKey of new Set(corpus.objects.map((object) => object.packageKey))) {
    const objects = corpus.objects.filter((object) => object.packageKey === packageKey);
    const kept = `${packageKey}.${keptName}`;
    const earlier = join(dirname(realpathSync(packageKey)), keptName);
    if (!existsSync(kept) && existsSync(earlier)) {
      // That file answered for every program of the folder's objects (those with none have no line).
      const paths = new Set(objects.map((object) => object.object));
      const taken = (JSON.parse(readFileSync(earlier, 'utf8')) as KernelRun).results.filter((result) => paths.has(result.object));
      if (taken.length > 0) keep(kept, taken);
    }
    if (!existsSync(kept)) keep(kept, await loadAll(objects, (done, total) => options.progress?.(results.length + done, results.length + total)));
    results.push(...readKept(kept));
  }
  return { run: { kernel: release(), profile, results } };
}

// Objects are kept relative to the answers' file: the same cache may be reached through another
// checkout's path (a worktree's .cache linked to a shared one), and the answers must still be found.
function keep(file: string, results: KernelResult[]): void {
  const folder = dirname(file);
  writeFileSync(`${file}.${process.pid}`, JSON.stringify(results.map((result) => ({ ...result, object: relative(folder, result.object) }))));
  renameSync(`${file}.${process.pid}`, file);
}

/** What keep() wrote, with the objects' paths made whole again (older files hold absolute ones). */
function readKept(file: string): KernelResult[] {
  const folder = dirname(file);
  return (JSON.parse(readFileSync(file, 'utf8')) as KernelResult[]).map((result) => ({ ...result, object: resolve(folder, result.object) }));
}

/** Every program of `objects` loaded into the running kernel, two at a time: the probe spends much of its time starting and opening the object. */
async function loadAll(objects: CorpusObject[], progress: (done: number, total: number) => void): Promise<KernelResult[]> {
  const tasks = objects.flatMap((object) => listPrograms(object.object).map((program) => ({ object, ...program })));
  const results: KernelResult[] = [];
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const index = next++;
      const { object, name, section } = tasks[index];
      if (index % 500 === 0) progress(index, tasks.length);
      const result: KernelResult = { object: object.object, program: name, section, status: 'error' };
      try {
        const verdict = await verifyProgramAsync(object.object, name, { section: loadedAs(object, name) });
        result.status = verdict.accepted ? 'ok' : 'rejected';
        if (verdict.stackDepths !== undefined) result.stackDepth = verdict.stackDepths;
        if (verdict.error !== undefined) result.error = verdict.error;
      } catch (error) {
        result.error = (error as Error).message.split('\n')[0];
      }
      results[index] = result;
    }
  };
  await Promise.all([worker(), worker()]);
  return results;
}

/** The messages of check_max_stack_depth, of do_check's frame limit and of the refusals of recursion: the stack rules. */
const STACK_RULE_ERRORS = [
  /^tail_calls are not allowed when call stack of previous frames is \d+ bytes/,
  /^combined stack size of \d+ calls is \d+/,
  /^the call stack of \d+ frames is too deep/,
  /^recursive call from \S+\(\) to \S+\(\)$/,
  /^back-edge from insn \d+ to \d+$/,
];

export function isStackRuleError(message: string | undefined): boolean {
  return message !== undefined && STACK_RULE_ERRORS.some((pattern) => pattern.test(message));
}

/**
 * The refusals of rule kernel-lacks-feature (stackRules.ts): what an old kernel says of a helper,
 * an opcode, a callback by address or a sleepable kind it does not have. The analyzer predicts
 * these too, so a program refused for one of them is compared like one refused by a stack rule.
 */
const MISSING_FEATURE_ERRORS = [
  /^invalid func unknown#\d+$/,
  new RegExp(`^${MAY_GOTO_UNKNOWN_MESSAGE}$`),
  new RegExp(`^${FUNC_INFO_MISMATCH_MESSAGE}$`),
  new RegExp(`^${CALLBACK_LDIMM64_MESSAGE}$`),
  new RegExp(`^${SLEEPABLE_TRACING_ONLY_MESSAGE.replace(/[/]/g, '\\/')}$`),
];

/**
 * The helper ids libbpf writes in place of an instruction it could not relocate (relo_core.c's
 * poisoned call, 0xbad2310 "bad relo", and its poisoned kfunc calls from 2002000000): the kernel
 * then says "invalid func unknown#195896080" of a call the object never made.
 */
function isLibbpfPoison(message: string): boolean {
  const id = Number(/^invalid func unknown#(\d+)$/.exec(message)?.[1]);
  return id === 0xbad2310 || id >= 2_000_000_000;
}

export function isMissingFeatureError(message: string | undefined): boolean {
  return message !== undefined && !isLibbpfPoison(message) && MISSING_FEATURE_ERRORS.some((pattern) => pattern.test(message));
}

/**
 * Whether the verifier judged what the analyzers model: accepted, or rejected by a stack rule or for
 * a feature the kernel lacks.
 */
export function isCompared(result: KernelResult): boolean {
  return result.status === 'ok' || (result.status === 'rejected' && (isStackRuleError(result.error) || isMissingFeatureError(result.error)));
}

/** How an analyzer's report of one program compares with what the kernel said. */
export interface KernelComparison {
  /** Whether the kernel judged the program's stack (see isCompared). */
  compared: boolean;
  /** Whether the analyzer reported the program at all. */
  reported: boolean;
  lineAgrees: boolean;
  /** Same accept or reject, and for a rejection the same first message; undefined when not reported. */
  verdictAgrees?: boolean;
  /** For a program the kernel rejected for another reason: the stack violation the analyzer claims. */
  falseClaim?: string;
  /** One line for a failure message: both sides' line and verdict. */
  description: string;
}

/** The part of a ProgramReport (object or estimate) the comparison reads. */
interface ReportedProgram {
  stackDepths: string;
  verdicts: (Pick<VerdictReport, 'accepted' | 'stackDepthLine' | 'subprogramStackLines'> & { violations: { message: string; reportedByKernel?: boolean }[] })[];
}

/** Compares an analyzer's report of a program (its first verdict) with the kernel's result. */
export function compareWithKernel(result: KernelResult, ours: ReportedProgram | undefined, analyzer: string): KernelComparison {
  const verdict = ours?.verdicts[0];
  const violation = verdict?.violations.find((candidate) => candidate.reportedByKernel) ?? verdict?.violations[0];
  const kernelAccepted = result.status === 'ok';
  const inKernelFormat = result.stackDepthLine !== undefined;
  const kernelLines = inKernelFormat ? kernelStackLines(result.stackDepthLine, result.subprogramLines) : [result.stackDepth];
  const ourLines = !inKernelFormat ? [ours?.stackDepths] : verdict ? predictedStackLines(verdict) : [undefined];
  const description = `${result.object}:${result.program}: kernel ${kernelLines.join(' / ')} ${kernelAccepted ? 'accepted' : `"${result.error}"`}, ${analyzer} ${ourLines.join(' / ')} ${
    verdict === undefined ? 'not reported' : verdict.accepted ? 'accepted' : `"${violation?.message}"`
  }`;
  if (!isCompared(result)) {
    // Only a stack violation claimed there is false: a missing feature the kernel did not reach,
    // because it stopped earlier for a reason of its own, may still be missing.
    const claims = result.status === 'rejected' && verdict !== undefined && !verdict.accepted && isStackRuleError(violation?.message);
    return { compared: false, reported: ours !== undefined, lineAgrees: false, falseClaim: claims ? violation?.message : undefined, description };
  }
  const verdictAgrees =
    verdict === undefined
      ? undefined
      : verdict.accepted === kernelAccepted && (kernelAccepted || result.error?.startsWith(violation?.message ?? '\0') === true);
  const lineAgrees = ours !== undefined && JSON.stringify(ourLines) === JSON.stringify(kernelLines);
  return { compared: true, reported: ours !== undefined, lineAgrees, verdictAgrees, description };
}

/** One program where an analyzer and the kernel differ, and both sides' words for it. */
export interface Difference {
  result: KernelResult;
  description: string;
}

/** The tallies of one analyzer against one kernel run. */
export interface Agreement {
  /** Programs whose stack the kernel judged. */
  judged: number;
  reported: number;
  linesAgree: number;
  verdictsAgree: number;
  /** Judged programs the kernel rejected (by a stack rule) and the analyzer accepts: also in disagreements. */
  falseAccepts: Difference[];
  /** Rejected for something else than the stack, and never loaded (no verdict). */
  rejectedOtherwise: number;
  noVerdict: number;
  /** Judged programs the analyzer did not give the kernel's line or verdict. */
  disagreements: Difference[];
  /** Programs rejected for something else that the analyzer says break a stack rule. */
  falseClaims: Difference[];
}

function tally(run: KernelRun, reportOf: (result: KernelResult) => ReportedProgram | undefined, analyzer: string): Agreement {
  const agreement: Agreement = {
    judged: 0,
    reported: 0,
    linesAgree: 0,
    verdictsAgree: 0,
    falseAccepts: [],
    rejectedOtherwise: 0,
    noVerdict: 0,
    disagreements: [],
    falseClaims: [],
  };
  for (const result of run.results) {
    const ours = reportOf(result);
    const comparison = compareWithKernel(result, ours, analyzer);
    if (!comparison.compared) {
      if (result.status === 'error') agreement.noVerdict++;
      else agreement.rejectedOtherwise++;
      if (comparison.falseClaim)
        agreement.falseClaims.push({
          result,
          description: `${result.object}:${result.program}: kernel rejects it for "${result.error}", ${analyzer} claims "${comparison.falseClaim}"`,
        });
      continue;
    }
    agreement.judged++;
    if (comparison.reported) agreement.reported++;
    if (comparison.lineAgrees) agreement.linesAgree++;
    if (comparison.verdictAgrees) agreement.verdictsAgree++;
    if (!comparison.lineAgrees || !comparison.verdictAgrees) agreement.disagreements.push({ result, description: comparison.description });
    if (result.status === 'rejected' && ours?.verdicts[0]?.accepted === true) agreement.falseAccepts.push({ result, description: comparison.description });
  }
  return agreement;
}

/** Groups a run's results by object, in the run's order. */
function objectsOf(run: KernelRun): string[] {
  return [...new Set(run.results.map((result) => result.object))];
}

/** `check` (analyzeObject with the run's profile) on every object of the run, held to the run's answers. */
export function compareObjectAnalyzer(run: KernelRun): Agreement {
  const reports = new Map(objectsOf(run).map((object) => [object, analyzeObject(new Uint8Array(readFileSync(object)), object, [run.profile]).report] as const));
  return tally(run, (result) => reports.get(result.object)?.programs.find((candidate) => candidate.name === result.program), 'check');
}

/** How the estimator's lines compare with the kernel's beyond "exact". */
export interface EstimateAgreement extends Agreement {
  /** Judged programs whose every frame is in the kernel's 16-byte bucket (same number of frames). */
  inBucket: number;
  /** Judged programs whose estimated frames add up to less, or more, than the kernel's. */
  under: number;
  over: number;
}

const sumOf = (line: string | undefined) => (line ?? '').split('+').reduce((total, depth) => total + Number(depth || 0), 0);

/**
 * The source estimator (no compiler) on the source of every object of the run, with the include
 * folders and defines clang had, held to the run's answers. Objects extracted from executables have
 * no source: their programs are left out of the tallies.
 */
export async function compareEstimator(everything: KernelRun, corpus: RealWorldCorpus): Promise<EstimateAgreement> {
  const byObject = new Map(corpus.objects.map((object) => [object.object, object]));
  const run = { ...everything, results: everything.results.filter((result) => byObject.get(result.object)?.extracted !== true) };
  // One cache, never written to disk: the test measures the estimator, not a previous run.
  const cache = new FrameEstimateCache();
  const reports = new Map<string, Awaited<ReturnType<typeof estimateSource>>>();
  // Only sources the kernel said something about: the others cannot be compared.
  const wanted = new Set(run.results.filter((result) => result.status !== 'error').map((result) => result.object));
  for (const object of objectsOf(run).filter((candidate) => wanted.has(candidate))) {
    const built = byObject.get(object);
    if (!built) continue;
    const session = new EstimateSession(cache);
    reports.set(
      object,
      await estimateSource(
        built.source,
        readFileSync(built.source, 'utf8'),
        [run.profile],
        { includeDirs: built.includeDirs, defines: built.defines },
        session,
      ),
    );
    session.dispose();
  }
  const ours = (result: KernelResult) => reports.get(result.object)?.programs.find((candidate) => candidate.name === result.program);
  const agreement: EstimateAgreement = { ...tally(run, ours, 'estimate'), inBucket: 0, under: 0, over: 0 };
  for (const result of run.results.filter(isCompared)) {
    const estimate = ours(result)?.stackDepths;
    if (estimate === undefined) continue;
    const kernel = (result.stackDepth ?? '').split('+').map(Number);
    const frames = estimate.split('+').map(Number);
    if (frames.length === kernel.length && frames.every((depth, index) => Math.ceil(depth / 16) === Math.ceil(kernel[index] / 16))) agreement.inBucket++;
    if (sumOf(estimate) < sumOf(result.stackDepth)) agreement.under++;
    else if (sumOf(estimate) > sumOf(result.stackDepth)) agreement.over++;
  }
  return agreement;
}
