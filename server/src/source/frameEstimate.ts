/**
 * The source side's frame estimate: for every function the main file defines, the stack bytes its
 * locals take, read from the preprocessed text as tree-sitter parses it and measured with the file's
 * own types.
 *
 * The model, deliberately simple:
 *   - aggregates (structs, unions, arrays) always live on the stack; scalars and pointers live in
 *     registers unless their address is taken (`&x`) or they are volatile;
 *   - every such local takes its size rounded up to whole 8-byte slots, and the slots are summed:
 *     locals of disjoint scopes are NOT yet overlapped (clang often shares them), so the estimate
 *     is an upper bound for straight-line code;
 *   - `static` locals live in .rodata/.data and cost nothing;
 *   - after macro expansion bpf_printk's on-stack format is `char ____fmt[] = "..."` (BPF_NO_GLOBAL_DATA
 *     or a hand-written macro) and its argument array is `unsigned long long ___param[N]`: they are
 *     reported as 'printk-format' and 'printk-args';
 *   - a static function that is always_inline, or plain static and only ever called directly, is
 *     inlined: each call adds its frame to the caller's as an 'inlined' item, and its calls and tail
 *     calls become the caller's. noinline, global and callback functions are frames of their own.
 */
import type { Node, Tree } from './parser';
import { tokenize } from './lexer';
import type { TranslationUnit } from './translationUnit';
import type { CType } from './types';
import { typeToString } from './types';

export type FrameItemKind = 'local' | 'printk-format' | 'printk-args' | 'inlined';

export interface FrameItem {
  what: FrameItemKind;
  name: string;
  type: string;
  /** Bytes on the stack: the size rounded up to 8-byte slots. */
  bytes: number;
  /** 1-based line in the main file. */
  line: number;
}

/** A call out of a function, as written (inlined callees' calls are already folded in). */
export interface SourceCall {
  callee: string;
  kind: 'call' | 'callback';
  /** The call passes the callee to bpf_timer_set_callback (or a wq): it runs later, on its own. */
  async: boolean;
  line: number;
  column: number;
}

export interface FunctionFrame {
  name: string;
  /** 1-based line of the function's name. */
  line: number;
  /** The SEC("...") name, null for functions that are not programs. */
  section: string | null;
  /** Inlined into its callers: its bytes count in their frames, not as a frame of its own. */
  inline: boolean;
  frameBytes: number;
  items: FrameItem[];
}

/** What the call graph builder needs besides the frame. */
export interface FunctionEstimate extends FunctionFrame {
  isStatic: boolean;
  isGlobal: boolean;
  noinline: boolean;
  alwaysInline: boolean;
  /** Calls of functions that are frames of their own, in source order, inlined callees' included. */
  calls: SourceCall[];
  /** Lines/columns of bpf_tail_call / bpf_tail_call_static, inlined callees' included. */
  tailCalls: { line: number; column: number }[];
}

const TAIL_CALL_HELPERS = new Set(['bpf_tail_call', 'bpf_tail_call_static']);
const ASYNC_CALLBACK_HELPERS = new Set(['bpf_timer_set_callback', 'bpf_wq_set_callback', 'bpf_wq_set_callback_impl']);

interface RawFunction {
  name: string;
  line: number;
  section: string | null;
  isStatic: boolean;
  noinline: boolean;
  alwaysInline: boolean;
  ownItems: FrameItem[];
  /** Direct calls of main-file functions and callbacks taken by address, in source order. */
  rawCalls: SourceCall[];
  tailCalls: { line: number; column: number }[];
}

/** Rounds up to whole 8-byte stack slots. */
export function roundToSlots(bytes: number): number {
  return Math.ceil(bytes / 8) * 8;
}

/**
 * Estimates the frame of every function defined in the main file. `tree` must be tree-sitter's parse
 * of `unit.aligned.text`.
 */
