/**
 * Reads C declarations from preprocessed tokens into the type model: struct, union and enum
 * definitions, typedefs, and the types of declarators (pointers, arrays, functions, nesting).
 * Function bodies and initializers are skipped by brace matching; the declarations inside function
 * bodies are for the frame estimator, which calls parseDeclaration() on them with a child scope.
 *
 * Why not tree-sitter for headers: vmlinux.h is 2.8 MB, and tree-sitter takes most of a second
 * and 85 MB just to parse it, and then parses its thousands of unnamed bit-fields (`long: 64;`)
 * with MISSING names. Declarations are a small, regular part of C; this parser reads all of
 * vmlinux.h in a fraction of that time and gets every declarator right.
 */
import { TokenFlags, TokenKind, followsRecordTag, spell, tokenize, unskim } from './lexer';
import type { Token } from './lexer';
import { evaluateConstant, stringLiteralsSize } from './constExpr';
import type { ConstantContext, ParsedTypeName } from './constExpr';
import { DEFAULT_ATTRIBUTE_ALIGNMENT, LayoutEngine } from './layout';
import type { CType, DeferredRecord, EnumDef, FieldDef, RecordDef, ScalarName, TypeEnvironment } from './types';
import type { Problem } from '../common/problem';

class ParseError extends Error {
  constructor(
    message: string,
    readonly offset: number | undefined,
  ) {
    super(message);
  }
}

/**
 * How deeply records and parenthesised declarators may nest: clang's default bracket depth. Each
 * level is a JavaScript call, so without a limit a generated header's 3,000 nested structs ran the
 * stack out; past it the declaration fails with a problem that says so.
 */
export const MAX_DECLARATION_NESTING = 256;

class Cursor {
  constructor(
    readonly tokens: readonly Token[],
    public position: number,
    readonly end: number,
  ) {}

  get token(): Token | undefined {
    return this.position < this.end ? this.tokens[this.position] : undefined;
  }

  get text(): string | undefined {
    return this.position < this.end ? this.tokens[this.position].text : undefined;
  }

  peekText(ahead: number): string | undefined {
    const index = this.position + ahead;
    return index < this.end ? this.tokens[index].text : undefined;
  }

  isPunctuator(text: string): boolean {
    const token = this.token;
    return token !== undefined && token.kind === TokenKind.Punctuator && token.text === text;
  }

  expect(text: string): void {
    if (!this.isPunctuator(text)) this.fail(`expected '${text}'`);
    this.position++;
  }

  fail(message: string): never {
    const token = this.token ?? this.tokens[this.end - 1];
    throw new ParseError(`${message}${this.token ? ` before '${this.token.text}'` : ' at end of input'}`, token?.offset);
  }

  /** Index of the bracket that closes the one at `position` (which must be an opening bracket). */
  matching(position = this.position): number {
    let depth = 0;
    for (let i = position; i < this.end; i++) {
      const token = this.tokens[i];
      if (token.kind !== TokenKind.Punctuator) continue;
      const text = token.text;
      if (text === '(' || text === '[' || text === '{') depth++;
      else if ((text === ')' || text === ']' || text === '}') && --depth === 0) return i;
    }
    return this.fail('unbalanced brackets');
  }

  /** Index of the first of `stops` at bracket depth 0 from here, or `end`. */
  findAtDepthZero(stops: readonly string[]): number {
    let depth = 0;
    for (let i = this.position; i < this.end; i++) {
      const token = this.tokens[i];
      if (token.kind !== TokenKind.Punctuator) continue;
      const text = token.text;
      if (depth === 0 && stops.includes(text)) return i;
      if (text === '(' || text === '[' || text === '{') depth++;
      else if (text === ')' || text === ']' || text === '}') {
        if (depth === 0) return i;
        depth--;
      }
    }
    return this.end;
  }
}

interface Attributes {
  packed?: true;
  align?: number;
  /** `mode(QI|HI|SI|DI|TI)`: the integer width a typedef really has, in bytes. */
  modeBytes?: number;
}

interface Specifiers {
  base: CType;
  isTypedef: boolean;
  /** Whether any type specifier was written (otherwise the declaration is implicit int or not a declaration). */
  hasType: boolean;
  attributes: Attributes;
}

type Suffix = { array: true; n?: number } | { array: false };

interface Declarator {
  name?: string;
  nameOffset?: number;
  wrap(base: CType): CType;
}

/** A declared object or function found while parsing (for callers that want more than types). */
export interface DeclaredName {
  name: string;
  type: CType;
  offset: number;
  isTypedef: boolean;
  isFunctionDefinition: boolean;
  /** Offsets of the `{` and `}` of a function definition's body. */
  body?: [number, number];
}

/** Type qualifiers in every spelling the headers use. */
export const QUALIFIERS: ReadonlySet<string> = new Set([
  'const',
  '__const',
  '__const__',
  'volatile',
  '__volatile',
  '__volatile__',
  'restrict',
  '__restrict',
  '__restrict__',
  '_Nonnull',
  '_Nullable',
  '_Null_unspecified',
  '__ptr64',
  '__ptr32',
]);

const STORAGE_AND_FUNCTION_SPECIFIERS = new Set([
  'extern',
  'static',
  'auto',
  'register',
  'inline',
  '__inline',
  '__inline__',
  '_Noreturn',
  '__extension__',
  '_Thread_local',
  '__thread',
  'thread_local',
  'constexpr',
]);

