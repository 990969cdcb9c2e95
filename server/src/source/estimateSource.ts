/**
 * The source side's front door, as analyzeObject is the object side's: C text in, every function's
 * estimated frame and every program's verdict out, without compiling. EstimateSession keeps what one
 * open document's estimates share between calls.
 */
import {
  type ProgramReport,
  type SubprogramReport,
  addStackDepthLines,
  addVerifierSubprograms,
  printAsRejected,
  printedStackDepths,
  verdictReport,
} from '../rules/report';
import type { FrameGraph } from '../rules/frameGraph';
import type { KernelProfile } from '../rules/kernelProfile';
import { judgeStack } from '../rules/stackRules';
import {
  FRAME_TIME_BUDGET_MS,
  type FunctionEstimate,
  type FunctionFrame,
  FrameEstimateCache,
  estimateFrames,
  estimateFramesFromCache,
  frameOf,
} from './frameEstimate';
import { CDocument, MAX_PARSED_CHARACTERS, parseBudgetMs, workClock } from './parser';
import type { Tree } from './parser';
import { buildSourceFrameGraphs } from './sourceCallGraph';
import { type HeaderFunctionSource, type ReadFile, StatCheckedFiles } from './headerIndex';
import { type TranslationUnit, type TranslationUnitOptions, TranslationUnitCache, analyzeTranslationUnit } from './translationUnit';

export interface EstimateReport {
  file: string;
  functions: FunctionFrame[];
  programs: ProgramReport[];
  /**
   * What could not be read: headers not found (their types then count 0 bytes), declarations not
   * understood. `line` and `column` (1-based) point into `file` when the problem has a place there.
   */
  problems: EstimateProblem[];
  /**
   * The estimate stopped short of the whole file: macro expansion or the frame walk ran out of its
   * budget (a problem says which). Functions marked `partial` and the programs that call them show
   * lower bounds; functions not reached are absent. Absent when the estimate is whole.
   */
  partial?: true;
}

/** The least time a parse gets, however long the main file's preprocessing took (plus 1 ms per KB). */
const MIN_PARSE_BUDGET_MS = 100;

/** What estimateSource takes besides the translation unit's options. */
export interface EstimateOptions extends TranslationUnitOptions {
  /**
   * Milliseconds the walk of the file's functions may take before the estimate ends partial;
   * FRAME_TIME_BUDGET_MS by default. Macro expansion has its own budget (preprocessor.ts).
   */
  timeBudgetMs?: number;
}

export interface EstimateProblem {
  message: string;
  offset?: number;
  line?: number;
  column?: number;
}

/** Problems with their line and column in `text`, the main file. */
function placedProblems(problems: readonly { message: string; offset?: number }[], text: string): EstimateProblem[] {
  return problems.map(({ message, offset }) => {
    if (offset === undefined || offset < 0 || offset > text.length) return { message };
    const before = text.slice(0, offset);
    const line = before.split('\n').length;
    return { message, offset, line, column: offset - before.lastIndexOf('\n') };
  });
}

/**
 * What estimateSource keeps between calls on one document: its syntax tree (reparsed incrementally,
 * tree.edit + parse(text, oldTree), from the changed span of the preprocessed text) and the walks of
 * its functions. One per open document; calls on the same session may overlap (everything after the
 * first await is synchronous). dispose() frees the tree.
 */
export class EstimateSession {
  private documentPromise: Promise<CDocument> | undefined;
  /** One document per header that defines functions, by path, reparsed incrementally as well. */
  private readonly headerDocuments = new Map<string, Promise<CDocument>>();
  private disposed = false;

  /** The document's include prefix as last analysed (headers' types and macros), reused while it stays the same. */
  readonly units = new TranslationUnitCache(2);

  /** Headers as last read, checked against their size and mtime before reuse. */
  private readonly files = new StatCheckedFiles();
  private prepared: { unit: TranslationUnit; timer: NodeJS.Timeout } | undefined;

  /** Why the last parse gave no tree, until one does. */
  parseFailure: string | undefined;

  /** `cache` keeps the walks of functions; by default the process-wide one, which also persists them on disk. */
  constructor(readonly cache: FrameEstimateCache = processFrameEstimateCache) {}

