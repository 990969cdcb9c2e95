/**
 * What a violation means in bytes and what would make it pass, for every stack rule, shared by the
 * diagnostics, the hover and the CodeLens so that they say the same:
 *   - how far over the limit the rule's number is ("560 B is 48 B over 512");
 *   - which frame of the chain could make it pass on its own, and by how many bytes of its own
 *     frame ("entry must lose 8 B (200 → 192 B)"). The kernel rounds every frame before adding it
 *     (to 32 B before 6.9 or without the JIT, to 16 B with the JIT from 6.9), so the bytes a frame
 *     must lose are found by rounding candidate sizes with the kernel's own rounding, never by
 *     subtracting the excess.
 * It also finds the deepest chain through a function on a kernel that accepts the program, which the
 * verdict only gives for the deepest chain of all.
 */
import type { ProgramReport, VerdictReport, ViolationReport } from '../object/analyzeObject';
import { type KernelProfile, ruleSetFor } from '../rules/kernelProfile';
import { MAX_BPF_STACK, type MissingFeature, TAIL_CALL_CALLERS_LIMIT } from '../rules/stackRules';

/** The rule code of clang's own limit on one function's frame, predicted from the source. */
export const CLANG_STACK_LIMIT_RULE = 'clang-stack-limit';
/** clang's BPF back end refuses a function whose frame reaches past this many bytes. */
export const CLANG_FRAME_LIMIT = MAX_BPF_STACK;

export interface ShrinkOption {
  name: string;
  /** The frame's bytes now, as the verifier checks them. */
  frameBytes: number;
  /** The bytes it must lose, alone, for the chain to pass. */
  loseBytes: number;
}

type Frame = ViolationReport['frames'][number];

/** The frames whose bytes a rule adds up: a tail call counts its callers' frames, not its own. */
function countedFrames(violation: Pick<ViolationReport, 'rule' | 'frames'>): Frame[] {
  if (violation.rule === 'subprog-stack') return violation.frames.slice(-1);
  const frames = violation.rule === 'tail-call-depth' ? violation.frames.slice(0, -1) : violation.frames;
  return frames.filter((frame) => !frame.privateStack);
}

/** The most the counted frames may add up to under the rule, or undefined for rules not about bytes. */
function allowedBytes(rule: string): number | undefined {
  if (rule === 'tail-call-depth') return TAIL_CALL_CALLERS_LIMIT - 1;
  if (rule === 'combined-stack' || rule === 'subprog-stack') return MAX_BPF_STACK;
  return undefined;
}

/**
 * Each frame of the chain that could bring it within the rule alone, with the bytes it must lose,
 * fewest first. Empty for rules about something else than bytes (the number of frames).
 */
export function shrinkOptions(violation: Pick<ViolationReport, 'rule' | 'frames' | 'depth'>, profile: KernelProfile): ShrinkOption[] {
  const allowed = allowedBytes(violation.rule);
  if (allowed === undefined) return [];
  const round = ruleSetFor(profile).roundStackDepth;
  const counted = countedFrames(violation);
  const total = counted.reduce((sum, frame) => sum + frame.roundedDepth, 0);
  const excess = total - allowed;
  if (excess <= 0) return [];
  const options: ShrinkOption[] = [];
  const seen = new Set<string>();
  for (const frame of counted) {
    if (seen.has(frame.name)) continue;
    seen.add(frame.name);
    const roundedTarget = frame.roundedDepth - excess;
    let fits = -1;
    for (let candidate = frame.stackDepth - 1; candidate >= 0; candidate--) {
      if (round(candidate) <= roundedTarget) {
        fits = candidate;
        break;
      }
    }
    if (fits >= 0) options.push({ name: frame.name, frameBytes: frame.stackDepth, loseBytes: frame.stackDepth - fits });
  }
  return options.sort((a, b) => a.loseBytes - b.loseBytes);
}

/** "entry must lose 8 B (200 → 192 B)", "or process 24 B", for the two cheapest options. */
export function shrinkText(options: ShrinkOption[]): string | undefined {
  if (options.length === 0) return undefined;
  const [first, second] = options;
  const text = `${first.name} must lose ${first.loseBytes} B (${first.frameBytes} → ${first.frameBytes - first.loseBytes} B)`;
  return second ? `${text}, or ${second.name} ${second.loseBytes} B` : text;
}

/** What a kernel lacks and from which release it has it: "bpf_trace_vprintk (helper 177) needs 5.16 or later (kernel 5.10.223 predates it)". */
export function missingFeatureText(feature: MissingFeature, profile: KernelProfile): string {
  if (feature.since === undefined) return `${feature.what} is in no kernel release the analyzer knows (kernel ${profile.version} does not have it)`;
  return `${feature.what} needs ${feature.since} or later (kernel ${profile.version} predates it)`;
}

type AdvisedViolation = Pick<ViolationReport, 'rule' | 'depth' | 'frames' | 'missingFeature'>;

