/**
 * What both front ends report about a program, as plain data: its subprograms with their depths,
 * the verifier's "stack depth" line, and a verdict per kernel profile. The object analyzer measures
 * the depths, the source estimator estimates them; the rest is decided here, once, so the CLI, the
 * editor and the tests never disagree about what the kernel prints.
 */
import type { SourceLocation } from '../common/problem';
import { type KernelProfile, ruleSetFor } from './kernelProfile';
import type { MissingFeature, RuleId, Verdict, Violation } from './stackRules';

export interface SubprogramReport {
  name: string;
  /** The depth the verifier prints in its "stack depth" line (checked depth plus hidden slots). */
  stackDepth: number;
  /** The depth check_max_stack_depth judges. */
  checkedDepth: number;
  /**
   * Source estimates only: the printed depth at the upper bound of the frame, when the estimate
   * cannot know it (spills of a long function); `stackDepth` is then the low end.
   */
  stackDepthUpTo?: number;
  /** Why the frame is a range, in words ("long function with high register pressure"). */
  uncertainty?: string;
  /** The deepest byte touched, unrounded (what kernels before 6.8 print); the object side only. */
  byteDepth?: number;
  /** Why stackDepth exceeds checkedDepth, if it does: one reason per addition. */
  hiddenReasons: string[];
  /**
   * The same reasons under their first name, kept for JSON readers. It is a list of reasons here
   * but a byte count in FunctionFrame and StackDepthResult: read hiddenReasons.
   */
  hiddenBytes: string[];
  /** False for a static function only dead code calls: the verifier never enters it. */
  verified: boolean;
  /** False for a function only dead code calls, global ones too: kernels from 6.8 validate neither (FrameNode.reachedFromMain). */
  reachedFromMain?: boolean;
  hasTailCall: boolean;
  isGlobal: boolean;
  isAsyncCallback: boolean;
  source?: SourceLocation;
  tailCalls: SourceLocation[];
  calls: { callee: string; kind: 'call' | 'callback'; source?: SourceLocation }[];
}

export interface ViolationReport {
  rule: RuleId;
  /** The verifier pass that finds it: "do_check" or "check_max_stack_depth". */
  phase: Violation['phase'];
  /** Index of the offending subprogram in the program's subprograms. */
  subprogram: number;
  message: string;
  depth: number;
  chain: string[];
  source?: SourceLocation;
  frames: { name: string; stackDepth: number; roundedDepth: number; privateStack: boolean; callSource?: SourceLocation }[];
  reportedByKernel: boolean;
  /** kernel-lacks-feature: what the kernel lacks, and the first release that has it. */
  missingFeature?: MissingFeature;
  /** kernel-lacks-feature: the stopped verifier's number for each subprogram; undefined for one it does not count. */
  printedDepths?: (number | undefined)[];
}

export interface VerdictReport {
  kernel: string;
  jit: boolean;
  accepted: boolean;
  violations: ViolationReport[];
  maxCombinedDepth: number;
  maxCombinedChain: string[];
  /** Indexes (in the program's subprograms) of those that run on a private stack and add nothing to a chain. */
  privateStackSubprograms?: number[];
  tailCalls: { name: string; callersDepth: number; chain: string[]; source?: SourceLocation }[];
  /** Warnings about the kernel version: outside what the rules model, judged as the nearest one. */
  notes: string[];
  /** Facts about this kernel the verdict depends on that were neither measured nor probed. */
  assumes: string[];
  /** The statistics line this kernel's verifier prints, word for word ("stack depth 240+16+8"). */
  stackDepthLine?: string;
  /** From 7.3 the per-subprogram numbers are on lines of their own, one per subprogram. */
  subprogramStackLines?: SubprogramStackLine[];
}

/**
 * What 7.3 prints for a subprogram it has no BTF name for. Measured on 7.3-rc7 over the lab corpus
 * (4,264 programs, no exception): every program of an object whose BTF has a defined FUNC with an
 * unnamed parameter (clang gives a `__naked` function's parameters no names) prints it for all its
 * subprograms, as does a program rejected before check_btf_info; why the whole object is affected is
 * not known.
 */
export const SUBPROGRAM_NAME_UNKNOWN = '<unknown>';

/** One "subprog N (name) static|global|main insns_self A insns_total B stack S" line of 7.3. */
export interface SubprogramStackLine {
  index: number;
  name: string;
  kind: 'static' | 'global' | 'main';
  stack: number;
}

