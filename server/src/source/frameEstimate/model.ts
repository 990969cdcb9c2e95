/**
 * What the frame estimate produces (FrameItem, FunctionFrame, FunctionEstimate: plain data, in the
 * JSON and the editor) and what one function's walk leaves for the inliner (RawFunction, its Slots
 * and RawCalls), which the walk cache stores: RawFunction's shape is FRAME_CACHE_FORMAT's business.
 */
import type { DepthStep } from '../../rules/frameGraph';

export type FrameItemKind = 'local' | 'printk-format' | 'printk-args' | 'inlined';

export interface FrameItem {
  what: FrameItemKind;
  name: string;
  type: string;
  /** Bytes on the stack: the size rounded up to 8-byte slots. */
  bytes: number;
  /** 1-based line in the main file. */
  line: number;
  /** The object shares its slots with this item's (their lifetimes do not overlap). */
  sharedWith?: string;
  /** The 1-based line of the item named by `sharedWith`, which may share its name with others (two printks' `____fmt`). */
  sharedWithLine?: number;
  /**
   * What the frame loses without this object: the frame colored and laid out again without its
   * slots, so 0 for one that only reuses another's slots. Absent for frames too large to recolor per item.
   */
  freesBytes?: number;
}

/** A call out of a function, as written (inlined callees' calls are already folded in). */
export interface SourceCall {
  callee: string;
  kind: 'call' | 'callback';
  /** The call passes the callee to bpf_timer_set_callback (or a wq): it runs later, on its own. */
  async: boolean;
  line: number;
  column: number;
  /**
   * In code the verifier proves dead (a `const volatile` switch): the call is in the object, so the
   * stack check walks it, but the callee is never entered from here.
   */
  dead?: boolean;
  /**
   * Set by the inliner: where the call is among the body's events once its inlined callees are
   * inserted, an order shared with the helper calls and the objects' first touches (which of them
   * do_check meets first). Twice the program point, so that "just after point p" (an object first
   * used after a call) has a place of its own between p and the next point.
   */
  position?: number;
}

/** A call of a BPF helper (a function pointer the unit declares with the helper's id, TypeEnvironment.helperId). */
export interface SourceHelperCall {
  helper: number;
  /** The name the code calls it by ("bpf_trace_vprintk", what bpf_printk expanded to). */
  name: string;
  line: number;
  column: number;
  /** Its place among the function's calls and helper calls once callees are inlined (see RawCall.position). */
  position: number;
}

export interface FunctionFrame {
  name: string;
  /**
   * The header that defines the function (its line, items and calls are in that file); absent for
   * the main file's functions.
   */
  file?: string;
  /** 1-based line of the function's name. */
  line: number;
  /** The SEC("...") name, null for functions that are not programs. */
  section: string | null;
  /** Inlined into its callers: its bytes count in their frames, not as a frame of its own. */
  inline: boolean;
  /** The depth check_max_stack_depth judges (8-byte slots, shared slots counted once). */
  frameBytes: number;
  /**
   * When the frame may be larger than `frameBytes`, which counts the locals only: the upper bound,
   * with what clang may add (spills of a long function under high register pressure). Absent when
   * the estimate has no reason to doubt its number.
   */
  upTo?: number;
  /** Why `upTo` is there, in words for a hover ("long function with high register pressure"). */
  uncertainty?: string;
  items: FrameItem[];
  /** Bytes the verifier adds to the printed depth after the check (not judged): bpf_loop, may_goto. */
  hiddenBytes: number;
  /** Why, one reason per addition. */
  hiddenReasons: string[];
  /**
   * The file's time budget ran out while this function (or one inlined into it) was walked: its
   * bytes are what was seen until then, a lower bound. Absent when the walk finished.
   */
  partial?: true;
}

/** What the call graph builder needs besides the frame. */
export interface FunctionEstimate extends FunctionFrame {
  isStatic: boolean;
  isGlobal: boolean;
  /** See RawFunction.unnamedBtfParameters. */
  unnamedBtfParameters: boolean;
  noinline: boolean;
  alwaysInline: boolean;
  /** Calls of functions that are frames of their own, in source order, inlined callees' included. */
  calls: SourceCall[];
  /**
   * Each helper called in live code, the first call of each id, in evaluation order, inlined
   * callees' included (at their call site). Code only the verifier proves dead is left out, as
   * do_check never reaches it.
   */
  helperCalls: SourceHelperCall[];
  /**
   * Where the deepest byte of the frame grows, at the `position`s of the calls: what a do_check
   * stopped inside the function prints (each object touched from the start of its lifetime).
   */
  depthSteps: DepthStep[];
  /**
   * Live code reads values libbpf sets at load time that tell what the kernel has (CO-RE existence
   * checks, extern .kconfig/__ksym variables), inlined callees' included: a branch on one may make a
   * helper call dead on a kernel without the helper.
   */
  readsLoadTimeValues: boolean;
  /** Lines/columns of bpf_tail_call / bpf_tail_call_static, inlined callees' included (dead code too). */
  tailCalls: { line: number; column: number }[];
  /** Live code calls bpf_throw (a call, or bpf_assert's `call bpf_throw` in asm), inlined callees' included. */
  throws: boolean;
  /** The function `__exception_cb(name)` names as this program's exception callback. */
  exceptionCallback?: string;
  /** What the register allocator faces: syntax nodes and live calls of the body, inlined callees' included. */
  pressure: { nodes: number; calls: number };
}

