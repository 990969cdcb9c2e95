/**
 * clang's inliner, as the source shows it: which functions are inlined into their callers, and what
 * each caller's frame then holds. An inlined call inserts the callee's program points after the
 * call's, its stack objects (with their lifetimes, colored with the caller's), its calls and tail
 * calls; SROA splits the objects whose address only reaches inlined callees that read them at
 * constant offsets; the frame is colored and laid out (stackColoring.ts).
 */
import { partitionPoint, roundToSlots } from '../../common/numbers';
import { type DepthStep, deepeningSteps } from '../../rules/frameGraph';
import { hiddenSlots } from '../../rules/report';
import {
  COMPILE_DEAD,
  type Deadness,
  type FrameItem,
  type FunctionEstimate,
  LIVE,
  type RawCall,
  type RawFunction,
  type RawHelperCall,
  type Slot,
} from './model';
import { colorAndLayout } from './stackColoring';

/**
 * The size from which a static function that is not always_inline and is called from two places or
 * more stays out of line. LLVM's inliner compares an instruction cost with 225 (325 with `inline`);
 * measured on the real-world corpus (clang-19 -Rpass=inline: cpumask_success's create_cpumask_set
 * and _global_mask_array_rcu, rbtree's __add_three, local_kptr_stash's create_and_stash), that cost
 * crosses the threshold between 200 and 300 tree-sitter nodes of body, inlined callees included.
 * Not modelled: call sites clang deems cold (after a chain of early returns), where the threshold is
 * 45 and even a function called once stays out of line.
 */
const OUT_OF_LINE_NODES = 250;

/**
 * Spills: values clang keeps on the stack because r6-r9 cannot hold everything live across a call,
 * or the ten registers everything live at once. The estimate cannot know them without allocating
 * registers, so from SPILL_MIN_NODES syntax nodes of body (inlined callees included) a frame is a
 * range: its locals, up to one spill slot per SPILL_NODES_PER_SLOT nodes and one per SPILL_CALLS_PER_SLOT
 * calls more (values live across calls are what r6-r9 run out for), at most SPILL_MAX_BYTES.
 * Measured on the Linux 6.12 selftests (3,554 frames of clang-19 -O2 objects, each against its
 * estimate): below 300 nodes the compiled frame exceeds the locals in 1 % of functions (29 of 2,976,
 * mostly by 8-24 B); from 300 on in 18 % (103 of 578), by more as functions grow (read_strobe_meta
 * at 857 nodes: +72 B; strobemeta's on_event at 2,074: +120 B; pyperf600's at 6,064: +112 B). No
 * function measured more than 120 B above its locals. Our spill_pressure.bpf.c fixture, sixteen values
 * live across 40 helper calls in 847 nodes, spills 136 B.
 */
const SPILL_MIN_NODES = 300;
const SPILL_NODES_PER_SLOT = 80;
const SPILL_CALLS_PER_SLOT = 6;
const SPILL_MAX_BYTES = 192;

/**
 * The bytes of spills a function of `nodes` syntax nodes and `calls` live calls may add to its
 * locals' frame; 0 below SPILL_MIN_NODES.
 */
export function spillAllowance(nodes: number, calls: number): number {
  if (nodes < SPILL_MIN_NODES) return 0;
  return Math.min(SPILL_MAX_BYTES, (Math.ceil(nodes / SPILL_NODES_PER_SLOT) + 1 + Math.ceil(calls / SPILL_CALLS_PER_SLOT)) * 8);
}

/** Frames up to this many stack objects are colored once more per object, to say what each one frees (quadratic in the slots). */
const MAX_RECOLORED_SLOTS = 128;

type TailCall = { line: number; column: number; deadness: Deadness };

