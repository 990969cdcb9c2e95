/**
 * What the file scope tells a function walk: the SEC() names given on prototypes, the file's constants, and the value of a constant condition (over tree-sitter
 * nodes, with constExpr.ts's arithmetic) with how dead the branch it rules out is.
 */
import { type ConstantValue, binaryConstant, parseIntegerLiteral, unaryConstant } from '../constExpr';
import { TokenKind, tokenize } from '../lexer';
import type { Node } from '../parser';
import type { TranslationUnit } from '../translationUnit';
import type { CType } from '../types';
import { COMPILE_DEAD, LOAD_DEAD } from './model';
import { functionName, innermostName } from './syntax';

/** A known value and whether clang already knows it (compile) or only the verifier (load). */
export interface Known extends ConstantValue {
  deadness: typeof LOAD_DEAD | typeof COMPILE_DEAD;
}

/** What the file scope tells a function walk. */
export interface FileContext {
  unit: TranslationUnit;
  /** The text the functions' tree was parsed from: the main file's, or a header's. */
  text: string;
  /** File-scope constants: `const` globals (compile time) and `const volatile` ones (load time). */
  globals: Map<string, Known>;
  /** SEC() names given on a function's prototype rather than its definition, by function. */
  declaredSections: Map<string, string>;
  /** The types of the main file's global variables, for `sizeof(global)` in a body. */
  globalTypes?: Map<string, CType>;
  /** Extern variables of the file scope (.kconfig, __ksym): libbpf sets their values at load. */
  externVariables?: Set<string>;
  /** What calls of the file's functions are known to return (constantReturns). */
  constantReturns?: Map<string, Known>;
}

