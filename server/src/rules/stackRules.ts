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
 * A recursion (a call back into the chain) is walked like any other call, until the chain is too
 * deep ("the call stack of 8 frames is too deep !") or too big. do_check follows it only as far as
 * the values it knows let it (FrameGraph.verifiedChainFrames), so its "9 frames" comes first only
 * for a recursion those values do not end.
 *
 * Earlier still, add_subprog refuses a program of more than 256 subprograms ("too many
 * subprograms"), and the verifier stops there.
 *
 * A program can also use what a kernel predates (kernel-lacks-feature). bpf_check meets those in
 * this order, the same from 5.10 to 6.x (kernel/bpf/verifier.c):
 *
 *   check_subprogs, check_btf_info   before 5.13 a function whose address is taken (ld_imm64 with
 *                                    BPF_PSEUDO_FUNC, a callback) is no subprogram, so the object's
 *                                    BTF func_info has more functions than the kernel counted:
 *                                    "number of funcs in func_info doesn't match number of subprogs"
 *   check_attach_btf_id              a sleepable program of a type that may not sleep (uprobes before 6.0)
 *   resolve_pseudo_ldimm64           an opcode the kernel does not know ("unknown opcode e5": may_goto
 *                                    before 6.9); without func_info, the callback's ld_imm64 itself
 *   do_check                         a helper id the kernel does not have ("invalid func unknown#177"),
 *                                    when the walk reaches the call
 *
 * Each stops the verifier, so its "stack depth" line holds what it had reached: all 0 before
 * do_check; the depth so far when do_check stops (Violation.printedDepths).
 *
 * The kernel stops at the first violation. We go on, so the user sees every chain that breaks a
 * rule, and mark the one the kernel will print.
 */
import { firstEdgeBackIntoChain } from '../common/graphCycles';
import type { SourceLocation } from '../common/problem';
import { programAttachForSection } from './programType';
import { roundToSlots } from '../common/numbers';
import type { FrameGraph, HelperCall } from './frameGraph';
import {
  CALLBACK_ADDRESS_RELEASE,
  type KernelProfile,
  type KernelRuleSet,
  MAY_GOTO_RELEASE,
  PRIVATE_STACK_MIN_BYTES,
  type ProgramKind,
  helperIntroducedIn,
  privateStackKey,
  ruleSetFor,
  upstreamPrivateStack,
} from './kernelProfile';

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
/**
 * The longest chain the walk follows. Without recursion no chain is longer than the program has
 * subprograms, and a recursion the walk goes round (6.7 to 7.1) is stopped by the frame limit,
 * since globals count frames there. The bound is for a profile the release does not explain (a probe
 * that measured the 16-frame count of 7.2 on an older release), where a global calling itself would
 * start every count again.
 */
export const MAX_CHAIN_FRAMES = MAX_SUBPROGRAMS;

export type RuleId =
  | 'tail-call-depth'
  | 'combined-stack'
  | 'call-depth'
  | 'subprog-stack'
  | 'tail-call-with-calls'
  | 'too-many-subprograms'
  | 'kernel-lacks-feature'
  | 'recursion'
  | 'back-edge';

/** What a program uses that the kernel predates, for advice: the feature and the first release with it. */
export interface MissingFeature {
  feature: 'callback-address' | 'may-goto' | 'helper' | 'sleepable';
  /** In words: "bpf_trace_vprintk (helper 177)", "the callback loop_cb passed by address (BPF_PSEUDO_FUNC)". */
  what: string;
  /** The first upstream release that has it ("5.16"); undefined for a helper id no release has. */
  since?: string;
}

/** check_btf_info's words when a callback taken by address is no subprogram (before 5.13). */
export const FUNC_INFO_MISMATCH_MESSAGE = "number of funcs in func_info doesn't match number of subprogs";
/** resolve_pseudo_ldimm64's words for that callback's ld_imm64 when there is no func_info. */
export const CALLBACK_LDIMM64_MESSAGE = 'unrecognized bpf_ld_imm64 insn';

/** resolve_pseudo_ldimm64's words for may_goto (BPF_JMP | BPF_JCOND | BPF_K) on a kernel before 6.9. */
export const MAY_GOTO_UNKNOWN_MESSAGE = 'unknown opcode e5';

/** bpf_check's passes, in the order it runs them; a verifier stops at the first that fails. */
export const VERIFIER_PHASES = [
  'add_subprog',
  'check_btf_info',
  'check_attach_btf_id',
  'resolve_pseudo_ldimm64',
  'check_cfg',
  'do_check',
  'check_max_stack_depth',
] as const;
export type VerifierPhase = (typeof VERIFIER_PHASES)[number];

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
   * Which pass of the verifier finds it: add_subprog as it collects the subprograms, the checks of
   * BTF, attach target and instructions before verifying, do_check while verifying, or the
   * stack-depth walk after it.
   */
  phase: VerifierPhase;
  /** For kernel-lacks-feature: what the kernel lacks and from which release it has it. */
  missingFeature?: MissingFeature;
  /**
   * For kernel-lacks-feature: each subprogram's number in the "stack depth" line the stopped
   * verifier prints (the depth reached so far; 0 for one not entered), undefined for a function
   * this kernel does not count as a subprogram.
   */
  printedDepths?: (number | undefined)[];
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
  return judgeGraph(rules.lazyGlobalValidation ? withoutUnvalidated(graph) : graph, profile, rules);
}