const BASIC_TYPE_WORDS = new Set([
  'void',
  'char',
  'int',
  'float',
  'double',
  '_Bool',
  '__int128',
  '_Float16',
  '__fp16',
  '__bf16',
  '__builtin_va_list',
  'short',
  'long',
  'signed',
  '__signed',
  '__signed__',
  'unsigned',
  '_Complex',
  '__int128_t',
  '__uint128_t',
]);

function isTypeKeyword(text: string): boolean {
  return (
    BASIC_TYPE_WORDS.has(text) ||
    QUALIFIERS.has(text) ||
    STORAGE_AND_FUNCTION_SPECIFIERS.has(text) ||
    text === 'struct' ||
    text === 'union' ||
    text === 'enum' ||
    text === 'typeof' ||
    text === '__typeof__' ||
    text === '__typeof' ||
    text === '_Atomic' ||
    text === '__attribute__' ||
    text === '__attribute' ||
    text === '_Alignas' ||
    text === 'typedef' ||
    text === 'typeof_unqual'
  );
}

/**
 * The value of tokens[start, end) when it is a decimal literal without suffix, or one negated: how
 * vmlinux.h writes nearly all of its ~19,000 enumerator values, read without the expression evaluator.
 */
function plainDecimal(tokens: readonly Token[], start: number, end: number): bigint | undefined {
  const negative = end - start === 2 && tokens[start].text === '-';
  if (end - start !== 1 && !negative) return undefined;
  const literal = tokens[end - 1];
  const text = literal.text;
  if (literal.kind !== TokenKind.Number || text.length > 15 || (text.length > 1 && text.charCodeAt(0) === 48)) return undefined;
  for (let index = 0; index < text.length; index++) {
    const c = text.charCodeAt(index);
    if (c < 48 || c > 57) return undefined;
  }
  const value = BigInt(text);
  return negative ? -value : value;
}

/**
 * Whether a record body can be read later: it defines no tag or enumerator of its own (a nested
 * `struct inner { ... }` or any `enum { ... }` declares names at file scope, which must exist now),
 * and no token of it came from a macro (its spelling, which the disk cache keeps, must tokenize back
 * to the same tokens; macro-pasted tokens need not).
 */
function isDeferrableBody(tokens: readonly Token[], start: number, end: number): boolean {
  for (let index = start; index < end; index++) {
    const token = tokens[index];
    if (token.flags & TokenFlags.FromMacro) return false;
    if (token.kind !== TokenKind.Identifier) continue;
    const text = token.text;
    const afterTag = tokens[index + 1]?.kind === TokenKind.Identifier ? tokens[index + 2] : undefined;
    if (text === 'enum') {
      const opens = tokens[index + 1]?.text === '{' || afterTag?.text === '{' || afterTag?.text === ':';
      if (opens) return false;
    } else if ((text === 'struct' || text === 'union') && afterTag?.text === '{') return false;
  }
  return true;
}

const MODE_BYTES: Record<string, number> = { QI: 1, HI: 2, SI: 4, DI: 8, TI: 16, byte: 1, word: 8, pointer: 8 };

/**
 * What a function body lends the declaration parser for one of its declarations: the types of the
 * names in scope (expressionType.ts), and where the declaration's problems go.
 */
export interface DeclarationScope {
  expressionType: (tokens: readonly Token[], start: number, end: number) => CType | undefined;
  problems?: Problem[];
}

/**
 * Parses declarations into a TypeEnvironment. Feed it the tokens of a translation unit in order
 * (feed() parses every complete declaration so far, finish() the rest).
 */
export class DeclarationParser {
  readonly layout: LayoutEngine;
  private pending: Token[] = [];
  private readonly constantContext: ConstantContext;
  /** Called for every declared name at file scope (functions, variables, typedefs). */
  onDeclaredName?: (declared: DeclaredName) => void;
  /**
   * The scope of the parseDeclaration()/parseTypeName() call under way, when its caller gave one:
   * the types of the names a function body has in scope, and where its problems go. Only those two
   * methods set it, for the length of the call.
   */
  private scope: DeclarationScope | undefined;

  /** Records and parenthesised declarators open around the current token (see MAX_DECLARATION_NESTING). */
  private nesting = 0;

  /**
   * Whether a tagged struct or union defined at file scope is kept as its tokens and read when first
   * looked up (DeferredRecord), rather than now. The header index sets it while it reads a header:
   * most of a header's records (vmlinux.h's tens of thousands) are never used by the file. Problems
   * in a deferred body are not reported: nothing is wrong until the record is used, and then its
   * layout shows what was understood.
   */
  deferRecords = false;

  constructor(
    readonly environment: TypeEnvironment,
    readonly problems: Problem[],
    layout?: LayoutEngine,
  ) {
    this.layout = layout ?? new LayoutEngine(environment);
    environment.recordReader ??= (text) => this.readRecordText(text);
    this.constantContext = {
      identifier: (name) => this.environment.constant(name),
      typeName: (tokens, index, end) => this.parseTypeName(tokens, index, end),
      offsetOf: (type, path) => this.layout.offsetOf(type, path),
      // `sizeof(x)`, `sizeof(*p)` of a local or parameter, where expressions have types.
      sizeOfExpression: (tokens, start, end) => {
        const type = this.scope?.expressionType(tokens, start, end);
        if (!type) return undefined;
        const layout = this.layout.layoutOf(type);
        return layout.complete ? layout.size : undefined;
      },
    };
  }

