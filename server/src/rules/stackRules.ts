/**
 * The verifier's check_max_stack_depth, replayed on a FrameGraph for one kernel profile.
 *
 * The kernel walks, from each root, every call instruction of every function depth-first (dead code
 * included), keeping the sum of the rounded frames of the functions on the current chain. On entering
 * a function it applies, in this order (kernel/bpf/verifier.c, check_max_stack_depth_subprog):
 *
 *   1. tail-call-depth: a non-main function with a tail call, entered while its callers' frames add
 *      up to 256 bytes or more;
 *   2. its own frame is rounded; with a private stack it must fit 512 bytes alone (subprog-stack),
 *      otherwise it is added to the chain, which must stay within 512 bytes (combined-stack);
 *   3. each call out of it must not make the chain longer than 8 frames (call-depth); from 7.2 the
 *      limit is 16 and a global subprogram starts a new count, as it is verified on its own.
 *
 * One rule fires earlier, in do_check, which follows static calls as it verifies: a run of more than
 * 8 static frames (counted from the main function or the last global one, since global functions are
 * verified on their own) is "the call stack of 9 frames is too deep", without the "!" of the walk.
 * The kernel meets it before check_max_stack_depth runs, so it is the one printed. So is the check of
 * check_map_func_compatibility that refuses a tail call in a program with bpf-to-bpf calls where
 * allow_tail_call_in_subprogs() is false: before 5.10, and without the JIT on any kernel.
 *
 * Earlier still, add_subprog refuses a program of more than 256 subprograms ("too many
 * subprograms"), and the verifier stops there.
 *
 * The kernel stops at the first violation. We go on, so the user sees every chain that breaks a
 * rule, and mark the one the kernel will print.
 */
import type { SourceLocation } from '../common/problem';
import { programAttachForSection } from './programType';
import type { FrameGraph } from './frameGraph';
import { type KernelProfile, PRIVATE_STACK_MIN_BYTES, type ProgramKind, privateStackKey, ruleSetFor, upstreamPrivateStack } from './kernelProfile';

export const MAX_BPF_STACK = 512;
/** MAX_CALL_FRAMES up to 7.1; see KernelRuleSet.maxCallFrames. */
export const MAX_CALL_FRAMES = 8;
/** A function with a tail call must be entered with less than this many bytes of callers' frames. */
export const TAIL_CALL_CALLERS_LIMIT = 256;
/**
 * BPF_MAX_SUBPROGS: add_subprog refuses a program with more subprograms than this, main included
 * ("too many subprograms", -E2BIG), before do_check. On 6.18 a main calling 255 leaves loads and
 * one calling 256 does not. A front end builds no more than this many frames of a program.
 */
export const MAX_SUBPROGRAMS = 256;
/**
 * Frames the walk visits at most. It follows every chain, as the kernel does, and chains multiply:
 * 7 layers of 20 functions, each calling all of the next layer, are 20^7 chains. The kernel meets
 * them first in do_check, which walks each chain too and gives up at 1,000,000 processed instructions
 * (measured on 6.18 for that graph: "BPF program is too large. Processed 1000001 insn").
 */
export const MAX_WALKED_FRAMES = 1_000_000;

export type RuleId = 'tail-call-depth' | 'combined-stack' | 'call-depth' | 'subprog-stack' | 'tail-call-with-calls' | 'too-many-subprograms';

/** check_map_func_compatibility's message where tail calls and bpf-to-bpf calls may not be mixed. */
export const TAIL_CALL_WITH_CALLS_MESSAGE = 'tail_calls are not allowed in programs with bpf-to-bpf calls';

/** One frame of a chain, from the root down. */
export interface ChainFrame {
  subprogram: number;
  name: string;
  stackDepth: number;
  roundedDepth: number;
  /** True when the frame runs on the private stack and so adds nothing to the chain. */
  privateStack: boolean;
  /** Where the caller called this frame (absent for the root). */
  callSource?: SourceLocation;
}

