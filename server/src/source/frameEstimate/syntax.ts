/**
 * Questions about tree-sitter's C syntax that the walk, SROA and the sizing of stack objects all ask:
 * the name a declarator declares, a definition's parameters, whether an operand is evaluated.
 */
import type { Node } from '../parser';

/** The identifier a function declarator names, through any pointers of the return type (`T **f(...)`, `int (*f(void))(int)`). */
export function functionName(declarator: Node | null): Node | undefined {
  let node = declarator;
  while (node) {
    if (node.type === 'function_declarator') {
      const inner = node.childForFieldName('declarator');
      if (inner?.type === 'identifier') return inner;
      node = inner;
      continue;
    }
    if (node.type === 'identifier') return undefined;
    // `int (*f(void))(int)`: a function returning a function pointer; the parentheses have no field.
    node = node.type === 'parenthesized_declarator' ? node.namedChild(0) : node.childForFieldName('declarator');
  }
  return undefined;
}

/** The parameter declarations of a function definition's declarator. */
export function functionParameters(declarator: Node | null): Node[] {
  let node = declarator;
  while (node && node.type !== 'function_declarator') node = node.childForFieldName('declarator');
  const list = node?.childForFieldName('parameters');
  return list?.namedChildren.filter((child): child is Node => child?.type === 'parameter_declaration') ?? [];
}

export function innermostName(node: Node | null): string | undefined {
  let current = node;
  while (current) {
    if (current.type === 'identifier') return current.text;
    current = current.childForFieldName('declarator');
  }
  return undefined;
}

/** tree-sitter reads `_Static_assert(e, "...")` in a body as a call. */
export const STATIC_ASSERTS = new Set(['_Static_assert', 'static_assert']);

/**
 * Whether `node` sits in an operand clang never evaluates: sizeof, _Alignof, _Static_assert.
 * bpf_experimental.h's `_Static_assert(sizeof(&(LHS)), "... lvalue")` takes no address at run time.
 */
export function isUnevaluated(node: Node): boolean {
  for (let current = node.parent; current; current = current.parent) {
    if (current.type === 'sizeof_expression' || current.type === 'alignof_expression') return true;
    if (current.type === 'call_expression') {
      const callee = current.childForFieldName('function');
      if (callee?.type === 'identifier' && STATIC_ASSERTS.has(callee.text)) return true;
    }
    if (current.type === 'function_definition') return false;
  }
  return false;
}

/** `x`, `x.f`, `x[3].f` -> "x". */
export function rootIdentifier(node: Node | null): string | undefined {
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