  /**
   * A ReadFile that skips re-reading unchanged files (vmlinux.h is 5 MB): wraps `inner`, or reads
   * from disk. A caller's own readFile (open editor buffers) is always asked, never cached.
   */
  readFile(inner?: ReadFile): ReadFile {
    return inner ?? this.files.read;
  }

  /** Whether a parse of the document exists or is under way. */
  get hasDocument(): boolean {
    return this.documentPromise !== undefined;
  }

  /**
   * Builds the tree of `unit` soon, when the process is otherwise idle, and walks its functions once
   * (the result is discarded: it compiles the walker and decodes the types the file uses), so that
   * the next estimate, after an edit, costs what any other edit costs. Used when an estimate came
   * from the cache without a tree. The timer does not keep the process alive: a one-shot command
   * exits without it. An estimate that needs the tree before the timer fires does this first.
   */
  prepare(unit: TranslationUnit): void {
    if (this.documentPromise || this.prepared || this.disposed) return;
    const timer = setTimeout(() => void this.runPrepared().catch(() => undefined), 0);
    timer.unref();
    this.prepared = { unit, timer };
  }

  /** Runs what prepare() scheduled, now, if it has not run yet. */
  async runPrepared(): Promise<void> {
    const prepared = this.prepared;
    if (!prepared) return;
    this.prepared = undefined;
    clearTimeout(prepared.timer);
    if (this.disposed || this.documentPromise) return;
    await this.withTree(prepared.unit, (tree, headerTrees) => (tree ? estimateFrames(prepared.unit, tree, null, headerTrees).functions : undefined));
  }

  /**
   * Runs `use` on the tree of the unit's text and those of its headers that define functions, each
   * reparsed incrementally from the previous one. `use` runs synchronously right after the reparses,
   * so an overlapping call cannot replace a tree under it.
   */
  async withTree<T>(
    unit: Pick<TranslationUnit, 'aligned' | 'headerSources'>,
    use: (tree: Tree | null, headerTrees: Tree[]) => T,
    parseBudgetMs?: number,
  ): Promise<T> {
    const text = unit.aligned.text;
    // Made empty and brought to the text below, where a refused parse becomes a problem of the report.
    this.documentPromise ??= CDocument.create();
    const document = await this.documentPromise;
    const headerDocuments = await Promise.all(unit.headerSources.map((source) => this.headerDocument(source)));
    if (this.disposed) throw new Error('EstimateSession used after dispose');
    let tree: Tree | null;
    try {
      tree = document.update(text, parseBudgetMs);
      this.parseFailure = undefined;
    } catch (error) {
      // tree-sitter gave no tree (too big, out of time): nothing to estimate, and the report says why.
      tree = null;
      this.parseFailure = error instanceof Error ? error.message : String(error);
    }
    let headerTrees: Tree[];
    try {
      headerTrees = headerDocuments.map((headerDocument, index) => headerDocument.update(unit.headerSources[index].text));
    } catch {
      // Without the headers' trees, the main file's functions are still estimated.
      headerTrees = [];
    }
    return use(tree, headerTrees);
  }

  private headerDocument(source: HeaderFunctionSource): Promise<CDocument> {
    let document = this.headerDocuments.get(source.file);
    if (!document) {
      document = CDocument.create();
      this.headerDocuments.set(source.file, document);
    }
    return document;
  }

  dispose(): void {
    this.disposed = true;
    if (this.prepared) clearTimeout(this.prepared.timer);
    this.prepared = undefined;
    this.units.clear();
    this.files.clear();
    void this.documentPromise?.then((document) => document.dispose());
    this.documentPromise = undefined;
    for (const headerDocument of this.headerDocuments.values()) void headerDocument.then((document) => document.dispose());
    this.headerDocuments.clear();
  }
}

/**
 * The walks of functions shared by every session that is given no cache of its own: in memory, and
 * on disk beside the header index (written shortly after an estimate and at process exit).
 */
const processFrameEstimateCache = new FrameEstimateCache(20000, true);

/** Sessions for callers that pass none: the last few files estimated, by path. */
const MAX_IMPLICIT_SESSIONS = 16;
const implicitSessions = new Map<string, EstimateSession>();