/** A function with its inlined callees folded in. */
interface Resolved {
  estimate: FunctionEstimate;
  slots: Slot[];
  /** Program points of the body with every live inlined callee's. */
  points: number;
  /** Every call and tail call, dead ones with their deadness, for inlining into callers. */
  calls: RawCall[];
  tailCalls: TailCall[];
  /** Every helper call, dead ones with their deadness, positioned in the body with its callees inlined. */
  helperCalls: RawHelperCall[];
  readsLoadTimeValues: boolean;
  bpfLoopInlined: boolean;
  mayGoto: boolean;
  throws: boolean;
  /** Syntax nodes of the body and of every live inlined callee's. */
  nodes: number;
  /** Live calls that stay calls (helpers, kfuncs, functions out of line), inlined callees' included. */
  callCount: number;
  partial: boolean;
}

/** Resolves every walked function (one definition per name: the first wins) into its estimate. */
export function resolveFunctions(all: readonly RawFunction[]): FunctionEstimate[] {
  return new Inliner(all).estimates();
}

class Inliner {
  /** One definition per name: the main file's come first and win over a header's. */
  private readonly byName = new Map<string, RawFunction>();
  /** Functions whose address is taken (callbacks) are never inlined. */
  private readonly addressTaken = new Set<string>();
  /** Live direct calls per callee: clang inlines a static function called once whatever its size. */
  private readonly callSites = new Map<string, number>();
  private readonly results = new Map<string, Resolved>();
  private readonly inProgress = new Set<string>();

  constructor(all: readonly RawFunction[]) {
    for (const raw of all) if (!this.byName.has(raw.name)) this.byName.set(raw.name, raw);
    for (const raw of this.byName.values()) {
      for (const call of raw.rawCalls) {
        if (call.deadness === COMPILE_DEAD) continue;
        if (call.kind === 'callback') this.addressTaken.add(call.callee);
        else this.callSites.set(call.callee, (this.callSites.get(call.callee) ?? 0) + 1);
      }
    }
  }

  estimates(): FunctionEstimate[] {
    return [...this.byName.values()].map((raw) => this.resolve(raw).estimate);
  }

  private isInlined(raw: RawFunction): boolean {
    return raw.section === null && (raw.isStatic || !raw.weak) && !raw.noinline && (raw.alwaysInline || !this.addressTaken.has(raw.name));
  }

  /** clang keeps a static function called from several places out of line when it is large. */
  private keptOutOfLine(raw: RawFunction, nodes: number): boolean {
    return !raw.alwaysInline && raw.isStatic && (this.callSites.get(raw.name) ?? 0) >= 2 && nodes >= OUT_OF_LINE_NODES;
  }

