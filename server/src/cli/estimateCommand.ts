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
import { type EstimateReport, estimateSource } from '../source/estimateSource';
import { type CompiledEstimateReport, formatEstimateText } from '../ide/estimateText';
import { type FlagSpec, UsageError, parseArgs } from '../common/commandLine';
import type { CommandIo } from '../common/commandIo';
import { profilesFromFlags } from './kernelFlags';
import { writeJsonReport } from './jsonOutput';

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
  const report = args.booleans.has('--compile')
    ? await compiledReport(
        estimate,
        text,
        args.flags.get('--clang')?.[0] ?? '',
        { database, includePaths: args.flags.get('-I') ?? [], defines: args.flags.get('-D') ?? [] },
        profiles,
        io,
      )
    : estimate;
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
    io.stderr(
      `bpf-stack-lens: not compiled: the compile command carries ${refused.join(' ')}, which would load code or read flags from files; the numbers are the estimate's\n`,
    );
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
  const reason =
    result.kind === 'failed' ? `does not compile:\n${result.message}\n` : result.kind === 'timed out' ? `took over ${result.timeoutMs} ms to compile; ` : '';
  io.stderr(`bpf-stack-lens: ${estimate.file} ${reason}the numbers are the estimate's\n`);
  return estimate;
}
