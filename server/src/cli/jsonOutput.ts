/**
 * JSON output written in pieces, never built in memory as one string: the text is exactly
 * `JSON.stringify(value, null, 2)` followed by a newline, but the outer arrays and objects are
 * written member by member in chunks of about CHUNK_CHARACTERS, so a large report costs its own
 * memory and a buffer, not a second copy as text (a 2000 × 2000 shared-chain object once overflowed
 * V8's largest string, "Invalid string length"). Past a cap the output stops where it is, and the
 * caller says so on stderr: a report that large is a hostile input, not something to read.
 */
import type { CommandIo } from '../common/commandIo';

/** The most JSON one command writes: 256 MiB of text, far above any real object's report. */
export const JSON_OUTPUT_CAP_CHARACTERS = 256 * 1024 * 1024;

const CHUNK_CHARACTERS = 64 * 1024;

/** Containers this deep or deeper are written by JSON.stringify in one piece: they are small. */
const STREAMED_DEPTH = 6;

/** The sentence a command prints on stderr when writeJson stopped at the cap. */
export function jsonCapMessage(capCharacters: number): string {
  return `bpf-stack-lens: the JSON report is larger than ${Math.round(capCharacters / (1024 * 1024))} MiB: output stopped there, and the JSON written is incomplete\n`;
}

class CappedWriter {
  private buffer: string[] = [];
  private buffered = 0;
  written = 0;
  capped = false;

  constructor(
    private readonly write: (text: string) => void,
    private readonly cap: number,
  ) {}

  push(text: string): void {
    if (this.capped) return;
    if (this.written + this.buffered + text.length > this.cap) {
      // The text up to the cap is written, then nothing more.
      text = text.slice(0, Math.max(0, this.cap - this.written - this.buffered));
      this.capped = true;
    }
    this.buffer.push(text);
    this.buffered += text.length;
    if (this.buffered >= CHUNK_CHARACTERS) this.flush();
  }

  flush(): void {
    if (this.buffered === 0) return;
    const text = this.buffer.join('');
    this.buffer = [];
    this.written += this.buffered;
    this.buffered = 0;
    this.write(text);
  }
}

/** What JSON.stringify makes of a value before serialising it: toJSON() applied. */
function jsonValue(value: unknown, key: string): unknown {
  if (value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    return (value as { toJSON: (key: string) => unknown }).toJSON(key);
  }
  return value;
}

/** Whether JSON.stringify leaves a member with this value out of an object (and writes null in an array). */
function omitted(value: unknown): boolean {
  return value === undefined || typeof value === 'function' || typeof value === 'symbol';
}

function writeValue(out: CappedWriter, value: unknown, indent: string, depth: number): void {
  if (out.capped) return;
  if (value === null || typeof value !== 'object' || depth >= STREAMED_DEPTH) {
    // JSON text has no raw newline inside a string, so re-indenting a small subtree is a replace.
    out.push((JSON.stringify(value, null, 2) ?? 'null').replace(/\n/g, `\n${indent}`));
    return;
  }
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.length === 0) {
      out.push('[]');
      return;
    }
    out.push('[');
    for (let index = 0; index < value.length && !out.capped; index++) {
      out.push(index === 0 ? `\n${inner}` : `,\n${inner}`);
      const element = jsonValue(value[index], String(index));
      writeValue(out, omitted(element) ? null : element, inner, depth + 1);
    }
    out.push(`\n${indent}]`);
    return;
  }
  let first = true;
  for (const key of Object.keys(value)) {
    if (out.capped) return;
    const member = jsonValue((value as Record<string, unknown>)[key], key);
    if (omitted(member)) continue;
    out.push(`${first ? '{' : ','}\n${inner}${JSON.stringify(key)}: `);
    first = false;
    writeValue(out, member, inner, depth + 1);
  }
  out.push(first ? '{}' : `\n${indent}}`);
}

/**
 * Writes `JSON.stringify(value, null, 2)` and a newline to `io.stdout` in chunks. Returns false when
 * the text reached `capCharacters` and was cut there; the caller then prints jsonCapMessage() and
 * fails.
 */
export function writeJson(io: Pick<CommandIo, 'stdout'>, value: unknown, capCharacters = JSON_OUTPUT_CAP_CHARACTERS): boolean {
  const out = new CappedWriter((text) => io.stdout(text), capCharacters);
  const root = jsonValue(value, '');
  writeValue(out, omitted(root) ? null : root, '', 0);
  out.push('\n');
  out.flush();
  return !out.capped;
}

/** writeJson, and on the cap the message on stderr: true when the whole report was written. */
export function writeJsonReport(io: Pick<CommandIo, 'stdout' | 'stderr'>, value: unknown, capCharacters = JSON_OUTPUT_CAP_CHARACTERS): boolean {
  if (writeJson(io, value, capCharacters)) return true;
  io.stderr(jsonCapMessage(capCharacters));
  return false;
}
