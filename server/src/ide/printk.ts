/**
 * The bpf_printk family: finds each call in a file, and says what libbpf's rules make it put on its
 * function's stack. Those rules are the fallback: when a source estimate of the text exists, the
 * bytes come from the frame it counted (printkCost.ts), which sees the macros as they really expand.
 *
 * libbpf's bpf_printk with up to 3 arguments keeps its format in .rodata (`static const char
 * ____fmt[]`) and costs nothing, unless BPF_NO_GLOBAL_DATA is defined: then the format is a local
 * array, copied to the stack on every call, as with libbpf before 0.6 and with hand-written macros
 * like `({ char ____fmt[] = fmt; bpf_trace_printk(____fmt, sizeof(____fmt), ##__VA_ARGS__); })`.
 * With 4 or more arguments, bpf_printk becomes __bpf_vprintk, which builds
 * `unsigned long long ___param[N]` on the stack: 8 bytes per argument.
 */
import { markdownCode } from '../common/markdown';
import { roundUp } from '../rules/kernelProfile';
import { stringLiteralBytes } from '../source/constExpr';
import type { Node, Tree } from '../source/parser';
import type { LensSettings } from './lensSettings';
import { enclosingFunction, functionNameOf, type LspQueries } from './syntax';

export interface PrintkCall {
  /** The call_expression. */
  call: Node;
  /** The expression statement the call is, when it is one (only those can be removed or moved). */
  statement?: Node;
  callee: string;
  /** The format argument. */
  format: Node;
  /** Bytes of the format string, terminating NUL included, when it is a string literal. */
  formatBytes?: number;
  /** The arguments after the format. */
  args: Node[];
  /** What the call puts on the stack by libbpf's rules, reasoned from the unexpanded call. */
  libbpfCost: StackCost;
  /** The local array a bpf_trace_printk's format names (`char fmt[] = "..."` in the function), with its 1-based line. */
  localFormat?: { name: string; line: number };
  /** The function that makes the call. */
  functionNode?: Node;
  functionName?: string;
  /** BPF_NO_GLOBAL_DATA is in effect (from the settings, compile_commands.json or a #define in the file): no .rodata for this file. */
  noGlobalData: boolean;
}

export interface StackCost {
  /** Bytes the call puts on the stack of its function. */
  stackBytes: number;
  /** Why, in a sentence or two, for hover. */
  reason: string;
}

/** The macros of a file that build their format on the stack, and whether BPF_NO_GLOBAL_DATA is defined. */
interface PrintkContext {
  stackFormatMacros: Set<string>;
  noGlobalData: boolean;
}

export function findPrintkCalls(tree: Tree, queries: LspQueries, settings: Pick<LensSettings, 'printkModel' | 'defines'>): PrintkCall[] {
  const matches = queries.printk.matches(tree.rootNode);
  const context: PrintkContext = { stackFormatMacros: new Set(), noGlobalData: 'BPF_NO_GLOBAL_DATA' in settings.defines };
  for (const match of matches) {
    const capture = (name: string) => match.captures.find((c) => c.name === name)?.node;
    const macroName = capture('macro.name');
    const macroBody = capture('macro.body');
    if (macroName && macroBody && buildsFormatOnStack(macroBody.text)) context.stackFormatMacros.add(macroName.text);
    if (capture('define.name')?.text === 'BPF_NO_GLOBAL_DATA') context.noGlobalData = true;
  }
  const calls: PrintkCall[] = [];
  for (const match of matches) {
    const call = match.captures.find((c) => c.name === 'call')?.node;
    const callee = match.captures.find((c) => c.name === 'callee')?.node?.text;
    const argumentList = match.captures.find((c) => c.name === 'arguments')?.node;
    if (!call || !callee || !argumentList) continue;
    const isPrintk = callee === 'bpf_printk' || callee === 'bpf_trace_printk' || context.stackFormatMacros.has(callee);
    if (!isPrintk) continue;
    const [format, ...rest] = argumentList.namedChildren.filter((node): node is Node => node !== null && node.type !== 'comment');
    if (!format) continue;
    const args = callee === 'bpf_trace_printk' ? rest.slice(1) : rest;
    const functionNode = enclosingFunction(call);
    const localFormat = callee === 'bpf_trace_printk' && format.type === 'identifier' && functionNode ? localStringArray(functionNode, format.text) : undefined;
    calls.push({
      call,
      statement: call.parent?.type === 'expression_statement' ? call.parent : undefined,
      callee,
      format,
      formatBytes: cStringBytes(format),
      args,
      libbpfCost: libbpfStackCost(callee, format, args, localFormat?.value, settings.printkModel, context),
      localFormat: localFormat && { name: format.text, line: localFormat.declaration.startPosition.row + 1 },
      functionNode,
      functionName: functionNode ? functionNameOf(functionNode) : undefined,
      noGlobalData: context.noGlobalData,
    });
  }
  return calls;
}

