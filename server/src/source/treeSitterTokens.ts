/**
 * GNU C that tree-sitter-c cannot parse, rewritten into C it can, in the preprocessed tokens it is
 * given. Two constructs derail its parse and lose the functions around them.
 *
 * An attribute after a declarator, before its initializer (`int vals[] SEC(".data.vals") = {1, 2};`,
 * a prog array's `} jmp SEC(".maps") = { .values = {...} };`): tree-sitter-c takes attributes only
 * among the declaration's specifiers, ends the declaration at the attribute, and reads the braces as
 * a compound statement at file scope, after which it found no function of the file. The attribute
 * is moved before the declarator's name, among the specifiers, where GNU C gives it the same meaning
 * for a variable (the declaration parser reads the tokens as written, not this rewrite).
 *
 * tree-sitter-c takes `typeof(T)` as a type only when T is a type name; `typeof(expr)` (libbpf's
 * BPF_PROG family: `typeof(name(0)) name(unsigned long long *ctx) {...}`; bpf_experimental.h's
 * `(typeof(*n) *)bpf_obj_new_impl(...)`) derails the parse and loses the functions around it. Such
 * a typeof becomes one identifier, which tree-sitter reads as a type name. The identifier spells
 * the expression in hex, so that whoever reads a declaration's text from the tree can put the
 * typeof back (decodeTypeofPlaceholders) and size it: BPF_CORE_READ's `typeof((src)->a) __r` is on
 * the stack of every CO-RE read.
 */
import { QUALIFIERS } from './declarations';
import { TokenKind } from './lexer';
import type { Token } from './lexer';

const TYPEOF_KEYWORDS = new Set(['typeof', '__typeof__', '__typeof', 'typeof_unqual', '__typeof_unqual__']);

/** What stands for a `typeof(expression)`: an identifier no program declares, the expression's text in hex. */
const PLACEHOLDER_PREFIX = '__typeof_expr_';
const PLACEHOLDER = /__typeof_expr_([0-9a-f]*)__/g;

function placeholderFor(expression: readonly Token[]): string {
  const text = expression.map((token) => token.text).join(' ');
  return `${PLACEHOLDER_PREFIX}${Buffer.from(text, 'utf8').toString('hex')}__`;
}

/** `text` (a declaration as the tree has it) with each placeholder turned back into its typeof. */
export function decodeTypeofPlaceholders(text: string): string {
  if (!text.includes(PLACEHOLDER_PREFIX)) return text;
  return text.replace(PLACEHOLDER, (_, hex: string) => `typeof(${Buffer.from(hex, 'hex').toString('utf8')})`);
}

/**
 * The variable a placeholder's `typeof(x)` (or `typeof((x))`) names, when `typeSpecifier` is such a
 * placeholder: the typeof keeps x's qualifiers, which the type model does not carry.
 */
export function typeofOperandName(typeSpecifier: string): string | undefined {
  const match = new RegExp(`^${PLACEHOLDER.source}$`).exec(typeSpecifier);
  if (!match) return undefined;
  const expression = Buffer.from(match[1], 'hex').toString('utf8');
  return /^(?:\(\s*)*([A-Za-z_]\w*)(?:\s*\))*$/.exec(expression)?.[1];
}

/** What tells a type name from an expression: the declaration parser. */
export interface TypeNameParser {
  parseTypeName(tokens: readonly Token[], start: number, end: number): { next: number } | undefined;
}

/**
 * `tokens` with every `typeof(expression)` replaced by its placeholder and every attribute before an
 * initializer moved before its declarator; the same array when there is neither.
 */
export function rewriteForTreeSitter(tokens: readonly Token[], types: TypeNameParser): readonly Token[] {
  return attributesBeforeDeclarators(typeofPlaceholders(tokens, types));
}