export interface Violation {
  rule: RuleId;
  /** The verifier's message, word for word as this kernel prints it. */
  message: string;
  /** Bytes the rule was judged on: the callers' depth for tail calls, the chain's sum otherwise. */
  depth: number;
  /** Function names from the root to the offending function. */
  chain: string[];
  frames: ChainFrame[];
  /** Index of the offending subprogram. */
  subprogram: number;
  /** Where to point: the tail call, or the offending function, or the call that went too deep. */
  source?: SourceLocation;
  /** True for the violation the kernel meets first and prints; the rest follow once it is fixed. */
  reportedByKernel: boolean;
  /**
   * Which pass of the verifier finds it: add_subprog as it collects the subprograms, do_check while
   * verifying, or the stack-depth walk after it.
   */
  phase: 'add_subprog' | 'do_check' | 'check_max_stack_depth';
}

/** The worst chain that reaches a tail-calling function, whether it breaks the rule or not. */
export interface TailCallReach {
  subprogram: number;
  name: string;
  /** Sum of the callers' rounded frames at the deepest chain that reaches it. */
  callersDepth: number;
  chain: string[];
  source?: SourceLocation;
}

export interface Verdict {
  kernel: string;
  jit: boolean;
  accepted: boolean;
  violations: Violation[];
  /** The largest sum of rounded frames along any chain, and that chain. */
  maxCombinedDepth: number;
  maxCombinedChain: string[];
  tailCalls: TailCallReach[];
  /** Subprograms that run on a private stack under this profile. */
  privateStackSubprograms: number[];
  /** Warnings about the kernel version (outside what the rules model). */
  notes: string[];
  /** Facts about the kernel this verdict assumed without measuring or probing them. */
  assumes: string[];
}

/** The program kind a graph was loaded as: from its SEC name when known, else its type alone. */
export function programKindOf(graph: FrameGraph): ProgramKind {
  if (graph.section !== undefined) return programAttachForSection(graph.section);
  return { type: graph.programType, expectedAttachType: 'none', sleepable: false };
}

type PrivateStackMode = 'unknown' | 'none' | 'adaptive';

