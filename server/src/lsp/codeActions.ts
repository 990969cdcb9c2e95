/**
 * Quick fixes that make room on the BPF stack, each saying what the frame really loses: the source
 * estimate colors the frame again without the object (frameEstimate.ts `freesBytes`), so a printk
 * format that only reuses another's slots "frees nothing" rather than its size.
 *
 * For the bytes a printk puts on the stack (as printkCost.ts counts them):
 *   (a) remove the statement;
 *   (b) move the format to .rodata: `static const char fmt_N[] = "...";` at file scope above the
 *       function and `bpf_trace_printk(fmt_N, sizeof(fmt_N), args...)` in place of the call; never
 *       offered when BPF_NO_GLOBAL_DATA is in effect, since that macro exists to keep .rodata out;
 *   (c) move the call into a new noinline helper that takes the printk's arguments, so its bytes sit
 *       in a frame of their own, beside the tail-call path, not on it.
 * For a large local struct or array (bpfStackLens.quickFixes.scratchMapMinBytes and up):
 *   (d) move it into a per-CPU array scratch map (ide/scratchMap.ts).
 *
 * Where they are offered: at a printk, only that call's fixes; at a large local's declaration, its
 * scratch map; on a stack diagnostic elsewhere, the fixes of the printks on its chain that free
 * something and the scratch map of the chain's largest local, each naming its target ("the
 * stack_printk at line 120 ("acl-test, …")"). Each fix is written so that the result compiles with
 * clang -target bpf and loads (test/lsp/quickFixes.test.ts builds and loads every one).
 */
import { freshName } from '../ide/names';
import { SCRATCH_KEY_SLOT_BYTES, scratchMapRewrite } from '../ide/scratchMap';
import type { FrameItem, FunctionFrame } from '../source/frameEstimate';
import type { Node } from '../source/parser';
import type { TextSpan } from '../ide/textSpan';
import type { FindingData } from '../ide/diagnostics';
import { type DocumentStackAnalysis, documentFrame } from '../ide/analysis';
import type { SyntaxSnapshot } from './documents';
import { type CostedPrintkCall, costedPrintkCalls } from '../ide/printkCost';
import type { LensSettings } from './settings';
import { enclosingFunction, insertionPointAbove, namedNodeAt } from '../ide/syntax';

export interface QuickFix {
  title: string;
  edits: (TextSpan & { newText: string })[];
  preferred?: boolean;
  /** Indexes of the diagnostics (as given) this fix addresses. */
  diagnostics: number[];
}

/** bpf_trace_printk takes at most 3 arguments after the format and its size. */
const TRACE_PRINTK_MAX_ARGS = 3;
/** A BPF function takes at most 5 arguments in registers r1-r5. */
const BPF_MAX_CALL_ARGS = 5;
/** Characters of a printk's format quoted in a fix that names it. */
const FORMAT_PREVIEW_CHARS = 24;

/** What a fix takes off a frame, and how it says so. */
interface Freed {
  bytes: number;
  /** "frees 32 B of the frame of entry", "frees nothing: …", "frees up to 48 B …". */
  text: string;
}

/** What one request hands out: names already taken by another fix shown beside it. */
interface FixContext {
  text: string;
  reserved: Set<string>;
  frames?: FunctionFrame[];
  settings: LensSettings;
}

