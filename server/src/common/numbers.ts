/**
 * Rounding and binary search, written once: frame sizes round to alignments and to the verifier's
 * 8-byte slots, and sorted tables (instruction offsets, line starts, line info, program points) are
 * searched the same way everywhere.
 */

/** `value` rounded up to a multiple of `multiple` (a multiple below 1 counts as 1). */
export function roundUp(value: number, multiple: number): number {
  const step = Math.max(1, multiple);
  return Math.ceil(value / step) * step;
}

/** Bytes rounded up to whole 8-byte stack slots, as the verifier counts them. */
export function roundToSlots(bytes: number): number {
  return roundUp(bytes, 8);
}

/**
 * The first index in [low, high) at which `isBefore` turns false, or `high`; `isBefore` must be true
 * for a prefix of the range and false after it (Rust's partition_point).
 */
export function partitionPoint(low: number, high: number, isBefore: (index: number) => boolean): number {
  while (low < high) {
    const middle = (low + high) >> 1;
    if (isBefore(middle)) low = middle + 1;
    else high = middle;
  }
  return low;
}

/**
 * The first position in `sorted` (ascending) from `low` to `high` (exclusive) whose value is at
 * least `value`, or `high`: partitionPoint without the call per step, for the hot paths over
 * instruction offsets, control positions and slots.
 */
export function lowerBound(sorted: ArrayLike<number>, value: number, low = 0, high = sorted.length): number {
  while (low < high) {
    const middle = (low + high) >> 1;
    if (sorted[middle] < value) low = middle + 1;
    else high = middle;
  }
  return low;
}