/** How dead a piece of code is: not at all, to the verifier only, or to clang already. */
export const LIVE = 0;
export const LOAD_DEAD = 1;
export const COMPILE_DEAD = 2;
export type Deadness = typeof LIVE | typeof LOAD_DEAD | typeof COMPILE_DEAD;

/** A stack object with its lifetime, in the function's program points. */
export interface Slot {
  item: number;
  size: number;
  align: number;
  start: number;
  end: number;
  /**
   * The lifetime starts at a first use (an uninitialised aggregate): the object is first touched
   * just after point `start` (used in place), or by the event that follows it (a call it is passed
   * to), not by the event at `start`.
   */
  firstTouch?: 'after-start' | 'next-event';
  /** Set by the inliner: where the object is first touched, as an ordering position (see SourceCall.position). */
  touchedAt?: number;
  /**
   * SROA: clang splits the object into registers when each of these calls (callee, argument index),
   * the only ones its address goes to, is inlined and the callee's parameter is only dereferenced at
   * constant offsets. Empty: nothing takes its address, it is always split. Absent: it stays.
   */
  sroa?: [callee: string, argument: number][];
  /**
   * Declared in code only the verifier proves dead (a branch on a `const volatile`): clang lays the
   * object out with the others, so it moves where they go, but the verifier never touches it.
   */
  verifierSkips?: true;
}

export interface RawCall extends SourceCall {
  point: number;
  deadness: Deadness;
}

export interface RawHelperCall {
  helper: number;
  name: string;
  line: number;
  column: number;
  point: number;
  deadness: Deadness;
  position?: number;
}

/** One function as walked, independent of its neighbours (lines relative to `baseRow`). */
export interface RawFunction {
  /** The header that defines it; undefined for the main file. */
  file?: string;
  name: string;
  line: number;
  section: string | null;
  isStatic: boolean;
  /** Hidden or internal visibility (`__hidden`): verified as a static function although it is not one in C. */
  hidden: boolean;
  /** `__naked` with parameters: clang leaves the parameters of its BTF prototype without names. */
  unnamedBtfParameters: boolean;
  noinline: boolean;
  alwaysInline: boolean;
  /** __weak: another object may replace it, so clang never inlines it. */
  weak: boolean;
  ownItems: FrameItem[];
  slots: Slot[];
  /** Number of program points the body takes. */
  points: number;
  /** Direct calls of identifiers and callbacks taken by address, in evaluation order. */
  rawCalls: RawCall[];
  tailCalls: { line: number; column: number; deadness: Deadness }[];
  /** Calls of helpers (names the unit declares with a helper id), in evaluation order. */
  helperCalls: RawHelperCall[];
  /** See FunctionEstimate.readsLoadTimeValues (this body only). */
  readsLoadTimeValues: boolean;
  bpfLoopInlined: boolean;
  mayGoto: boolean;
  throws: boolean;
  exceptionCallback?: string;
  /** Syntax nodes of the body: the size clang's inliner weighs (see OUT_OF_LINE_NODES). */
  bodyNodes: number;
  /**
   * Per parameter: the calls the pointer is passed on to when it is otherwise only dereferenced at
   * constant offsets (see Slot.sroa), null when it is used any other way.
   */
  sroaParameters: ([callee: string, argument: number][] | null)[];
  /** The walk stopped at the time budget (see TimeBudget): never cached. */
  partial?: boolean;
}

/** The JSON shape of a function's frame, without the call graph's extra fields. */
export function frameOf(estimate: FunctionEstimate): FunctionFrame {
  return {
    name: estimate.name,
    ...(estimate.file !== undefined ? { file: estimate.file } : {}),
    line: estimate.line,
    section: estimate.section,
    inline: estimate.inline,
    frameBytes: estimate.frameBytes,
    ...(estimate.upTo !== undefined ? { upTo: estimate.upTo, uncertainty: estimate.uncertainty } : {}),
    items: estimate.items.map((item) => ({ ...item })),
    hiddenBytes: estimate.hiddenBytes,
    hiddenReasons: [...estimate.hiddenReasons],
    ...(estimate.partial ? { partial: true as const } : {}),
  };
}