export interface ProgramReport {
  name: string;
  section: string;
  type: string;
  subprograms: SubprogramReport[];
  /**
   * The verifier's "stack depth" line: the printed subprograms in order, then any the verifier adds
   * itself after its check (see addedSubprograms), so it can have more numbers than `subprograms`.
   */
  stackDepths: string;
  /**
   * Source estimates only, when a frame of the line may be larger than estimated (spills of a long
   * function, see FunctionFrame.upTo): the same line with those frames at their upper bounds.
   * `stackDepths` stays the low end, what the locals alone take.
   */
  stackDepthsUpTo?: string;
  /** Why `stackDepthsUpTo` differs, one reason per uncertain frame. */
  uncertainty?: string[];
  /** Subprograms the verifier appends after a successful check, last in `stackDepths` (depth 0). */
  addedSubprograms?: string[];
  verdicts: VerdictReport[];
}

/**
 * Subprograms the verifier appends itself after a successful check, printed last in its line: the
 * default exception callback (r0 = r1; exit, depth 0) of a program that reaches bpf_throw without
 * declaring a callback of its own (do_misc_fixups, add_hidden_subprog). Both analyses say whether
 * the program throws; this is where it shows.
 */
export function addVerifierSubprograms(report: ProgramReport, throwsWithoutCallback: boolean): void {
  if (!throwsWithoutCallback || !(report.verdicts[0]?.accepted ?? true)) return;
  report.stackDepths += '+0';
  report.addedSubprograms = ['default exception callback'];
}

/** Slots the verifier adds after check_max_stack_depth: printed in its line, never judged. */
export const BPF_LOOP_INLINE_EXTRA = 24;
/**
 * The timed may_goto counter takes two slots on x86-64 (upstream 6.15); measured +16 on 6.18, and
 * one slot (+8) on 6.12.107. Kernels before 6.15 print the rounded depth with 8 in place of 16.
 */
export const MAY_GOTO_EXTRA = 16;
const MAY_GOTO_REASON = `${MAY_GOTO_EXTRA} bytes for the may_goto counter`;

/** Whether a frame's hidden slots include the may_goto counter: the function uses may_goto. */
export function usesMayGoto(hiddenReasons: readonly string[]): boolean {
  return hiddenReasons.includes(MAY_GOTO_REASON);
}

export function hiddenSlots(found: { bpfLoopInlined: boolean; mayGoto: boolean }): { bytes: number; reasons: string[] } {
  const reasons: string[] = [];
  let bytes = 0;
  if (found.bpfLoopInlined) {
    bytes += BPF_LOOP_INLINE_EXTRA;
    reasons.push(`${BPF_LOOP_INLINE_EXTRA} bytes for the inlined bpf_loop`);
  }
  if (found.mayGoto) {
    bytes += MAY_GOTO_EXTRA;
    reasons.push(MAY_GOTO_REASON);
  }
  return { bytes, reasons };
}

/**
 * The "stack depth" line: after a successful load the verifier has removed dead subprograms, so they
 * are not in it; after a rejection they are still there, as 0.
 */
export function printedStackDepths(subprograms: SubprogramReport[], verdict: VerdictReport | undefined, profile?: KernelProfile): string {
  const stopped = stoppedDepths(verdict);
  if (stopped) return stopped.join('+');
  const accepted = verdict?.accepted ?? true;
  const lazy = profile !== undefined && ruleSetFor(profile).lazyGlobalValidation;
  return subprograms
    .filter((sub) => validatedOn(sub, lazy) || !accepted)
    .map((sub) => (validatedOn(sub, lazy) ? sub.stackDepth : 0))
    .join('+');
}

/** Whether a kernel validates the subprogram: do_check enters it, and it is no function only dead code calls where validation is lazy. */
function validatedOn(sub: SubprogramReport, lazyGlobalValidation: boolean): boolean {
  return sub.verified && !(lazyGlobalValidation && sub.reachedFromMain === false);
}

/**
 * The numbers of the line of a verifier stopped by what the kernel lacks, one per subprogram it
 * counts (indexes into the program's subprograms), or undefined for any other verdict.
 */
function stoppedDepths(verdict: VerdictReport | undefined): number[] | undefined {
  const printed = verdict?.violations.find((violation) => violation.reportedByKernel)?.printedDepths;
  return printed?.filter((depth): depth is number => depth !== undefined);
}

/** Each shared entry's reprinted copies, by printed depth. */
const reprinted = new WeakMap<SubprogramReport, Map<number, SubprogramReport>>();

