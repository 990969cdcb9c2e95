/**
 * The `estimate` report for a person, as `bpf-stack-lens estimate` prints it and the editor's stack
 * report shows it: each function's frame and items, then each program's verdicts.
 */
import * as path from 'node:path';
import type { EstimateProblem, EstimateReport } from '../source/estimateSource';

/** `estimate --compile`: the estimate's report with the programs measured in the compiled object instead. */
export interface CompiledEstimateReport extends EstimateReport {
  /** Set when the programs come from compiling the file (`--compile`), not from the estimate. */
  compiledFromBuffer?: { clang: string; flags: string[]; milliseconds: number };
}

/** How many problems the text report lists before it only counts them. */
const MAX_TEXT_PROBLEMS = 8;

/**
 * The file's own functions, then its programs; the inline functions of every header it includes
 * (libbpf's, vmlinux.h's: hundreds) only with `allFunctions`, named with their header.
 */
export function formatEstimateText(report: CompiledEstimateReport, options: { allFunctions?: boolean } = {}): string {
  // A partial estimate (a budget ran out; a note says which) gives lower bounds, never a plain number.
  const lines: string[] = [
    `${report.file}: estimated from source (locals with disjoint lifetimes share slots)${report.partial ? ', partial: the numbers below are lower bounds' : ''}`,
  ];
  if (report.compiledFromBuffer)
    lines.push(`  programs: compiled from the buffer by ${report.compiledFromBuffer.clang} in ${report.compiledFromBuffer.milliseconds} ms (exact)`);
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
    lines.push(
      `program ${program.name} SEC("${program.section}") [${program.type}] stack depth ${report.partial && !report.compiledFromBuffer ? `at least ${program.stackDepths} (partial)` : program.stackDepths}${upTo}`,
    );
    if (upTo) for (const reason of program.uncertainty ?? []) lines.push(`  range: ${reason}`);
    for (const verdict of program.verdicts) {
      const reported = verdict.violations.find((violation) => violation.reportedByKernel) ?? verdict.violations[0];
      lines.push(`  kernel ${verdict.kernel}: ${verdict.accepted ? 'accepted' : `rejected: ${reported?.message ?? ''}`}`);
      // What the verdict takes for granted, as check says it: a refused helper a load-time value may guard.
      for (const assumption of verdict.assumes ?? []) lines.push(`    assumes: ${assumption}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