  /** Where problems go: the scope's list during a scoped call, the unit's otherwise. */
  private get problemSink(): Problem[] {
    return this.scope?.problems ?? this.problems;
  }

  /** Runs `parse` with `scope` as the scope of the call (see `scope`). */
  private within<T>(scope: DeclarationScope | undefined, parse: () => T): T {
    if (!scope) return parse();
    const outer = this.scope;
    this.scope = scope;
    try {
      return parse();
    } finally {
      this.scope = outer;
    }
  }

  /** Adds tokens and parses every declaration that is complete (ends at a top-level ';'). */
  feed(batch: readonly Token[]): void {
    // A batch after a complete declaration is read where it is, not copied.
    let tokens: readonly Token[] = this.pending.length === 0 ? batch : this.pending.concat(batch);
    let depth = 0;
    let lastBoundary = -1;
    for (let i = 0; i < tokens.length; i++) {
      const token = tokens[i];
      if (token.kind === TokenKind.Skimmed && !(this.deferRecords && depth === 0 && followsRecordTag(tokens, i))) {
        // A skimmed body where no deferred record can take it (a macro moved it, or a brace the
        // lexer could not see): its tokens, in its place.
        tokens = [...tokens.slice(0, i), ...unskim([token]), ...tokens.slice(i + 1)];
        i--;
        continue;
      }
      if (token.kind !== TokenKind.Punctuator) continue;
      const text = token.text;
      if (text === '{' || text === '(' || text === '[') depth++;
      else if (text === '}' || text === ')' || text === ']') depth = Math.max(0, depth - 1);
      else if (text === ';' && depth === 0) lastBoundary = i;
    }
    if (lastBoundary === -1) {
      this.pending = tokens === batch ? batch.slice() : (tokens as Token[]);
      return;
    }
    this.parseTopLevel(tokens, 0, lastBoundary + 1);
    this.pending = tokens.slice(lastBoundary + 1);
  }

  /** Takes the tokens of the declaration not complete yet, leaving none. */
  takePending(): Token[] {
    const pending = this.pending;
    this.pending = [];
    return pending;
  }

  /** Parses whatever is left. */
  finish(): void {
    if (this.pending.length > 0) this.parseTopLevel(this.pending, 0, this.pending.length);
    this.pending = [];
  }

  /** Parses tokens[start, end) as a sequence of file-scope declarations and definitions. */
  parseTopLevel(tokens: readonly Token[], start: number, end: number): void {
    const cursor = new Cursor(tokens, start, end);
    while (cursor.position < end) {
      const before = cursor.position;
      try {
        this.externalDeclaration(cursor);
      } catch (error) {
        if (!(error instanceof ParseError)) throw error;
        this.problemSink.push({ message: error.message, offset: error.offset });
        cursor.position = before;
        const stop = cursor.findAtDepthZero([';']);
        cursor.position = Math.max(stop + 1, before + 1);
      }
    }
  }

  /**
   * Parses one declaration (a local variable, a struct definition inside a function) in
   * tokens[start, end) and returns the names it declares with their types. Never throws. `scope`
   * gives the names' types for `typeof(expression)` and `sizeof(x)`, and a list for the problems.
   */
  parseDeclaration(tokens: readonly Token[], start: number, end: number, scope?: DeclarationScope): DeclaredName[] {
    return this.within(scope, () => this.declaration(tokens, start, end));
  }

  private declaration(tokens: readonly Token[], start: number, end: number): DeclaredName[] {
    const declared: DeclaredName[] = [];
    const cursor = new Cursor(tokens, start, end);
    const previous = this.onDeclaredName;
    this.onDeclaredName = (name) => declared.push(name);
    try {
      this.externalDeclaration(cursor);
    } catch (error) {
      if (!(error instanceof ParseError)) throw error;
      this.problemSink.push({ message: error.message, offset: error.offset });
    } finally {
      this.onDeclaredName = previous;
    }
    return declared;
  }

  /** Parses a type name (`struct foo *`, `unsigned long[4]`) at tokens[index]; undefined if none starts there. */
  parseTypeName(tokens: readonly Token[], index: number, end: number, scope?: DeclarationScope): ParsedTypeName | undefined {
    return this.within(scope, () => this.typeName(tokens, index, end));
  }

  private typeName(tokens: readonly Token[], index: number, end: number): ParsedTypeName | undefined {
    const first = tokens[index];
    if (!first || index >= end || first.kind !== TokenKind.Identifier) return undefined;
    if (!isTypeKeyword(first.text) && !this.environment.isTypedefName(first.text)) return undefined;
    const cursor = new Cursor(tokens, index, end);
    try {
      const specifiers = this.specifiers(cursor);
      if (!specifiers.hasType) return undefined;
      const declarator = this.declarator(cursor, true);
      const type = declarator.wrap(specifiers.base);
      const layout = this.layout.layoutOf(type);
      return { type, layout, unsigned: isUnsigned(this.layout.resolve(type)), next: cursor.position };
    } catch (error) {
      if (error instanceof ParseError) return undefined;
      throw error;
    }
  }

  /** The value of a constant expression in tokens[start, end), or undefined with a problem recorded. */
  evaluate(tokens: readonly Token[], start: number, end: number, what: string): bigint | undefined {
    const result = evaluateConstant(tokens, start, end, this.constantContext);
    if ('error' in result) {
      this.problemSink.push({ message: `${what}: ${result.error}`, offset: tokens[start]?.offset });
      return undefined;
    }
    return result.value;
  }

