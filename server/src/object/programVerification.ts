/**
 * Which subprograms of a program the verifier enters, and with what in their argument registers.
 *
 * The main function and every global function are verified on their own, knowing nothing of their
 * arguments. A static function is verified at each call the verifier reaches, with the caller's
 * registers: a constant argument decides branches inside it (`process_packet(ctx, false)` never
 * runs the IPv6 half), and a subprogram that only such a dead side calls is never entered, so the
 * verifier removes it and it leaves the printed line. One analysis per callee serves all its call
 * sites: it starts from what every call site agrees on, which reaches the union of what each call
 * site reaches.
 */
import type { BpfProgram, Subprogram } from './program';
import { type CallArguments, type StackDepthResult, isReachable, sameArgument } from './stackDepth';

export interface ProgramVerification {
  /** Per subprogram: its analysis with the arguments it is entered with; undefined if never entered. */
  results: (StackDepthResult | undefined)[];
  entered: Set<number>;
}

/** Analyses a subprogram given r1..r5 (undefined: nothing known). */
export type SubprogramAnalyzer = (sub: Subprogram, entryArguments: CallArguments | undefined) => StackDepthResult;

export function verifyProgram(program: BpfProgram, analyze: SubprogramAnalyzer): ProgramVerification {
  const count = program.subprograms.length;
  const results: (StackDepthResult | undefined)[] = new Array(count).fill(undefined);
  const entryArguments: (CallArguments | undefined)[] = new Array(count).fill(undefined);
  const entered = new Set<number>();
  const work: number[] = [];

  const enter = (index: number, given: CallArguments | undefined) => {
    const args = given?.some((value) => value !== undefined) ? given : undefined;
    if (!entered.has(index)) {
      entered.add(index);
      entryArguments[index] = args;
      work.push(index);
      return;
    }
    const met = meet(entryArguments[index], args);
    if (!sameArguments(met, entryArguments[index])) {
      // Each meet only forgets, so a subprogram is analysed again at most five times more.
      entryArguments[index] = met;
      work.push(index);
    }
  };

  enter(0, undefined);
  program.subprograms.forEach((sub, index) => {
    if (sub.fn.isGlobal) enter(index, undefined);
  });
  while (work.length > 0) {
    const index = work.pop()!;
    const sub = program.subprograms[index];
    const result = analyze(sub, entryArguments[index]);
    results[index] = result;
    for (const call of sub.calls) {
      if (!isReachable(result, call.at)) continue;
      const callee = program.subprograms[call.callee];
      // Callbacks are called by a helper, and global functions are verified on their own: neither
      // sees the caller's registers.
      const passes = call.kind === 'call' && !callee.fn.isGlobal;
      enter(call.callee, passes ? result.callArguments.get(call.at) : undefined);
    }
  }
  return { results, entered };
}

/** What two call sites agree on; undefined when that is nothing. */
function meet(a: CallArguments | undefined, b: CallArguments | undefined): CallArguments | undefined {
  if (a === undefined || b === undefined) return undefined;
  const agreed = a.map((value, index) => (sameArgument(value, b[index]) ? value : undefined));
  return agreed.some((value) => value !== undefined) ? agreed : undefined;
}

export function sameArguments(a: CallArguments | undefined, b: CallArguments | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.length === b.length && a.every((value, index) => sameArgument(value, b[index]));
}
