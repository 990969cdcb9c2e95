/**
 * Integer constant expressions, over preprocessing tokens: the controlling expressions of #if and
 * #elif, array bounds, bit-field widths, enumerator values and aligned(N). Arithmetic is done in 64
 * bits as intmax_t/uintmax_t (C11 6.10.1p4 for #if; array bounds in real headers never need more),
 * keeping track of unsignedness so that comparisons such as `-1 < 0u` come out as C says.
 *
 * The evaluator knows no types itself: sizeof, _Alignof, casts and offsetof ask the context, which
 * the declaration parser backs with its type environment and the layout engine.
 */
import { TokenKind } from './lexer';
import type { Token } from './lexer';
import type { CType } from './types';
import type { TypeLayout } from './layout';

export interface ParsedTypeName {
  type: CType;
  layout: TypeLayout;
  /** Unsigned integer type (for the value conversion a cast performs). */
  unsigned: boolean;
  /** Index just past the type name. */
  next: number;
}

export interface ConstantContext {
  /** Value of an identifier left after macro expansion: an enumerator; in #if, undefined names are 0. */
  identifier(name: string): bigint | undefined;
  /** Parses a type name starting at tokens[index] if one starts there (sizeof, casts, offsetof). */
  typeName?(tokens: readonly Token[], index: number, end: number): ParsedTypeName | undefined;
  /** Offset of a member path inside a type, for offsetof and `&((T *)0)->member`. */
  offsetOf?(type: CType, path: (string | number)[]): number | undefined;
  /** Size of an expression's type (`sizeof x`), when the context can type expressions. */
  sizeOfExpression?(tokens: readonly Token[], start: number, end: number): number | undefined;
}

export interface ConstantValue {
  value: bigint;
  unsigned: boolean;
}

export type ConstantResult = ConstantValue | { error: string };

class EvaluationError extends Error {}

function wrap(value: bigint, unsigned: boolean): ConstantValue {
  return { value: unsigned ? BigInt.asUintN(64, value) : BigInt.asIntN(64, value), unsigned };
}

const ZERO: ConstantValue = { value: 0n, unsigned: false };

/** Binary operators by precedence level, loosest first. */
const BINARY_LEVELS: readonly (readonly string[])[] = [
  ['||'],
  ['&&'],
  ['|'],
  ['^'],
  ['&'],
  ['==', '!='],
  ['<', '>', '<=', '>='],
  ['<<', '>>'],
  ['+', '-'],
  ['*', '/', '%'],
];
const PRECEDENCE = new Map<string, number>();
BINARY_LEVELS.forEach((operators, level) => operators.forEach((operator) => PRECEDENCE.set(operator, level)));

/** Evaluates tokens[start, end) as an integer constant expression. Never throws. */
export function evaluateConstant(tokens: readonly Token[], start: number, end: number, context: ConstantContext): ConstantResult {
  const evaluator = new Evaluator(tokens, start, end, context);
  try {
    const result = evaluator.comma();
    if (evaluator.position < end) {
      return { error: `unexpected '${tokens[evaluator.position].text}' in constant expression` };
    }
    return result;
  } catch (error) {
    if (error instanceof EvaluationError) return { error: error.message };
    return { error: String(error) };
  }
}

class Evaluator {
  position: number;

  constructor(
    private readonly tokens: readonly Token[],
    start: number,
    private readonly end: number,
    private readonly context: ConstantContext,
  ) {
    this.position = start;
  }

  private peek(offset = 0): Token | undefined {
    const index = this.position + offset;
    return index < this.end ? this.tokens[index] : undefined;
  }

  private isPunctuator(text: string, offset = 0): boolean {
    const token = this.peek(offset);
    return token !== undefined && token.kind === TokenKind.Punctuator && token.text === text;
  }

  private expect(text: string): void {
    if (!this.isPunctuator(text)) {
      const found = this.peek();
      throw new EvaluationError(`expected '${text}' in constant expression, found ${found ? `'${found.text}'` : 'end'}`);
    }
    this.position++;
  }

  comma(): ConstantValue {
    let value = this.conditional();
    while (this.isPunctuator(',')) {
      this.position++;
      value = this.conditional();
    }
    return value;
  }