  private externalDeclaration(cursor: Cursor): void {
    const text = cursor.text;
    if (text === ';') {
      cursor.position++;
      return;
    }
    if (text === '_Static_assert' || text === 'static_assert' || text === 'asm' || text === '__asm__' || text === '__asm') {
      cursor.position = cursor.findAtDepthZero([';']) + 1;
      return;
    }
    const specifiers = this.specifiers(cursor);
    if (cursor.isPunctuator(';')) {
      cursor.position++;
      return;
    }
    if (!specifiers.hasType && cursor.token?.kind !== TokenKind.Identifier && !cursor.isPunctuator('*') && !cursor.isPunctuator('(')) {
      cursor.fail('expected a declaration');
    }
    for (;;) {
      const declarator = this.declarator(cursor, false);
      const attributes = { ...specifiers.attributes };
      this.trailingAttributes(cursor, attributes);
      let type = declarator.wrap(applyMode(specifiers.base, attributes.modeBytes));
      if (specifiers.isTypedef && declarator.name !== undefined) {
        this.environment.defineTypedef(declarator.name, attributes.align !== undefined ? { type, align: attributes.align } : { type });
      }
      const isFunctionDefinition = cursor.isPunctuator('{');
      let body: [number, number] | undefined;
      if (isFunctionDefinition) {
        const close = cursor.matching();
        body = [cursor.token!.offset, cursor.tokens[close].offset];
        cursor.position = close + 1;
      }
      // `char name[] = "..."`: the string's length completes the array (sizeof(name) elsewhere).
      if (!isFunctionDefinition && type.k === 'array' && type.n === undefined && cursor.isPunctuator('=')) {
        const strings = stringLiteralsSize(cursor.tokens, cursor.position + 1, cursor.tokens.length);
        const element = this.layout.layoutOf(type.of).size;
        if (strings && element > 0 && strings.size % element === 0) type = { ...type, n: strings.size / element };
      }
      if (declarator.name !== undefined && this.onDeclaredName) {
        this.onDeclaredName({
          name: declarator.name,
          type,
          offset: declarator.nameOffset ?? 0,
          isTypedef: specifiers.isTypedef,
          isFunctionDefinition,
          body,
        });
      }
      if (isFunctionDefinition) return;
      if (cursor.isPunctuator('=')) {
        cursor.position++;
        const initializerStart = cursor.position;
        cursor.position = cursor.findAtDepthZero([',', ';']);
        if (declarator.name !== undefined && this.scope === undefined) this.noteHelper(declarator.name, type, cursor.tokens, initializerStart, cursor.position);
      }
      if (cursor.isPunctuator(',')) {
        cursor.position++;
        continue;
      }
      cursor.expect(';');
      return;
    }
  }

  /**
   * A file-scope function pointer initialised with `(void *) N`, which is how bpf_helper_defs.h
   * declares helper N (older copies spell N `BPF_FUNC_map_lookup_elem`, an enumerator of linux/bpf.h):
   * the environment learns its id, so a call through it is known as helper N whatever header (or
   * hand-written declaration) the unit took it from.
   */
  private noteHelper(name: string, type: CType, tokens: readonly Token[], start: number, end: number): void {
    const resolved = this.layout.resolve(type);
    if (resolved.k !== 'pointer' || this.layout.resolve(resolved.to).k !== 'function') return;
    const cast = tokens.slice(start, start + 4).map((token) => token.text);
    if (end - start < 5 || cast.join(' ') !== '( void * )') return;
    const id = evaluateConstant(tokens, start + 4, end, this.constantContext);
    if ('value' in id && id.value > 0n && id.value <= BigInt(Number.MAX_SAFE_INTEGER)) this.environment.defineHelper(name, Number(id.value));
  }