function typeofPlaceholders(tokens: readonly Token[], types: TypeNameParser): readonly Token[] {
  const isTypeName = (start: number, end: number) => types.parseTypeName(tokens, start, end)?.next === end;
  let out: Token[] | undefined;
  let copied = 0;
  for (let index = 0; index < tokens.length; index++) {
    const token = tokens[index];
    if (token.kind !== TokenKind.Identifier || !TYPEOF_KEYWORDS.has(token.text) || tokens[index + 1]?.text !== '(') continue;
    const close = matchingParenthesis(tokens, index + 1);
    if (close === undefined || isTypeName(index + 2, close)) continue;
    out ??= [];
    for (let keep = copied; keep < index; keep++) out.push(tokens[keep]);
    out.push({ kind: TokenKind.Identifier, text: placeholderFor(tokens.slice(index + 2, close)), offset: token.offset, flags: token.flags });
    copied = close + 1;
    index = close;
  }
  if (!out) return tokens;
  for (let keep = copied; keep < tokens.length; keep++) out.push(tokens[keep]);
  return out;
}

const ATTRIBUTE_KEYWORDS = new Set(['__attribute__', '__attribute']);

function attributesBeforeDeclarators(tokens: readonly Token[]): readonly Token[] {
  let out: Token[] | undefined;
  let copied = 0;
  for (let index = 0; index < tokens.length; index++) {
    const token = tokens[index];
    if (token.kind !== TokenKind.Identifier || !ATTRIBUTE_KEYWORDS.has(token.text) || tokens[index + 1]?.text !== '(') continue;
    // One attribute or several in a row (`__attribute__((a)) __attribute__((b))`), then `=`.
    let end = index;
    while (ATTRIBUTE_KEYWORDS.has(tokens[end]?.text) && tokens[end + 1]?.text === '(') {
      const close = matchingParenthesis(tokens, end + 1);
      if (close === undefined) break;
      end = close + 1;
    }
    if (end === index || tokens[end]?.text !== '=') continue;
    const name = declaratorStart(tokens, index, copied);
    if (name === undefined) continue;
    out ??= [];
    for (let keep = copied; keep < name; keep++) out.push(tokens[keep]);
    // At the name's offset, so that the tokens stay in the order of their offsets.
    for (let moved = index; moved < end; moved++) out.push({ ...tokens[moved], offset: tokens[name].offset });
    for (let keep = name; keep < index; keep++) out.push(tokens[keep]);
    copied = end;
    index = end - 1;
  }
  if (!out) return tokens;
  for (let keep = copied; keep < tokens.length; keep++) out.push(tokens[keep]);
  return out;
}

/**
 * Where the declarator that ends just before `attribute` starts: its pointer stars and their
 * qualifiers, then its name, then any `[...]`. Undefined for anything else (a function pointer's
 * parentheses, an expression), which is left as it is; `floor` is the first token it may take.
 */
function declaratorStart(tokens: readonly Token[], attribute: number, floor: number): number | undefined {
  let at = attribute - 1;
  while (at >= floor && tokens[at].text === ']') {
    let depth = 0;
    for (; at >= floor; at--) {
      if (tokens[at].kind !== TokenKind.Punctuator) continue;
      if (tokens[at].text === ']') depth++;
      else if (tokens[at].text === '[' && --depth === 0) break;
    }
    at--;
  }
  if (at < floor || tokens[at].kind !== TokenKind.Identifier) return undefined;
  let start = at;
  while (start - 1 >= floor && (tokens[start - 1].text === '*' || QUALIFIERS.has(tokens[start - 1].text))) start--;
  return start;
}

function matchingParenthesis(tokens: readonly Token[], open: number): number | undefined {
  let depth = 0;
  for (let index = open; index < tokens.length; index++) {
    const text = tokens[index].text;
    if (tokens[index].kind !== TokenKind.Punctuator) continue;
    if (text === '(') depth++;
    else if (text === ')' && --depth === 0) return index;
  }
  return undefined;
}