/**
 * The verifier prints its "stack depth" line for rejected programs too, but with what it had reached:
 * the slots it adds after the check (inlined bpf_loop, may_goto) are not there yet, and a function that
 * do_check never entered prints 0. `stackDepth` follows the first kernel profile, so it is that line.
 */
export function printAsRejected(subprograms: SubprogramReport[], verdict: VerdictReport): void {
  if (verdict.accepted) return;
  // Entries are replaced, not changed: the object analyzer shares one entry between programs, and
  // the replacement is shared in turn, so a thousand rejected programs keep one entry per function.
  const print = (index: number, stackDepth: number) => {
    const sub = subprograms[index];
    if (sub.stackDepth === stackDepth) return;
    let copies = reprinted.get(sub);
    if (!copies) reprinted.set(sub, (copies = new Map()));
    let copy = copies.get(stackDepth);
    if (!copy) copies.set(stackDepth, (copy = { ...sub, stackDepth }));
    subprograms[index] = copy;
  };
  const reported = verdict.violations.find((violation) => violation.reportedByKernel);
  if (reported?.printedDepths) {
    reported.printedDepths.forEach((depth, index) => print(index, depth ?? 0));
    return;
  }
  subprograms.forEach((sub, index) => print(index, sub.checkedDepth));
  for (const index of neverEntered(subprograms, reported)) print(index, 0);
}

/**
 * The subprograms whose depth the verifier still has at 0 when do_check stops at `reported`: the one
 * it was entering, and for the frame limit every static subprogram it would have met after that one
 * (a 16-frame chain on a kernel allowing 8 prints 8 numbers, then zeros). do_check enters static
 * callees depth first in call order, so those are the ones after it in that preorder. Global
 * functions (and what they call) were verified before the main program and keep their depths.
 */
function neverEntered(subprograms: readonly SubprogramReport[], reported: ViolationReport | undefined): Set<number> {
  const never = new Set<number>();
  // Refused by add_subprog, the program was never verified: every number is 0 (measured on 6.18).
  if (reported?.phase === 'add_subprog') return new Set(subprograms.map((_, index) => index));
  if (reported?.phase !== 'do_check') return never;
  // A recursion stops do_check at a call into a function it is already in, which has its depth;
  // what it had not entered yet comes after that call in the preorder below.
  const stoppedCallee = reported.chain[reported.chain.length - 1];
  const recursion = reported.rule === 'call-depth' && reported.chain.indexOf(stoppedCallee) < reported.chain.length - 1;
  if (!recursion) never.add(reported.subprogram);
  if (reported.rule !== 'call-depth') return never;
  const indexOf = new Map(subprograms.map((sub, index) => [sub.name, index]));
  const calleesOf = (index: number) =>
    subprograms[index].calls.map((call) => indexOf.get(call.callee)).filter((callee): callee is number => callee !== undefined);
  const verifiedEarlier = new Set<number>();
  const pending = subprograms.flatMap((sub, index) => (index !== 0 && sub.isGlobal ? [index] : []));
  while (pending.length > 0) {
    const index = pending.pop()!;
    if (verifiedEarlier.has(index)) continue;
    verifiedEarlier.add(index);
    pending.push(...calleesOf(index));
  }
  // Iterative preorder walk from the main program: input depth must not decide our stack depth.
  const entered = new Set<number>();
  const stack: number[] = [0];
  let stopped = false;
  while (stack.length > 0) {
    const index = stack.pop()!;
    if (recursion && index === reported.subprogram && entered.has(index)) stopped = true;
    if (entered.has(index) || verifiedEarlier.has(index)) continue;
    entered.add(index);
    if (!recursion && index === reported.subprogram) stopped = true;
    if (stopped) never.add(index);
    stack.push(...calleesOf(index).reverse());
  }
  return never;
}

/**
 * Each verdict's own "stack depth" line, as that kernel prints it. Call before printAsRejected:
 * `stackDepth` must still be the accepted program's depth (hidden slots included).
 *
 *   before 6.8  stack depth 237+13+8         each number the deepest byte touched
 *   6.8 - 7.1   stack depth 240+16+8[+0]     allocated slots; +0 for the default exception callback
 *   7.2         stack depth 240+16 max 256   max = the deepest rounded chain; no +0
 *   7.3         stack depth max 256          then one "subprog N (...) ... stack S" line each
 *
 * `namedInBtf` says whether the kernel can name the subprograms from the program's BTF (see
 * SUBPROGRAM_NAME_UNKNOWN); 7.3 prints "<unknown>" where it cannot.
 */
