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
  /** Registered as an asynchronous callback (bpf_timer_set_callback, wq): its own root from 6.5. */
  isAsyncCallback: boolean;
  /** Every call out of this function, in instruction order, dead code included, as the verifier walks them. */
  calls: FrameCall[];
  source?: SourceLocation;
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
}