  /** Declaration specifiers: storage class, qualifiers, the type, attributes. */
  private specifiers(cursor: Cursor): Specifiers {
    let isTypedef = false;
    let sign: 'signed' | 'unsigned' | undefined;
    let shorts = 0;
    let longs = 0;
    let basic: string | undefined;
    let named: CType | undefined;
    let sawSpecifierOrQualifier = false;
    const attributes: Attributes = {};
    for (;;) {
      const token = cursor.token;
      if (!token) break;
      if (token.kind === TokenKind.Punctuator) {
        if (token.text === '[' && cursor.peekText(1) === '[') {
          cursor.position = cursor.matching() + 1;
          continue;
        }
        break;
      }
      if (token.kind !== TokenKind.Identifier) break;
      const text = token.text;
      if (QUALIFIERS.has(text) || STORAGE_AND_FUNCTION_SPECIFIERS.has(text)) {
        cursor.position++;
        sawSpecifierOrQualifier = true;
        continue;
      }
      switch (text) {
        case 'typedef':
          isTypedef = true;
          cursor.position++;
          continue;
        case 'signed':
        case '__signed':
        case '__signed__':
          sign = 'signed';
          cursor.position++;
          continue;
        case 'unsigned':
          sign = 'unsigned';
          cursor.position++;
          continue;
        case 'short':
          shorts++;
          cursor.position++;
          continue;
        case 'long':
          longs++;
          cursor.position++;
          continue;
        case 'void':
        case 'char':
        case 'int':
        case 'float':
        case 'double':
        case '_Bool':
        case '__int128':
        case '_Float16':
        case '__fp16':
        case '__bf16':
        case '__builtin_va_list':
          basic = text;
          cursor.position++;
          continue;
        case '_Complex':
          cursor.position++;
          continue;
        case '__int128_t':
        case '__uint128_t':
          named = { k: 'scalar', name: text === '__int128_t' ? '__int128' : 'unsigned __int128' };
          cursor.position++;
          continue;
        case 'struct':
        case 'union':
          if (named || basic) break;
          named = this.recordSpecifier(cursor, text);
          continue;
        case 'enum':
          if (named || basic) break;
          named = this.enumSpecifier(cursor);
          continue;
        case '__attribute__':
        case '__attribute':
          this.attributes(cursor, attributes);
          continue;
        case '_Alignas':
        case 'alignas':
          this.alignas(cursor, attributes);
          continue;
        case '__declspec':
          cursor.position++;
          if (cursor.isPunctuator('(')) cursor.position = cursor.matching() + 1;
          continue;
        case '_Atomic':
          cursor.position++;
          if (cursor.isPunctuator('(') && !named && !basic) {
            const inner = this.parseTypeName(cursor.tokens, cursor.position + 1, cursor.end);
            if (!inner) cursor.fail('expected a type in _Atomic()');
            named = inner.type;
            cursor.position = inner.next;
            cursor.expect(')');
          }
          continue;
        case 'typeof':
        case '__typeof__':
        case '__typeof':
        case 'typeof_unqual':
        case '__typeof_unqual__': {
          if (named || basic) break;
          cursor.position++;
          if (!cursor.isPunctuator('(')) cursor.fail(`expected '(' after ${text}`);
          const close = cursor.matching();
          const inner = this.parseTypeName(cursor.tokens, cursor.position + 1, close);
          named =
            inner && inner.next === close
              ? inner.type
              : (this.scope?.expressionType(cursor.tokens, cursor.position + 1, close) ?? { k: 'unknown', why: 'typeof of an expression' });
          cursor.position = close + 1;
          continue;
        }
        case 'bool':
          if (!named && !basic && !this.environment.isTypedefName('bool')) {
            basic = '_Bool';
            cursor.position++;
            continue;
          }
          break;
      }
      // A typedef name is a type only where no type has been given yet: in `u32 u32;` the second is the declarator.
      if (!named && !basic && !sign && shorts === 0 && longs === 0 && this.environment.isTypedefName(text)) {
        named = { k: 'typedef', name: text };
        cursor.position++;
        continue;
      }
      break;
    }
    const hasType = named !== undefined || basic !== undefined || sign !== undefined || shorts > 0 || longs > 0;
    let base: CType;
    if (named) base = named;
    else if (basic === 'void') base = { k: 'void' };
    else base = { k: 'scalar', name: scalarName(basic, sign, shorts, longs) };
    if (!hasType && !sawSpecifierOrQualifier && !isTypedef) {
      return { base, isTypedef, hasType: false, attributes };
    }
    return { base, isTypedef, hasType, attributes };
  }

  /** After `struct`, `union` or `enum`: attributes, the optional tag, and attributes again. */
  private tagAndAttributes(cursor: Cursor): { tag: string | undefined; attributes: Attributes } {
    cursor.position++;
    const attributes: Attributes = {};
    this.leadingAttributes(cursor, attributes);
    let tag: string | undefined;
    if (cursor.token?.kind === TokenKind.Identifier) {
      tag = cursor.token.text;
      cursor.position++;
      this.leadingAttributes(cursor, attributes);
    }
    return { tag, attributes };
  }

  /** Runs one nesting level deeper, or fails the declaration past MAX_DECLARATION_NESTING. */
  private nested<T>(cursor: Cursor, parse: () => T): T {
    if (this.nesting >= MAX_DECLARATION_NESTING) cursor.fail(`declarations nested deeper than ${MAX_DECLARATION_NESTING} levels`);
    this.nesting++;
    try {
      return parse();
    } finally {
      this.nesting--;
    }
  }

  private recordSpecifier(cursor: Cursor, kind: 'struct' | 'union'): CType {
    const keyword = cursor.position;
    const { tag, attributes } = this.tagAndAttributes(cursor);
    if (cursor.token?.kind === TokenKind.Skimmed) {
      // feed() left it only where it can be deferred.
      cursor.position++;
      this.leadingAttributes(cursor, attributes);
      this.environment.defineRecord(tag!, this.deferredRecord(cursor.tokens.slice(keyword, cursor.position), kind));
      return { k: kind, tag: tag! };
    }
    if (!cursor.isPunctuator('{')) {
      if (tag === undefined) cursor.fail(`expected a tag or '{' after ${kind}`);
      return { k: kind, tag };
    }
    const close = cursor.matching();
    if (this.deferRecords && tag !== undefined && this.nesting === 0 && isDeferrableBody(cursor.tokens, cursor.position + 1, close)) {
      cursor.position = close + 1;
      this.leadingAttributes(cursor, attributes);
      this.environment.defineRecord(tag, this.deferredRecord(cursor.tokens.slice(keyword, cursor.position), kind));
      return { k: kind, tag };
    }
    const def = this.recordBody(cursor, kind, close, attributes);
    if (tag !== undefined) {
      this.environment.defineRecord(tag, def);
      return { k: kind, tag };
    }
    return { k: kind, def };
  }