  private resolve(raw: RawFunction): Resolved {
    const done = this.results.get(raw.name);
    if (done) return done;
    this.inProgress.add(raw.name);
    const inlined = this.inlinedCalls(raw);
    const expansions = [...inlined].filter(([call]) => call.deadness === LIVE).map(([call, callee]) => ({ point: call.point, length: callee.points + 1 }));
    // Expansions are in point order (calls are recorded in evaluation order): binary search.
    expansions.sort((a, b) => a.point - b.point);
    const before: number[] = [0];
    for (const expansion of expansions) before.push(before[before.length - 1] + expansion.length);
    const mapped = (point: number) => point + before[partitionPoint(0, expansions.length, (index) => expansions[index].point < point)];
    // Positions (SourceCall.position) are twice the expanded point; "just after point p" is the one
    // before the point that follows p and its inlined callee.
    const position = (point: number) => 2 * mapped(point);

    const { items, slots } = this.splitAggregates(raw, mapped, position);
    const folded = this.foldCalls(raw, inlined, mapped, position, items, slots);
    const helperCalls = this.foldHelperCalls(raw, inlined, position);

    // The size the inliner weighs: the body with what was inlined into it.
    let nodes = raw.bodyNodes;
    let callCount = 0;
    for (const call of raw.rawCalls) if (call.kind === 'call' && call.deadness === LIVE && !inlined.has(call)) callCount++;
    for (const [call, callee] of inlined) {
      if (call.deadness !== LIVE) continue;
      nodes += callee.nodes;
      callCount += callee.callCount;
    }
    const deepestBytes: number[] = [];
    const frameBytes = verifiedFrame(slots, items, deepestBytes);
    if (slots.length <= MAX_RECOLORED_SLOTS) {
      items.forEach((item, index) => {
        const others = slots.filter((slot) => slot.item !== index);
        item.freesBytes =
          frameBytes -
          verifiedFrame(
            others,
            items.map((other) => ({ ...other, sharedWith: undefined })),
          );
      });
    }
    const { bpfLoopInlined, mayGoto, throws, partial } = folded;
    const spill = spillAllowance(nodes, callCount);
    const { bytes: hiddenBytes, reasons: hiddenReasons } = hiddenSlots({ bpfLoopInlined, mayGoto });
    const estimate: FunctionEstimate = {
      name: raw.name,
      ...(raw.file !== undefined ? { file: raw.file } : {}),
      line: raw.line,
      section: raw.section,
      inline: this.isInlined(raw) && !this.keptOutOfLine(raw, nodes),
      frameBytes,
      ...(spill > 0
        ? {
            upTo: frameBytes + spill,
            uncertainty: `long function with high register pressure (${nodes} syntax nodes with its inlined callees, ${callCount} calls): clang may spill up to ~${spill} B more than its locals`,
          }
        : {}),
      items,
      hiddenBytes,
      hiddenReasons,
      ...(partial ? { partial: true as const } : {}),
      isStatic: raw.isStatic,
      isGlobal: !raw.isStatic && !raw.hidden,
      unnamedBtfParameters: raw.unnamedBtfParameters,
      noinline: raw.noinline,
      alwaysInline: raw.alwaysInline,
      calls: folded.calls.map(({ callee, kind, async, line, column, dead, position }) =>
        dead ? { callee, kind, async, line, column, dead, position } : { callee, kind, async, line, column, position },
      ),
      tailCalls: folded.tailCalls.map(({ line, column }) => ({ line, column })),
      helperCalls: firstLiveOfEachId(helperCalls),
      depthSteps: frameDepthSteps(slots, deepestBytes),
      readsLoadTimeValues: folded.readsLoadTimeValues,
      throws,
      ...(raw.exceptionCallback !== undefined ? { exceptionCallback: raw.exceptionCallback } : {}),
      pressure: { nodes, calls: callCount },
    };
    const points = raw.points + expansions.reduce((sum, expansion) => sum + expansion.length, 0);
    const resolved: Resolved = {
      estimate,
      slots,
      points,
      calls: folded.calls,
      tailCalls: folded.tailCalls,
      helperCalls,
      readsLoadTimeValues: folded.readsLoadTimeValues,
      bpfLoopInlined,
      mayGoto,
      throws,
      nodes,
      callCount,
      partial,
    };
    this.inProgress.delete(raw.name);
    this.results.set(raw.name, resolved);
    return resolved;
  }

  /** The calls of `raw` that inline their callee (in dead code too, for the callee's calls), resolved. */
  private inlinedCalls(raw: RawFunction): Map<RawCall, Resolved> {
    const inlined = new Map<RawCall, Resolved>();
    for (const call of raw.rawCalls) {
      const callee = this.byName.get(call.callee);
      if (call.kind !== 'call' || !callee || !this.isInlined(callee) || this.inProgress.has(callee.name) || call.deadness === COMPILE_DEAD) continue;
      const resolved = this.resolve(callee);
      if (resolved.estimate.inline) inlined.set(call, resolved);
    }
    return inlined;
  }