function implicitSession(file: string): EstimateSession {
  let session = implicitSessions.get(file);
  if (session) implicitSessions.delete(file);
  else session = new EstimateSession();
  implicitSessions.set(file, session);
  while (implicitSessions.size > MAX_IMPLICIT_SESSIONS) {
    const [oldestFile, oldest] = implicitSessions.entries().next().value as [string, EstimateSession];
    implicitSessions.delete(oldestFile);
    oldest.dispose();
  }
  return session;
}

/**
 * A program whose frames include a range (FunctionFrame.upTo): its line at the upper bounds, why,
 * and, for each kernel that accepts the low end, whether it still would at the upper one (the range
 * crossing a limit is what the user must know: the low number alone would be a confident "passes").
 */
function addUpperBound(
  report: ProgramReport,
  graph: FrameGraph,
  functions: readonly FunctionEstimate[],
  verified: readonly boolean[],
  profiles: readonly KernelProfile[],
): void {
  const uncertain = report.subprograms.filter((sub) => sub.stackDepthUpTo !== undefined);
  if (uncertain.length === 0) return;
  const upper = report.subprograms.map((sub) => ({ ...sub, stackDepth: sub.stackDepthUpTo ?? sub.stackDepth }));
  report.stackDepthsUpTo = printedStackDepths(upper, report.verdicts[0], profiles[0]);
  report.uncertainty = uncertain.map((sub) => `${sub.name}: ${sub.uncertainty}`);
  const upperGraph: FrameGraph = {
    ...graph,
    subprograms: graph.subprograms.map((node, index) => ({
      ...node,
      stackDepth: verified[index] && functions[index].upTo !== undefined ? functions[index].upTo! : node.stackDepth,
    })),
  };
  profiles.forEach((profile, index) => {
    if (!report.verdicts[index]?.accepted) return;
    const atUpper = verdictReport(judgeStack(upperGraph, profile));
    if (atUpper.accepted) return;
    const violation = atUpper.violations.find((candidate) => candidate.reportedByKernel) ?? atUpper.violations[0];
    report.uncertainty!.push(`at the upper bound kernel ${report.verdicts[index].kernel} would reject it: ${violation?.message ?? 'a stack rule'}`);
  });
}

/**
 * Estimates `text` (the content of `file`) and judges every program for every profile. Repeated calls
 * for the same file reuse its previous parse and the walks of the functions that did not change; pass
 * a `session` per open document to control that (by default the last 16 files get one each).
 */
export async function estimateSource(
  file: string,
  text: string,
  profiles: readonly KernelProfile[],
  options: EstimateOptions = {},
  session?: EstimateSession,
): Promise<EstimateReport> {
  try {
    return await estimateSourceUnguarded(file, text, profiles, options, session);
  } catch (error) {
    // Input nested deeper than any compiler accepts can exhaust the stack: say so, do not crash.
    if (!(error instanceof RangeError)) throw error;
    return { file, functions: [], programs: [], problems: [{ message: `${file} nests too deeply to estimate (the stack ran out): ${error.message}` }] };
  }
}

