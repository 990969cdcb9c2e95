/**
 * The plain call graph of frames that the verifier's stack rules are judged on. Both front ends
 * build one: the object analyzer from instructions, the source estimator from C. Index 0 is the
 * program's main function; the order of the rest is the order libbpf appends subprograms in, which
 * is also the order of the numbers in the verifier's "stack depth a+b+c" line.
 */
import type { SourceLocation } from '../common/problem';

/** What a call edge is: a bpf2bpf call, or a callback taken by address (bpf_loop, timers, ...). */
export type CallKind = 'call' | 'callback';

export interface FrameCall {
  /** Index of the callee in FrameGraph.subprograms. */
  callee: number;
  kind: CallKind;
  source?: SourceLocation;
  /**
   * Where the call is in the caller, in the unit its HelperCall.at and DepthStep.at share: the index
   * of the call (or of the ld_imm64 taking a callback's address) among the instructions on the
   * object side, a position among the body's events on the source side (SourceCall.position).
   */
  at?: number;
  /** In code the verifier never reaches: check_max_stack_depth still follows it, do_check does not. */
  deadCode?: boolean;
}

/** A helper call the verifier reaches: the first of its id in the function. */
export interface HelperCall {
  /** The helper id (the imm of `call`, src_reg 0). */
  helper: number;
  /** Its name, where the id is one the analyzer knows ("bpf_trace_vprintk"). */
  name?: string;
  /** Index of the call among the function's instructions (the source side: its position, see FrameCall.at). */
  at: number;
  source?: SourceLocation;
  /**
   * The function also holds values libbpf sets at load time (CO-RE existence checks, .kconfig
   * externs such as LINUX_KERNEL_VERSION): a branch on one of them may make the call dead on a
   * kernel without the helper, which only the load can tell.
   */
  mayBeGuarded?: boolean;
  /**
   * The function tests this very helper's existence (bpf_core_enum_value_exists(enum bpf_func_id,
   * BPF_FUNC_x), a CO-RE enumval_exists relocation): libbpf makes that test false on a kernel without
   * the helper, and the call behind it is dead there.
   */
  existenceChecked?: boolean;
}

/** From instruction `at` on, the deepest byte below the frame pointer touched so far is `byteDepth`. */
export interface DepthStep {
  at: number;
  byteDepth: number;
}

/** The steps of the deepest byte from touches in order of `at` (each touch: how deep it reaches). */
export function deepeningSteps(touches: Iterable<DepthStep>): DepthStep[] {
  const steps: DepthStep[] = [];
  let deepest = 0;
  for (const { at, byteDepth } of touches) {
    if (byteDepth <= deepest) continue;
    deepest = byteDepth;
    const last = steps[steps.length - 1];
    if (last?.at === at) last.byteDepth = deepest;
    else steps.push({ at, byteDepth: deepest });
  }
  return steps;
}

export interface FrameNode {
  name: string;
  /** Stack bytes as the verifier records them for the subprogram (before rounding). */
  stackDepth: number;
  hasTailCall: boolean;
  /** Where the (first) tail call of this function is, for pointing a diagnostic at it. */
  tailCallSource?: SourceLocation;
  /** A global (non-static) function; the kernel verifies it on its own. */
  isGlobal: boolean;
  /**
   * Whether live code of the program calls it, from the main function on (a global function only
   * dead code calls is validated by kernels before 6.8 and left alone from 6.8). Undefined when not
   * known (the source side).
   */
  reachedFromMain?: boolean;
  /** Registered as an asynchronous callback (bpf_timer_set_callback, wq): its own root from 6.5. */
  isAsyncCallback: boolean;
  /** Every call out of this function, in instruction order, dead code included, as the verifier walks them. */
  calls: FrameCall[];
  source?: SourceLocation;
  /*
   * What the object side sees and the source side may leave unknown: the facts some kernels refuse
   * before or during do_check, and how deep the frame is at each point (for the depth a stopped
   * do_check prints).
   */
  /** The deepest byte touched, unrounded (what kernels before 6.8 print). */
  byteDepth?: number;
  /** The first call of each helper id the verifier reaches, in instruction order. */
  helperCalls?: HelperCall[];
  /** Where the deepest touched byte grows, in instruction order (reached code only). */
  depthSteps?: DepthStep[];
  /** The function has a may_goto instruction (can_loop, cond_break), dead code included: the first one, where known. */
  mayGoto?: { at?: number; source?: SourceLocation };
}

export interface FrameGraph {
  /** The BPF program type, as libbpf derives it from the SEC name ("kprobe", "sched_cls", ...). */
  programType: string;
  /** The SEC name, which also gives the expected attach type and sleepability (object/programType.ts). */
  section?: string;
  subprograms: FrameNode[];
  /**
   * The program calls more functions than the verifier takes (MAX_SUBPROGRAMS): `subprograms` holds
   * the first ones, as libbpf appends them, and the rest were not built.
   */
  moreSubprograms?: boolean;
  /** Whether the object carries BTF func_info for the program (clang -g); undefined when not known. */
  hasFuncInfo?: boolean;
  /**
   * The object's BTF has a DATASEC without variables (clang's .rodata when it holds only unnamed
   * data, a local array's initial value): kernels before 5.12 refuse the whole BTF, and libbpf then
   * loads the program without it, func_info included (KernelRuleSet.loadsEmptyDatasec).
   */
  btfHasEmptyDatasec?: boolean;
  /**
   * Where the calls recurse: the longest chain of frames do_check follows with the values it knows
   * (from the main function or a global one), or more than any kernel's limit when values do not end
   * the recursion. Undefined when not known (the source side): a recursion is then taken to go on
   * until do_check finds the chain too deep.
   */
  verifiedChainFrames?: number;
  /**
   * The first edge check_cfg before 6.7 refuses going back into code its walk is still inside: a
   * recursive call, or a fall-through into a loop entered in its middle, by instruction numbers of
   * the loaded program (its "back-edge from insn 16 to 4") and by subprogram. Undefined when there
   * is none, or when not known (the source side).
   */
  cfgBackEdge?: { fromInsn: number; toInsn: number; call: boolean; caller: number; callee: number; at: number };
}