  /**
   * SROA: an object whose address only goes to inlined callees that dereference it at constant
   * offsets is split into registers: its slot and item go. The others' slots, on the caller's
   * program points once callees are inserted.
   */
  private splitAggregates(raw: RawFunction, mapped: (point: number) => number, position: (point: number) => number): { items: FrameItem[]; slots: Slot[] } {
    const split = new Set<number>();
    for (const slot of raw.slots) if (slot.sroa?.every(([callee, argument]) => this.splitsParameter(callee, argument, new Set()))) split.add(slot.item);
    const newIndex = new Map<number, number>();
    raw.ownItems.forEach((_, index) => {
      if (!split.has(index)) newIndex.set(index, newIndex.size);
    });
    const items = raw.ownItems.filter((_, index) => !split.has(index)).map((item) => ({ ...item }));
    const slots: Slot[] = [];
    for (const slot of raw.slots) {
      const item = newIndex.get(slot.item);
      if (item === undefined) continue;
      const touchedAt = slot.firstTouch === undefined ? position(slot.start) : position(slot.start + 1) - (slot.firstTouch === 'after-start' ? 1 : 0);
      slots.push({ ...slot, item, start: mapped(slot.start), end: mapped(slot.end), touchedAt });
    }
    return { items, slots };
  }

  /** Whether the callee's parameter is split, and so every parameter it hands the pointer on to. */
  private splitsParameter(callee: string, argument: number, seen: Set<string>): boolean {
    const key = `${callee}\0${argument}`;
    if (seen.has(key)) return false;
    seen.add(key);
    const conditions = this.byName.get(callee)?.sroaParameters[argument];
    return !!conditions && this.results.get(callee)?.estimate.inline === true && conditions.every(([next, index]) => this.splitsParameter(next, index, seen));
  }

  /**
   * The calls and tail calls of `raw` with its inlined callees': what an inlined body calls, it
   * calls from the call's place; in dead code, dead calls. A live inlined callee adds its frame as
   * an 'inlined' item whose slots keep their lifetimes, shifted to after the call's point.
   */
  private foldCalls(
    raw: RawFunction,
    inlined: Map<RawCall, Resolved>,
    mapped: (point: number) => number,
    position: (point: number) => number,
    items: FrameItem[],
    slots: Slot[],
  ) {
    const calls: RawCall[] = [];
    const tailCalls: TailCall[] = raw.tailCalls.map((tail) => ({ ...tail }));
    let { bpfLoopInlined, mayGoto, throws, readsLoadTimeValues } = raw;
    let partial = raw.partial === true;
    for (const call of raw.rawCalls) {
      const resolved = inlined.get(call);
      if (!resolved) {
        if (call.deadness !== COMPILE_DEAD && this.byName.has(call.callee))
          calls.push({ ...call, position: position(call.point), dead: call.deadness !== LIVE || undefined });
        continue;
      }
      const deadness = call.deadness;
      if (deadness === LIVE) {
        readsLoadTimeValues ||= resolved.readsLoadTimeValues;
        const base = mapped(call.point) + 1;
        const itemBase = items.length;
        if (resolved.estimate.frameBytes > 0) {
          items.push({
            what: 'inlined',
            name: resolved.estimate.name,
            type: `inline ${resolved.estimate.name}()`,
            bytes: resolved.estimate.frameBytes,
            line: call.line,
          });
          for (const slot of resolved.slots)
            slots.push({
              ...slot,
              item: itemBase,
              start: slot.start + base,
              end: slot.end + base,
              touchedAt: insertedAt(position(call.point), slot.touchedAt),
            });
        }
        bpfLoopInlined ||= resolved.bpfLoopInlined;
        mayGoto ||= resolved.mayGoto;
        throws ||= resolved.throws;
        partial ||= resolved.partial;
      }
      for (const inner of resolved.calls) {
        const innerDeadness = Math.max(inner.deadness, deadness) as Deadness;
        if (innerDeadness === COMPILE_DEAD) continue;
        calls.push({
          ...inner,
          line: call.line,
          column: call.column,
          point: call.point,
          position: insertedAt(position(call.point), inner.position),
          deadness: innerDeadness,
          dead: innerDeadness !== LIVE || undefined,
        });
      }
      for (const inner of resolved.tailCalls) {
        const innerDeadness = Math.max(inner.deadness, deadness) as Deadness;
        if (innerDeadness !== COMPILE_DEAD) tailCalls.push({ line: call.line, column: call.column, deadness: innerDeadness });
      }
    }
    tailCalls.sort((a, b) => a.line - b.line || a.column - b.column);
    return { calls, tailCalls, bpfLoopInlined, mayGoto, throws, partial, readsLoadTimeValues };
  }

