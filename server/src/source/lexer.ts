/**
 * Splits C source into preprocessing tokens. Whitespace and comments are not tokens; instead each
 * token records whether it starts a line (which is how the preprocessor finds directives) and
 * whether space came before it (which `#define F(x)` versus `#define F (x)` and the # operator need).
 * A backslash-newline joins lines, as in translation phase 2.
 *
 * Hand-written over char codes rather than one big regular expression: vmlinux.h is 2.8 MB and
 * about a million tokens, and this is the loop all of it goes through.
 */
import { partitionPoint } from '../common/numbers';

export const enum TokenKind {
  Identifier = 1,
  Number = 2,
  String = 3,
  Char = 4,
  Punctuator = 5,
  /** A stray character no C token starts with (`@`, a lone backslash, non-ASCII). */
  Other = 6,
  /**
   * A record body (`{` to its `}`) kept as its text: see BodySkimming. Only header tokens have
   * them; `unskim` turns one back into its tokens.
   */
  Skimmed = 7,
}

export const enum TokenFlags {
  AtLineStart = 1,
  SpaceBefore = 2,
  /** Produced by macro expansion; `offset` is then the offset of the outermost macro name. */
  FromMacro = 4,
}

export interface Token {
  kind: TokenKind;
  text: string;
  /** Offset of the token's first character in its file (for expanded tokens: of the invocation). */
  offset: number;
  flags: number;
  /** Macros that must not expand this token again (the C standard's "hide set"). */
  hide?: ReadonlySet<string>;
}

/** The ASCII characters a punctuator starts with: ! # % & ( ) * + , - . / : ; < = > ? [ ] ^ { | } ~ */
const PUNCTUATOR_START = new Uint8Array(128);
for (const character of '!#%&()*+,-./:;<=>?[]^{|}~') PUNCTUATOR_START[character.charCodeAt(0)] = 1;

/**
 * The length of the punctuator that starts with `c` followed by `next` and `after` (char codes, NaN
 * past the end), longest first: `...`, `<<=`, `>>=`; `->`, a doubled `+ - < > & | #`, an operator
 * followed by `=`; else one character.
 */
function punctuatorLength(c: number, next: number, after: number): number {
  if (c === 46 /* . */) return next === 46 && after === 46 ? 3 : 1;
  if (next === c) {
    if (c === 60 /* < */ || c === 62 /* > */) return after === 61 ? 3 : 2;
    if (c === 43 /* + */ || c === 45 /* - */ || c === 38 /* & */ || c === 124 /* | */ || c === 35 /* # */ || c === 61 /* = */) return 2;
    return 1;
  }
  if (next === 61 /* = */) {
    // <= >= != *= /= %= += -= &= ^= |=
    return c === 60 || c === 62 || c === 33 || c === 42 || c === 47 || c === 37 || c === 43 || c === 45 || c === 38 || c === 94 || c === 124 ? 2 : 1;
  }
  return c === 45 /* - */ && next === 62 /* > */ ? 2 : 1;
}

function isIdentifierStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c === 36;
}

function isIdentifierPart(c: number): boolean {
  return isIdentifierStart(c) || (c >= 48 && c <= 57);
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/**
 * Tokenizes a whole file. Never throws: anything unrecognised becomes a TokenKind.Other token.
 * From `start` (a token's start), with the flags that token had, it gives what tokenizing the whole
 * text would from there: offsets stay offsets into `text`.
 */
export function tokenize(text: string, start = 0, initialFlags: number = TokenFlags.AtLineStart, skimming?: BodySkimming): Token[] {
  return scan(text, start, initialFlags, undefined, skimming).tokens;
}

/**
 * Asked by the lexer while it skims the bodies of a header's file-scope records. vmlinux.h is two
 * thirds struct bodies, and a file uses a few dozen of its ten thousand records: a body that follows
 * `struct tag` or `union tag` at file scope becomes one Skimmed token, its identifiers hashed but
 * never cut out, and is tokenized only when the record is first read (declarations.ts). A body is
 * tokenized as usual instead when it holds a directive, a line continuation, a nested tag or enum
 * definition, or an identifier that may name a macro (the macros defined so far, and from the first
 * #include on, any): its tokens must be what preprocessing would give.
 */
export interface BodySkimming {
  /** Whether an identifier may name a macro, by identifierHashes()'s first hash. */
  mayNameMacro(hash: number): boolean;
  /** Each identifier of a skimmed body, by both hashes. */
  noteIdentifier(hash: number, second: number): void;
}

/** Two hashes of text[start, end), FNV-1a and a multiplicative one, written to `out` (reused, so nothing is allocated per identifier). */
export function identifierHashes(text: string, start: number, end: number, out: Uint32Array): void {
  let h1 = 0x811c9dc5;
  let h2 = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 + c, 0x5bd1e995) ^ (h2 >>> 15);
  }
  out[0] = h1;
  out[1] = h2;
}

