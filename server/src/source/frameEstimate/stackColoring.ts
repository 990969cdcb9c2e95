/**
 * LLVM's StackColoring, then its frame layout (lib/CodeGen/StackColoring.cpp, PrologEpilogInserter):
 * stack objects whose lifetimes never overlap share space. Slots are sorted by size (largest first,
 * stable); each survivor in that order takes every later slot whose lifetime overlaps none of the
 * lifetimes it already holds; survivors are placed in index order, each aligned, growing down.
 *
 * The merge is LLVM's greedy order exactly, but not its quadratic scan: a function with 20,000 live
 * arrays tried every pair (26 s). Later slots are kept in a segment tree over the sorted order,
 * holding each range's latest start and earliest end, so a survivor finds the next slot that misses
 * its own lifetime in O(log n) and skips the ones that overlap it without looking at them.
 */
import { roundToSlots, roundUp } from '../../common/numbers';
import type { FrameItem, Slot } from './model';

/**
 * Colors `slots` (marking merged items with `sharedWith`) and returns the frame in 8-byte slots.
 * `deepestBytes`, when given, receives per slot the deepest byte below the frame pointer its object
 * reaches (a merged slot shares its survivor's place, so its lowest address).
 */
export function colorAndLayout(slots: readonly Slot[], items: FrameItem[], deepestBytes?: number[]): number {
  const count = slots.length;
  const order = slots.map((_, index) => index).sort((a, b) => slots[b].size - slots[a].size || a - b);
  const merged = new Uint8Array(count);
  /** The survivor whose space a merged slot takes. */
  const survivorOf = new Int32Array(count);
  const aligns = slots.map((slot) => slot.align);
  const candidates = new LaterSlots(order.map((index) => slots[index]));
  for (let position = 0; position < count; position++) {
    const first = order[position];
    if (merged[first]) continue;
    const own = slots[first];
    const held = new HeldLifetimes(own.start, own.end);
    for (let next = candidates.nextMissing(position + 1, own.start, own.end); next !== -1; next = candidates.nextMissing(next + 1, own.start, own.end)) {
      const second = order[next];
      const slot = slots[second];
      if (held.overlaps(slot.start, slot.end)) continue;
      merged[second] = 1;
      survivorOf[second] = first;
      candidates.remove(next);
      held.add(slot.start, slot.end);
      aligns[first] = Math.max(aligns[first], aligns[second]);
      const into = items[own.item];
      const from = items[slot.item];
      if (into && from && into !== from && from.sharedWith === undefined) {
        from.sharedWith = into.name;
        from.sharedWithLine = into.line;
      }
    }
  }
  let offset = 0;
  for (let index = 0; index < count; index++) {
    if (merged[index]) continue;
    offset = roundUp(offset + slots[index].size, aligns[index]);
    if (deepestBytes) deepestBytes[index] = offset;
  }
  if (deepestBytes) for (let index = 0; index < count; index++) if (merged[index]) deepestBytes[index] = deepestBytes[survivorOf[index]];
  return roundToSlots(offset);
}

/** The lifetimes a survivor holds: disjoint closed intervals, sorted by start. */
class HeldLifetimes {
  private readonly starts: number[];
  private readonly ends: number[];

  constructor(start: number, end: number) {
    this.starts = [start];
    this.ends = [end];
  }

  /** Whether [start, end] meets any held interval. */
  overlaps(start: number, end: number): boolean {
    // The last interval starting at or before `end` is the only one that can reach back to `start`.
    let low = 0;
    let high = this.starts.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (this.starts[middle] <= end) low = middle + 1;
      else high = middle;
    }
    return low > 0 && this.ends[low - 1] >= start;
  }

  /** Adds an interval that overlaps none held. */
  add(start: number, end: number): void {
    let low = 0;
    let high = this.starts.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (this.starts[middle] < start) low = middle + 1;
      else high = middle;
    }
    this.starts.splice(low, 0, start);
    this.ends.splice(low, 0, end);
  }
}

/** Slots in coloring order, not merged yet, searchable for one whose lifetime misses a given one. */
class LaterSlots {
  private readonly size: number;
  /** Per tree node: the latest start and the earliest end among its slots still present. */
  private readonly latestStart: Float64Array;
  private readonly earliestEnd: Float64Array;

  constructor(ordered: readonly Slot[]) {
    let size = 1;
    while (size < ordered.length) size *= 2;
    this.size = size;
    this.latestStart = new Float64Array(2 * size).fill(-Infinity);
    this.earliestEnd = new Float64Array(2 * size).fill(Infinity);
    ordered.forEach((slot, position) => {
      this.latestStart[size + position] = slot.start;
      this.earliestEnd[size + position] = slot.end;
    });
    for (let node = size - 1; node >= 1; node--) this.pull(node);
  }

  remove(position: number): void {
    let node = this.size + position;
    this.latestStart[node] = -Infinity;
    this.earliestEnd[node] = Infinity;
    for (node >>= 1; node >= 1; node >>= 1) this.pull(node);
  }

  /** The first position at or after `from` whose slot starts after `end` or ends before `start`, or -1. */
  nextMissing(from: number, start: number, end: number): number {
    return from >= this.size ? -1 : this.find(1, 0, this.size - 1, from, start, end);
  }

  private find(node: number, low: number, high: number, from: number, start: number, end: number): number {
    if (high < from || (this.latestStart[node] <= end && this.earliestEnd[node] >= start)) return -1;
    if (low === high) return low;
    const middle = (low + high) >> 1;
    const left = this.find(2 * node, low, middle, from, start, end);
    return left !== -1 ? left : this.find(2 * node + 1, middle + 1, high, from, start, end);
  }

  private pull(node: number): void {
    this.latestStart[node] = Math.max(this.latestStart[2 * node], this.latestStart[2 * node + 1]);
    this.earliestEnd[node] = Math.min(this.earliestEnd[2 * node], this.earliestEnd[2 * node + 1]);
  }
}
