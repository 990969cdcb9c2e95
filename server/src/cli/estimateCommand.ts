/**
 * `bpf-stack-lens estimate [-I DIR]... [-D NAME[=VAL]]... [--compile-commands FILE] [--compile [--clang PATH]] [--kernel V[,V...]] [--no-jit] [--format text|json] FILE.c`
 * Estimates from the C source, without compiling it, every function's stack frame and every program's
 * verdict; with --compile, the programs are measured in the file compiled by clang (the safe subset of
 * its recorded flags) instead. Exit 0 when no program breaks a stack rule, 1 when one does, 2 for bad
 * usage or unreadable input.
 */
import { existsSync, readFileSync } from 'node:fs';
<<<<<<< HEAD
import { dirname } from 'node:path';
import { type ProgramReport, type SubprogramReport, addStackDepthLines, addVerifierSubprograms, printAsRejected, printedStackDepths, verdictReport } from '../rules/report';
=======
import * as path from 'node:path';
import { compileBuffer, resolveClang } from '../compile/bufferCompile';
import { type BufferCompileFlagsInput, bufferCompileFlags } from '../compile/compileFlags';
>>>>>>> compile
import type { KernelProfile } from '../rules/kernelProfile';
import { loadCompileDatabase, unitOptionsFor } from '../source/unitOptions';
import { type EstimateProblem, type EstimateReport, estimateSource } from '../source/estimateSource';
import { type FlagSpec, UsageError, parseArgs } from './args';
import { type CommandIo, profilesFromFlags } from './io';

// The source pipeline lives in source/estimateSource.ts; re-exported for callers that import it from here.
export { type EstimateProblem, type EstimateReport, EstimateSession, estimateSource } from '../source/estimateSource';

export const ESTIMATE_FLAGS: Record<string, FlagSpec> = {
  '-I': { value: true, repeat: true },
  '-D': { value: true, repeat: true },
  '--kernel': { value: true, repeat: true },
  '--no-jit': { value: false },
  '--format': { value: true },
  '--compile-commands': { value: true },
  '--compile': { value: false },
  '--clang': { value: true },
};

/** How long a compile runs before the CLI says on stderr that it is under way. */
const SLOW_COMPILE_MS = 1000;
/** A compile that takes longer than this is given up, and the estimate stands. */
const COMPILE_TIMEOUT_MS = 120_000;

/** `estimate --compile`: the estimate's report with the programs measured in the compiled object instead. */
export interface CompiledEstimateReport extends EstimateReport {
  /** Set when the programs come from compiling the file (`--compile`), not from the estimate. */
  compiledFromBuffer?: { clang: string; flags: string[]; milliseconds: number };
}