  conditional(): ConstantValue {
    const condition = this.binary(0);
    if (!this.isPunctuator('?')) return condition;
    this.position++;
    const whenTrue = this.comma();
    this.expect(':');
    const whenFalse = this.conditional();
    const unsigned = whenTrue.unsigned || whenFalse.unsigned;
    return wrap(condition.value !== 0n ? whenTrue.value : whenFalse.value, unsigned);
  }

  private binary(level: number): ConstantValue {
    if (level >= BINARY_LEVELS.length) return this.unary();
    let left = this.binary(level + 1);
    for (;;) {
      const token = this.peek();
      if (!token || token.kind !== TokenKind.Punctuator || PRECEDENCE.get(token.text) !== level) return left;
      this.position++;
      const right = this.binary(level + 1);
      left = applyBinary(token.text, left, right);
    }
  }

  private unary(): ConstantValue {
    const token = this.peek();
    if (!token) throw new EvaluationError('constant expression ends too early');
    if (token.kind === TokenKind.Punctuator) {
      switch (token.text) {
        case '-':
        case '+':
        case '~':
        case '!':
          this.position++;
          return applyUnary(token.text, this.unary());
        case '&': {
          this.position++;
          return { value: BigInt(this.addressOfMember()), unsigned: true };
        }
        case '(': {
          const typeName = this.context.typeName?.(this.tokens, this.position + 1, this.end);
          if (typeName && this.tokens[typeName.next]?.text === ')') {
            this.position = typeName.next + 1;
            // A compound literal or a brace list is not an integer constant.
            const operand = this.unary();
            return convert(operand, typeName);
          }
          this.position++;
          const inner = this.comma();
          this.expect(')');
          return inner;
        }
      }
    }
    if (token.kind === TokenKind.Identifier) {
      switch (token.text) {
        case 'sizeof':
        case '_Alignof':
        case '__alignof__':
        case '__alignof':
        case 'alignof':
          return this.sizeOrAlignOf(token.text === 'sizeof');
        case '__builtin_offsetof':
        case 'offsetof':
          return this.builtinOffsetOf();
        case '__builtin_constant_p':
          this.position++;
          this.skipParenthesised();
          return { value: 1n, unsigned: false };
        case '__extension__':
          this.position++;
          return this.unary();
      }
    }
    return this.primary();
  }

  private primary(): ConstantValue {
    const token = this.peek();
    if (!token) throw new EvaluationError('constant expression ends too early');
    this.position++;
    switch (token.kind) {
      case TokenKind.Number:
        return parseIntegerLiteral(token.text);
      case TokenKind.Char:
        return { value: BigInt(charLiteralValue(token.text)), unsigned: false };
      case TokenKind.Identifier: {
        const value = this.context.identifier(token.text);
        if (value === undefined) throw new EvaluationError(`'${token.text}' is not a constant`);
        return { value, unsigned: false };
      }
      default:
        throw new EvaluationError(`unexpected '${token.text}' in constant expression`);
    }
  }

  private sizeOrAlignOf(isSize: boolean): ConstantValue {
    this.position++;
    if (this.isPunctuator('(')) {
      const typeName = this.context.typeName?.(this.tokens, this.position + 1, this.end);
      if (typeName && this.tokens[typeName.next]?.text === ')') {
        this.position = typeName.next + 1;
        if (!typeName.layout.complete && typeName.type.k !== 'void') {
          throw new EvaluationError(`sizeof of incomplete type`);
        }
        return { value: BigInt(isSize ? typeName.layout.size : typeName.layout.align), unsigned: true };
      }
    }
    // sizeof applied to an expression: string literals are the case macros care about.
    const start = this.position;
    const stringSize = stringLiteralsSize(this.tokens, this.isPunctuator('(') ? start + 1 : start, this.end);
    if (isSize && stringSize) {
      const afterStrings = stringSize.next;
      if (this.isPunctuator('(')) {
        if (this.tokens[afterStrings]?.text === ')') {
          this.position = afterStrings + 1;
          return { value: BigInt(stringSize.size), unsigned: true };
        }
      } else {
        this.position = afterStrings;
        return { value: BigInt(stringSize.size), unsigned: true };
      }
    }
    if (this.isPunctuator('(')) {
      const close = this.matchingParenthesis(this.position);
      const size = isSize ? this.context.sizeOfExpression?.(this.tokens, this.position + 1, close) : undefined;
      if (size !== undefined) {
        this.position = close + 1;
        return { value: BigInt(size), unsigned: true };
      }
    }
    throw new EvaluationError(`cannot work out ${isSize ? 'sizeof' : '_Alignof'} here`);
  }