/** `tokens` with every Skimmed token replaced by the tokens of its text, at their offsets in the file. */
export function unskim(tokens: readonly Token[]): Token[] {
  const out: Token[] = [];
  for (const token of tokens) {
    if (token.kind !== TokenKind.Skimmed) {
      out.push(token);
      continue;
    }
    const inner = tokenize(token.text, 0, token.flags);
    for (const piece of inner)
      out.push({ kind: piece.kind, text: piece.text, offset: piece.offset + token.offset, flags: piece.flags | (token.flags & TokenFlags.FromMacro) });
  }
  return out;
}

/** Whether tokens[index] follows `struct tag` or `union tag`: where a record body that can be skimmed starts. */
export function followsRecordTag(tokens: readonly Token[], index: number): boolean {
  const keyword = tokens[index - 2]?.text;
  return tokens[index - 1]?.kind === TokenKind.Identifier && (keyword === 'struct' || keyword === 'union');
}

/** Whether text[start, end) is `word`. */
function spells(text: string, start: number, end: number, word: string): boolean {
  return end - start === word.length && text.startsWith(word, start);
}

const hashScratch = new Uint32Array(2);

/**
 * The end (after the `}`) of the record body whose `{` is at `open`, when it can be skimmed (see
 * BodySkimming), else -1. Identifiers are noted as they are met: a body given up on halfway has
 * noted some twice, which a filter does not mind.
 */
function skimBody(text: string, open: number, skimming: BodySkimming, definedHere: ReadonlySet<number>): number {
  const length = text.length;
  let depth = 1;
  let position = open + 1;
  let atLineStart = false;
  // The two identifiers or punctuators before the current one (start offsets; -1 for a punctuator).
  let previousStart = -1;
  let previousEnd = -1;
  let beforeStart = -1;
  let beforeEnd = -1;
  const shift = (start: number, end: number) => {
    beforeStart = previousStart;
    beforeEnd = previousEnd;
    previousStart = start;
    previousEnd = end;
  };
  while (position < length) {
    const c = text.charCodeAt(position);
    if (c === 10) {
      atLineStart = true;
      position++;
      continue;
    }
    if (c === 32 || c === 9 || c === 13 || c === 12 || c === 11) {
      position++;
      continue;
    }
    if (c === 92 /* \ */) return -1;
    if (c === 35 /* # */ && atLineStart) return -1;
    atLineStart = false;
    if (c === 47 /* / */) {
      const next = text.charCodeAt(position + 1);
      if (next === 47) {
        const end = text.indexOf('\n', position);
        position = end === -1 ? length : end;
        continue;
      }
      if (next === 42) {
        const end = text.indexOf('*/', position + 2);
        position = end === -1 ? length : end + 2;
        continue;
      }
    }
    if (isIdentifierStart(c)) {
      const start = position;
      position++;
      while (position < length && isIdentifierPart(text.charCodeAt(position))) position++;
      const following = text.charCodeAt(position);
      if (following === 34 || following === 39) return -1;
      identifierHashes(text, start, position, hashScratch);
      if (skimming.mayNameMacro(hashScratch[0]) || definedHere.has(hashScratch[0])) return -1;
      skimming.noteIdentifier(hashScratch[0], hashScratch[1]);
      shift(start, position);
      continue;
    }
    if (c === 34 || c === 39) {
      position = scanQuoted(text, position, c);
      shift(-1, -1);
      continue;
    }
    if (c === 123 /* { */) {
      // A nested `struct tag {`, `union tag {`, `enum {` or `enum tag {` declares a name at file scope.
      const tagged =
        previousStart >= 0 &&
        beforeStart >= 0 &&
        (spells(text, beforeStart, beforeEnd, 'struct') || spells(text, beforeStart, beforeEnd, 'union') || spells(text, beforeStart, beforeEnd, 'enum'));
      if (tagged || (previousStart >= 0 && spells(text, previousStart, previousEnd, 'enum'))) return -1;
      depth++;
    } else if (c === 125 /* } */) {
      depth--;
      if (depth === 0) return position + 1;
    } else if (c === 58 /* : */ && beforeStart >= 0 && spells(text, beforeStart, beforeEnd, 'enum')) {
      return -1;
    }
    shift(-1, -1);
    position++;
  }
  return -1;
}