/** How far over its limit a violation is, in the rule's own terms. */
export function excessText(violation: AdvisedViolation, profile: KernelProfile): string {
  switch (violation.rule) {
    case 'tail-call-depth':
      return `the callers' frames add up to ${violation.depth} B, and a tail call needs them under ${TAIL_CALL_CALLERS_LIMIT} B`;
    case 'combined-stack':
      return `${violation.depth} B is ${violation.depth - MAX_BPF_STACK} B over ${MAX_BPF_STACK}`;
    case 'subprog-stack':
      return `${violation.depth} B is ${violation.depth - MAX_BPF_STACK} B over the ${MAX_BPF_STACK} B of one private stack`;
    case 'call-depth': {
      const limit = ruleSetFor(profile).maxCallFrames;
      const calls = violation.frames.slice(1).map((frame) => frame.name);
      const inline = calls.length > 0 ? `: make a call on the chain inline (static __always_inline), such as ${calls[calls.length - 1]}` : '';
      return `${violation.frames.length} frames where ${limit} is the most${inline}`;
    }
    case 'tail-call-with-calls':
      return 'this kernel allows tail calls only in programs without bpf-to-bpf calls (before 5.10, and without the JIT): inline the subprograms (__always_inline), or target 5.10 and later with the JIT';
    case 'kernel-lacks-feature':
      return violation.missingFeature ? missingFeatureText(violation.missingFeature, profile) : 'this kernel lacks what the program uses';
    case 'back-edge':
      return `${violation.frames[0]?.name ?? 'the function'} has a loop that code inside it falls through into: kernels before 6.7 refuse it; write the loop so it is entered at its top (for, while), or target 6.7 and later`;
    case 'recursion': {
      const [caller, callee] = violation.frames.map((frame) => frame.name);
      return `${caller} calls ${callee}, which is already on the chain: the verifier takes no recursion; turn it into a bounded loop (for, bpf_loop)`;
    }
    default:
      return '';
  }
}

/** The advice of a violation on one kernel: by how much, then what to shrink. */
export function adviceText(violation: AdvisedViolation, profile: KernelProfile): string {
  const shrink = shrinkText(shrinkOptions(violation, profile));
  const excess = excessText(violation, profile);
  return shrink ? `${excess}: ${shrink} to pass` : excess;
}

/** What a lens or hover says a kernel found on the chains through one function. */
export type ChainMeasure =
  | { kind: 'violation'; rule: string; depth: number; frames: number; violation: ViolationReport }
  | { kind: 'tail call'; depth: number }
  | { kind: 'combined'; depth: number };

/**
 * The measure of the chains through `name` on one kernel: the violation the kernel prints when one
 * runs through it (else the first that does), else the deepest tail call it leads to, else the
 * deepest chain through it against 512.
 */
export function measureThrough(name: string, program: ProgramReport, verdict: VerdictReport, profile: KernelProfile): ChainMeasure | undefined {
  const through = verdict.violations.filter((violation) => violation.chain.includes(name));
  const violation = through.find((candidate) => candidate.reportedByKernel) ?? through[0];
  if (violation) return { kind: 'violation', rule: violation.rule, depth: violation.depth, frames: violation.frames.length, violation };
  const reaches = verdict.tailCalls.filter((reach) => reach.chain.includes(name));
  if (reaches.length > 0) return { kind: 'tail call', depth: Math.max(...reaches.map((reach) => reach.callersDepth)) };
  const depth = deepestChainThrough(name, program, verdict, profile);
  return depth === undefined ? undefined : { kind: 'combined', depth };
}

/**
 * The largest sum of rounded frames along a chain from the program's main function through `name`
 * (frames on a private stack add nothing), as check_max_stack_depth adds them; undefined when no
 * chain from main reaches it.
 */
export function deepestChainThrough(name: string, program: ProgramReport, verdict: VerdictReport, profile: KernelProfile): number | undefined {
  if (verdict.maxCombinedChain.includes(name)) return verdict.maxCombinedDepth;
  const subs = program.subprograms;
  const target = subs.findIndex((sub) => sub.name === name);
  if (target < 0 || subs.length === 0) return undefined;
  const round = ruleSetFor(profile).roundStackDepth;
  const privateStack = new Set(verdict.privateStackSubprograms ?? []);
  const own = (index: number) => (privateStack.has(index) ? 0 : round(subs[index].checkedDepth));
  const callees = (index: number) =>
    subs[index].calls
      .filter((call) => call.kind === 'call')
      .map((call) => subs.findIndex((sub) => sub.name === call.callee))
      .filter((callee) => callee >= 0);
  // Below: the deepest sum from a function down; above: the deepest sum of its callers from main.
  const below = new Map<number, number>();
  const deepestBelow = (index: number, onPath: Set<number>): number => {
    const known = below.get(index);
    if (known !== undefined) return known;
    onPath.add(index);
    const deepest = Math.max(
      0,
      ...callees(index)
        .filter((callee) => !onPath.has(callee))
        .map((callee) => deepestBelow(callee, onPath)),
    );
    onPath.delete(index);
    below.set(index, own(index) + deepest);
    return own(index) + deepest;
  };
  const above = new Map<number, number>();
  const walk = (index: number, callersDepth: number, onPath: Set<number>) => {
    if ((above.get(index) ?? -1) >= callersDepth) return;
    above.set(index, callersDepth);
    onPath.add(index);
    for (const callee of callees(index)) if (!onPath.has(callee)) walk(callee, callersDepth + own(index), onPath);
    onPath.delete(index);
  };
  walk(0, 0, new Set());
  const callersDepth = above.get(target);
  return callersDepth === undefined ? undefined : callersDepth + deepestBelow(target, new Set());
}

/** The granularity a kernel rounds frames to, and why, for saying once in a hover. */
export function roundingText(profile: KernelProfile): string {
  const granularity = ruleSetFor(profile).roundStackDepth(1);
  return granularity === 16 ? 'frames round up to 16 B with the JIT from 6.9' : `frames round up to ${granularity} B before 6.9 or without the JIT`;
}
