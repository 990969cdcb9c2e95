/**
 * The type of a C expression, as far as `typeof(expression)` in a local's declaration needs it.
 * libbpf's BPF_CORE_READ(src, a, b) declares its result as `typeof((src)->a->b) __r` and passes
 * `&__r` to bpf_probe_read_kernel, so every CO-RE read puts `__r` on the stack; without the
 * expression's type that slot would count 0 bytes.
 *
 * What is understood: names (locals and parameters in scope), parentheses, casts to a type name,
 * `->` and `.` member access (anonymous members searched through), `*`, `&`, subscripts and the
 * address-of/dereference of those. Anything else is unknown, and the caller keeps its unknown type.
 */
import type { LayoutEngine } from './layout';
import type { Token } from './lexer';
import type { CType } from './types';

export interface ExpressionScope {
  /** The declared type of a name in scope (local or parameter). */
  typeOf(name: string): CType | undefined;
  /** The layout engine's typedef resolution and member lookup (anonymous members included). */
  layout: Pick<LayoutEngine, 'resolve' | 'findField'>;
  /** Parses a type name at tokens[start, end): a cast's type. */
  typeName(tokens: readonly Token[], start: number, end: number): { type: CType; next: number } | undefined;
}

export function expressionType(tokens: readonly Token[], start: number, end: number, scope: ExpressionScope): CType | undefined {
  const reader = new ExpressionReader(tokens, end, scope);
  reader.position = start;
  const type = reader.unary();
  return type !== undefined && reader.position === end ? type : undefined;
}

class ExpressionReader {
  position = 0;

  constructor(
    private readonly tokens: readonly Token[],
    private readonly end: number,
    private readonly scope: ExpressionScope,
  ) {}

  private peek(offset = 0): string | undefined {
    const at = this.position + offset;
    return at < this.end ? this.tokens[at].text : undefined;
  }

  /** The index of the `)` or `]` that closes the bracket at `open`. */
  private closing(open: number): number | undefined {
    let depth = 0;
    for (let at = open; at < this.end; at++) {
      const text = this.tokens[at].text;
      if (text === '(' || text === '[') depth++;
      else if (text === ')' || text === ']') {
        depth--;
        if (depth === 0) return at;
      }
    }
    return undefined;
  }

  unary(): CType | undefined {
    const text = this.peek();
    if (text === '*') {
      this.position++;
      const operand = this.unary();
      return operand === undefined ? undefined : this.pointee(operand);
    }
    if (text === '&') {
      this.position++;
      const operand = this.unary();
      return operand === undefined ? undefined : { k: 'pointer', to: operand };
    }
    if (text === '(') {
      const close = this.closing(this.position);
      if (close === undefined) return undefined;
      const cast = this.scope.typeName(this.tokens, this.position + 1, close);
      if (cast && cast.next === close) {
        this.position = close + 1;
        const operand = this.unary();
        return operand === undefined ? undefined : cast.type;
      }
    }
    return this.postfix();
  }

  private postfix(): CType | undefined {
    let type = this.primary();
    while (type !== undefined && this.position < this.end) {
      const text = this.peek();
      if ((text === '->' || text === '.') && this.position + 1 < this.end) {
        const owner = text === '->' ? this.pointee(type) : type;
        const field = owner && this.scope.layout.findField(owner, this.tokens[this.position + 1].text);
        if (!field) return undefined;
        type = field.type;
        this.position += 2;
      } else if (text === '[') {
        const close = this.closing(this.position);
        if (close === undefined) return undefined;
        type = this.pointee(type);
        this.position = close + 1;
      } else {
        break;
      }
    }
    return type;
  }

  private primary(): CType | undefined {
    const token = this.tokens[this.position];
    if (!token) return undefined;
    if (token.text === '(') {
      const close = this.closing(this.position);
      if (close === undefined) return undefined;
      const inner = expressionType(this.tokens, this.position + 1, close, this.scope);
      this.position = close + 1;
      return inner;
    }
    const type = /^[A-Za-z_]\w*$/.test(token.text) ? this.scope.typeOf(token.text) : undefined;
    if (type !== undefined) this.position++;
    return type;
  }

  /** What a pointer or array points at, through typedefs. */
  private pointee(type: CType | undefined): CType | undefined {
    const resolved = type && this.scope.layout.resolve(type);
    if (resolved?.k === 'pointer') return resolved.to;
    if (resolved?.k === 'array') return resolved.of;
    return undefined;
  }
}