  /** The members from the `{` at the cursor to `close`, and the attributes after it. */
  private recordBody(cursor: Cursor, kind: 'struct' | 'union', close: number, attributes: Attributes): RecordDef {
    cursor.position++;
    const fields = this.nested(cursor, () => this.members(cursor, close));
    cursor.position = close + 1;
    this.leadingAttributes(cursor, attributes);
    const def: RecordDef = { kind, fields };
    if (attributes.packed) def.packed = true;
    if (attributes.align !== undefined) def.align = attributes.align;
    return def;
  }

  /** A record kept as its tokens (`struct tag { ... } attributes`), read by this parser on first lookup. */
  private deferredRecord(tokens: Token[], kind: 'struct' | 'union'): DeferredRecord {
    // The tokens are dropped once read: a record in use costs its definition, not both.
    let unread: Token[] | undefined = tokens;
    let read: RecordDef | undefined;
    return {
      deferred: true,
      read: () => {
        if (unread) {
          read = this.readRecordTokens(unskim(unread), kind);
          unread = undefined;
        }
        return read;
      },
      text: () => (unread ? spell(unread) : JSON.stringify(read ?? null)),
    };
  }

  /** A record from its C source, as DeferredRecord.text() wrote it; undefined when it is not one. */
  readRecordText(text: string): RecordDef | undefined {
    const tokens = tokenize(text);
    const kind = tokens[0]?.text;
    return kind === 'struct' || kind === 'union' ? this.readRecordTokens(tokens, kind) : undefined;
  }

  private readRecordTokens(tokens: readonly Token[], kind: 'struct' | 'union'): RecordDef | undefined {
    const cursor = new Cursor(tokens, 0, tokens.length);
    // The body's problems go nowhere (see deferRecords), and no function body's names are in scope.
    const scope: DeclarationScope = { expressionType: () => undefined, problems: [] };
    return this.within(scope, () => {
      try {
        const { attributes } = this.tagAndAttributes(cursor);
        if (!cursor.isPunctuator('{')) return undefined;
        return this.recordBody(cursor, kind, cursor.matching(), attributes);
      } catch (error) {
        if (error instanceof ParseError) return undefined;
        throw error;
      }
    });
  }

  private members(outer: Cursor, close: number): FieldDef[] {
    const fields: FieldDef[] = [];
    const cursor = new Cursor(outer.tokens, outer.position, close);
    while (cursor.position < close) {
      const before = cursor.position;
      try {
        this.memberDeclaration(cursor, fields);
      } catch (error) {
        if (!(error instanceof ParseError)) throw error;
        this.problemSink.push({ message: error.message, offset: error.offset });
        cursor.position = before;
        cursor.position = Math.max(cursor.findAtDepthZero([';']) + 1, before + 1);
      }
    }
    return fields;
  }

  private memberDeclaration(cursor: Cursor, fields: FieldDef[]): void {
    const text = cursor.text;
    if (text === ';') {
      cursor.position++;
      return;
    }
    if (text === '_Static_assert' || text === 'static_assert') {
      cursor.position = cursor.findAtDepthZero([';']) + 1;
      return;
    }
    const specifiers = this.specifiers(cursor);
    if (!specifiers.hasType) cursor.fail('expected a member declaration');
    if (cursor.isPunctuator(';')) {
      cursor.position++;
      // An untagged struct or union without a declarator is an anonymous member (C11 6.7.2.1p13).
      const base = specifiers.base;
      if ((base.k === 'struct' || base.k === 'union') && base.def) fields.push(withAttributes({ type: base }, specifiers.attributes));
      return;
    }
    for (;;) {
      const attributes = { ...specifiers.attributes };
      const declarator = cursor.isPunctuator(':') ? undefined : this.declarator(cursor, false);
      this.trailingAttributes(cursor, attributes);
      // mode() may come after the declarator, so the type is built once all attributes are known.
      const base = applyMode(specifiers.base, attributes.modeBytes);
      const field: FieldDef = { type: declarator ? declarator.wrap(base) : base };
      if (declarator?.name !== undefined) field.name = declarator.name;
      if (cursor.isPunctuator(':')) {
        cursor.position++;
        const end = cursor.findAtDepthZero([',', ';']);
        const bits = this.evaluate(cursor.tokens, cursor.position, end, 'bit-field width');
        field.bits = bits === undefined ? 0 : Number(bits);
        cursor.position = end;
        this.trailingAttributes(cursor, attributes);
      }
      fields.push(withAttributes(field, attributes));
      if (cursor.isPunctuator(',')) {
        cursor.position++;
        continue;
      }
      cursor.expect(';');
      return;
    }
  }

