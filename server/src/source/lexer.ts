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
export function tokenize(text: string, start = 0, initialFlags: number = TokenFlags.AtLineStart): Token[] {
  return scan(text, start, initialFlags, undefined).tokens;
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

function scan(
  text: string,
  start: number,
  initialFlags: number,
  stop: ((offset: number, flags: number) => boolean) | undefined,
): { tokens: Token[]; stoppedAt?: number } {
  const tokens: Token[] = [];
  const length = text.length;
  let position = start;
  let flags: number = initialFlags;
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

/** Turns tokens back into text, one space wherever the source had whitespace. */
export function spell(tokens: readonly Token[]): string {
  let out = '';
  for (let i = 0; i < tokens.length; i++) {
    if (i > 0 && tokens[i].flags & TokenFlags.SpaceBefore) out += ' ';
    out += tokens[i].text;
  }
  return out;
}