export function quickFixes(
  snapshot: SyntaxSnapshot,
  span: TextSpan,
  diagnostics: (FindingData | undefined)[],
  analyses: DocumentStackAnalysis[],
  settings: LensSettings,
): QuickFix[] {
  const context: FixContext = { text: snapshot.text, reserved: new Set(), frames: estimatedFrames(analyses, snapshot.text), settings };
  const printks = costedPrintkCalls(snapshot, analyses, settings).filter((call) => call.statement && call.cost.stackBytes > 0);
  const chainsThrough = (functionName: string | undefined) =>
    diagnostics.flatMap((data, index) => (data && functionName && countedChain(data).includes(functionName) ? [index] : []));

  // At a printk, that call's fixes and nothing else.
  const atCursor = printks.filter((printk) => touchesLines(printk.statement as Node, span, snapshot.text));
  if (atCursor.length > 0) {
    return atCursor.flatMap((printk) => printkFixes(printk, context, chainsThrough(printk.functionName), atCursor.length > 1 ? 'named' : 'this'));
  }

  const fixes: QuickFix[] = [];
  const local = largeLocalAt(snapshot, span, context);
  if (local) {
    const fix = scratchMapFix(local, context, chainsThrough(local.frame.name), 'this');
    if (fix) fixes.push(fix);
  }

  // On a diagnostic: what its chain is made of, named, and only what frees something.
  const others: { fix: QuickFix; bytes: number }[] = [];
  for (const printk of printks) {
    const onChains = chainsThrough(printk.functionName);
    if (onChains.length === 0) continue;
    if (freedBy(printk, context).bytes === 0) continue;
    for (const fix of printkFixes(printk, context, onChains, 'named'))
      others.push({ fix: { ...fix, preferred: false }, bytes: fix.title.startsWith('Remove') ? -1 : freedBy(printk, context).bytes });
  }
  const seen = new Set(local ? [localKey(local)] : []);
  diagnostics.forEach((data) => {
    const largest = data && largestLocalOnChain(countedChain(data), snapshot, context);
    if (!largest || seen.has(localKey(largest))) return;
    seen.add(localKey(largest));
    const fix = scratchMapFix(largest, context, chainsThrough(largest.frame.name), 'named');
    if (fix && scratchFreed(largest).bytes > 0) others.push({ fix, bytes: scratchFreed(largest).bytes });
  });
  // The fix that frees the most comes first; removing a printk loses what it prints, so it is never preferred.
  others.sort((a, b) => b.bytes - a.bytes);
  others.forEach(({ fix, bytes }, index) => fixes.push({ ...fix, preferred: index === 0 && fixes.length === 0 && bytes > 0 }));
  return fixes;
}

/** The estimate's frames of exactly this text: another version's would pin objects to lines that moved. */
function estimatedFrames(analyses: DocumentStackAnalysis[], text: string): FunctionFrame[] | undefined {
  return analyses.find((analysis) => analysis.origin === 'source estimate' && analysis.estimatedText === text)?.frames;
}

/**
 * The chain's functions whose frames count: a tail-calling function's own frame is not part of
 * "previous frames". A diagnostic about one function (clang's own 512-byte limit) may name only it.
 */
function countedChain(data: FindingData): string[] {
  if (data.chain.length === 0) return data.program ? [data.program] : [];
  return data.rule === 'tail-call-depth' ? data.chain.slice(0, -1) : data.chain;
}

/** The statement's whole lines count: VS Code asks with the bare cursor, often in the indentation. */
function touchesLines(node: Node, span: TextSpan, text: string): boolean {
  const lineStart = text.lastIndexOf('\n', node.startIndex - 1) + 1;
  const newline = text.indexOf('\n', node.endIndex);
  const lineEnd = newline === -1 ? text.length : newline;
  return lineStart <= span.end && span.start <= lineEnd;
}

function printkFixes(printk: CostedPrintkCall, context: FixContext, diagnostics: number[], naming: 'this' | 'named'): QuickFix[] {
  const statement = printk.statement as Node;
  const target = naming === 'this' ? `this ${printk.callee}` : describePrintk(printk);
  const freed = freedBy(printk, context);
  const fixes: QuickFix[] = [{ title: `Remove ${target} (${freed.text})`, edits: [removeStatement(statement, context.text)], diagnostics }];

  const args = printk.args.map((arg) => arg.text);
  const literalFormat = printk.formatBytes !== undefined;
  // BPF_NO_GLOBAL_DATA says this program may not have .rodata: the fix would add exactly that.
  if (literalFormat && printk.functionNode && args.length <= TRACE_PRINTK_MAX_ARGS && !printk.noGlobalData) {
    const name = freshName(context.text, 'fmt', context.reserved);
    context.reserved.add(name);
    fixes.push({
      title: `Move the format of ${target} to .rodata (static const char ${name}[]; ${freed.text})`,
      edits: [
        { ...at(insertionPointAbove(printk.functionNode, context.text)), newText: `static const char ${name}[] = ${printk.format.text};\n\n` },
        { start: printk.call.startIndex, end: printk.call.endIndex, newText: `bpf_trace_printk(${[name, `sizeof(${name})`, ...args].join(', ')})` },
      ],
      preferred: naming === 'this',
      diagnostics,
    });
  }

  // bpf_trace_printk's own stack bytes come from a local array, which a helper could not see.
  if (printk.functionNode && printk.callee !== 'bpf_trace_printk' && args.length <= BPF_MAX_CALL_ARGS) {
    fixes.push({ ...helperFix(printk, context, args, target, freed), diagnostics, preferred: naming === 'this' && fixes.length === 1 });
  }
  return fixes;
}