  private enumSpecifier(cursor: Cursor): CType {
    const { tag, attributes } = this.tagAndAttributes(cursor);
    let fixedSize: number | undefined;
    if (cursor.isPunctuator(':')) {
      const underlying = this.parseTypeName(cursor.tokens, cursor.position + 1, cursor.end);
      if (!underlying) cursor.fail('expected the underlying type of the enum');
      fixedSize = underlying.layout.size;
      cursor.position = underlying.next;
    }
    if (!cursor.isPunctuator('{')) {
      if (tag === undefined) cursor.fail("expected a tag or '{' after enum");
      return { k: 'enum', tag };
    }
    const close = cursor.matching();
    cursor.position++;
    let next = 0n;
    let minimum = 0n;
    let maximum = 0n;
    while (cursor.position < close) {
      const name = cursor.token!;
      if (name.kind !== TokenKind.Identifier) cursor.fail('expected an enumerator');
      cursor.position++;
      this.leadingAttributes(cursor, {});
      if (cursor.isPunctuator('=')) {
        cursor.position++;
        const end = Math.min(new Cursor(cursor.tokens, cursor.position, close).findAtDepthZero([',']), close);
        const value = plainDecimal(cursor.tokens, cursor.position, end) ?? this.evaluate(cursor.tokens, cursor.position, end, `value of ${name.text}`);
        if (value !== undefined) next = value;
        cursor.position = end;
      }
      this.environment.defineConstant(name.text, next);
      if (next < minimum) minimum = next;
      if (next > maximum) maximum = next;
      next++;
      if (cursor.isPunctuator(',')) cursor.position++;
    }
    cursor.position = close + 1;
    this.leadingAttributes(cursor, attributes);
    const def: EnumDef = { size: fixedSize ?? enumSize(minimum, maximum, attributes.packed === true) };
    if (tag !== undefined) {
      this.environment.defineEnum(tag, def);
      return { k: 'enum', tag };
    }
    return { k: 'enum', def };
  }

  /**
   * A declarator or (when `abstract`) an abstract declarator. The type is built inside out: the
   * pointers apply to the base first, then the array and function suffixes from the rightmost in,
   * then whatever a parenthesised inner declarator makes of the result.
   */
  private declarator(cursor: Cursor, abstract: boolean): Declarator {
    let pointers = 0;
    for (;;) {
      if (cursor.isPunctuator('*')) {
        pointers++;
        cursor.position++;
        continue;
      }
      const text = cursor.text;
      if (text !== undefined && (QUALIFIERS.has(text) || text === '_Atomic') && cursor.token!.kind === TokenKind.Identifier) {
        cursor.position++;
        continue;
      }
      if (text === '__attribute__' || text === '__attribute') {
        this.attributes(cursor, {});
        continue;
      }
      break;
    }
    let name: string | undefined;
    let nameOffset: number | undefined;
    let inner: Declarator | undefined;
    const token = cursor.token;
    if (token && token.kind === TokenKind.Identifier && !(abstract && this.environment.isTypedefName(token.text))) {
      name = token.text;
      nameOffset = token.offset;
      cursor.position++;
    } else if (cursor.isPunctuator('(') && this.startsNestedDeclarator(cursor)) {
      cursor.position++;
      inner = this.nested(cursor, () => this.declarator(cursor, abstract));
      cursor.expect(')');
    } else if (!abstract) {
      cursor.fail('expected a declarator');
    }
    const suffixes: Suffix[] = [];
    for (;;) {
      if (cursor.isPunctuator('[')) {
        const close = cursor.matching();
        let start = cursor.position + 1;
        while (start < close && (cursor.tokens[start].text === 'static' || QUALIFIERS.has(cursor.tokens[start].text))) start++;
        if (start === close || (start + 1 === close && cursor.tokens[start].text === '*')) {
          suffixes.push({ array: true });
        } else {
          const length = this.evaluate(cursor.tokens, start, close, 'array size');
          suffixes.push({ array: true, n: length === undefined ? 0 : Number(length) });
        }
        cursor.position = close + 1;
        continue;
      }
      if (cursor.isPunctuator('(')) {
        cursor.position = cursor.matching() + 1;
        suffixes.push({ array: false });
        continue;
      }
      break;
    }
    return {
      name: name ?? inner?.name,
      nameOffset: nameOffset ?? inner?.nameOffset,
      wrap(base: CType): CType {
        let type = base;
        for (let i = 0; i < pointers; i++) type = { k: 'pointer', to: type };
        for (let i = suffixes.length - 1; i >= 0; i--) {
          const suffix = suffixes[i];
          type = suffix.array ? (suffix.n === undefined ? { k: 'array', of: type } : { k: 'array', of: type, n: suffix.n }) : { k: 'function', returns: type };
        }
        return inner ? inner.wrap(type) : type;
      },
    };
  }

  /** After '(' in a declarator: a nested declarator, or the parameter list of an abstract function declarator? */
  private startsNestedDeclarator(cursor: Cursor): boolean {
    const next = cursor.tokens[cursor.position + 1];
    if (!next || cursor.position + 1 >= cursor.end) return false;
    if (next.kind === TokenKind.Punctuator) return next.text === '*' || next.text === '(' || next.text === '[' || next.text === '^';
    if (next.kind !== TokenKind.Identifier) return false;
    if (next.text === '__attribute__' || next.text === '__attribute') return true;
    return !isTypeKeyword(next.text) && !this.environment.isTypedefName(next.text);
  }

  /** Attributes and asm labels after a declarator or a closing brace. */
  private trailingAttributes(cursor: Cursor, attributes: Attributes): void {
    for (;;) {
      const text = cursor.text;
      if (text === '__attribute__' || text === '__attribute') this.attributes(cursor, attributes);
      else if (text === '__asm__' || text === '__asm' || text === 'asm') {
        cursor.position++;
        if (cursor.isPunctuator('(')) cursor.position = cursor.matching() + 1;
      } else if (cursor.isPunctuator('[') && cursor.peekText(1) === '[') {
        cursor.position = cursor.matching() + 1;
      } else if (text === '_Alignas' || text === 'alignas') {
        this.alignas(cursor, attributes);
      } else return;
    }
  }