  private builtinOffsetOf(): ConstantValue {
    this.position++;
    this.expect('(');
    const typeName = this.context.typeName?.(this.tokens, this.position, this.end);
    if (!typeName) throw new EvaluationError('offsetof needs a type');
    this.position = typeName.next;
    this.expect(',');
    const path = this.memberPath(true);
    this.expect(')');
    const offset = this.context.offsetOf?.(typeName.type, path);
    if (offset === undefined) throw new EvaluationError(`no member ${path.join('.')} for offsetof`);
    return { value: BigInt(offset), unsigned: true };
  }

  /** `a.b[2].c` after offsetof's comma, or `->a.b` after `((T *)0)`. */
  private memberPath(startsWithName: boolean): (string | number)[] {
    const path: (string | number)[] = [];
    let expectName = startsWithName;
    for (;;) {
      if (expectName) {
        const name = this.peek();
        if (!name || name.kind !== TokenKind.Identifier) throw new EvaluationError('expected a member name');
        path.push(name.text);
        this.position++;
        expectName = false;
        continue;
      }
      if (this.isPunctuator('.') || this.isPunctuator('->')) {
        this.position++;
        expectName = true;
        continue;
      }
      if (this.isPunctuator('[')) {
        this.position++;
        const index = this.comma();
        this.expect(']');
        path.push(Number(index.value));
        continue;
      }
      return path;
    }
  }

  /** The old offsetof idiom, `&((T *)0)->member` (libbpf's bpf_helpers.h defines offsetof so). */
  private addressOfMember(): number {
    let parentheses = 0;
    while (this.isPunctuator('(') && this.isPunctuator('(', 1)) {
      this.position++;
      parentheses++;
    }
    this.expect('(');
    const typeName = this.context.typeName?.(this.tokens, this.position, this.end);
    if (!typeName || typeName.type.k !== 'pointer') throw new EvaluationError('cannot take an address in a constant expression');
    this.position = typeName.next;
    this.expect(')');
    const base = this.unary();
    if (base.value !== 0n) throw new EvaluationError('cannot take an address in a constant expression');
    for (; parentheses > 0; parentheses--) this.expect(')');
    if (!this.isPunctuator('->')) throw new EvaluationError("expected '->' in offsetof idiom");
    this.position++;
    const path = this.memberPath(true);
    const offset = this.context.offsetOf?.(typeName.type.to, path);
    if (offset === undefined) throw new EvaluationError(`no member ${path.join('.')} for offsetof`);
    return offset;
  }

  private matchingParenthesis(open: number): number {
    let depth = 0;
    for (let i = open; i < this.end; i++) {
      const text = this.tokens[i].text;
      if (this.tokens[i].kind !== TokenKind.Punctuator) continue;
      if (text === '(') depth++;
      else if (text === ')' && --depth === 0) return i;
    }
    throw new EvaluationError("missing ')'");
  }

  private skipParenthesised(): void {
    this.position = this.matchingParenthesis(this.position) + 1;
  }
}

function convert(operand: ConstantValue, typeName: ParsedTypeName): ConstantValue {
  const bits = typeName.layout.size * 8;
  const resolved = typeName.type;
  if (resolved.k === 'pointer') return wrap(operand.value, true);
  if (bits === 0 || bits > 64) return operand;
  if (bits === 8 && typeName.unsigned === false && typeName.layout.size === 1 && isBool(typeName)) {
    return { value: operand.value !== 0n ? 1n : 0n, unsigned: false };
  }
  const value = typeName.unsigned ? BigInt.asUintN(bits, operand.value) : BigInt.asIntN(bits, operand.value);
  // Values narrower than 64 bits promote to int/long: signedness only matters at 64 bits.
  return { value, unsigned: typeName.unsigned && bits === 64 };
}