/**
 * Like tokenize(text, start, initialFlags), but asks `stop` before each token (its offset and flags)
 * and returns early, without that token, when it says so: `stoppedAt` is then that token's offset.
 */
export function tokenizeUntil(
  text: string,
  start: number,
  initialFlags: number,
  stop: (offset: number, flags: number) => boolean,
): { tokens: Token[]; stoppedAt?: number } {
  return scan(text, start, initialFlags, stop);
}

/**
 * Where the lexer is with respect to file scope, for skimming (see BodySkimming): the brace depth
 * outside directives, the directive line it is in, the macros that line and those before defined,
 * and the depth each open conditional group started at (each branch starts there again).
 */
class FileScopeTracker {
  private depth = 0;
  private directiveAt = -1;
  private on = true;
  private readonly definedHere = new Set<number>();
  private readonly groupDepths: number[] = [];

  constructor(
    private readonly text: string,
    private readonly skimming: BodySkimming,
  ) {}

  /**
   * Sees the token text[start, end) (of `kind`, first character `c`) before it is added to `tokens`:
   * the end of the body it opens when it is a `{` that can be skimmed, else -1.
   */
  see(tokens: readonly Token[], kind: TokenKind, c: number, start: number, end: number, flags: number): number {
    if (!this.on) return -1;
    const index = tokens.length;
    if (flags & TokenFlags.AtLineStart) this.directiveAt = kind === TokenKind.Punctuator && c === 35 ? index : -1;
    if (this.directiveAt >= 0) {
      if (index === this.directiveAt + 1 && kind === TokenKind.Identifier) this.directive(this.text.slice(start, end));
      else if (index === this.directiveAt + 2 && kind === TokenKind.Identifier && tokens[this.directiveAt + 1].text === 'define') {
        identifierHashes(this.text, start, end, hashScratch);
        this.definedHere.add(hashScratch[0]);
      }
      return -1;
    }
    if (kind !== TokenKind.Punctuator) return -1;
    if (c === 125 /* } */) this.depth = Math.max(0, this.depth - 1);
    if (c !== 123 /* { */) return -1;
    const skimmedEnd = this.depth === 0 && followsRecordTag(tokens, index) ? skimBody(this.text, start, this.skimming, this.definedHere) : -1;
    if (skimmedEnd === -1) this.depth++;
    return skimmedEnd;
  }

  private directive(name: string): void {
    // An included header may define any macro: from here on nothing is skimmed.
    if (name === 'include' || name === 'include_next' || name === 'import') this.on = false;
    else if (name === 'if' || name === 'ifdef' || name === 'ifndef') this.groupDepths.push(this.depth);
    else if ((name === 'else' || name === 'elif' || name === 'elifdef' || name === 'elifndef') && this.groupDepths.length > 0) {
      this.depth = this.groupDepths[this.groupDepths.length - 1];
    } else if (name === 'endif') this.groupDepths.pop();
  }
}