/** `the stack_printk at line 120 ("acl-test, overlay…")`. */
function describePrintk(printk: CostedPrintkCall): string {
  const literal = printk.format.type === 'string_literal' ? printk.format.text.slice(1, -1) : printk.format.text;
  const preview = literal.length > FORMAT_PREVIEW_CHARS ? `${literal.slice(0, FORMAT_PREVIEW_CHARS)}…` : literal;
  return `the ${printk.callee} at line ${printk.call.startPosition.row + 1} ("${preview}")`;
}

/** What removing the call's stack objects takes off its function's frame. */
function freedBy(printk: CostedPrintkCall, context: FixContext): Freed {
  const frame = documentFrame(context.frames, printk.functionName);
  return freedFromFrame(printk.cost.items, frame, printk.cost.stackBytes, printk.functionName);
}

/**
 * The bytes a frame loses without `items`, as the estimate recolored it; "up to" their size when
 * there is no estimate to ask, or when the function is inlined and the loss lands in its callers' frames.
 */
function freedFromFrame(items: FrameItem[], frame: FunctionFrame | undefined, size: number, owner: string | undefined, added = 0): Freed {
  const of = owner ? ` of the frame of ${owner}` : '';
  if (!frame || items.length === 0 || items.some((item) => item.freesBytes === undefined)) return { bytes: size, text: `frees up to ${size} B${of}` };
  if (frame.inline) return { bytes: size, text: `frees up to ${size} B of the frames ${frame.name} is inlined into` };
  const bytes = Math.max(0, items.reduce((sum, item) => sum + (item.freesBytes ?? 0), 0) - added);
  if (bytes > 0) return { bytes, text: `frees ${bytes} B${of}` };
  const host = items.find((item) => item.sharedWithLine !== undefined);
  return { bytes, text: host ? `frees nothing: shares its slots with line ${host.sharedWithLine}` : `frees nothing${of}` };
}

/**
 * Moves the call into a new noinline helper. The arguments travel as 64-bit integers: every printk
 * argument is a scalar or a pointer, both fit in a register, and the explicit cast keeps clang from
 * rejecting a pointer passed as an integer. Types and attributes follow the file's own spelling.
 */
function helperFix(printk: CostedPrintkCall, context: FixContext, args: string[], target: string, freed: Freed): Omit<QuickFix, 'diagnostics'> {
  const { text } = context;
  const functionNode = printk.functionNode as Node;
  const name = freshName(text, `${printk.functionName ?? 'bpf'}_printk`, context.reserved);
  context.reserved.add(name);
  const u64 = /\b__u64\b/.test(text) ? '__u64' : 'unsigned long long';
  const noinline = /\b__noinline\b/.test(text) ? '__noinline' : '__attribute__((noinline))';
  const indent = /^\t/m.test(functionNode.text) ? '\t' : '    ';
  const params = args.length > 0 ? args.map((_, index) => `${u64} arg${index}`).join(', ') : 'void';
  const innerArgs = [printk.format.text, ...args.map((_, index) => `arg${index}`)].join(', ');
  const helper =
    `/* Prints from a frame of its own, so that the ${stackBytesOf(printk)}'s stack bytes stay off the caller's frame. */\n` +
    `static ${noinline} void ${name}(${params})\n{\n${indent}${printk.callee}(${innerArgs});\n}\n\n`;
  const call = `${name}(${args.map((arg) => `(${u64})(${arg})`).join(', ')})`;
  return {
    title: `Move ${target} into a noinline helper ${name}() (${freed.text}; the helper's frame holds them)`,
    edits: [
      { ...at(insertionPointAbove(functionNode, text)), newText: helper },
      { start: printk.call.startIndex, end: printk.call.endIndex, newText: call },
    ],
  };
}

/** What the printk builds on the stack: its format, its argument array (bpf_printk with 4+ arguments), or both. */
function stackBytesOf(printk: CostedPrintkCall): string {
  const kinds = new Set(printk.cost.items.map((item) => item.what));
  if (kinds.has('printk-args') && kinds.has('printk-format')) return 'format and argument array';
  if (kinds.has('printk-args') || (kinds.size === 0 && printk.callee === 'bpf_printk' && printk.args.length > TRACE_PRINTK_MAX_ARGS)) return 'argument array';
  return 'format';
}

/** A large local of the document's estimate: its item and the frame of the function that declares it. */
interface LargeLocal {
  item: FrameItem;
  frame: FunctionFrame;
  functionNode: Node;
}

function localKey(local: LargeLocal): string {
  return `${local.frame.name}:${local.item.line}:${local.item.name}`;
}

function isLargeLocal(item: FrameItem, settings: LensSettings): boolean {
  return item.what === 'local' && item.bytes >= settings.scratchMapMinBytes;
}