function isBool(typeName: ParsedTypeName): boolean {
  return typeName.type.k === 'scalar' && typeName.type.name === '_Bool';
}

/** `-x`, `+x`, `~x`, `!x` with C's 64-bit wrapping; another operator gives 0. */
function applyUnary(operator: string, operand: ConstantValue): ConstantValue {
  switch (operator) {
    case '-':
      return wrap(-operand.value, operand.unsigned);
    case '+':
      return operand;
    case '~':
      return wrap(~operand.value, operand.unsigned);
    case '!':
      return { value: operand.value === 0n ? 1n : 0n, unsigned: false };
  }
  return ZERO;
}

/**
 * The arithmetic of both constant evaluators, this one over tokens and the frame estimate's over
 * tree-sitter nodes (frameEstimate/constants.ts): a unary or binary operator applied with C's usual
 * conversions and 64-bit wrapping; undefined for an operator it does not know or a division by zero.
 */
export function unaryConstant(operator: string, operand: ConstantValue): ConstantValue | undefined {
  return operator === '-' || operator === '+' || operator === '~' || operator === '!' ? applyUnary(operator, operand) : undefined;
}

export function binaryConstant(operator: string, left: ConstantValue, right: ConstantValue): ConstantValue | undefined {
  if (!PRECEDENCE.has(operator)) return undefined;
  try {
    return applyBinary(operator, left, right);
  } catch (error) {
    if (error instanceof EvaluationError) return undefined;
    throw error;
  }
}

function applyBinary(operator: string, left: ConstantValue, right: ConstantValue): ConstantValue {
  const unsigned = left.unsigned || right.unsigned;
  const a = unsigned ? BigInt.asUintN(64, left.value) : left.value;
  const b = unsigned ? BigInt.asUintN(64, right.value) : right.value;
  const truth = (condition: boolean): ConstantValue => ({ value: condition ? 1n : 0n, unsigned: false });
  switch (operator) {
    case '||':
      return truth(a !== 0n || b !== 0n);
    case '&&':
      return truth(a !== 0n && b !== 0n);
    case '|':
      return wrap(a | b, unsigned);
    case '^':
      return wrap(a ^ b, unsigned);
    case '&':
      return wrap(a & b, unsigned);
    case '==':
      return truth(a === b);
    case '!=':
      return truth(a !== b);
    case '<':
      return truth(a < b);
    case '>':
      return truth(a > b);
    case '<=':
      return truth(a <= b);
    case '>=':
      return truth(a >= b);
    // Shifts take the type of the left operand.
    case '<<':
      return wrap(a << BigInt.asUintN(6, right.value), left.unsigned);
    case '>>':
      return wrap((left.unsigned ? BigInt.asUintN(64, left.value) : left.value) >> BigInt.asUintN(6, right.value), left.unsigned);
    case '+':
      return wrap(a + b, unsigned);
    case '-':
      return wrap(a - b, unsigned);
    case '*':
      return wrap(a * b, unsigned);
    case '/':
      if (b === 0n) throw new EvaluationError('division by zero in constant expression');
      return wrap(a / b, unsigned);
    case '%':
      if (b === 0n) throw new EvaluationError('division by zero in constant expression');
      return wrap(a % b, unsigned);
  }
  return ZERO;
}