function scan(
  text: string,
  start: number,
  initialFlags: number,
  stop: ((offset: number, flags: number) => boolean) | undefined,
  skimming?: BodySkimming,
): { tokens: Token[]; stoppedAt?: number } {
  const tokens: Token[] = [];
  const length = text.length;
  let position = start;
  let flags: number = initialFlags;
  const fileScope = skimming ? new FileScopeTracker(text, skimming) : undefined;
  while (position < length) {
    const c = text.charCodeAt(position);
    // Whitespace and line structure.
    if (c === 10) {
      flags = TokenFlags.AtLineStart | TokenFlags.SpaceBefore;
      position++;
      continue;
    }
    if (c === 32 || c === 9 || c === 13 || c === 12 || c === 11) {
      flags |= TokenFlags.SpaceBefore;
      position++;
      continue;
    }
    if (c === 92 /* \ */) {
      const next = text.charCodeAt(position + 1);
      if (next === 10) {
        position += 2;
        flags |= TokenFlags.SpaceBefore;
        continue;
      }
      if (next === 13 && text.charCodeAt(position + 2) === 10) {
        position += 3;
        flags |= TokenFlags.SpaceBefore;
        continue;
      }
    }
    if (c === 47 /* / */) {
      const next = text.charCodeAt(position + 1);
      if (next === 47) {
        // A line comment ends at the newline, which still separates lines.
        const end = text.indexOf('\n', position);
        position = end === -1 ? length : end;
        flags |= TokenFlags.SpaceBefore;
        continue;
      }
      if (next === 42) {
        const end = text.indexOf('*/', position + 2);
        const stop = end === -1 ? length : end + 2;
        // Comments become one space before directives are recognised (translation phase 3), so a
        // block comment spanning lines does not end a directive: macros with commented bodies rely on it.
        position = stop;
        flags |= TokenFlags.SpaceBefore;
        continue;
      }
    }

    const start = position;
    if (stop !== undefined && stop(start, flags)) return { tokens, stoppedAt: start };
    let kind: TokenKind;
    if (isIdentifierStart(c)) {
      position++;
      while (position < length && isIdentifierPart(text.charCodeAt(position))) position++;
      const following = text.charCodeAt(position);
      if ((following === 34 || following === 39) && isEncodingPrefix(text, start, position)) {
        position = scanQuoted(text, position, following);
        kind = following === 34 ? TokenKind.String : TokenKind.Char;
      } else {
        kind = TokenKind.Identifier;
      }
    } else if (isDigit(c) || (c === 46 && isDigit(text.charCodeAt(position + 1)))) {
      position++;
      while (position < length) {
        const d = text.charCodeAt(position);
        if (d === 43 || d === 45 /* + - */) {
          const previous = text.charCodeAt(position - 1) | 32;
          if (previous === 101 || previous === 112 /* e p */) {
            position++;
            continue;
          }
          break;
        }
        if (isIdentifierPart(d) || d === 46) position++;
        else break;
      }
      kind = TokenKind.Number;
    } else if (c === 34 || c === 39) {
      position = scanQuoted(text, position, c);
      kind = c === 34 ? TokenKind.String : TokenKind.Char;
    } else if (c < 128 && PUNCTUATOR_START[c] === 1) {
      position += punctuatorLength(c, text.charCodeAt(position + 1), text.charCodeAt(position + 2));
      kind = TokenKind.Punctuator;
    } else {
      position++;
      kind = TokenKind.Other;
    }
    const skimmedEnd = fileScope ? fileScope.see(tokens, kind, c, start, position, flags) : -1;
    if (skimmedEnd !== -1) {
      tokens.push({ kind: TokenKind.Skimmed, text: text.slice(start, skimmedEnd), offset: start, flags });
      position = skimmedEnd;
      flags = 0;
      continue;
    }
    tokens.push({ kind, text: text.slice(start, position), offset: start, flags });
    flags = 0;
  }
  return { tokens };
}

function isEncodingPrefix(text: string, start: number, end: number): boolean {
  const length = end - start;
  if (length > 2) return false;
  const prefix = text.slice(start, end);
  return prefix === 'L' || prefix === 'u' || prefix === 'U' || prefix === 'u8';
}

/** End of a string or character literal starting at the quote; stops at an unescaped newline. */
function scanQuoted(text: string, quotePosition: number, quote: number): number {
  let position = quotePosition + 1;
  const length = text.length;
  while (position < length) {
    const c = text.charCodeAt(position);
    if (c === quote) return position + 1;
    if (c === 92) {
      position += 2;
      continue;
    }
    if (c === 10) return position;
    position++;
  }
  return position;
}

/** Offsets at which each line starts, for turning offsets into 1-based line numbers. */
export function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  return starts;
}

/** 1-based line of `offset`, by binary search over lineStarts(). */
export function lineOfOffset(starts: readonly number[], offset: number): number {
  // The last start at or before offset (the first line's, 0, when none is).
  return Math.max(
    1,
    partitionPoint(0, starts.length, (index) => starts[index] <= offset),
  );
}

/**
 * Turns tokens back into text, one space wherever the source had whitespace. A skimmed body is its
 * source text, comments removed (a `//` comment would swallow what follows once lines are joined).
 */
export function spell(tokens: readonly Token[]): string {
  let out = '';
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i];
    if (i > 0 && token.flags & TokenFlags.SpaceBefore) out += ' ';
    out += token.kind === TokenKind.Skimmed && token.text.includes('/') ? spell(unskim([token])) : token.text;
  }
  return out;
}
