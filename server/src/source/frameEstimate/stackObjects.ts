/**
 * The stack objects one declaration, compound literal or parameter puts on the frame, sized with the
 * file's types: which declared names live on the stack (aggregates, volatiles, locals whose address
 * is taken), their bytes in 8-byte slots and their alignment.
 */
import { roundToSlots } from '../../common/numbers';
import type { DeclarationScope } from '../declarations';
import { tokenize } from '../lexer';
import type { Node } from '../parser';
import { stringLiteralBytes } from '../constExpr';
import type { TranslationUnit } from '../translationUnit';
import { decodeTypeofPlaceholders, typeofOperandName } from '../treeSitterTokens';
import { type CType, typeToString } from '../types';
import type { FrameItem, FrameItemKind } from './model';
import { innermostName } from './syntax';

/** A stack object before it gets its lifetime. */
export interface StackObject {
  item: FrameItem;
  size: number;
  align: number;
}

/** What the walk of one function lends the sizing of its objects. */
export interface LocalContext {
  unit: TranslationUnit;
  /** The row of the definition's first line: items' lines are relative to it (the walk is cached apart from its place). */
  baseRow: number;
  /** The names in scope's types for `typeof(x)`, and the list the declarations' problems go to. */
  scope: DeclarationScope;
  /** Names whose address the body takes (or that an asm operand may put in memory). */
  addressTaken: ReadonlySet<string>;
  /** Locals declared volatile so far; a declaration adds its own. */
  volatileLocals: Set<string>;
  /** Told every declared name's type, on the stack or not. */
  noteType: (name: string, type: CType) => void;
}

export function localItems(context: LocalContext, declaration: Node): StackObject[] {
  const specifiers = declaration.namedChildren.filter((child): child is Node => child !== null);
  if (specifiers.some((child) => child.type === 'storage_class_specifier' && (child.text === 'static' || child.text === 'extern'))) return [];
  // bpf_experimental.h's bpf_cmp_unlikely copies its operand into `typeof(LHS) __lhs`: a volatile
  // LHS makes __lhs volatile, a second stack slot.
  const typeofName = typeofOperandName(declaration.childForFieldName('type')?.text ?? '');
  const isVolatile =
    specifiers.some((child) => child.type === 'type_qualifier' && /volatile/.test(child.text)) ||
    (typeofName !== undefined && context.volatileLocals.has(typeofName));
  const initializers = new Map<string, Node>();
  for (const child of declaration.childrenForFieldName('declarator')) {
    const name = innermostName(child);
    if (name && isVolatile) context.volatileLocals.add(name);
    if (child?.type !== 'init_declarator') continue;
    const value = child.childForFieldName('value');
    if (name && value) initializers.set(name, value);
  }

  const line = declaration.startPosition.row + 1 - context.baseRow;
  return stackObjects(context, declaration.text, line, initializers, (name, aggregate) => aggregate || isVolatile || context.addressTaken.has(name));
}

/**
 * A compound literal is an unnamed object of its block: `&(int){0}` (a map key written in place) or
 * an array literal, which decays to its address, lives on the stack. A struct literal that only
 * initialises or is assigned to a variable is folded into that variable by clang.
 */
export function compoundLiteralItems(context: LocalContext, literal: Node): StackObject[] {
  const { unit } = context;
  const type = literal.childForFieldName('type');
  if (!type) return [];
  const parent = literal.parent;
  const addressTaken = parent?.type === 'pointer_expression' && parent.childForFieldName('operator')?.type === '&';
  const tokens = tokenize(type.text);
  const parsed = unit.declarations.parseTypeName(tokens, 0, tokens.length, context.scope);
  if (!parsed || parsed.next !== tokens.length) return [];
  if (!addressTaken && unit.layout.resolve(parsed.type).k !== 'array') return [];
  const item: FrameItem = {
    what: 'local',
    name: '(compound literal)',
    type: typeToString(parsed.type),
    bytes: roundToSlots(parsed.layout.size),
    line: literal.startPosition.row + 1 - context.baseRow,
  };
  return [{ item, size: parsed.layout.size, align: Math.max(1, parsed.layout.align) }];
}

/** A parameter copied to the stack (its address is taken): a local of its type, to the items list. */
export function parameterItems(context: LocalContext, parameter: Node): StackObject[] {
  return stackObjects(context, `${parameter.text};`, parameter.startPosition.row + 1 - context.baseRow, new Map(), () => true);
}

/** The stack objects a declaration's text declares, those `onStack` keeps, sized with the file's types. */
function stackObjects(
  context: LocalContext,
  text: string,
  line: number,
  initializers: Map<string, Node>,
  onStack: (name: string, aggregate: boolean) => boolean,
): StackObject[] {
  const { unit } = context;
  // The tree spells a typeof(expression) as a placeholder; the declaration parser sizes the typeof.
  const tokens = tokenize(decodeTypeofPlaceholders(text));
  const declared = unit.declarations.parseDeclaration(tokens, 0, tokens.length, context.scope);

  const items: StackObject[] = [];
  for (const name of declared) {
    if (name.isTypedef) continue;
    context.noteType(name.name, name.type);
    const resolved = unit.layout.resolve(name.type);
    if (resolved.k === 'function') continue;
    const aggregate = resolved.k === 'struct' || resolved.k === 'union' || resolved.k === 'array';
    if (!onStack(name.name, aggregate)) continue;
    const layout = unit.layout.layoutOf(name.type);
    let size = layout.size;
    if (resolved.k === 'array' && resolved.n === undefined) {
      size = unsizedArrayBytes(unit, resolved.of, initializers.get(name.name));
    } else if (resolved.k === 'array' && resolved.n === 0 && /\[\s*0\s*\]/.test(text)) {
      // A zero-length array (BPF_SEQ_PRINTF's `___param[0]` with no arguments) passed by address
      // is still an object: LLVM gives it a byte, which takes a slot.
      size = 1;
    }
    const what: FrameItemKind = name.name === '____fmt' ? 'printk-format' : name.name === '___param' ? 'printk-args' : 'local';
    const type =
      resolved.k === 'array' && resolved.n === undefined
        ? `${typeToString(resolved.of)}[${size / Math.max(1, unit.layout.layoutOf(resolved.of).size)}]`
        : typeToString(name.type);
    items.push({ item: { what, name: name.name, type, bytes: roundToSlots(size), line }, size, align: Math.max(1, layout.align) });
  }
  return items;
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
