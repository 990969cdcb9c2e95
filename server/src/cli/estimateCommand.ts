/**
 * `bpf-stack-lens estimate [-I DIR]... [-D NAME[=VAL]]... [--compile-commands FILE] [--compile [--clang PATH]] [--kernel V[,V...]] [--no-jit] [--format text|json] FILE.c`
 * Estimates from the C source, without compiling it, every function's stack frame and every program's
 * verdict; with --compile, the programs are measured in the file compiled by clang (the safe subset of
 * its recorded flags) instead. Exit 0 when no program breaks a stack rule, 1 when one does, 2 for bad
 * usage or unreadable input.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { compileBuffer, resolveClang } from '../compile/bufferCompile';
import { type BufferCompileFlagsInput, bufferCompileFlags } from '../compile/compileFlags';
import type { KernelProfile } from '../rules/kernelProfile';
import { loadCompileDatabase, unitOptionsFor } from '../source/unitOptions';
import { type EstimateProblem, type EstimateReport, estimateSource } from '../source/estimateSource';
import { type FlagSpec, UsageError, parseArgs } from './args';
import { type CommandIo, profilesFromFlags } from './io';
import { writeJsonReport } from './jsonOutput';

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
  '--all-functions': { value: false },
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
  if (format === 'json') {
    if (!writeJsonReport(io, report)) return 2;
  } else io.stdout(formatEstimateText(report, { allFunctions: args.booleans.has('--all-functions') }));
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
/**
 * The file's own functions, then its programs; the inline functions of every header it includes
 * (libbpf's, vmlinux.h's: hundreds) only with `allFunctions`, named with their header.
 */
export function formatEstimateText(report: CompiledEstimateReport, options: { allFunctions?: boolean } = {}): string {
  // A partial estimate (a budget ran out; a note says which) gives lower bounds, never a plain number.
  const lines: string[] = [`${report.file}: estimated from source (locals with disjoint lifetimes share slots)${report.partial ? ', partial: the numbers below are lower bounds' : ''}`];
  if (report.compiledFromBuffer) lines.push(`  programs: compiled from the buffer by ${report.compiledFromBuffer.clang} in ${report.compiledFromBuffer.milliseconds} ms (exact)`);
  const listed = options.allFunctions ? report.functions : report.functions.filter((fn) => fn.file === undefined);
  for (const fn of listed) {
    const tags = [fn.section !== null ? `SEC("${fn.section}")` : '', fn.inline ? 'inline' : ''].filter(Boolean).join(' ');
    const hidden = fn.hiddenBytes > 0 ? ` (+${fn.hiddenBytes} printed only: ${fn.hiddenReasons.join(', ')})` : '';
    const where = fn.file === undefined ? `line ${fn.line}` : `${path.basename(fn.file)} line ${fn.line}`;
    const bytes = fn.partial
      ? `at least ${fn.frameBytes} bytes (partial)`
      : fn.upTo !== undefined
        ? `>= ${fn.frameBytes} bytes, up to ~${fn.upTo} bytes: ${fn.uncertainty}`
        : `${fn.frameBytes} bytes`;
    lines.push(`  ${fn.name} (${where})${tags ? ` ${tags}` : ''}: ${bytes}${hidden}`);
    for (const item of fn.items) {
      const shared = item.sharedWith !== undefined ? `, shares the slots of ${item.sharedWith}` : '';
      lines.push(`    ${String(item.bytes).padStart(4)}  ${item.what} ${item.name}: ${item.type} (line ${item.line}${shared})`);
    }
  }
  const fromHeaders = report.functions.length - listed.length;
  if (fromHeaders > 0) lines.push(`  (${fromHeaders} inline function(s) from headers not listed: --all-functions lists them)`);
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
    const upTo = program.stackDepthsUpTo !== undefined && !report.compiledFromBuffer ? `, up to ~${program.stackDepthsUpTo}` : '';
    lines.push(`program ${program.name} SEC("${program.section}") [${program.type}] stack depth ${report.partial && !report.compiledFromBuffer ? `at least ${program.stackDepths} (partial)` : program.stackDepths}${upTo}`);
    if (upTo) for (const reason of program.uncertainty ?? []) lines.push(`  range: ${reason}`);
    for (const verdict of program.verdicts) {
      const reported = verdict.violations.find((violation) => violation.reportedByKernel) ?? verdict.violations[0];
      lines.push(`  kernel ${verdict.kernel}: ${verdict.accepted ? 'accepted' : `rejected: ${reported?.message ?? ''}`}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
