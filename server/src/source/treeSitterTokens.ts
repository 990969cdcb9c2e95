/**
 * GNU C that tree-sitter-c cannot parse, rewritten into C it can, in the preprocessed tokens it is
 * given. tree-sitter-c takes `typeof(T)` as a type only when T is a type name; `typeof(expr)` (libbpf's
 * BPF_PROG family: `typeof(name(0)) name(unsigned long long *ctx) {...}`; bpf_experimental.h's
 * `(typeof(*n) *)bpf_obj_new_impl(...)`) derails the parse and loses the functions around it. Such
 * a typeof becomes one identifier, which tree-sitter reads as a type name. The declaration parser
 * could not size `typeof(expr)` either (it is an unknown type both ways), so nothing is lost.
 */
import { TokenKind } from './lexer';
import type { Token } from './lexer';

const TYPEOF_KEYWORDS = new Set(['typeof', '__typeof__', '__typeof', 'typeof_unqual', '__typeof_unqual__']);

/** What stands for a `typeof(expression)`: an identifier no program declares. */
export const TYPEOF_EXPRESSION_PLACEHOLDER = '__typeof_expression__';

/** Whether tokens[start, end) is exactly a type name. */
export type TypeNameTest = (tokens: readonly Token[], start: number, end: number) => boolean;

/** `tokens` with every `typeof(expression)` replaced by TYPEOF_EXPRESSION_PLACEHOLDER; the same array when there is none. */
export function rewriteForTreeSitter(tokens: readonly Token[], isTypeName: TypeNameTest): readonly Token[] {
  let out: Token[] | undefined;
  let copied = 0;
  for (let index = 0; index < tokens.length; index++) {
    const token = tokens[index];
    if (token.kind !== TokenKind.Identifier || !TYPEOF_KEYWORDS.has(token.text) || tokens[index + 1]?.text !== '(') continue;
    const close = matchingParenthesis(tokens, index + 1);
    if (close === undefined || isTypeName(tokens, index + 2, close)) continue;
    out ??= [];
    for (let keep = copied; keep < index; keep++) out.push(tokens[keep]);
    out.push({ kind: TokenKind.Identifier, text: TYPEOF_EXPRESSION_PLACEHOLDER, offset: token.offset, flags: token.flags });
    copied = close + 1;
    index = close;
  }
  if (!out) return tokens;
  for (let keep = copied; keep < tokens.length; keep++) out.push(tokens[keep]);
  return out;
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
