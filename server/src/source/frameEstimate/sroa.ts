/**
 * SROA, as far as the source shows it: whether clang can split a local struct, array or scalar (or
 * what a pointer parameter points to) into registers, so that it takes no stack. The walk records
 * the conditions per slot and parameter; the inliner decides them once it knows what is inlined.
 */
import type { DeclarationScope } from '../declarations';
import { tokenize } from '../lexer';
import type { Node } from '../parser';
import { type FileContext, evaluate } from './constants';
import { isUnevaluated } from './syntax';

/**
 * Whether SROA can split `name` (a local struct or array, or a pointer parameter) into registers:
 * every use is a member or element at a constant offset (`x.f`, `x[2].f`, `p->f`, `*p`) that is
 * not itself addressed or passed to a call, or hands the address on as a call's argument (`f(&x)`,
 * `f(p)`). Returns those calls (callee, argument index), or undefined when some use escapes.
 */
export function splitConditions(
  /** The identifiers of the body spelled `name`, in document order. */
  uses: readonly Node[],
  name: string,
  mode: 'object' | 'array' | 'pointer' | 'scalar',
  context: FileContext,
  shadowed: ReadonlySet<string>,
  scope: DeclarationScope,
): [string, number][] | undefined {
  const conditions: [string, number][] = [];
  const constantIndex = (node: Node) => {
    const index = node.childForFieldName('index');
    return index !== null && evaluate(index, context, shadowed) !== undefined;
  };
  const passedAs = (node: Node): [string, number] | undefined => {
    const list = node.parent;
    const call = list?.parent;
    const callee = call?.childForFieldName('function');
    if (list?.type !== 'argument_list' || call?.type !== 'call_expression' || callee?.type !== 'identifier') return undefined;
    const args = list.namedChildren.filter((child): child is Node => child !== null && child.type !== 'comment');
    return [callee.text, args.findIndex((arg) => arg.id === node.id)];
  };
  for (const use of uses) {
    if (use.text !== name || isUnevaluated(use)) continue;
    const parent = use.parent;
    if (!parent) return undefined;
    if (parent.childForFieldName('declarator')?.id === use.id) continue;
    const operator = parent.childForFieldName('operator')?.type;
    const isArgument = parent.childForFieldName('argument')?.id === use.id;
    let top: Node | undefined;
    if (isArgument && parent.type === 'field_expression' && operator === (mode === 'pointer' ? '->' : '.')) top = parent;
    else if (isArgument && parent.type === 'subscript_expression' && mode !== 'object' && constantIndex(parent)) top = parent;
    else if (isArgument && parent.type === 'pointer_expression' && operator === '*' && mode === 'pointer') top = parent;
    if (top) {
      for (let up = top.parent; up && up.childForFieldName('argument')?.id === top.id; up = up.parent) {
        if (up.type === 'field_expression' && up.childForFieldName('operator')?.type === '.') top = up;
        else if (up.type === 'subscript_expression' && constantIndex(up)) top = up;
        else break;
      }
      const around = top.parent;
      if (!around || (around.type === 'pointer_expression' && around.childForFieldName('operator')?.type === '&')) return undefined;
      // A member passed on by value is a load, unless it is an array (its address) or a struct.
      if (around.type === 'argument_list' && !isScalarValue(top, context, scope)) return undefined;
      continue;
    }
    // The address handed on: `f(&x)`, an array or a pointer as an argument.
    let operand = use;
    while (operand.parent?.type === 'parenthesized_expression') operand = operand.parent;
    const around = operand.parent;
    const addressed = around?.type === 'pointer_expression' && around.childForFieldName('operator')?.type === '&' ? around : undefined;
    if (mode === 'scalar' && !addressed) continue;
    const address = addressed && mode !== 'pointer' ? addressed : mode === 'array' || mode === 'pointer' ? use : undefined;
    const passed = address && passedAs(address);
    if (!passed) return undefined;
    conditions.push(passed);
  }
  return conditions;
}

/** Whether the expression's type is known to be a scalar, a pointer or an enum. */
function isScalarValue(node: Node, context: FileContext, scope: DeclarationScope): boolean {
  const tokens = tokenize(node.text);
  const type = scope.expressionType(tokens, 0, tokens.length);
  const kind = type && context.unit.layout.resolve(type).k;
  return kind === 'scalar' || kind === 'pointer' || kind === 'enum';
}
