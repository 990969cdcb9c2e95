/**
 * Quick fixes for the bytes a printk puts on the stack (as printkCost.ts counts them), offered on
 * the printk itself and on every stack diagnostic whose chain runs through a function with such a
 * printk:
 *   (a) remove the statement;
 *   (b) move the format to .rodata: `static const char fmt_N[] = "...";` at file scope above the
 *       function and `bpf_trace_printk(fmt_N, sizeof(fmt_N), args...)` in place of the call;
 *   (c) move the call into a new `static __attribute__((noinline))` helper that takes the printk's
 *       arguments, so its bytes sit in a frame of their own, beside the tail-call path, not on it.
 * Each fix is written so that the result compiles with clang -target bpf (test/lsp/quickFixes.test.ts
 * builds and loads every one).
 */
import type { Node } from '../source/parser';
import type { TextSpan } from './convert';
import type { FindingData } from './diagnostics';
import type { DocumentStackAnalysis } from './documentAnalysis';
import type { SyntaxSnapshot } from './documents';
import type { PrintkCall } from './printk';
import { type CostedPrintkCall, costedPrintkCalls } from './printkCost';
import type { LensSettings } from './settings';
import { insertionPointAbove } from './syntax';

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

export function quickFixes(
  snapshot: SyntaxSnapshot,
  span: TextSpan,
  diagnostics: (FindingData | undefined)[],
  analyses: DocumentStackAnalysis[],
  settings: LensSettings,
): QuickFix[] {
  const printks = costedPrintkCalls(snapshot, analyses, settings).filter((call) => call.statement && call.cost.stackBytes > 0);
  const fixes: QuickFix[] = [];
  for (const printk of printks) {
    const statement = printk.statement as Node;
    // The statement's whole lines count: VS Code asks with the bare cursor, often in the indentation.
    const lineStart = snapshot.text.lastIndexOf('\n', statement.startIndex - 1) + 1;
    const newline = snapshot.text.indexOf('\n', statement.endIndex);
    const lineEnd = newline === -1 ? snapshot.text.length : newline;
    const atCursor = lineStart <= span.end && span.start <= lineEnd;
    const onChains = diagnostics.flatMap((data, index) => (data && onChain(printk, data) ? [index] : []));
    if (!atCursor && onChains.length === 0) continue;
    fixes.push(...fixesFor(printk, snapshot.text, onChains));
  }
  return fixes;
}

/** Whether the printk's function is on the chain and its frame counts there. */
function onChain(printk: PrintkCall, data: FindingData): boolean {
  if (!printk.functionName) return false;
  // A tail-calling function's own frame is not part of "previous frames".
  const counted = data.rule === 'tail-call-depth' ? data.chain.slice(0, -1) : data.chain;
  return counted.includes(printk.functionName);
}

function fixesFor(printk: CostedPrintkCall, text: string, diagnostics: number[]): QuickFix[] {
  const statement = printk.statement as Node;
  const owner = printk.functionName ? ` of ${printk.functionName}` : '';
  const fixes: QuickFix[] = [];
  fixes.push({ title: `Remove this ${printk.callee} (frees ${printk.cost.stackBytes} B of the frame${owner})`, edits: [removeStatement(statement, text)], diagnostics });

  const args = printk.args.map((arg) => arg.text);
  const literalFormat = printk.formatBytes !== undefined;
  if (literalFormat && printk.functionNode && args.length <= TRACE_PRINTK_MAX_ARGS) {
    const name = freshName(text, 'fmt');
    fixes.push({
      title: `Move the format of this ${printk.callee} to .rodata (static const char ${name}[]; frees ${printk.cost.stackBytes} B)`,
      edits: [
        { ...at(insertionPointAbove(printk.functionNode, text)), newText: `static const char ${name}[] = ${printk.format.text};\n\n` },
        { start: printk.call.startIndex, end: printk.call.endIndex, newText: `bpf_trace_printk(${[name, `sizeof(${name})`, ...args].join(', ')})` },
      ],
      preferred: true,
      diagnostics,
    });
  }

  // bpf_trace_printk's own stack bytes come from a local array, which a helper could not see.
  if (printk.functionNode && printk.callee !== 'bpf_trace_printk' && args.length <= BPF_MAX_CALL_ARGS) {
    fixes.push({ ...helperFix(printk, text, args), diagnostics, preferred: fixes.length === 1 });
  }
  return fixes;
}

/**
 * Moves the call into a new noinline helper. The arguments travel as `unsigned long long`: every
 * printk argument is a scalar or a pointer, both fit in a 64-bit register, and the explicit cast
 * keeps clang from rejecting a pointer passed as an integer.
 */
function helperFix(printk: CostedPrintkCall, text: string, args: string[]): Omit<QuickFix, 'diagnostics'> {
  const functionNode = printk.functionNode as Node;
  const name = freshName(text, `${printk.functionName ?? 'bpf'}_printk`);
  const indent = /^\t/m.test(functionNode.text) ? '\t' : '    ';
  const params = args.length > 0 ? args.map((_, index) => `unsigned long long arg${index}`).join(', ') : 'void';
  const innerArgs = [printk.format.text, ...args.map((_, index) => `arg${index}`)].join(', ');
  const helper =
    `/* Prints from a frame of its own, so that the format's stack bytes stay off the caller's frame. */\n` +
    `static __attribute__((noinline)) void ${name}(${params})\n{\n${indent}${printk.callee}(${innerArgs});\n}\n\n`;
  const call = `${name}(${args.map((arg) => `(unsigned long long)(${arg})`).join(', ')})`;
  return {
    title: `Move this ${printk.callee} into a noinline helper ${name}() (its ${printk.cost.stackBytes} B leave the frame of ${printk.functionName ?? 'the caller'})`,
    edits: [
      { ...at(insertionPointAbove(functionNode, text)), newText: helper },
      { start: printk.call.startIndex, end: printk.call.endIndex, newText: call },
    ],
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

/** `PREFIX_N` with the smallest N not already used as a word in the text. */
function freshName(text: string, prefix: string): string {
  for (let index = 0; ; index++) {
    const name = `${prefix}_${index}`;
    if (!new RegExp(`\\b${name}\\b`).test(text)) return name;
  }
}

function at(offset: number): TextSpan {
  return { start: offset, end: offset };
}