/** `section("x")` or `__section__("?" "x")`: both spellings, the name possibly pasted from several literals. */
const SECTION_ATTRIBUTE = /(?:\b|__)section(?:__)?\s*\(\s*((?:"[^"]*"\s*)+)\)/;

/** The section name of a header's section attribute, its adjacent string literals joined. */
export function sectionIn(header: string): string | undefined {
  const literals = SECTION_ATTRIBUTE.exec(header)?.[1];
  return literals === undefined ? undefined : [...literals.matchAll(/"([^"]*)"/g)].map((match) => match[1]).join('');
}
/** bpf_experimental.h's `__exception_cb(name)`: btf_decl_tag("exception_callback:" #name), the strings already pasted or not. */
export const EXCEPTION_CALLBACK_TAG = /\bbtf_decl_tag\s*\(\s*"exception_callback:"?\s*"?(\w+)"/;

/**
 * Sections given on prototypes. libbpf's BPF_PROG family expands `SEC("x") int BPF_PROG(name, ...)`
 * to `SEC("x") int name(unsigned long long *ctx); ... typeof(name(0)) name(unsigned long long *ctx)
 * { return ____name(...); }`: the attribute sits on the prototype, and clang applies it to the
 * definition that follows.
 */
export function prototypeSections(topLevel: Node[]): Map<string, string> {
  const sections = new Map<string, string>();
  for (const declaration of topLevel) {
    if (declaration.type !== 'declaration') continue;
    // As for definitions: an attribute that ends the previous declaration may be attached here.
    const text = declaration.text.replace(/;\s*$/, '');
    const section = sectionIn(afterLastSemicolon(text));
    if (section === undefined) continue;
    for (const declarator of declaration.childrenForFieldName('declarator')) {
      const name = functionName(declarator);
      if (name) sections.set(name.text, section);
    }
  }
  return sections;
}

/** The file scope's extern variables (not functions): `extern unsigned int LINUX_KERNEL_VERSION __kconfig;`. */
export function externVariables(topLevel: Node[]): Set<string> {
  const names = new Set<string>();
  for (const declaration of topLevel) {
    if (declaration.type !== 'declaration') continue;
    if (!declaration.namedChildren.some((child) => child?.type === 'storage_class_specifier' && child.text === 'extern')) continue;
    for (const declarator of declaration.childrenForFieldName('declarator')) {
      if (declarator && functionName(declarator) === undefined) {
        const name = innermostName(declarator);
        if (name) names.add(name);
      }
    }
  }
  return names;
}

/**
 * `const` and `const volatile` globals with a constant initialiser. A `const volatile` one is in
 * .rodata, which libbpf freezes: the verifier sees the value the object holds — unless the loader
 * writes another one into the skeleton's rodata before loading, which the source cannot tell.
 */
export function fileConstants(unit: TranslationUnit, topLevel: Node[]): Map<string, Known> {
  const constants = new Map<string, Known>();
  for (const declaration of topLevel) {
    if (declaration.type !== 'declaration') continue;
    let isConst = false;
    let isVolatile = false;
    let isExtern = false;
    for (const child of declaration.namedChildren) {
      if (child?.type === 'type_qualifier') {
        if (child.text === 'const') isConst = true;
        if (/volatile/.test(child.text)) isVolatile = true;
      }
      if (child?.type === 'storage_class_specifier' && child.text === 'extern') isExtern = true;
    }
    if (!isConst || isExtern) continue;
    for (const declarator of declaration.childrenForFieldName('declarator')) {
      if (declarator?.type !== 'init_declarator') continue;
      const name = declarator.childForFieldName('declarator');
      const value = declarator.childForFieldName('value');
      if (name?.type !== 'identifier' || !value) continue;
      const known = evaluate(value, { unit, text: '', globals: constants, declaredSections: new Map() }, new Set());
      if (known) constants.set(name.text, { ...known, deadness: isVolatile ? LOAD_DEAD : known.deadness });
    }
  }
  return constants;
}

/** `__hidden` or its expansion: libbpf gives such a global function static linkage in BTF (mark_btf_static). */
const HIDDEN_VISIBILITY = /\b__hidden\b|\bvisibility\s*\(\s*"(?:hidden|internal)"/;

/**
 * A function definition's text before its body. tree-sitter attaches an attribute that ends the
 * previous declaration (`} m SEC(".maps");`) to the definition: the header starts after the last ';'.
 */
export function definitionHeader(definition: Node, text: string): string {
  const body = definition.childForFieldName('body');
  const fullHeader = text.slice(definition.startIndex, body ? body.startIndex : definition.endIndex);
  return afterLastSemicolon(fullHeader);
}

/**
 * `text` after its last `;` token (the lexer's, so not one inside a string or character literal):
 * what follows the previous declaration. A selftest's `__msg("5: (af) r0 ^= r6 ; R0_w=...")`
 * before a definition holds one inside a string, and cutting there lost the SEC() before it (and
 * the program with it).
 */
function afterLastSemicolon(text: string): string {
  const tokens = tokenize(text);
  for (let index = tokens.length - 1; index >= 0; index--) {
    const token = tokens[index];
    if (token.kind === TokenKind.Punctuator && token.text === ';') return text.slice(token.offset + 1);
  }
  return text;
}

/**
 * How the verifier and the linker see a function's linkage: `static` in C, hidden (verified as static
 * all the same), `__weak` (another object may replace it).
 */
export function linkageOf(definition: Node, header: string): { isStatic: boolean; hidden: boolean; weak: boolean } {
  return {
    isStatic: definition.namedChildren.some((child) => child?.type === 'storage_class_specifier' && child.text === 'static'),
    hidden: HIDDEN_VISIBILITY.test(header),
    weak: /\bweak\b|__weak__/.test(header),
  };
}

/**
 * What calling a function is known to return: a static or hidden function (which the verifier
 * follows with the caller's registers) whose body is one `return EXPR;` the file scope knows, such as
 * a `const volatile` switch. The verifier sees the value come back (clang too, when it is a
 * compile-time constant), so `if (feature_enabled())` rules a branch out as the switch itself would.
 * A global function of default visibility is verified on its own: its return is any value.
 */
export function constantReturns(definitions: readonly Node[], context: FileContext): Map<string, Known> {
  const returns = new Map<string, Known>();
  for (const definition of definitions) {
    const name = functionName(definition.childForFieldName('declarator'));
    const body = definition.childForFieldName('body');
    if (!name || body?.namedChildCount !== 1) continue;
    const header = definitionHeader(definition, context.text);
    const linkage = linkageOf(definition, header);
    if (!(linkage.isStatic || linkage.hidden) || linkage.weak) continue;
    const statement = body.namedChild(0);
    if (statement?.type !== 'return_statement' || statement.namedChildCount !== 1) continue;
    const known = evaluate(statement.namedChild(0), context, parameterNames(definition));
    if (known) returns.set(name.text, known);
  }
  return returns;
}

/** The names a function's parameters declare: they hide file-scope constants of the same name. */
function parameterNames(definition: Node): Set<string> {
  const names = new Set<string>();
  const pending: (Node | null)[] = [definition.childForFieldName('declarator')];
  while (pending.length > 0) {
    const node = pending.pop();
    if (!node) continue;
    if (node.type === 'parameter_declaration') {
      const name = innermostName(node.childForFieldName('declarator'));
      if (name) names.add(name);
      continue;
    }
    pending.push(...node.namedChildren);
  }
  return names;
}

/**
 * The value of a constant expression over tree-sitter nodes, or undefined; `shadowed` are names
 * declared in the function. The arithmetic is constExpr.ts's; what this adds is the deadness: whether
 * clang folds the condition (compile) or only the verifier knows it (a `const volatile` global).
 */
export function evaluate(node: Node | null, context: FileContext, shadowed: ReadonlySet<string>): Known | undefined {
  if (!node) return undefined;
  switch (node.type) {
    case 'number_literal': {
      try {
        return { ...parseIntegerLiteral(node.text), deadness: COMPILE_DEAD };
      } catch {
        return undefined;
      }
    }
    case 'true':
      return { value: 1n, unsigned: false, deadness: COMPILE_DEAD };
    case 'false':
    case 'null':
      return { value: 0n, unsigned: false, deadness: COMPILE_DEAD };
    case 'identifier': {
      if (shadowed.has(node.text)) return undefined;
      const global = context.globals.get(node.text);
      if (global) return global;
      const constant = context.unit.environment.constant(node.text);
      return constant === undefined ? undefined : { value: constant, unsigned: false, deadness: COMPILE_DEAD };
    }
    case 'call_expression': {
      const callee = node.childForFieldName('function');
      if (callee?.type !== 'identifier' || shadowed.has(callee.text)) return undefined;
      return context.constantReturns?.get(callee.text);
    }
    case 'parenthesized_expression':
      return node.namedChildCount === 1 ? evaluate(node.namedChild(0), context, shadowed) : undefined;
    case 'cast_expression':
      return evaluate(node.childForFieldName('value'), context, shadowed);
    case 'unary_expression': {
      const operand = evaluate(node.childForFieldName('argument'), context, shadowed);
      const value = operand && unaryConstant(node.childForFieldName('operator')?.type ?? '', operand);
      return value && { ...value, deadness: operand.deadness };
    }
    case 'conditional_expression': {
      const condition = evaluate(node.childForFieldName('condition'), context, shadowed);
      if (!condition) return undefined;
      const chosen = evaluate(node.childForFieldName(condition.value !== 0n ? 'consequence' : 'alternative'), context, shadowed);
      return chosen ? { ...chosen, deadness: Math.min(condition.deadness, chosen.deadness) as Known['deadness'] } : undefined;
    }
    case 'binary_expression': {
      const operator = node.childForFieldName('operator')?.type ?? '';
      const left = evaluate(node.childForFieldName('left'), context, shadowed);
      // `0 && x`, `1 || x`: known whatever x is.
      if ((operator === '&&' || operator === '||') && left && (left.value === 0n) === (operator === '&&')) {
        return { value: operator === '&&' ? 0n : 1n, unsigned: false, deadness: left.deadness };
      }
      const right = evaluate(node.childForFieldName('right'), context, shadowed);
      const value = left && right && binaryConstant(operator, left, right);
      return value && { ...value, deadness: Math.min(left.deadness, right.deadness) as Known['deadness'] };
    }
    default:
      return undefined;
  }
}