/** Value of an integer literal with C's suffixes; hex and octal values past INT64_MAX are unsigned. */
export function parseIntegerLiteral(text: string): ConstantValue {
  const match = /^(0[xX][0-9a-fA-F']+|0[bB][01']+|[0-9']+)([uUlL]*)$/.exec(text);
  if (!match) throw new EvaluationError(`'${text}' is not an integer constant`);
  let digits = match[1].replace(/'/g, '');
  let value: bigint;
  if (/^0[xXbB]/.test(digits)) {
    value = BigInt(digits);
  } else if (digits.length > 1 && digits.startsWith('0')) {
    digits = digits.slice(1);
    if (/[89]/.test(digits)) throw new EvaluationError(`invalid octal constant '${text}'`);
    value = BigInt(`0o${digits}`);
  } else {
    value = BigInt(digits);
  }
  const suffix = match[2].toLowerCase();
  const unsigned = suffix.includes('u') || value > 0x7fffffffffffffffn;
  return wrap(value, unsigned);
}

const SIMPLE_ESCAPES: Record<string, number> = {
  n: 10,
  t: 9,
  r: 13,
  '0': 0,
  a: 7,
  b: 8,
  f: 12,
  v: 11,
  e: 27,
  '\\': 92,
  "'": 39,
  '"': 34,
  '?': 63,
};

/** Decodes the body of a string or character literal into its code units (bytes for plain strings). */
export function literalBytes(body: string): number[] {
  const bytes: number[] = [];
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c !== '\\') {
      const code = body.charCodeAt(i);
      if (code < 0x80) bytes.push(code);
      else for (const byte of Buffer.from(String.fromCodePoint(body.codePointAt(i)!), 'utf8')) bytes.push(byte);
      if (code >= 0xd800 && code <= 0xdbff) i++;
      continue;
    }
    const next = body[++i];
    if (next === 'x') {
      let j = i + 1;
      while (j < body.length && /[0-9a-fA-F]/.test(body[j])) j++;
      bytes.push(parseInt(body.slice(i + 1, j), 16) & 0xff);
      i = j - 1;
    } else if (next === 'u' || next === 'U') {
      // A universal character name: the code point, stored as UTF-8 in a plain string.
      const digits = next === 'u' ? 4 : 8;
      const hex = body.slice(i + 1, i + 1 + digits);
      const codePoint = /^[0-9a-fA-F]+$/.test(hex) ? Number.parseInt(hex, 16) : Number.NaN;
      if (codePoint <= 0x10ffff) for (const byte of Buffer.from(String.fromCodePoint(codePoint), 'utf8')) bytes.push(byte);
      else bytes.push(next.charCodeAt(0));
      if (codePoint <= 0x10ffff) i += hex.length;
    } else if (next !== undefined && next >= '0' && next <= '7') {
      let j = i;
      while (j < body.length && j < i + 3 && body[j] >= '0' && body[j] <= '7') j++;
      bytes.push(parseInt(body.slice(i, j), 8) & 0xff);
      i = j - 1;
    } else if (next !== undefined) {
      bytes.push(SIMPLE_ESCAPES[next] ?? next.charCodeAt(0));
    }
  }
  return bytes;
}

/**
 * Bytes a plain string literal's contents take (`"a\\n"` → 2), without the terminating NUL: what
 * a `char fmt[] = "..."` puts on the stack, less one.
 */
export function stringLiteralBytes(literal: string): number {
  const open = literal.indexOf('"');
  const close = literal.lastIndexOf('"');
  return literalBytes(literal.slice(open + 1, close > open ? close : undefined)).length;
}

function charLiteralValue(text: string): number {
  const quote = text.indexOf("'");
  const bytes = literalBytes(text.slice(quote + 1, text.endsWith("'") ? -1 : undefined));
  // A plain char is signed on BPF, as on x86-64.
  const first = bytes[0] ?? 0;
  return quote === 0 && first > 127 ? first - 256 : first;
}

/**
 * Size in bytes of the array that adjacent string literals starting at tokens[start] make
 * ("abc" "de" → 6, counting the terminating NUL), and where they end; undefined if no string
 * literal starts there. Wide literals count their element size.
 */
export function stringLiteralsSize(tokens: readonly Token[], start: number, end: number): { size: number; next: number } | undefined {
  let index = start;
  let units = 0;
  let unitSize = 1;
  while (index < end && tokens[index].kind === TokenKind.String) {
    const text = tokens[index].text;
    const quote = text.indexOf('"');
    const prefix = text.slice(0, quote);
    if (prefix === 'L' || prefix === 'U') unitSize = 4;
    else if (prefix === 'u') unitSize = 2;
    const body = text.slice(quote + 1, text.endsWith('"') && text.length > quote + 1 ? -1 : undefined);
    units += unitSize === 1 ? literalBytes(body).length : [...body.replace(/\\./g, 'x')].length;
    index++;
  }
  if (index === start) return undefined;
  return { size: (units + 1) * unitSize, next: index };
}