/** A macro body that copies its format into a local array (sized or not) and hands it to bpf_trace_printk. */
function buildsFormatOnStack(body: string): boolean {
  return /\bbpf_trace_printk\s*\(/.test(body) && /(^|[^\w])char\s+\w+\s*\[[^\]]*\]\s*=/.test(body) && !/\bstatic\b/.test(body);
}

function libbpfStackCost(
  callee: string,
  format: Node,
  args: Node[],
  localFormatValue: Node | undefined,
  model: LensSettings['printkModel'],
  context: PrintkContext,
): StackCost {
  const formatBytes = cStringBytes(format);
  const onStack = (why: string) =>
    formatBytes === undefined
      ? { stackBytes: 0, reason: `${why}, but the format is not a string literal, so its size is unknown.` }
      : { stackBytes: roundUp(formatBytes, 8), reason: `${why}: ${formatBytes} bytes with the NUL, ${roundUp(formatBytes, 8)} in 8-byte slots.` };
  if (callee === 'bpf_printk') {
    if (args.length > 3) {
      return {
        stackBytes: 8 * args.length,
        reason: `With ${args.length} arguments bpf_printk builds an array of ${args.length} u64 on the stack (__bpf_vprintk); the format stays in .rodata.`,
      };
    }
    const stack = model === 'stack' || (model === 'auto' && context.noGlobalData);
    if (stack)
      return onStack(
        model === 'stack'
          ? 'The format is copied to the stack (printkModel is "stack")'
          : 'The format is copied to the stack because BPF_NO_GLOBAL_DATA is defined',
      );
    return { stackBytes: 0, reason: 'libbpf keeps the format in .rodata (a static const array its macro declares): no stack bytes.' };
  }
  if (callee === 'bpf_trace_printk') {
    if (localFormatValue) return onLocalArray(localFormatValue);
    return { stackBytes: 0, reason: 'The format is not a local array, so the call puts nothing on the stack.' };
  }
  return onStack(`${markdownCode(callee)} copies its format into a local char array`);
}

function onLocalArray(value: Node): StackCost {
  const bytes = cStringBytes(value);
  if (bytes === undefined) return { stackBytes: 0, reason: 'The format is a local array of unknown size.' };
  return { stackBytes: roundUp(bytes, 8), reason: `The format is a local array: ${bytes} bytes with the NUL, ${roundUp(bytes, 8)} in 8-byte slots.` };
}

/** `char NAME[] = "..."` declared (not static) in the function, with its initializer, if any. */
function localStringArray(functionNode: Node, name: string): { declaration: Node; value: Node } | undefined {
  const body = functionNode.childForFieldName('body');
  for (const declaration of body?.descendantsOfType('declaration') ?? []) {
    if (!declaration || /\bstatic\b/.test(declaration.text.slice(0, declaration.text.indexOf(name)))) continue;
    for (const init of declaration.childrenForFieldName('declarator')) {
      if (init?.type !== 'init_declarator') continue;
      const declarator = init.childForFieldName('declarator');
      const value = init.childForFieldName('value');
      if (declarator?.type === 'array_declarator' && declarator.childForFieldName('declarator')?.text === name && value) return { declaration, value };
    }
  }
  return undefined;
}

/**
 * The bytes a C string literal occupies, terminating NUL included, or undefined when the node is not
 * a plain (or concatenated) narrow string literal. Escapes count one byte each (\u and \U count the
 * UTF-8 bytes of the code point); the literal's characters count their UTF-8 bytes, as clang stores them.
 */
export function cStringBytes(node: Node): number | undefined {
  const parts = node.type === 'concatenated_string' ? node.namedChildren.filter((part): part is Node => part?.type === 'string_literal') : [node];
  if (parts.length === 0 || parts.some((part) => part.type !== 'string_literal' || !part.text.startsWith('"'))) return undefined;
  return parts.reduce((bytes, part) => bytes + stringLiteralBytes(part.text), 0) + 1;
}