async function estimateSourceUnguarded(
  file: string,
  text: string,
  profiles: readonly KernelProfile[],
  { timeBudgetMs = FRAME_TIME_BUDGET_MS, ...options }: EstimateOptions,
  session: EstimateSession | undefined,
): Promise<EstimateReport> {
  if (text.length > MAX_PARSED_CHARACTERS) {
    return {
      file,
      functions: [],
      programs: [],
      problems: [{ message: `${file} is not estimated: ${text.length} characters, more than the ${MAX_PARSED_CHARACTERS} parsed` }],
    };
  }
  const owner = session ?? implicitSession(file);
  const clock = workClock();
  const unit = analyzeTranslationUnit(file, text, { ...options, readFile: owner.readFile(options.readFile), cache: options.cache ?? owner.units });
  // The headers' time is wall time: on a busy machine, where the clock reads CPU time, this errs
  // towards a longer parse, never a refused one.
  const mainFileMs = Math.max(0, clock.elapsedMs() - unit.headerMs);
  let partial = unit.expansionCutShort !== undefined;
  const problems = [...unit.problems];
  let estimates: FunctionEstimate[] | undefined;
  if (!owner.hasDocument) {
    // A file estimated before with the same text and headers (a fresh process opening it): the
    // walks come from the cache and need no tree; the tree is built when the process is idle.
    estimates = estimateFramesFromCache(unit, owner.cache);
    if (estimates) owner.prepare(unit);
  }
  if (!estimates) {
    await owner.runPrepared();
    // The main file's own preprocessing counts against its parse budget (reading headers does not),
    // so that a parse stopped by it leaves the estimate of a small file under a second; a file whose
    // macros took that long already (their own budget is 10 s) still gets a short parse.
    const characters = unit.aligned.text.length;
    const parseBudget = Math.max(MIN_PARSE_BUDGET_MS + characters / 1024, parseBudgetMs(characters) - mainFileMs);
    const frames = await owner.withTree(
      unit,
      (tree, headerTrees) => (tree ? estimateFrames(unit, tree, owner.cache, headerTrees, { deadline: performance.now() + timeBudgetMs }) : undefined),
      parseBudget,
    );
    estimates = frames?.functions;
    if (frames?.partial) {
      partial = true;
      problems.push({ message: frames.partial });
    }
  }
  const placed = placedProblems(problems, text);
  if (owner.parseFailure) {
    placed.push({ message: `${file} is not estimated: ${owner.parseFailure}` });
    // No function is walked: the result is partial (empty), not a file without programs.
    partial = true;
  }
  const whole = partial ? { partial: true as const } : {};
  if (!estimates) return { file, functions: [], programs: [], problems: placed, ...whole };
  // The object clang builds has a BTF prototype for every function it emits (report.ts SUBPROGRAM_NAME_UNKNOWN).
  const namedInBtf = !estimates.some((fn) => fn.unnamedBtfParameters);
  const programs = buildSourceFrameGraphs(unit.file, estimates).map(({ name, section, graph, functions, verified, throwsWithoutCallback }): ProgramReport => {
    const verdicts = profiles.map((profile) => verdictReport(judgeStack(graph, profile)));
    const subprograms = graph.subprograms.map((node, index): SubprogramReport => {
      const fn = functions[index];
      const entered = verified[index];
      const uncertain = entered && fn.upTo !== undefined && fn.upTo > fn.frameBytes;
      return {
        name: node.name,
        // The printed depth: what the check saw plus the slots the verifier adds after it.
        stackDepth: entered ? node.stackDepth + fn.hiddenBytes : 0,
        checkedDepth: node.stackDepth,
        hiddenReasons: entered ? [...fn.hiddenReasons] : [],
        ...(uncertain ? { stackDepthUpTo: fn.upTo! + fn.hiddenBytes, uncertainty: fn.uncertainty } : {}),
        hiddenBytes: entered ? [...fn.hiddenReasons] : [],
        verified: entered,
        ...(node.reachedFromMain === undefined ? {} : { reachedFromMain: node.reachedFromMain }),
        hasTailCall: node.hasTailCall,
        isGlobal: node.isGlobal,
        isAsyncCallback: node.isAsyncCallback,
        source: node.source,
        tailCalls: node.tailCallSource ? [node.tailCallSource] : [],
        calls: node.calls.map((call) => ({ callee: graph.subprograms[call.callee].name, kind: call.kind, source: call.source })),
      };
    });
    addStackDepthLines(subprograms, verdicts, profiles, throwsWithoutCallback, namedInBtf);
    if (verdicts[0]) printAsRejected(subprograms, verdicts[0]);
    const report: ProgramReport = {
      name,
      section,
      type: graph.programType,
      subprograms,
      stackDepths: printedStackDepths(subprograms, verdicts[0], profiles[0]),
      verdicts,
    };
    addUpperBound(report, graph, functions, verified, profiles);
    addVerifierSubprograms(report, throwsWithoutCallback);
    if (report.stackDepthsUpTo !== undefined && report.addedSubprograms) report.stackDepthsUpTo += '+0';
    return report;
  });
  return { file, functions: estimates.map(frameOf), programs, problems: placed, ...whole };
}