export function estimateFrames(unit: TranslationUnit, tree: Tree): FunctionEstimate[] {
  const definitions = tree.rootNode.namedChildren.filter((node): node is Node => node?.type === 'function_definition');
  const raws: RawFunction[] = [];
  for (const definition of definitions) {
    const raw = readFunction(unit, definition);
    if (raw) raws.push(raw);
  }
  const byName = new Map(raws.map((raw) => [raw.name, raw]));

  // Functions whose address is taken (callbacks) are never inlined.
  const addressTaken = new Set<string>();
  for (const raw of raws) for (const call of raw.rawCalls) if (call.kind === 'callback') addressTaken.add(call.callee);
  const isInlined = (raw: RawFunction) =>
    raw.section === null && raw.isStatic && !raw.noinline && (raw.alwaysInline || !addressTaken.has(raw.name));

  const results = new Map<string, FunctionEstimate>();
  const inProgress = new Set<string>();
  const resolve = (raw: RawFunction): FunctionEstimate => {
    const done = results.get(raw.name);
    if (done) return done;
    inProgress.add(raw.name);
    const items = [...raw.ownItems];
    const calls: SourceCall[] = [];
    const tailCalls = [...raw.tailCalls];
    for (const call of raw.rawCalls) {
      const callee = byName.get(call.callee);
      if (call.kind === 'call' && callee && isInlined(callee) && !inProgress.has(callee.name)) {
        const inlined = resolve(callee);
        if (inlined.frameBytes > 0) {
          items.push({ what: 'inlined', name: callee.name, type: `inline ${callee.name}()`, bytes: inlined.frameBytes, line: call.line });
        }
        // What the inlined body calls, it calls from here.
        for (const inner of inlined.calls) calls.push({ ...inner, line: call.line, column: call.column });
        for (let i = 0; i < inlined.tailCalls.length; i++) tailCalls.push({ line: call.line, column: call.column });
        continue;
      }
      if (callee) calls.push(call);
    }
    tailCalls.sort((a, b) => a.line - b.line || a.column - b.column);
    const estimate: FunctionEstimate = {
      name: raw.name,
      line: raw.line,
      section: raw.section,
      inline: isInlined(raw),
      frameBytes: items.reduce((sum, item) => sum + item.bytes, 0),
      items,
      isStatic: raw.isStatic,
      isGlobal: !raw.isStatic,
      noinline: raw.noinline,
      alwaysInline: raw.alwaysInline,
      calls,
      tailCalls,
    };
    inProgress.delete(raw.name);
    results.set(raw.name, estimate);
    return estimate;
  };
  return raws.map(resolve);
}

/** The JSON shape of a function's frame, without the call graph's extra fields. */
export function frameOf(estimate: FunctionEstimate): FunctionFrame {
  return {
    name: estimate.name,
    line: estimate.line,
    section: estimate.section,
    inline: estimate.inline,
    frameBytes: estimate.frameBytes,
    items: estimate.items.map((item) => ({ ...item })),
  };
}

function functionName(declarator: Node | null): Node | undefined {
  let node = declarator;
  while (node) {
    if (node.type === 'function_declarator') {
      const inner = node.childForFieldName('declarator');
      if (inner?.type === 'identifier') return inner;
      node = inner;
      continue;
    }
    if (node.type === 'identifier') return undefined;
    node = node.childForFieldName('declarator');
  }
  return undefined;
}

function readFunction(unit: TranslationUnit, definition: Node): RawFunction | undefined {
  const nameNode = functionName(definition.childForFieldName('declarator'));
  const body = definition.childForFieldName('body');
  if (!nameNode || !body) return undefined;
  const text = unit.aligned.text;
  // tree-sitter attaches an attribute that ends the previous declaration (`} m SEC(".maps");`) to
  // this definition: the header starts after the last ';'.
  const fullHeader = text.slice(definition.startIndex, body.startIndex);
  const header = fullHeader.slice(fullHeader.lastIndexOf(';') + 1);
  const section = /\bsection\s*\(\s*"([^"]*)"/.exec(header)?.[1] ?? null;
  const isStatic = definition.namedChildren.some((child) => child?.type === 'storage_class_specifier' && child.text === 'static');
  const raw: RawFunction = {
    name: nameNode.text,
    line: nameNode.startPosition.row + 1,
    section,
    isStatic,
    noinline: /\bnoinline\b|__noinline__/.test(header),
    alwaysInline: /\balways_inline\b|__always_inline__/.test(header),
    ownItems: [],
    rawCalls: [],
    tailCalls: [],
  };

  const addressTaken = new Set<string>();
  for (const pointer of body.descendantsOfType('pointer_expression')) {
    if (!pointer || pointer.childForFieldName('operator')?.type !== '&') continue;
    const root = rootIdentifier(pointer.childForFieldName('argument'));
    if (root) addressTaken.add(root);
  }

  for (const declaration of body.descendantsOfType('declaration')) {
    if (!declaration) continue;
    raw.ownItems.push(...localItems(unit, declaration, addressTaken));
  }

  for (const call of body.descendantsOfType('call_expression')) {
    if (!call) continue;
    const callee = call.childForFieldName('function');
    const line = call.startPosition.row + 1;
    const column = call.startPosition.column + 1;
    const calleeName = callee?.type === 'identifier' ? callee.text : undefined;
    if (calleeName && TAIL_CALL_HELPERS.has(calleeName)) raw.tailCalls.push({ line, column });
    if (calleeName) raw.rawCalls.push({ callee: calleeName, kind: 'call', async: false, line, column });
    // A function named as an argument is a callback (bpf_loop, bpf_for_each_map_elem, timers).
    for (const argument of call.childForFieldName('arguments')?.namedChildren ?? []) {
      let node: Node | null = argument;
      if (node?.type === 'pointer_expression' && node.childForFieldName('operator')?.type === '&') node = node.childForFieldName('argument');
      if (node?.type !== 'identifier') continue;
      raw.rawCalls.push({
        callee: node.text,
        kind: 'callback',
        async: calleeName !== undefined && ASYNC_CALLBACK_HELPERS.has(calleeName),
        line: node.startPosition.row + 1,
        column: node.startPosition.column + 1,
      });
    }
  }
  // Keep source order: callbacks named inside a call come after the call itself only by position.
  raw.rawCalls.sort((a, b) => a.line - b.line || a.column - b.column);
  return raw;
}