  /** The helper calls of `raw` with its inlined callees', at the call site, in the order of the inlined body. */
  private foldHelperCalls(raw: RawFunction, inlined: Map<RawCall, Resolved>, position: (point: number) => number): RawHelperCall[] {
    const helperCalls: RawHelperCall[] = raw.helperCalls
      .filter((call) => call.deadness !== COMPILE_DEAD)
      .map((call) => ({ ...call, position: position(call.point) }));
    for (const [call, resolved] of inlined) {
      for (const inner of resolved.helperCalls) {
        const deadness = Math.max(inner.deadness, call.deadness) as Deadness;
        if (deadness === COMPILE_DEAD) continue;
        helperCalls.push({
          ...inner,
          line: call.line,
          column: call.column,
          point: call.point,
          position: insertedAt(position(call.point), inner.position),
          deadness,
        });
      }
    }
    return helperCalls.sort((a, b) => (a.position ?? 0) - (b.position ?? 0));
  }
}

/**
 * Where the deepest byte of the frame grows, by position (SourceCall.position): an object is touched
 * where its lifetime starts (an uninitialised aggregate's first use), at the place the layout gave it.
 */
/**
 * The frame the verifier sees: clang's frame (colorAndLayout), or, when some objects are in code
 * only the verifier proves dead (Slot.verifierSkips), the deepest byte of those it touches. clang
 * places those objects too, and the live ones go where its layout puts them: measured on bcc's
 * hardirqs (a `const volatile` do_count branch's 32-byte key shares the live ts's place and pushes the
 * live u32 key to fp-40: the verifier prints 40, the live objects alone 16) and capable (the dead
 * branch's key and zero are declared last and lie deepest: the verifier prints 72 of clang's 96).
 */
function verifiedFrame(slots: readonly Slot[], items: FrameItem[], deepestBytes: number[] = []): number {
  const frame = colorAndLayout(slots, items, deepestBytes);
  if (!slots.some((slot) => slot.verifierSkips)) return frame;
  let deepest = 0;
  slots.forEach((slot, index) => {
    if (!slot.verifierSkips) deepest = Math.max(deepest, deepestBytes[index] ?? 0);
  });
  return roundToSlots(deepest);
}

function frameDepthSteps(slots: readonly Slot[], deepestBytes: readonly number[]): DepthStep[] {
  // An object the verifier never touches never deepens its frame.
  const touched = slots.flatMap((slot, index) => (slot.verifierSkips ? [] : [{ at: slot.touchedAt ?? 0, byteDepth: deepestBytes[index] ?? 0 }]));
  return deepeningSteps(touched.sort((a, b) => a.at - b.at));
}

/** Where a position of an inlined body lands in its caller's: the callee's points follow the call's. */
function insertedAt(callPosition: number, innerPosition: number | undefined): number {
  return callPosition + 2 + (innerPosition ?? 0);
}

/** What do_check meets: the first live call of each helper id, in order. */
function firstLiveOfEachId(helperCalls: readonly RawHelperCall[]): FunctionEstimate['helperCalls'] {
  const seen = new Set<number>();
  const first: FunctionEstimate['helperCalls'] = [];
  for (const call of helperCalls) {
    if (call.deadness !== LIVE || seen.has(call.helper)) continue;
    seen.add(call.helper);
    first.push({ helper: call.helper, name: call.name, line: call.line, column: call.column, position: call.position ?? 0 });
  }
  return first;
}