/**
 * The graph as a kernel that validates global functions lazily (from 6.8, "bpf: validate global
 * subprogs lazily") sees it: a global function no live code calls is never validated, nor what only
 * it calls, so their depth stays 0 for the stack walk (measured: verifier_global_subprogs.c on
 * 6.12.107, 7.2.13, 7.3-rc7 and 6.18; 6.1.170 validates it).
 */
function withoutUnvalidated(graph: FrameGraph): FrameGraph {
  if (!graph.subprograms.some((node) => node.reachedFromMain === false)) return graph;
  return {
    ...graph,
    subprograms: graph.subprograms.map((node) =>
      node.reachedFromMain === false ? { ...node, stackDepth: 0, byteDepth: 0, depthSteps: [], helperCalls: [] } : node,
    ),
  };
}

function judgeGraph(graph: FrameGraph, profile: KernelProfile, rules: KernelRuleSet): Verdict {
  const nodes = graph.subprograms;
  const violations: Violation[] = [];
  const seenViolations = new Set<string>();
  const tailCalls = new Map<number, TailCallReach>();
  const modes: PrivateStackMode[] = nodes.map(() => 'unknown');
  let maxCombinedDepth = 0;
  let maxCombinedChain: string[] = [];
  let deepestAtFirstError: { depth: number; chain: string[] } | undefined;
  let walkedFrames = 0;
  let chainCut = false;

  const kind = programKindOf(graph);
  const hasTailCall = nodes.some((node) => node.hasTailCall);
  const programMayUsePrivateStack = rules.privateStackFor(kind) && !hasTailCall;
  const assumes = [...rules.assumes];
  const hasAsyncCallback = nodes.some((node) => node.isAsyncCallback);
  if (profile.probed?.asyncCallbacksAreRoots === undefined && profile.probed && hasAsyncCallback) {
    assumes.push(
      `async callbacks ${rules.asyncCallbacksAreRoots ? 'are' : 'are not'} roots of their own: assumed from the release; the probe could not load one`,
    );
  }
  if (profile.probed?.tailCallsWithCalls === undefined && profile.probed && hasTailCall && nodes.length > 1) {
    assumes.push(
      `tail calls ${rules.tailCallsWithCalls ? 'may' : 'may not'} be mixed with bpf-to-bpf calls: assumed from the release; the probe could not load one`,
    );
  }
  if (profile.probed && upstreamPrivateStack(kind) && profile.probed.privateStack[privateStackKey(kind)] === undefined) {
    assumes.push(
      `${programMayUsePrivateStack ? 'a private' : 'no private'} stack for ${kind.type} programs (expected attach type ${kind.expectedAttachType}${kind.sleepable ? ', sleepable' : ''}): assumed from the release; the probe could not load one`,
    );
  }

  if (profile.probed === undefined) {
    const assumption = rules.sleepableAssumption(kind);
    if (assumption) assumes.push(assumption);
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
    recursing = false,
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
      // check_max_stack_depth follows a call back into the chain like any other, until the chain is
      // too deep or too big; do_check follows it only as far as the values let it.
      const callsBack = frames.some((f) => f.subprogram === call.callee);
      // Where an earlier pass refuses the recursion, the walk never meets it.
      if (callsBack && rules.recursion !== 'stack-walk') continue;
      const recursesHere = recursing || callsBack;
      const staticRun = callee.isGlobal ? 0 : staticFramesFromUnitRoot(frames) + 1;
      const doCheckFollows = !recursesHere || graph.verifiedChainFrames === undefined || graph.verifiedChainFrames > rules.maxCallFrames;
      if (doCheckFollows && staticRun > rules.maxCallFrames) {
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
      // The walk's frame number: the callee's place on the chain; from 7.2 counted from the last
      // global function, which starts at 0.
      const walkFrame = rules.globalCallsCountFrames ? frames.length : staticRun === 0 ? 0 : staticRun - 1;
      if (walkFrame >= rules.maxCallFrames) {
        record({
          rule: 'call-depth',
          message: `the call stack of ${walkFrame} frames is too deep !`,
          depth,
          frames: [...frames, calleeFrame(call.callee, call.source)],
          subprogram: call.callee,
          source: call.source,
        });
        continue;
      }
      if (frames.length >= MAX_CHAIN_FRAMES) {
        chainCut = true;
        continue;
      }
      visit(call.callee, depth, frames, call.source, privateStackSupported, recursesHere);
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

  let helperGuard: string | undefined;
  for (const { phase, guard, ...violation } of missingFeatures(graph, rules, kind, calleeFrame)) {
    helperGuard ??= guardAssumption(violation, guard);
    record(violation, phase);
  }
  const checked = existenceCheckedMissingHelper(graph, rules);
  if (checked) assumes.push(checked);

  const refusedRecursion = recursionRefusal(graph, rules, calleeFrame);
  if (refusedRecursion) record(refusedRecursion, 'check_cfg');

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

  // The passes run in VERIFIER_PHASES' order; within one the kernel meets violations in the order they were recorded.
  const first = VERIFIER_PHASES.map((phase) => violations.find((v) => v.phase === phase)).find((v) => v !== undefined);
  if (first) first.reportedByKernel = true;
  if (helperGuard && first?.rule === 'kernel-lacks-feature' && first.missingFeature?.feature === 'helper') assumes.push(helperGuard);
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
    notes: [
      ...rules.notes,
      ...(walkedFrames > MAX_WALKED_FRAMES
        ? [
            `the call graph has more than ${MAX_WALKED_FRAMES} frames along its chains; the walk stopped there, and the verifier itself gives up once do_check has processed 1,000,000 instructions ("BPF program is too large")`,
          ]
        : []),
      ...(chainCut ? [`a recursion no frame limit stops: the walk stopped at chains of ${MAX_CHAIN_FRAMES} frames`] : []),
    ],
    assumes,
  };
}

/**
 * A recursion refused before do_check (KernelRuleSet.recursion): by check_cfg before 6.7, as the
 * back edge its walk over the instructions meets first (FrameGraph.cfgBackEdge), which may also be a
 * fall-through into a loop entered in its middle (rule back-edge); the source side, without
 * instruction numbers, names the functions of a recursion instead. From 7.2 by the check of the call
 * graph, as the call a depth-first walk from the main function meets first. Every number of the
 * stack line is 0: nothing was verified yet (measured on 5.10.223, 6.1.170, 7.2.13, 7.3-rc7).
 */
function recursionRefusal(
  graph: FrameGraph,
  rules: KernelRuleSet,
  frame: (index: number, callSource?: SourceLocation) => ChainFrame,
): Omit<Violation, 'reportedByKernel' | 'chain' | 'phase'> | undefined {
  if (rules.recursion === 'stack-walk') return undefined;
  const nodes = graph.subprograms;
  const cfg = rules.recursion === 'check_cfg' ? graph.cfgBackEdge : undefined;
  const back = cfg ?? firstCallBack(graph);
  if (!back) return undefined;
  const call = nodes[back.caller].calls.find((candidate) => candidate.callee === back.callee && (back.at === undefined || candidate.at === back.at));
  const message =
    rules.recursion === 'call-graph'
      ? `recursive call from ${nodes[back.caller].name}() to ${nodes[back.callee].name}()`
      : cfg
        ? `back-edge from insn ${cfg.fromInsn} to ${cfg.toInsn}`
        : `back-edge from the call in ${nodes[back.caller].name}() to ${nodes[back.callee].name}()`;
  const counted = countedSubprograms(graph, rules);
  const isLoop = cfg !== undefined && !cfg.call;
  return {
    rule: isLoop ? 'back-edge' : 'recursion',
    message,
    depth: 0,
    frames: isLoop ? [frame(back.caller)] : [frame(back.caller), frame(back.callee, call?.source)],
    subprogram: back.callee,
    source: isLoop ? nodes[back.caller].source : call?.source,
    printedDepths: counted.map((isCounted) => (isCounted ? 0 : undefined)),
  };
}

/**
 * The first call back into a function on the chain, walking depth first from each root in order.
 * Only bpf-to-bpf calls count: callbacks that arm each other by address (timer_mim.c's two timer
 * callbacks) load on 6.1.170 and 7.2.13.
 */
function firstCallBack(graph: FrameGraph): { caller: number; callee: number; at?: number } | undefined {
  const nodes = graph.subprograms;
  const found = firstEdgeBackIntoChain(
    nodes.length,
    (index) => nodes[index].calls.filter((call) => call.kind === 'call'),
    (call) => call.callee,
  );
  return found && { caller: found.from, callee: found.edge.callee, at: found.edge.at };
}

/** A violation before it is recorded; a missing helper keeps its call, for the assumption it may rest on. */
type MissingFeatureViolation = Omit<Violation, 'reportedByKernel' | 'chain'> & { guard?: HelperCall };

/**
 * The subprograms check_subprogs counts, which are the numbers of the "stack depth" line: before
 * 5.13 the main function and every target of a bpf-to-bpf call (dead code and callbacks' bodies
 * included), not a function only taken by address; from 5.13 all.
 */
function countedSubprograms(graph: FrameGraph, rules: KernelRuleSet): boolean[] {
  const counted = graph.subprograms.map((_, index) => index === 0 || rules.callbackAddresses);
  if (rules.callbackAddresses) return counted;
  for (const node of graph.subprograms) for (const call of node.calls) if (call.kind === 'call') counted[call.callee] = true;
  return counted;
}

/** What the program uses that this kernel predates, each refusal in bpf_check's order (see the header). */
function missingFeatures(
  graph: FrameGraph,
  rules: KernelRuleSet,
  kind: ProgramKind,
  frame: (index: number, callSource?: SourceLocation) => ChainFrame,
): MissingFeatureViolation[] {
  const nodes = graph.subprograms;
  if (nodes.length === 0) return [];
  const counted = countedSubprograms(graph, rules);
  const notVerified = counted.map((isCounted) => (isCounted ? 0 : undefined));
  const found: MissingFeatureViolation[] = [];
  // resolve_pseudo_ldimm64 checks instruction by instruction: the first in the program is refused.
  const instructionRefusals: { subprogram: number; at: number; violation: MissingFeatureViolation }[] = [];

  if (!rules.callbackAddresses) {
    const callers = nodes.flatMap((node, caller) => node.calls.filter((call) => call.kind === 'callback').map((call) => ({ caller, call })));
    const uncounted = nodes.findIndex((_, index) => !counted[index]);
    const taking = callers.find(({ call }) => call.callee === uncounted) ?? callers[0];
    if (taking) {
      const callback = taking.call.callee;
      const base = {
        rule: 'kernel-lacks-feature' as const,
        depth: 0,
        frames: [frame(taking.caller), frame(callback, taking.call.source)],
        subprogram: callback,
        source: taking.call.source,
        missingFeature: {
          feature: 'callback-address' as const,
          what: `the callback ${nodes[callback].name} passed by address (BPF_PSEUDO_FUNC)`,
          since: CALLBACK_ADDRESS_RELEASE,
        },
        printedDepths: notVerified,
      };
      // Without BTF in the kernel (none in the object, or BTF this kernel refuses) there is no func_info to mismatch.
      const funcInfoLoaded = graph.hasFuncInfo !== false && !(graph.btfHasEmptyDatasec && !rules.loadsEmptyDatasec);
      if (uncounted > 0 && funcInfoLoaded) {
        found.push({ ...base, phase: 'check_btf_info', message: FUNC_INFO_MISMATCH_MESSAGE });
      } else {
        instructionRefusals.push({
          subprogram: taking.caller,
          at: taking.call.at ?? 0,
          violation: { ...base, phase: 'resolve_pseudo_ldimm64', message: CALLBACK_LDIMM64_MESSAGE },
        });
      }
    }
  }

  const sleepable = rules.sleepableRefusal(kind);
  if (sleepable) {
    found.push({
      rule: 'kernel-lacks-feature',
      phase: 'check_attach_btf_id',
      message: sleepable.message,
      depth: 0,
      frames: [frame(0)],
      subprogram: 0,
      source: nodes[0].source,
      missingFeature: { feature: 'sleepable', what: `a sleepable ${kind.type} program (SEC("${graph.section ?? kind.type}"))`, since: sleepable.since },
      printedDepths: notVerified,
    });
  }

  if (!rules.mayGoto) {
    const index = nodes.findIndex((node) => node.mayGoto !== undefined);
    const mayGoto = nodes[index]?.mayGoto;
    if (mayGoto) {
      instructionRefusals.push({
        subprogram: index,
        at: mayGoto.at ?? 0,
        violation: {
          rule: 'kernel-lacks-feature',
          phase: 'resolve_pseudo_ldimm64',
          message: MAY_GOTO_UNKNOWN_MESSAGE,
          depth: 0,
          frames: [frame(index)],
          subprogram: index,
          source: mayGoto.source,
          missingFeature: { feature: 'may-goto', what: 'may_goto (can_loop, cond_break)', since: MAY_GOTO_RELEASE },
          printedDepths: notVerified,
        },
      });
    }
  }
  instructionRefusals.sort((a, b) => a.subprogram - b.subprogram || a.at - b.at);
  found.push(...instructionRefusals.map((refusal) => refusal.violation));

  const helperStop = firstUnknownHelper(graph, rules, frame);
  if (helperStop) found.push(helperStop);
  return found;
}

/**
 * A helper this kernel lacks, called only where the function tests that helper's existence (libbpf's
 * usdt.bpf.h with bpf_get_attach_cookie, bcc's ksnoop with bpf_get_func_ip): libbpf makes the test
 * false at load and the verifier never meets the call (5.10.223 accepts them). Not refused; said.
 */
function existenceCheckedMissingHelper(graph: FrameGraph, rules: KernelRuleSet): string | undefined {
  for (const node of graph.subprograms) {
    const call = node.helperCalls?.find((candidate) => candidate.existenceChecked && isMissingHelper(candidate, rules));
    if (!call) continue;
    const what = helperInWords(call);
    const where = call.source ? ` at ${call.source.file}:${call.source.line}` : '';
    return `the call to ${what}${where} is not reached: ${node.name} tests the helper's existence (bpf_core_enum_value_exists), which libbpf makes false on this kernel`;
  }
  return undefined;
}

/**
 * A call of a helper id the kernel does not have but a release does: only such a call is refused.
 * An id no release has can only load when the verifier proves the call dead (selftests guard one
 * with a .kconfig value), so it is left to the load.
 */
function isMissingHelper(call: HelperCall, rules: KernelRuleSet): boolean {
  return call.helper >= rules.helperIdLimit && helperIntroducedIn(call.helper) !== undefined;
}

/** "bpf_trace_vprintk (helper 177)", or "helper 177" for an id without a known name. */
function helperInWords(call: HelperCall): string {
  return call.name ? `${call.name} (helper ${call.helper})` : `helper ${call.helper}`;
}

/** What a refusal for a missing helper takes for granted, when the call may be behind a load-time guard. */
function guardAssumption(violation: Pick<Violation, 'missingFeature' | 'frames'>, call: HelperCall | undefined): string | undefined {
  if (!call?.mayBeGuarded || violation.missingFeature?.feature !== 'helper') return undefined;
  const where = call.source ? ` at ${call.source.file}:${call.source.line}` : '';
  return `the call to ${violation.missingFeature.what}${where} is reached: ${violation.frames[violation.frames.length - 1]?.name ?? 'its function'} also tests values libbpf sets at load (CO-RE, .kconfig), which may make it dead on this kernel`;
}

/**
 * do_check's walk up to the first call of a helper id the kernel does not have. Global functions
 * are verified first, in index order, each on its own, then the main function: the order of 5.10
 * to 6.1 (measured on 5.10.223), and every kernel that lacks a helper predates 6.2. Within one, do_check follows the fall-through path first and
 * enters a static callee at its call, so the walk takes the instructions in order and goes down
 * at each static call the verifier reaches: the instructions before a point are the ones it has
 * seen, except those behind a jump it takes later. Each subprogram then prints the deepest byte
 * touched before that point (a function it finished: its whole depth; one not entered: 0).
 * Callbacks are not followed: the kernel enters one at the helper call that takes it.
 */
function firstUnknownHelper(
  graph: FrameGraph,
  rules: KernelRuleSet,
  frame: (index: number, callSource?: SourceLocation) => ChainFrame,
): MissingFeatureViolation | undefined {
  const nodes = graph.subprograms;
  const firstBad = (index: number): HelperCall | undefined =>
    nodes[index].helperCalls?.filter((call) => !call.existenceChecked && isMissingHelper(call, rules)).sort((a, b) => a.at - b.at)[0];
  if (!nodes.some((_, index) => firstBad(index) !== undefined)) return undefined;

  const inFormat = (bytes: number) => (rules.stackLineFormat === 'bytes' ? bytes : roundToSlots(bytes));
  const wholeDepth = (index: number) => inFormat(nodes[index].byteDepth ?? nodes[index].stackDepth);
  const depthBefore = (index: number, at: number): number => {
    const steps = nodes[index].depthSteps;
    // Without the steps (the source side), the whole frame is as close as it gets.
    if (!steps) return wholeDepth(index);
    let bytes = 0;
    for (const step of steps) if (step.at < at) bytes = step.byteDepth;
    return inFormat(bytes);
  };

  const printed: number[] = nodes.map(() => 0);
  const finished = new Set<number>();
  const units = [...nodes.flatMap((node, index) => (index > 0 && node.isGlobal ? [index] : [])), 0];
  for (const unit of units) {
    // An explicit stack of (function, next call, where it was called): input depth must not decide ours.
    const stack: { index: number; next: number; bad?: HelperCall; callSource?: SourceLocation; calledAt?: number }[] = [];
    const enter = (index: number, callSource?: SourceLocation) => stack.push({ index, next: 0, bad: firstBad(index), callSource });
    enter(unit);
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      const { calls } = nodes[top.index];
      const call = calls[top.next];
      const reachesCall = call !== undefined && (top.bad === undefined || (call.at ?? Infinity) < top.bad.at);
      if (reachesCall) {
        top.next++;
        const callee = nodes[call.callee];
        const followed =
          call.kind === 'call' && !call.deadCode && !callee.isGlobal && !finished.has(call.callee) && !stack.some((f) => f.index === call.callee);
        if (followed) {
          top.calledAt = call.at;
          enter(call.callee, call.source);
        }
        continue;
      }
      if (top.bad) {
        const bad = top.bad;
        printed[top.index] = Math.max(printed[top.index], depthBefore(top.index, bad.at));
        for (const caller of stack.slice(0, -1)) {
          // The pointers a caller passes count for it as it makes the call.
          printed[caller.index] = Math.max(printed[caller.index], depthBefore(caller.index, (caller.calledAt ?? 0) + 1));
        }
        const since = helperIntroducedIn(bad.helper);
        return {
          guard: bad,
          rule: 'kernel-lacks-feature',
          phase: 'do_check',
          message: `invalid func unknown#${bad.helper}`,
          depth: 0,
          frames: stack.map((f) => frame(f.index, f.callSource)),
          subprogram: top.index,
          source: bad.source,
          missingFeature: { feature: 'helper', what: helperInWords(bad), ...(since ? { since } : {}) },
          printedDepths: printed,
        };
      }
      printed[top.index] = wholeDepth(top.index);
      finished.add(top.index);
      stack.pop();
    }
  }
  return undefined;
}
