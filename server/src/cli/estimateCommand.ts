/**
 * `bpf-stack-lens estimate [-I DIR]... [-D NAME[=VAL]]... [--kernel V[,V...]] [--no-jit] [--format text|json] FILE.c`
 * Estimates from the C source, without compiling it, every function's stack frame and every program's
 * verdict. Exit 0 when no program breaks a stack rule, 1 when one does, 2 for bad usage or unreadable input.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { ProgramReport } from '../object/analyzeObject';
import { verdictReport } from '../object/analyzeObject';
import type { KernelProfile } from '../rules/kernelProfile';
import { judgeStack } from '../rules/stackRules';
import { type FunctionFrame, estimateFrames, frameOf } from '../source/frameEstimate';
import { createCParser } from '../source/parser';
import { buildSourceFrameGraphs } from '../source/sourceCallGraph';
import { type TranslationUnitOptions, analyzeTranslationUnit } from '../source/translationUnit';
import { type FlagSpec, UsageError, parseArgs } from './args';
import { type CommandIo, profilesFromFlags } from './io';

export const ESTIMATE_FLAGS: Record<string, FlagSpec> = {
  '-I': { value: true, repeat: true },
  '-D': { value: true, repeat: true },
  '--kernel': { value: true, repeat: true },
  '--no-jit': { value: false },
  '--format': { value: true },
};

export interface EstimateReport {
  file: string;
  functions: FunctionFrame[];
  programs: ProgramReport[];
}

/** Estimates `text` (the content of `file`) and judges every program for every profile. */
export async function estimateSource(
  file: string,
  text: string,
  profiles: readonly KernelProfile[],
  options: TranslationUnitOptions = {},
): Promise<EstimateReport> {
  const unit = analyzeTranslationUnit(file, text, options);
  const parser = await createCParser();
  const tree = parser.parse(unit.aligned.text);
  if (!tree) {
    parser.delete();
    return { file, functions: [], programs: [] };
  }
  try {
    const estimates = estimateFrames(unit, tree);
    const programs = buildSourceFrameGraphs(unit.file, estimates).map(({ name, section, graph }): ProgramReport => {
      const verdicts = profiles.map((profile) => verdictReport(judgeStack(graph, profile)));
      const subprograms = graph.subprograms.map((node) => ({
        name: node.name,
        stackDepth: node.stackDepth,
        checkedDepth: node.stackDepth,
        hiddenBytes: [],
        verified: true,
        hasTailCall: node.hasTailCall,
        isGlobal: node.isGlobal,
        isAsyncCallback: node.isAsyncCallback,
        source: node.source,
        tailCalls: node.tailCallSource ? [node.tailCallSource] : [],
        calls: node.calls.map((call) => ({ callee: graph.subprograms[call.callee].name, kind: call.kind, source: call.source })),
      }));
      return {
        name,
        section,
        type: graph.programType,
        subprograms,
        stackDepths: subprograms.map((sub) => sub.stackDepth).join('+'),
        verdicts,
      };
    });
    return { file, functions: estimates.map(frameOf), programs };
  } finally {
    tree.delete();
    parser.delete();
  }
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
  const report = await estimateSource(file, text, profiles, { includeDirs: args.flags.get('-I') ?? [], defines: args.flags.get('-D') ?? [] });
  if (format === 'json') io.stdout(`${JSON.stringify(report, null, 2)}\n`);
  else io.stdout(formatEstimateText(report));
  const violated = report.programs.some((program) => program.verdicts.some((verdict) => !verdict.accepted));
  return violated ? 1 : 0;
}

/** A short human report: each function's frame and items, then each program's verdicts. */
export function formatEstimateText(report: EstimateReport): string {
  const lines: string[] = [`${report.file}: estimated from source (locals summed, no slot sharing)`];
  for (const fn of report.functions) {
    const tags = [fn.section !== null ? `SEC("${fn.section}")` : '', fn.inline ? 'inline' : ''].filter(Boolean).join(' ');
    lines.push(`  ${fn.name} (line ${fn.line})${tags ? ` ${tags}` : ''}: ${fn.frameBytes} bytes`);
    for (const item of fn.items) lines.push(`    ${String(item.bytes).padStart(4)}  ${item.what} ${item.name}: ${item.type} (line ${item.line})`);
  }
  for (const program of report.programs) {
    lines.push(`program ${program.name} SEC("${program.section}") [${program.type}] stack depth ${program.stackDepths}`);
    for (const verdict of program.verdicts) {
      const reported = verdict.violations.find((violation) => violation.reportedByKernel) ?? verdict.violations[0];
      lines.push(`  kernel ${verdict.kernel}: ${verdict.accepted ? 'accepted' : `rejected: ${reported?.message ?? ''}`}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