  private leadingAttributes(cursor: Cursor, attributes: Attributes): void {
    this.trailingAttributes(cursor, attributes);
  }

  /** `__attribute__((a, b(args), ...))`: packed, aligned and mode matter for layout; the rest is skipped. */
  private attributes(cursor: Cursor, attributes: Attributes): void {
    cursor.position++;
    if (!cursor.isPunctuator('(')) return;
    const outerClose = cursor.matching();
    if (cursor.peekText(1) !== '(') {
      cursor.position = outerClose + 1;
      return;
    }
    const innerClose = cursor.matching(cursor.position + 1);
    let position = cursor.position + 2;
    while (position < innerClose) {
      const token = cursor.tokens[position];
      if (token.text === ',') {
        position++;
        continue;
      }
      const name = token.text.replace(/^__(.+)__$/, '$1');
      position++;
      let argsStart = -1;
      let argsEnd = -1;
      if (position < innerClose && cursor.tokens[position].text === '(') {
        argsStart = position + 1;
        argsEnd = cursor.matching(position);
        position = argsEnd + 1;
      }
      if (name === 'packed') attributes.packed = true;
      else if (name === 'aligned') {
        let align = DEFAULT_ATTRIBUTE_ALIGNMENT;
        if (argsStart !== -1 && argsEnd > argsStart) {
          const value = this.evaluate(cursor.tokens, argsStart, argsEnd, 'aligned()');
          if (value !== undefined) align = Number(value);
        }
        attributes.align = Math.max(attributes.align ?? 0, align);
      } else if (name === 'mode' && argsStart !== -1) {
        const mode = cursor.tokens[argsStart].text.replace(/^__(.+)__$/, '$1');
        if (MODE_BYTES[mode] !== undefined) attributes.modeBytes = MODE_BYTES[mode];
      }
    }
    cursor.position = outerClose + 1;
  }

  private alignas(cursor: Cursor, attributes: Attributes): void {
    cursor.position++;
    if (!cursor.isPunctuator('(')) cursor.fail("expected '(' after _Alignas");
    const close = cursor.matching();
    const typeName = this.parseTypeName(cursor.tokens, cursor.position + 1, close);
    let align: number | undefined;
    if (typeName && typeName.next === close) align = typeName.layout.align;
    else {
      const value = this.evaluate(cursor.tokens, cursor.position + 1, close, '_Alignas');
      if (value !== undefined) align = Number(value);
    }
    if (align !== undefined && align > 0) attributes.align = Math.max(attributes.align ?? 0, align);
    cursor.position = close + 1;
  }
}

function withAttributes(field: FieldDef, attributes: Attributes): FieldDef {
  if (attributes.align !== undefined) field.align = attributes.align;
  if (attributes.packed) field.packed = true;
  return field;
}

function scalarName(basic: string | undefined, sign: 'signed' | 'unsigned' | undefined, shorts: number, longs: number): ScalarName {
  const unsigned = sign === 'unsigned';
  switch (basic) {
    case 'char':
      return sign === undefined ? 'char' : unsigned ? 'unsigned char' : 'signed char';
    case '_Bool':
      return '_Bool';
    case 'float':
      return 'float';
    case 'double':
      return longs > 0 ? 'long double' : 'double';
    case '__int128':
      return unsigned ? 'unsigned __int128' : '__int128';
    case '_Float16':
    case '__fp16':
    case '__bf16':
      return '_Float16';
    case '__builtin_va_list':
      return '__builtin_va_list';
  }
  if (shorts > 0) return unsigned ? 'unsigned short' : 'short';
  if (longs >= 2) return unsigned ? 'unsigned long long' : 'long long';
  if (longs === 1) return unsigned ? 'unsigned long' : 'long';
  return unsigned ? 'unsigned int' : 'int';
}

function isUnsigned(type: CType): boolean {
  if (type.k === 'pointer') return true;
  if (type.k !== 'scalar') return false;
  return type.name.startsWith('unsigned') || type.name === '_Bool';
}

/** `mode(DI)` and friends replace an integer type's width, keeping its signedness. */
function applyMode(base: CType, modeBytes: number | undefined): CType {
  if (modeBytes === undefined || base.k !== 'scalar') return base;
  const unsigned = base.name.startsWith('unsigned');
  const names: Record<number, [ScalarName, ScalarName]> = {
    1: ['signed char', 'unsigned char'],
    2: ['short', 'unsigned short'],
    4: ['int', 'unsigned int'],
    8: ['long', 'unsigned long'],
    16: ['__int128', 'unsigned __int128'],
  };
  const pair = names[modeBytes];
  return pair ? { k: 'scalar', name: pair[unsigned ? 1 : 0] } : base;
}

/**
 * The size clang gives an enum from its enumerators' range: int when they all fit, unsigned int
 * when none is negative and they fit in 32 bits, else 64 bits. Packed enums take the smallest fit.
 */
export function enumSize(minimum: bigint, maximum: bigint, packed: boolean): number {
  const fits = (bytes: number) => {
    const bits = BigInt(bytes * 8);
    if (minimum < 0n) return minimum >= -(1n << (bits - 1n)) && maximum < 1n << (bits - 1n);
    return maximum < 1n << bits;
  };
  if (packed) {
    for (const bytes of [1, 2, 4]) if (fits(bytes)) return bytes;
    return 8;
  }
  return fits(4) ? 4 : 8;
}
