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
import { firstEdgeBackIntoChain } from '../common/graphCycles';
import type { BpfProgram, Subprogram } from './program';
import { type CallArguments, type StackDepthResult, isReachable, sameArgument } from './stackDepth';

export interface ProgramVerification {
  /** Per subprogram: its analysis with the arguments it is entered with; undefined if never entered. */
  results: (StackDepthResult | undefined)[];
  entered: Set<number>;
  /**
   * The subprograms live code calls from the main function on (and from one no code calls: the
   * exception callback libbpf appends). `entered` also holds every global function and what it
   * calls, as kernels before 6.8 validate them all; from 6.8 only these are (FrameNode.reachedFromMain).
   */
  reachedFromMain: Set<number>;
}

/** Analyses a subprogram given r1..r5 (undefined: nothing known) and the constants its static calls return. */
export type SubprogramAnalyzer = (
  sub: Subprogram,
  entryArguments: CallArguments | undefined,
  callReturns?: ReadonlyMap<number, number | bigint>,
) => StackDepthResult;

/**
 * The verification of a program, twice where a static function returns a constant: the first pass
 * finds what each callee returns on the paths it is entered with; the second starts over with those
 * constants after the calls, so what a decided branch no longer reaches is not entered. (A constant
 * found with the first pass's arguments holds for the second's, which are known as well or better.)
 */
export function verifyProgram(program: BpfProgram, analyze: SubprogramAnalyzer): ProgramVerification {
  const first = withReachedFromMain(program, verifyOnce(program, analyze, undefined));
  const returned = first.results.map((result, index) => (program.subprograms[index].fn.isGlobal ? undefined : result?.returnValue));
  // Only a call to a function that returns a constant changes anything (a main returning XDP_PASS does not).
  const callReturns = program.subprograms.map((sub) => callReturnsOf(sub, returned));
  if (callReturns.every((returns) => returns === undefined)) return first;
  return withReachedFromMain(program, verifyOnce(program, analyze, callReturns));
}

function withReachedFromMain(program: BpfProgram, verification: Omit<ProgramVerification, 'reachedFromMain'>): ProgramVerification {
  const called = new Set(program.subprograms.flatMap((sub) => sub.calls.map((call) => call.callee)));
  const reached = new Set<number>();
  const work = program.subprograms.map((_, index) => index).filter((index) => index === 0 || !called.has(index));
  while (work.length > 0) {
    const index = work.pop()!;
    if (reached.has(index)) continue;
    reached.add(index);
    const result = verification.results[index];
    for (const call of program.subprograms[index].calls) if (result && isReachable(result, call.at)) work.push(call.callee);
  }
  return { ...verification, reachedFromMain: reached };
}

function verifyOnce(
  program: BpfProgram,
  analyze: SubprogramAnalyzer,
  callReturns: readonly (ReadonlyMap<number, number | bigint> | undefined)[] | undefined,
): Omit<ProgramVerification, 'reachedFromMain'> {
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
    const result = analyze(sub, entryArguments[index], callReturns?.[index]);
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

/** The constant each of a function's bpf-to-bpf calls returns, by the call's instruction; undefined when none does. */
function callReturnsOf(sub: Subprogram, returned: readonly (number | bigint | undefined)[]): ReadonlyMap<number, number | bigint> | undefined {
  let returns: Map<number, number | bigint> | undefined;
  for (const call of sub.calls) {
    const value = call.kind === 'call' ? returned[call.callee] : undefined;
    if (value !== undefined) (returns ??= new Map()).set(call.at, value);
  }
  return returns;
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

/**
 * Whether the program's calls go round in a circle (a function that calls itself, or a ring of
 * static functions): check_max_stack_depth follows every call instruction without looking at values,
 * so it walks such a ring until the chain is too deep or too big.
 */
export function callsRecurse(program: BpfProgram): boolean {
  return (
    firstEdgeBackIntoChain(
      program.subprograms.length,
      (index) => program.subprograms[index].calls,
      (call) => call.callee,
    ) !== undefined
  );
}

/**
 * The longest chain of frames do_check has on its stack in a program whose calls recurse, counted
 * from the main function or a global one, and at most `limit + 1`. do_check follows each static call
 * it reaches with the caller's registers, so a recursion bounded by constants (`walk(level + 1)`
 * while `level < 3`) ends after a few frames, and one that values do not bound goes on until the
 * chain is too deep ("the call stack of 9 frames is too deep"). Callbacks are entered with nothing
 * known; global functions are verified on their own, and start chains of their own.
 */
export function deepestVerifiedChain(program: BpfProgram, analyze: SubprogramAnalyzer, limit: number): number {
  const known: { args: CallArguments | undefined; frames: number }[][] = program.subprograms.map(() => []);
  const onChain: { index: number; args: CallArguments | undefined }[] = [];
  /** Frames from this function down, itself included, at most `budget + 1`. */
  const framesFrom = (index: number, args: CallArguments | undefined, budget: number): number => {
    const remembered = known[index].find((entry) => sameArguments(entry.args, args));
    if (remembered) return Math.min(remembered.frames, budget + 1);
    // The same function with the same registers is a recursion values cannot end.
    if (onChain.some((entry) => entry.index === index && sameArguments(entry.args, args))) return budget + 1;
    if (budget <= 0) return 1;
    const sub = program.subprograms[index];
    const result = analyze(sub, args);
    onChain.push({ index, args });
    let below = 0;
    for (const call of sub.calls) {
      if (below >= budget || !isReachable(result, call.at)) continue;
      const callee = program.subprograms[call.callee];
      if (callee.fn.isGlobal) continue;
      const given = call.kind === 'call' ? result.callArguments.get(call.at) : undefined;
      below = Math.max(below, framesFrom(call.callee, given?.some((value) => value !== undefined) ? given : undefined, budget - 1));
    }
    onChain.pop();
    const frames = Math.min(1 + below, budget + 1);
    // A count cut short by the budget holds only for that budget: remember whole counts only.
    if (frames <= budget) known[index].push({ args, frames });
    return frames;
  };
  let deepest = 0;
  program.subprograms.forEach((sub, index) => {
    if (index === 0 || sub.fn.isGlobal) deepest = Math.max(deepest, framesFrom(index, undefined, limit));
  });
  return Math.min(deepest, limit + 1);
}
