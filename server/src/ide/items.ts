/**
 * What a frame's stack objects are called for a person: the name the user wrote, not the one a
 * macro made up. libbpf's printk macros declare `____fmt` (the format copied to the stack) and
 * `___param` (the arguments), which nobody wrote; they are named after the call on their line.
 */
import type { FrameItem } from '../source/frameEstimate';

/** "the format of the printk at line 120", "buf", "the inlined parse_hdr". */
export function itemLabel(item: FrameItem): string {
  switch (item.what) {
    case 'printk-format':
      return `the format of the printk at line ${item.line}`;
    case 'printk-args':
      return `the arguments of the printk at line ${item.line}`;
    case 'inlined':
      return `the inlined ${item.name}`;
    case 'local':
      return item.name;
  }
}

/** The items of the frames named, largest first, at most `count` of them. */
export function largestItems(frames: { name: string; items: readonly FrameItem[] }[], count: number): { item: FrameItem; frame: string }[] {
  return frames
    .flatMap((frame) => frame.items.filter((item) => item.bytes > 0).map((item) => ({ item, frame: frame.name })))
    .sort((a, b) => b.item.bytes - a.item.bytes || a.item.line - b.item.line)
    .slice(0, count);
}
