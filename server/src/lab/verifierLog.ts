/**
 * Reads what a real verifier printed at log level 4 (BPF_LOG_STATS): the error, if any, and the
 * statistics block print_verification_stats() appends. The error lines are the same on every kernel;
 * the statistics changed: before 7.2 `stack depth a+b+c`, 7.2 `stack depth a+b max M` and
 * `insns processed N`, 7.3 `stack depth max M` followed by one `subprog N (name) ...` line per
 * subprogram.
 */

import type { VerdictReport } from '../rules/report';

export interface VerifierLogFacts {
  /** The whole `stack depth ...` line, as printed; absent when the log has none. */
  stackDepthLine?: string;
  /** 7.3's `subprog N (name) static|global|main insns_self A insns_total B stack S` lines. */
  subprogramLines: string[];
  /** The verifier's last line that is not statistics (its error, for a rejected program). */
  lastMessage?: string;
}

// Lines of the statistics block and libbpf's framing; anything else is the verifier talking.
const STATISTICS = [/^verification time /, /^stack depth /, /^processed /, /^insns processed /, /^subprog \d+ /, /^-- /, /^mark_precise/];

export function readVerifierLog(log: string): VerifierLogFacts {
  const lines = log.replace(/\r/g, '').split('\n');
  const facts: VerifierLogFacts = { subprogramLines: lines.filter((line) => /^subprog \d+ \(/.test(line)) };
  const depth = lines.find((line) => line.startsWith('stack depth '));
  if (depth !== undefined) facts.stackDepthLine = depth;
  for (const line of lines) {
    if (line.length > 0 && !STATISTICS.some((pattern) => pattern.test(line))) facts.lastMessage = line;
  }
  return facts;
}

/**
 * 7.3's "subprog N (name) static|global|main insns_self A insns_total B stack S" without its
 * instruction counts, which no analysis of the stack predicts: "subprog N (name) KIND stack S".
 */
export function subprogramStackOf(line: string): string {
  const match = /^subprog (\d+) \((.*)\) (static|global|main) .*\bstack (\d+)$/.exec(line);
  return match ? `subprog ${match[1]} (${match[2]}) ${match[3]} stack ${match[4]}` : line;
}

/**
 * The statistics lines a kernel printed, in the form they are compared in: the stack-depth line,
 * then 7.3's per-subprogram lines without their instruction counts.
 */
export function kernelStackLines(stackDepthLine: string | undefined, subprogramLines: readonly string[] = []): (string | undefined)[] {
  return [stackDepthLine, ...subprogramLines.map(subprogramStackOf)];
}

/** The statistics lines a verdict predicts, in the form kernelStackLines gives the kernel's. */
export function predictedStackLines(verdict: Pick<VerdictReport, 'stackDepthLine' | 'subprogramStackLines'>): (string | undefined)[] {
  return [
    verdict.stackDepthLine,
    ...(verdict.subprogramStackLines ?? []).map((line) => `subprog ${line.index} (${line.name}) ${line.kind} stack ${line.stack}`),
  ];
}