export function judgeStack(graph: FrameGraph, profile: KernelProfile): Verdict {
  const rules = ruleSetFor(profile);
  const nodes = graph.subprograms;
  const violations: Violation[] = [];
  const seenViolations = new Set<string>();
  const tailCalls = new Map<number, TailCallReach>();
  const modes: PrivateStackMode[] = nodes.map(() => 'unknown');
  let maxCombinedDepth = 0;
  let maxCombinedChain: string[] = [];
  let deepestAtFirstError: { depth: number; chain: string[] } | undefined;
  let walkedFrames = 0;

  const kind = programKindOf(graph);
  const hasTailCall = nodes.some((node) => node.hasTailCall);
  const programMayUsePrivateStack = rules.privateStackFor(kind) && !hasTailCall;
  const assumes = [...rules.assumes];
  const hasAsyncCallback = nodes.some((node) => node.isAsyncCallback);
  if (profile.probed?.asyncCallbacksAreRoots === undefined && profile.probed && hasAsyncCallback) {
    assumes.push(`async callbacks ${rules.asyncCallbacksAreRoots ? 'are' : 'are not'} roots of their own: assumed from the release; the probe could not load one`);
  }
  if (profile.probed?.tailCallsWithCalls === undefined && profile.probed && hasTailCall && nodes.length > 1) {
    assumes.push(`tail calls ${rules.tailCallsWithCalls ? 'may' : 'may not'} be mixed with bpf-to-bpf calls: assumed from the release; the probe could not load one`);
  }
  if (profile.probed && upstreamPrivateStack(kind) && profile.probed.privateStack[privateStackKey(kind)] === undefined) {
    assumes.push(
      `${programMayUsePrivateStack ? 'a private' : 'no private'} stack for ${kind.type} programs (expected attach type ${kind.expectedAttachType}${kind.sleepable ? ', sleepable' : ''}): assumed from the release; the probe could not load one`,
    );
  }

  const record = (violation: Omit<Violation, 'reportedByKernel' | 'chain' | 'phase'>, phase: Violation['phase'] = 'check_max_stack_depth') => {
    const chain = violation.frames.map((frame) => frame.name);
    const key = `${violation.rule}:${chain.join('>')}`;
    if (seenViolations.has(key)) return;
    seenViolations.add(key);
    // The kernel's walk stops at its first error, so the deepest chain it printed (7.2's "max M")
    // is the one reached by then, the failing frame included.
    if (phase === 'check_max_stack_depth' && !violations.some((v) => v.phase === phase)) {
      deepestAtFirstError = { depth: Math.max(maxCombinedDepth, violation.rule === 'combined-stack' ? violation.depth : 0), chain: maxCombinedChain };
    }
    violations.push({ ...violation, chain, reportedByKernel: false, phase });
  };

  const visit = (
    index: number,
    callersDepth: number,
    callers: ChainFrame[],
    callSource: SourceLocation | undefined,
    privateStackSupported: boolean,
  ) => {
    if (++walkedFrames > MAX_WALKED_FRAMES) return;
    const node = nodes[index];
    const roundedDepth = rules.roundStackDepth(node.stackDepth);
    if (!privateStackSupported) modes[index] = 'none';
    if (privateStackSupported && modes[index] === 'unknown' && roundedDepth >= PRIVATE_STACK_MIN_BYTES) {
      modes[index] = 'adaptive';
    }
    const frame: ChainFrame = {
      subprogram: index,
      name: node.name,
      stackDepth: node.stackDepth,
      roundedDepth,
      privateStack: modes[index] === 'adaptive',
      callSource,
    };
    const frames = [...callers, frame];

    if (index !== 0 && node.hasTailCall) {
      const reach = tailCalls.get(index);
      if (!reach || callersDepth > reach.callersDepth) {
        tailCalls.set(index, {
          subprogram: index,
          name: node.name,
          callersDepth,
          chain: frames.map((f) => f.name),
          source: node.tailCallSource ?? node.source,
        });
      }
      if (callersDepth >= TAIL_CALL_CALLERS_LIMIT) {
        record({
          rule: 'tail-call-depth',
          message: `tail_calls are not allowed when call stack of previous frames is ${callersDepth} bytes. Too large`,
          depth: callersDepth,
          frames,
          subprogram: index,
          source: node.tailCallSource ?? node.source,
        });
        return;
      }
    }

    let depth = callersDepth;
    if (frame.privateStack) {
      // A frame on the private stack is a stack of its own: measured on 7.2, "stack depth 48+48+400+48
      // max 400" for a 400-byte private frame under two shared 48s.
      if (roundedDepth > maxCombinedDepth) {
        maxCombinedDepth = roundedDepth;
        maxCombinedChain = frames.map((f) => f.name);
      }
      if (roundedDepth > MAX_BPF_STACK) {
        record({
          rule: 'subprog-stack',
          message: `stack size of subprog ${index} is ${roundedDepth}. Too large`,
          depth: roundedDepth,
          frames,
          subprogram: index,
          source: node.source,
        });
        return;
      }
    } else {
      depth += roundedDepth;
      if (depth > maxCombinedDepth) {
        maxCombinedDepth = depth;
        maxCombinedChain = frames.map((f) => f.name);
      }
      if (depth > MAX_BPF_STACK) {
        record({
          rule: 'combined-stack',
          message: `combined stack size of ${frames.length} calls is ${depth}. Too large`,
          depth,
          frames,
          subprogram: index,
          source: node.source,
        });
        return;
      }
    }

    for (const call of node.calls) {
      const callee = nodes[call.callee];
      if (!callee) continue;
      // Async callbacks taken by address run later, on their own stack; they are roots of their own.
      if (rules.asyncCallbacksAreRoots && callee.isAsyncCallback && call.kind === 'callback') continue;
      // check_cfg() rejects recursion before this check runs; never loop on it here.
      if (frames.some((f) => f.subprogram === call.callee)) continue;
      const calleeFrameIndex = frames.length;
      const staticRun = callee.isGlobal ? 0 : staticFramesFromUnitRoot(frames) + 1;
      if (staticRun > rules.maxCallFrames) {
        record(
          {
            rule: 'call-depth',
            message: `the call stack of ${staticRun} frames is too deep`,
            depth,
            frames: [...frames, calleeFrame(call.callee, call.source)],
            subprogram: call.callee,
            source: call.source,
          },
          'do_check',
        );
        continue;
      }
      if (rules.globalCallsCountFrames && calleeFrameIndex >= rules.maxCallFrames) {
        record({
          rule: 'call-depth',
          message: `the call stack of ${calleeFrameIndex} frames is too deep !`,
          depth,
          frames: [...frames, calleeFrame(call.callee, call.source)],
          subprogram: call.callee,
          source: call.source,
        });
        continue;
      }
      visit(call.callee, depth, frames, call.source, privateStackSupported);
    }
  };

  /** Frames since the main function or the last global function: what do_check has on its stack. */
  const staticFramesFromUnitRoot = (frames: ChainFrame[]): number => {
    let count = 0;
    for (let i = frames.length - 1; i >= 0; i--) {
      count++;
      if (i === 0 || nodes[frames[i].subprogram].isGlobal) break;
    }
    return count;
  };

  const calleeFrame = (index: number, callSource?: SourceLocation): ChainFrame => ({
    subprogram: index,
    name: nodes[index].name,
    stackDepth: nodes[index].stackDepth,
    roundedDepth: rules.roundStackDepth(nodes[index].stackDepth),
    privateStack: false,
    callSource,
  });

  if (nodes.length > 0 && (graph.moreSubprograms || nodes.length > MAX_SUBPROGRAMS)) {
    record(
      {
        rule: 'too-many-subprograms',
        message: 'too many subprograms',
        depth: 0,
        frames: [calleeFrame(0)],
        subprogram: 0,
        source: nodes[0]?.source,
      },
      'add_subprog',
    );
  }

  if (!rules.tailCallsWithCalls && hasTailCall && nodes.length > 1) {
    const tailCaller = nodes.findIndex((node) => node.hasTailCall);
    record(
      {
        rule: 'tail-call-with-calls',
        message: TAIL_CALL_WITH_CALLS_MESSAGE,
        depth: 0,
        frames: [calleeFrame(tailCaller)],
        subprogram: tailCaller,
        source: nodes[tailCaller].tailCallSource ?? nodes[tailCaller].source,
      },
      'do_check',
    );
  }

  // The kernel checks async-callback roots first (highest index first), then main, so that a
  // function shared with an async callback is already pinned to the normal stack.
  if (nodes.length > 0) {
    for (let index = nodes.length - 1; index >= 0; index--) {
      const isRoot = index === 0 || (rules.asyncCallbacksAreRoots && nodes[index].isAsyncCallback);
      if (!isRoot) continue;
      visit(index, 0, [], undefined, index === 0 && programMayUsePrivateStack);
    }
  }

  // add_subprog runs first, do_check before the stack-depth walk; within the walk the kernel meets violations in the
  // order they were recorded.
  const first = violations.find((v) => v.phase === 'add_subprog') ?? violations.find((v) => v.phase === 'do_check') ?? violations[0];
  if (first) first.reportedByKernel = true;
  if (first?.phase === 'check_max_stack_depth' && deepestAtFirstError) ({ depth: maxCombinedDepth, chain: maxCombinedChain } = deepestAtFirstError);
  return {
    kernel: profile.version,
    jit: profile.jit,
    accepted: violations.length === 0,
    violations,
    maxCombinedDepth,
    maxCombinedChain,
    tailCalls: [...tailCalls.values()].sort((a, b) => a.subprogram - b.subprogram),
    privateStackSubprograms: modes.flatMap((mode, index) => (mode === 'adaptive' ? [index] : [])),
    notes:
      walkedFrames > MAX_WALKED_FRAMES
        ? [
            ...rules.notes,
            `the call graph has more than ${MAX_WALKED_FRAMES} frames along its chains; the walk stopped there, and the verifier itself gives up once do_check has processed 1,000,000 instructions ("BPF program is too large")`,
          ]
        : rules.notes,
    assumes,
  };
}