/** `x`, `x.f`, `x[3].f` -> "x". */
function rootIdentifier(node: Node | null): string | undefined {
  let current = node;
  while (current) {
    if (current.type === 'identifier') return current.text;
    if (current.type === 'field_expression') {
      if (current.childForFieldName('operator')?.type === '->') return undefined;
      current = current.childForFieldName('argument');
    } else if (current.type === 'subscript_expression') current = current.childForFieldName('argument');
    else if (current.type === 'parenthesized_expression') current = current.namedChildren[0] ?? null;
    else return undefined;
  }
  return undefined;
}

function localItems(unit: TranslationUnit, declaration: Node, addressTaken: Set<string>): FrameItem[] {
  const specifiers = declaration.namedChildren.filter((child): child is Node => child !== null);
  if (specifiers.some((child) => child.type === 'storage_class_specifier' && (child.text === 'static' || child.text === 'extern'))) return [];
  const isVolatile = specifiers.some((child) => child.type === 'type_qualifier' && /volatile/.test(child.text));
  const initializers = new Map<string, Node>();
  for (const child of declaration.childrenForFieldName('declarator')) {
    if (child?.type !== 'init_declarator') continue;
    const name = innermostName(child.childForFieldName('declarator'));
    const value = child.childForFieldName('value');
    if (name && value) initializers.set(name, value);
  }

  const tokens = tokenize(declaration.text);
  const problemsBefore = unit.declarations.problems.length;
  const declared = unit.declarations.parseDeclaration(tokens, 0, tokens.length);
  unit.declarations.problems.splice(problemsBefore);

  const items: FrameItem[] = [];
  const line = declaration.startPosition.row + 1;
  for (const name of declared) {
    if (name.isTypedef) continue;
    const resolved = unit.layout.resolve(name.type);
    if (resolved.k === 'function') continue;
    const aggregate = resolved.k === 'struct' || resolved.k === 'union' || resolved.k === 'array';
    if (!aggregate && !isVolatile && !addressTaken.has(name.name)) continue;
    let size = unit.layout.layoutOf(name.type).size;
    if (resolved.k === 'array' && resolved.n === undefined) {
      size = unsizedArrayBytes(unit, resolved.of, initializers.get(name.name));
    }
    const what: FrameItemKind = name.name === '____fmt' ? 'printk-format' : name.name === '___param' ? 'printk-args' : 'local';
    const type = resolved.k === 'array' && resolved.n === undefined ? `${typeToString(resolved.of)}[${size / Math.max(1, unit.layout.layoutOf(resolved.of).size)}]` : typeToString(name.type);
    items.push({ what, name: name.name, type, bytes: roundToSlots(size), line });
  }
  return items;
}

function innermostName(node: Node | null): string | undefined {
  let current = node;
  while (current) {
    if (current.type === 'identifier') return current.text;
    current = current.childForFieldName('declarator');
  }
  return undefined;
}

/** sizeof a `T x[] = init`: the string's bytes with its NUL, or the initializer list's length. */
function unsizedArrayBytes(unit: TranslationUnit, element: CType, init: Node | undefined): number {
  const elementSize = unit.layout.layoutOf(element).size;
  if (!init) return 0;
  if (init.type === 'string_literal' || init.type === 'concatenated_string') {
    const literals = init.type === 'string_literal' ? [init] : init.namedChildren.filter((child): child is Node => child?.type === 'string_literal');
    return literals.reduce((sum, literal) => sum + stringLiteralBytes(literal.text), 0) + 1;
  }
  if (init.type === 'initializer_list') return init.namedChildren.filter((child) => child !== null && child.type !== 'comment').length * elementSize;
  return 0;
}

/** Bytes of a C string literal's contents (without the NUL). */
export function stringLiteralBytes(literal: string): number {
  const open = literal.indexOf('"');
  const body = literal.slice(open + 1, literal.lastIndexOf('"'));
  let bytes = 0;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c !== '\\') {
      bytes += Buffer.byteLength(c);
      continue;
    }
    const next = body[i + 1] ?? '';
    if (next === 'x') {
      i++;
      while (/[0-9a-fA-F]/.test(body[i + 1] ?? '')) i++;
    } else if (/[0-7]/.test(next)) {
      let digits = 0;
      while (digits < 3 && /[0-7]/.test(body[i + 1] ?? '')) {
        i++;
        digits++;
      }
    } else i++;
    bytes++;
  }
  return bytes;
}