/** The large local declared on the cursor's line. */
function largeLocalAt(snapshot: SyntaxSnapshot, span: TextSpan, context: FixContext): LargeLocal | undefined {
  const node = namedNodeAt(snapshot.tree, span.start);
  const functionNode = node ? enclosingFunction(node) : undefined;
  if (!functionNode) return undefined;
  const line = snapshot.document.positionAt(span.start).line + 1;
  const frame = context.frames?.find(
    (candidate) => candidate.file === undefined && candidate.line >= functionNode.startPosition.row + 1 && candidate.line <= functionNode.endPosition.row + 1,
  );
  const item = frame?.items.find((candidate) => candidate.line === line && isLargeLocal(candidate, context.settings));
  return frame && item ? { item, frame, functionNode } : undefined;
}

/** The largest local on the chain's frames, inlined callees' included, defined in this document. */
function largestLocalOnChain(chain: string[], snapshot: SyntaxSnapshot, context: FixContext): LargeLocal | undefined {
  const found: { item: FrameItem; frame: FunctionFrame }[] = [];
  const visit = (name: string, seen: Set<string>) => {
    const frame = documentFrame(context.frames, name);
    if (!frame || seen.has(name)) return;
    seen.add(name);
    for (const item of frame.items) {
      if (item.what === 'inlined') visit(item.name, seen);
      else if (isLargeLocal(item, context.settings)) found.push({ item, frame });
    }
  };
  for (const name of chain) visit(name, new Set());
  found.sort((a, b) => b.item.bytes - a.item.bytes);
  for (const { item, frame } of found) {
    const functionNode = functionNodeOf(snapshot, frame);
    if (functionNode) return { item, frame, functionNode };
  }
  return undefined;
}

function functionNodeOf(snapshot: SyntaxSnapshot, frame: FunctionFrame): Node | undefined {
  const offset = snapshot.document.offsetAt({ line: frame.line - 1, character: 0 });
  const lineEnd = snapshot.text.indexOf('\n', offset);
  const nameAt = snapshot.text.slice(offset, lineEnd === -1 ? undefined : lineEnd).search(new RegExp(`\\b${frame.name}\\b`));
  if (nameAt < 0) return undefined;
  const node = namedNodeAt(snapshot.tree, offset + nameAt);
  return node ? enclosingFunction(node) : undefined;
}

/** The lookup's key takes a slot of its own, so the frame loses the local's bytes less that. */
function scratchFreed(local: LargeLocal): Freed {
  return freedFromFrame([local.item], local.frame, local.item.bytes - SCRATCH_KEY_SLOT_BYTES, local.frame.name, SCRATCH_KEY_SLOT_BYTES);
}

function scratchMapFix(local: LargeLocal, context: FixContext, diagnostics: number[], naming: 'this' | 'named'): QuickFix | undefined {
  const rewrite = scratchMapRewrite({
    text: context.text,
    functionNode: local.functionNode,
    name: local.item.name,
    line: local.item.line,
    section: local.frame.section,
    mapInsertAt: insertionPointAbove(local.functionNode, context.text),
    reserved: context.reserved,
  });
  if ('problem' in rewrite) return undefined;
  const what = `\`${local.item.name}\` (${local.item.type}, ${local.item.bytes} B${naming === 'named' ? `, line ${local.item.line} of ${local.frame.name}` : ''})`;
  return {
    title: `Move ${what} into a per-CPU scratch map ${rewrite.mapName} (${scratchFreed(local).text})`,
    edits: rewrite.edits,
    preferred: naming === 'this',
    diagnostics,
  };
}

/** Deletes a statement; its whole lines when nothing else is on them, and `;` in its place where C needs a statement. */
function removeStatement(statement: Node, text: string): TextSpan & { newText: string } {
  const needsStatement = statement.parent?.type !== 'compound_statement';
  if (needsStatement) return { start: statement.startIndex, end: statement.endIndex, newText: ';' };
  const lineStart = text.lastIndexOf('\n', statement.startIndex - 1) + 1;
  const newline = text.indexOf('\n', statement.endIndex);
  const lineEnd = newline === -1 ? text.length : newline + 1;
  const alone = text.slice(lineStart, statement.startIndex).trim() === '' && text.slice(statement.endIndex, lineEnd).trim() === '';
  return alone ? { start: lineStart, end: lineEnd, newText: '' } : { start: statement.startIndex, end: statement.endIndex, newText: '' };
}

function at(offset: number): TextSpan {
  return { start: offset, end: offset };
}