<<<<<<< HEAD
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

  constructor(readonly cache: FrameEstimateCache = defaultFrameEstimateCache()) {}

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
    await this.withTree(prepared.unit, (tree, headerTrees) => (tree ? estimateFrames(prepared.unit, tree, null, headerTrees) : undefined));
  }

  /**
   * Runs `use` on the tree of the unit's text and those of its headers that define functions, each
   * reparsed incrementally from the previous one. `use` runs synchronously right after the reparses,
   * so an overlapping call cannot replace a tree under it.
   */
  async withTree<T>(unit: Pick<TranslationUnit, 'aligned' | 'headerSources'>, use: (tree: Tree | null, headerTrees: Tree[]) => T): Promise<T> {
    const text = unit.aligned.text;
    this.documentPromise ??= CDocument.create(text);
    const document = await this.documentPromise;
    const headerDocuments = await Promise.all(unit.headerSources.map((source) => this.headerDocument(source)));
    if (this.disposed) throw new Error('EstimateSession used after dispose');
    let tree: Tree | null;
    try {
      tree = document.update(text);
    } catch {
      // tree-sitter gave no tree: nothing to estimate.
      tree = null;
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
      document = CDocument.create(source.text);
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
 * Estimates `text` (the content of `file`) and judges every program for every profile. Repeated calls
 * for the same file reuse its previous parse and the walks of the functions that did not change; pass
 * a `session` per open document to control that (by default the last 16 files get one each).
 */
export async function estimateSource(
  file: string,
  text: string,
  profiles: readonly KernelProfile[],
  options: TranslationUnitOptions = {},
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
  options: TranslationUnitOptions,
  session: EstimateSession | undefined,
): Promise<EstimateReport> {
  const owner = session ?? implicitSession(file);
  const unit = analyzeTranslationUnit(file, text, { ...options, readFile: owner.readFile(options.readFile), cache: options.cache ?? owner.units });
  let estimates: FunctionEstimate[] | undefined;
  if (!owner.hasDocument) {
    // A file estimated before with the same text and headers (a fresh process opening it): the
    // walks come from the cache and need no tree; the tree is built when the process is idle.
    estimates = estimateFramesFromCache(unit, owner.cache);
    if (estimates) owner.prepare(unit);
  }
  if (!estimates) {
    await owner.runPrepared();
    estimates = await owner.withTree(unit, (tree, headerTrees): FunctionEstimate[] | undefined => (tree ? estimateFrames(unit, tree, owner.cache, headerTrees) : undefined));
  }
  const problems = placedProblems(unit.problems, text);
  if (!estimates) return { file, functions: [], programs: [], problems };
  const programs = buildSourceFrameGraphs(unit.file, estimates).map(({ name, section, graph, functions, verified, throwsWithoutCallback }): ProgramReport => {
    const verdicts = profiles.map((profile) => verdictReport(judgeStack(graph, profile)));
    const subprograms = graph.subprograms.map((node, index): SubprogramReport => {
      const fn = functions[index];
      const entered = verified[index];
      return {
        name: node.name,
        // The printed depth: what the check saw plus the slots the verifier adds after it.
        stackDepth: entered ? node.stackDepth + fn.hiddenBytes : 0,
        checkedDepth: node.stackDepth,
        hiddenBytes: entered ? [...fn.hiddenReasons] : [],
        verified: entered,
        hasTailCall: node.hasTailCall,
        isGlobal: node.isGlobal,
        isAsyncCallback: node.isAsyncCallback,
        source: node.source,
        tailCalls: node.tailCallSource ? [node.tailCallSource] : [],
        calls: node.calls.map((call) => ({ callee: graph.subprograms[call.callee].name, kind: call.kind, source: call.source })),
      };
    });
    addStackDepthLines(subprograms, verdicts, profiles, throwsWithoutCallback);
    if (verdicts[0]) printAsRejected(subprograms, verdicts[0]);
    const report: ProgramReport = { name, section, type: graph.programType, subprograms, stackDepths: printedStackDepths(subprograms, verdicts[0]), verdicts };
    addVerifierSubprograms(report, throwsWithoutCallback);
    return report;
  });
  return { file, functions: estimates.map(frameOf), programs, problems };
}



=======
>>>>>>> compile
export async function estimateCommand(argv: string[], io: CommandIo): Promise<number> {
  const args = parseArgs(argv, ESTIMATE_FLAGS);
  const format = args.flags.get('--format')?.[0] ?? 'text';
  if (!['text', 'json'].includes(format)) throw new UsageError(`--format must be text or json, not "${format}"`);
  if (args.positionals.length !== 1) throw new UsageError('estimate takes exactly one C file');
  const profiles = profilesFromFlags(args, io);
  const [file] = args.positionals;
  if (!existsSync(file)) {
    io.stderr(`bpf-stack-lens: ${file}: no such file\n`);
    return 2;
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    io.stderr(`bpf-stack-lens: ${file}: ${(error as Error).message}\n`);
    return 2;
  }
  // compile_commands.json first (given, else in the working directory or build/), then -I and -D.
  const givenDatabase = args.flags.get('--compile-commands')?.[0];
  if (givenDatabase !== undefined && !existsSync(givenDatabase)) {
    io.stderr(`bpf-stack-lens: ${givenDatabase}: no such file\n`);
    return 2;
  }
  const database = loadCompileDatabase(givenDatabase ?? '', [process.cwd()]);
  if (database && !database.entries) io.stderr(`bpf-stack-lens: warning: ${database.path} is not a compilation database; ignored\n`);
  const options = unitOptionsFor(file, { database, includePaths: args.flags.get('-I') ?? [], defines: args.flags.get('-D') ?? [] });
  const estimate = await estimateSource(file, text, profiles, { includeDirs: options.includeDirs, defines: Object.fromEntries(options.defines) });
  const report = args.booleans.has('--compile') ? await compiledReport(estimate, text, args.flags.get('--clang')?.[0] ?? '', { database, includePaths: args.flags.get('-I') ?? [], defines: args.flags.get('-D') ?? [] }, profiles, io) : estimate;
  if (format === 'json') io.stdout(`${JSON.stringify(report, null, 2)}\n`);
  else io.stdout(formatEstimateText(report));
  const violated = report.programs.some((program) => program.verdicts.some((verdict) => !verdict.accepted));
  return violated ? 1 : 0;
}

/**
 * The programs of the file compiled by clang with the safe subset of its flags, in place of the
 * estimate's; the estimate's report when it does not compile (the reason goes to stderr).
 */
async function compiledReport(
  estimate: EstimateReport,
  text: string,
  clangSetting: string,
  input: Omit<BufferCompileFlagsInput, 'settingsFlags'>,
  profiles: KernelProfile[],
  io: CommandIo,
): Promise<CompiledEstimateReport> {
  const file = path.resolve(estimate.file);
  const { clang, problem } = resolveClang(clangSetting, [process.cwd()]);
  if (!clang) {
    io.stderr(`bpf-stack-lens: cannot compile ${estimate.file}: ${problem}; the numbers are the estimate's\n`);
    return estimate;
  }
  const { flags, refused } = bufferCompileFlags(file, { ...input, includePaths: input.includePaths.map((dir) => path.resolve(dir)), settingsFlags: [] });
  if (refused.length > 0) {
    io.stderr(`bpf-stack-lens: not compiled: the compile command carries ${refused.join(' ')}, which would load code or read flags from files; the numbers are the estimate's\n`);
    return estimate;
  }
  const result = await compileBuffer({
    file,
    text,
    flags,
    clang,
    profiles,
    timeoutMs: COMPILE_TIMEOUT_MS,
    slowAfterMs: SLOW_COMPILE_MS,
    onSlow: () => io.stderr(`bpf-stack-lens: compiling ${estimate.file} with ${clang}...\n`),
  });
  if (result.kind === 'compiled') return { ...estimate, programs: result.programs, compiledFromBuffer: { clang, flags, milliseconds: result.milliseconds } };
  const reason = result.kind === 'failed' ? `does not compile:\n${result.message}\n` : result.kind === 'timed out' ? `took over ${result.timeoutMs} ms to compile; ` : '';
  io.stderr(`bpf-stack-lens: ${estimate.file} ${reason}the numbers are the estimate's\n`);
  return estimate;
}

/** How many problems the text report lists before it only counts them. */
const MAX_TEXT_PROBLEMS = 8;

/** A short human report: each function's frame and items, then each program's verdicts. */
export function formatEstimateText(report: CompiledEstimateReport): string {
  const lines: string[] = [`${report.file}: estimated from source (locals with disjoint lifetimes share slots)`];
  if (report.compiledFromBuffer) lines.push(`  programs: compiled from the buffer by ${report.compiledFromBuffer.clang} in ${report.compiledFromBuffer.milliseconds} ms (exact)`);
  for (const fn of report.functions) {
    const tags = [fn.section !== null ? `SEC("${fn.section}")` : '', fn.inline ? 'inline' : ''].filter(Boolean).join(' ');
    const hidden = fn.hiddenBytes > 0 ? ` (+${fn.hiddenBytes} printed only: ${fn.hiddenReasons.join(', ')})` : '';
    lines.push(`  ${fn.name} (line ${fn.line})${tags ? ` ${tags}` : ''}: ${fn.frameBytes} bytes${hidden}`);
    for (const item of fn.items) {
      const shared = item.sharedWith !== undefined ? `, shares the slots of ${item.sharedWith}` : '';
      lines.push(`    ${String(item.bytes).padStart(4)}  ${item.what} ${item.name}: ${item.type} (line ${item.line}${shared})`);
    }
  }
  // Headers first: a header not found leaves its types at 0 bytes, which every estimate below feels.
  const aboutHeaders = (problem: EstimateProblem) => /file not found|vmlinux\.h/.test(problem.message);
  const problems = [...report.problems.filter(aboutHeaders), ...report.problems.filter((problem) => !aboutHeaders(problem))];
  for (const problem of problems.slice(0, MAX_TEXT_PROBLEMS)) {
    const where = problem.line === undefined ? '' : `line ${problem.line}: `;
    const advice = / file not found/.test(problem.message) ? '; its types count 0 bytes here (add -I, or a compile_commands.json)' : '';
    lines.push(`  note: ${where}${problem.message}${advice}`);
  }
  if (problems.length > MAX_TEXT_PROBLEMS) lines.push(`  note: ${problems.length - MAX_TEXT_PROBLEMS} more (--format json lists them all)`);
  for (const program of report.programs) {
    lines.push(`program ${program.name} SEC("${program.section}") [${program.type}] stack depth ${program.stackDepths}`);
    for (const verdict of program.verdicts) {
      const reported = verdict.violations.find((violation) => violation.reportedByKernel) ?? verdict.violations[0];
      lines.push(`  kernel ${verdict.kernel}: ${verdict.accepted ? 'accepted' : `rejected: ${reported?.message ?? ''}`}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
