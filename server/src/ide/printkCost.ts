/**
 * One model of what a printk costs its function's stack, for hover and the quick fixes alike: the
 * bytes the source estimate put in the frame for the call (libbpf's ____fmt and ___param once the
 * macros are expanded, or whatever local a hand-written macro builds its format in) whenever an
 * estimate of the document's current text exists. libbpf's rules, reasoned from the unexpanded call
 * in printk.ts, stand in only when there is none: the estimate is off, or has not caught up with the
 * latest edit.
 *
 * The estimate places a stack object on the line where its declaration starts after expansion, which
 * for a macro's locals is the line of the macro's name, so a call owns the objects on its lines.
 */
import type { FrameItem, FunctionFrame } from '../source/frameEstimate';
import { markdownCode } from '../common/markdown';
import { type DocumentStackAnalysis, documentFrame } from './analysis';
import type { SyntaxView } from './syntax';
import { type PrintkCall, type StackCost, findPrintkCalls } from './printk';
import type { LensSettings } from './lensSettings';

export interface PrintkCost extends StackCost {
  from: 'source estimate' | 'libbpf rules';
  /** The estimate's stack objects for the call; none when the bytes come from libbpf's rules. */
  items: FrameItem[];
}

export interface CostedPrintkCall extends PrintkCall {
  cost: PrintkCost;
}

/** Every printk of the document with what it costs, from the estimate of exactly this text when there is one. */
export function costedPrintkCalls(snapshot: SyntaxView, analyses: DocumentStackAnalysis[], settings: LensSettings): CostedPrintkCall[] {
  const calls = findPrintkCalls(snapshot.tree, snapshot.queries, settings);
  // An estimate of another version of the text would pin its objects to lines that have moved.
  const frames = analyses.find((analysis) => analysis.origin === 'source estimate' && analysis.estimatedText === snapshot.text)?.frames;
  if (!frames) {
    const missing = settings.estimateFromSource
      ? 'There is no source estimate of this text yet'
      : 'The source estimate is off (`bpfStackLens.sourceEstimate.enabled`)';
    return calls.map((call) => ({ ...call, cost: byLibbpfRules(call, `${missing}: these bytes follow libbpf's rules for the call as written.`) }));
  }
  const itemsByCall = estimatedItems(calls, frames);
  return calls.map((call, index) => {
    const frame = documentFrame(frames, call.functionName);
    const cost = frame
      ? estimatedCost(call, itemsByCall[index], frame)
      : byLibbpfRules(call, "The source estimate has no frame for the function around this call: these bytes follow libbpf's rules.");
    return { ...call, cost };
  });
}

function byLibbpfRules(call: PrintkCall, why: string): PrintkCost {
  return { ...call.libbpfCost, reason: `${call.libbpfCost.reason}\n\n_${why}_`, from: 'libbpf rules', items: [] };
}

/**
 * The estimate's stack objects of each call: those declared on the call's lines (the callees of
 * inlined calls among its arguments are not the call's), and the local array a bpf_trace_printk names
 * as its format. Items carry a line and no column, so printks that share a line are dealt that
 * line's objects in source order, one each (every printk macro declares one).
 */
function estimatedItems(calls: PrintkCall[], frames: FunctionFrame[]): FrameItem[][] {
  const claimed = new Set<FrameItem>();
  const lines = (call: PrintkCall) => ({ first: call.call.startPosition.row + 1, last: call.call.endPosition.row + 1 });
  const inSourceOrder = calls.map((call, index) => ({ call, index })).sort((a, b) => a.call.call.startIndex - b.call.call.startIndex);
  const itemsByCall: FrameItem[][] = calls.map(() => []);
  inSourceOrder.forEach(({ call, index }, position) => {
    const items = documentFrame(frames, call.functionName)?.items ?? [];
    const { first, last } = lines(call);
    const next = inSourceOrder[position + 1]?.call;
    const sharesLine = next !== undefined && next.functionName === call.functionName && lines(next).first <= last;
    const onLines = items.filter((item) => item.what !== 'inlined' && first <= item.line && item.line <= last && !claimed.has(item));
    const own = sharesLine ? onLines.slice(0, 1) : onLines;
    for (const item of own) claimed.add(item);
    // The same local format array may serve several calls; each of them costs it.
    const format = call.localFormat && items.find((item) => item.name === call.localFormat?.name && item.line === call.localFormat.line);
    itemsByCall[index] = format && !own.includes(format) ? [...own, format] : own;
  });
  return itemsByCall;
}

function estimatedCost(call: PrintkCall, items: FrameItem[], frame: FunctionFrame): PrintkCost {
  const inlined = frame.inline ? `\n\n${markdownCode(frame.name)} is inlined: these bytes count in the frames of its callers.` : '';
  if (items.length === 0) {
    // Where the two disagree, either the macros expand otherwise than the call reads, or the estimate
    // could not find bpf_helpers.h and bpf_printk never expanded: the user can tell which.
    const rules =
      call.libbpfCost.stackBytes > 0
        ? ` libbpf's rules, reading the call as written, would count ${call.libbpfCost.stackBytes} B; the estimate sees the macros as they expand (if bpf_helpers.h is not found, bpf_printk does not expand: see \`bpfStackLens.includePaths\`).`
        : '';
    return {
      stackBytes: 0,
      reason: `The source estimate finds nothing of this call on the stack: its format stays in .rodata.${rules}${inlined}`,
      from: 'source estimate',
      items,
    };
  }
  // The user wrote the call, not the macro's `____fmt` and `___param`: its objects are named after it.
  const objects = items.map((item) => {
    const shared =
      item.sharedWith !== undefined
        ? `, sharing its slots with ${item.sharedWithLine !== undefined && item.sharedWithLine !== item.line ? `the object of line ${item.sharedWithLine}` : markdownCode(item.sharedWith)}`
        : '';
    return `${describeObject(item, call)} (${markdownCode(item.type)}${describeKind(item)}) ${item.bytes} B${shared}`;
  });
  return {
    stackBytes: items.reduce((sum, item) => sum + item.bytes, 0),
    reason: `As the source estimate counts the frame of ${markdownCode(frame.name)}: ${objects.join(' · ')}.${inlined}`,
    from: 'source estimate',
    items,
  };
}

function describeObject(item: FrameItem, call: PrintkCall): string {
  if (item.what === 'printk-format') return `its format ${markdownCode(call.format.text)}`;
  if (item.what === 'printk-args') return 'its arguments';
  return markdownCode(item.name);
}

function describeKind(item: FrameItem): string {
  if (item.what === 'printk-format') return ', copied to the stack';
  return '';
}