export function addStackDepthLines(
  subprograms: readonly SubprogramReport[],
  verdicts: VerdictReport[],
  profiles: readonly KernelProfile[],
  throwsWithoutCallback: boolean,
  namedInBtf = true,
): void {
  verdicts.forEach((verdict, position) => {
    const profile = profiles[position];
    if (!profile) return;
    const rules = ruleSetFor(profile);
    const format = rules.stackLineFormat;
    const reported = verdict.violations.find((violation) => violation.reportedByKernel);
    const unentered = neverEntered(subprograms, reported);
    const stopped = reported?.printedDepths;
    const printed = subprograms.flatMap((sub, index) => {
      // A verifier stopped by what the kernel lacks prints what it had reached, for what it counts.
      if (stopped) return stopped[index] === undefined ? [] : [{ sub, index, depth: stopped[index] }];
      // An accepted program's line leaves out what the verifier removed as dead; a rejected one has
      // every subprogram, at what the check saw, and 0 for one do_check never finished.
      const validated = validatedOn(sub, rules.lazyGlobalValidation);
      if (verdict.accepted && !validated) return [];
      const unfinished = unentered.has(index) || !validated;
      if (!verdict.accepted) {
        return [{ sub, index, depth: unfinished ? 0 : format === 'bytes' ? (sub.byteDepth ?? sub.checkedDepth) : sub.checkedDepth }];
      }
      // The slots added after the check (bpf_loop, may_goto) are whole slots on top of the rounded depth.
      const hidden = sub.stackDepth > sub.checkedDepth;
      const mayGotoShortfall = usesMayGoto(sub.hiddenBytes) ? MAY_GOTO_EXTRA - rules.mayGotoSlotBytes : 0;
      return [{ sub, index, depth: format === 'bytes' && !hidden ? (sub.byteDepth ?? sub.checkedDepth) : sub.stackDepth - mayGotoShortfall }];
    });
    const numbers = printed.map((entry) => entry.depth);
    if ((format === 'bytes' || format === 'slots') && throwsWithoutCallback && verdict.accepted) numbers.push(0);
    const sum = numbers.join('+');
    // The walk that computes max never ran when a pass before it stopped first: 7.2 and 7.3 print 0.
    const printedMax = reported !== undefined && reported.phase !== 'check_max_stack_depth' ? 0 : verdict.maxCombinedDepth;
    if (format === 'bytes' || format === 'slots') verdict.stackDepthLine = `stack depth ${sum}`;
    else if (format === 'slots-max') verdict.stackDepthLine = `stack depth ${sum} max ${printedMax}`;
    else {
      verdict.stackDepthLine = `stack depth max ${printedMax}`;
      // Numbered as the verifier has them when it prints: after the dead ones of an accepted program
      // were removed, those after them moved down (measured on 7.3-rc7 with bcc's tcprtt).
      // add_subprog runs before check_btf_info gives the subprograms their names.
      const named = namedInBtf && reported?.phase !== 'add_subprog';
      verdict.subprogramStackLines = printed.map(({ sub, index, depth }, position) => ({
        index: position,
        name: named ? sub.name : SUBPROGRAM_NAME_UNKNOWN,
        kind: index === 0 ? 'main' : sub.isGlobal ? 'global' : 'static',
        stack: depth,
      }));
    }
  });
}

export function verdictReport(verdict: Verdict): VerdictReport {
  return {
    kernel: verdict.kernel,
    jit: verdict.jit,
    accepted: verdict.accepted,
    violations: verdict.violations.map((violation) => ({
      rule: violation.rule,
      phase: violation.phase,
      subprogram: violation.subprogram,
      message: violation.message,
      depth: violation.depth,
      chain: violation.chain,
      source: violation.source,
      frames: violation.frames.map((frame) => ({
        name: frame.name,
        stackDepth: frame.stackDepth,
        roundedDepth: frame.roundedDepth,
        privateStack: frame.privateStack,
        callSource: frame.callSource,
      })),
      reportedByKernel: violation.reportedByKernel,
      ...(violation.missingFeature ? { missingFeature: violation.missingFeature } : {}),
      ...(violation.printedDepths ? { printedDepths: violation.printedDepths } : {}),
    })),
    maxCombinedDepth: verdict.maxCombinedDepth,
    maxCombinedChain: verdict.maxCombinedChain,
    privateStackSubprograms: verdict.privateStackSubprograms,
    tailCalls: verdict.tailCalls.map((reach) => ({
      name: reach.name,
      callersDepth: reach.callersDepth,
      chain: reach.chain,
      source: reach.source,
    })),
    notes: verdict.notes,
    assumes: verdict.assumes,
  };
}
