/**
 * The header index: every header a translation unit includes is read once, and what it declares
 * (records, typedefs, enums, enumerators) and what it does to the macro table are kept, in memory
 * and on disk, keyed by the hash of the header's content. Reopening a file that includes vmlinux.h
 * then costs a JSON read instead of preprocessing and parsing 2.8 MB of C.
 *
 * A header's meaning depends on the macros defined when it is included (BPF_NO_GLOBAL_DATA changes
 * bpf_printk, an include guard empties a second inclusion), so an entry also records which of those
 * macros could matter: every macro defined at entry whose name occurs in the header or the headers it
 * includes (tested with a Bloom filter of their identifiers), with its definition. An entry is reused
 * only when those definitions are the same again and no file it read has changed.
 *
 * Read cold, a header's tagged records are kept as their text, their bodies skimmed by the lexer
 * rather than tokenized (lexer.ts BodySkimming), and parsed when first looked up (a file uses a few
 * dozen of vmlinux.h's ten thousand); the cache stores them as their C source. A header wholly inside
 * an include guard that is already defined is not read again at all.
 */
import { isRegularFile, readRegularFile } from '../common/safeRead';
import { isAscii } from 'node:buffer';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { identifierHashes, lineOfOffset, lineStarts, tokenize, TokenFlags, TokenKind, unskim } from './lexer';
import type { Token } from './lexer';
import { definitionsFromText, preprocessFile, renderAligned } from './preprocessor';
import type { IncludeRequest, Macro, PreprocessHandler, PreprocessorState } from './preprocessor';
import type { DeclarationParser } from './declarations';
import type { Declarations, TypeEnvironment } from './types';
import { emptyDeclarations, isDeferred } from './types';
import { runningKernelVmlinuxHeader } from './runningKernelHeader';
import { clangResourceIncludeDir } from './clangResourceDir';
import { rewriteForTreeSitter } from './treeSitterTokens';
import type { Problem } from '../common/problem';

/** Bumped whenever the persisted shape or the parser's output changes, so old entries are ignored. */
// 16: deferred records spelled from skimmed bodies (their source text, comments included).
// 17: headers' function sources with attributes before initializers moved for tree-sitter.
// 18: token batches no longer end at conditionals (a macro's arguments may span one).
const CACHE_FORMAT_VERSION = 18;
const MAX_VARIANTS_PER_HEADER = 8;
/** How often one header may be open inside itself before its self-inclusion is taken for a mistake. */
const MAX_SELF_INCLUDES = 8;

/**
 * Where <...> headers are searched after the -I directories, in clang -target bpf's order (its
 * resource directory before /usr/include), then Debian's multiarch folder, which BPF builds on
 * Debian pass with -I for <asm/types.h>.
 */
export const DEFAULT_SYSTEM_INCLUDE_DIRS: readonly string[] = [
  '/usr/local/include',
  ...[clangResourceIncludeDir()].filter((directory): directory is string => directory !== undefined),
  '/usr/include',
  '/usr/include/x86_64-linux-gnu',
];

export function defaultCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'bpf-stack-lens');
}

export interface IncludeSearch {
  includeDirs: readonly string[];
  systemIncludeDirs: readonly string[];
}

/** A file system seen through a callback, so that an editor's unsaved buffers can stand in for files. */
export type ReadFile = (file: string) => string | undefined;

/** A header named by an #include may be a FIFO or /dev/zero: only regular files within the cap are read. */
export const readFileFromDisk: ReadFile = (file) => {
  const read = readRegularFile(file);
  return 'bytes' in read ? decodeText(read.bytes) : undefined;
};

/**
 * Reads files from disk, keeping each one's text while its size and mtime stay the same: checking a
 * 5 MB vmlinux.h again costs a stat, and the same string comes back, so comparing it with the text
 * seen before is immediate.
 */
export class StatCheckedFiles {
  private readonly files = new Map<string, { size: number; mtimeMs: number; text: string }>();

  readonly read: ReadFile = (file) => {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(file);
    } catch {
      this.files.delete(file);
      return undefined;
    }
    const known = this.files.get(file);
    if (known && known.size === stat.size && known.mtimeMs === stat.mtimeMs) return known.text;
    const text = readFileFromDisk(file);
    if (text === undefined) this.files.delete(file);
    else this.files.set(file, { size: stat.size, mtimeMs: stat.mtimeMs, text });
    return text;
  };

  clear(): void {
    this.files.clear();
  }
}

/** UTF-8 text from bytes; ASCII (all of vmlinux.h and the index's files, usually) without decoding. */
function decodeText(bytes: Buffer): string {
  return isAscii(bytes) ? bytes.toString('latin1') : bytes.toString('utf8');
}

/**
 * Finds a header the way clang does: "..." first beside the including file, then every -I
 * directory, then the system directories; <...> skips the first step; #include_next continues
 * after the directory the including file was found in.
 */
export function resolveInclude(request: IncludeRequest, search: IncludeSearch, exists: (file: string) => boolean): string | undefined {
  if (path.isAbsolute(request.spelled)) return exists(request.spelled) ? request.spelled : undefined;
  const directories: string[] = [];
  if (!request.angled && !request.next) directories.push(path.dirname(request.fromFile));
  directories.push(...search.includeDirs, ...search.systemIncludeDirs);
  let start = 0;
  if (request.next) {
    const fromDirectory = path.dirname(request.fromFile);
    const index = directories.findIndex(
      (directory) => path.resolve(directory, request.spelled) === path.resolve(fromDirectory, request.spelled) || path.resolve(directory) === fromDirectory,
    );
    start = index === -1 ? 0 : index + 1;
  }
  for (let i = start; i < directories.length; i++) {
    const candidate = path.resolve(directories[i], request.spelled);
    if (exists(candidate)) return candidate;
  }
  return undefined;
}

/** An include request as the cache records it: what was asked, from where (the offset does not matter). */
function resolutionKey(request: IncludeRequest): string {
  return JSON.stringify([request.spelled, request.angled, request.next, request.fromFile]);
}

/** A Bloom filter over identifiers: 2^20 bits, 3 probes, about 1.5 % false positives at vmlinux.h's ~100k names. */
class IdentifierFilter {
  static readonly BITS = 1 << 20;
  readonly bits: Uint8Array;

  constructor(bits?: Uint8Array) {
    this.bits = bits ?? new Uint8Array(IdentifierFilter.BITS / 8);
  }

  static fromBase64(text: string): IdentifierFilter {
    return new IdentifierFilter(new Uint8Array(Buffer.from(text, 'base64')));
  }

  toBase64(): string {
    return Buffer.from(this.bits).toString('base64');
  }

  /**
   * The three bits of an identifier from its two hashes (lexer.ts identifierHashes), in a buffer
   * shared by every call (a header's quarter of a million identifiers would otherwise each allocate
   * an array); the third probe is derived from both (Kirsch–Mitzenmacher).
   */
  private static probes(h1: number, h2: number): Uint32Array {
    const mask = IdentifierFilter.BITS - 1;
    const probes = IdentifierFilter.scratch;
    probes[0] = h1 & mask;
    probes[1] = h2 & mask;
    probes[2] = (h1 + Math.imul(h2, 3)) & mask;
    return probes;
  }

  private static probesOf(name: string): Uint32Array {
    identifierHashes(name, 0, name.length, IdentifierFilter.hashes);
    return IdentifierFilter.probes(IdentifierFilter.hashes[0], IdentifierFilter.hashes[1]);
  }

  private static readonly hashes = new Uint32Array(2);
  private static readonly scratch = new Uint32Array(3);

  add(name: string): void {
    this.set(IdentifierFilter.probesOf(name));
  }

  /** Adds the identifier whose identifierHashes() are h1 and h2. */
  addHashes(h1: number, h2: number): void {
    this.set(IdentifierFilter.probes(h1, h2));
  }

  private set(probes: Uint32Array): void {
    for (let i = 0; i < 3; i++) this.bits[probes[i] >>> 3] |= 1 << (probes[i] & 7);
  }

  mightContain(name: string): boolean {
    const probes = IdentifierFilter.probesOf(name);
    for (let i = 0; i < 3; i++) if (!(this.bits[probes[i] >>> 3] & (1 << (probes[i] & 7)))) return false;
    return true;
  }

  addAll(other: IdentifierFilter): void {
    for (let i = 0; i < this.bits.length; i++) this.bits[i] |= other.bits[i];
  }
}

/** One header's meaning under one macro environment, as persisted (the declarations apart). */
interface HeaderEntry {
  version: number;
  file: string;
  contentHash: string;
  includeSearchKey: string;
  /** Hash of the entry macros that the header's identifiers could see. */
  environmentKey: string;
  identifierFilter: string;
  /** Every file read, this one included, with its content hash. */
  files: [string, string][];
  /**
   * Every #include and __has_include resolved while reading it, with where each led ('' for
   * nowhere): a header added earlier on the search path, or one that appears, changes its meaning.
   */
  resolutions: [string, string][];
  /** Net effect on the macro table: `#define` lines to replay and names to #undef. */
  defines: string[];
  undefines: string[];
  onceFiles: string[];
  problems: string[];
  /** The headers that define functions (this one and those it includes), preprocessed, in include order. */
  functionSources: HeaderFunctionSource[];
  /** The header's include guard, when it has one (see includeGuard). */
  guard?: string;
}

/**
 * A header that defines functions (static inline helpers, pyperf.h's programs, usdt.bpf.h's global
 * functions), preprocessed as it was included and rendered line for line like the main file, for
 * tree-sitter: its functions are frames and programs as much as the main file's.
 */
export interface HeaderFunctionSource {
  file: string;
  text: string;
}

/**
 * An entry's declarations as the cache file holds them, one a line, `name<TAB>value`: records,
 * enums, typedefs (value: JSON), then enumerators and helper ids (value: decimal). `start` and `end` are offsets
 * into the file's text; `counts` says how many lines each kind takes.
 */
interface EncodedDeclarations {
  text: string;
  start: number;
  end: number;
  counts: [records: number, enums: number, typedefs: number, constants: number, helpers: number];
}

interface StoredEntry extends HeaderEntry {
  /** Where the declarations are, relative to the first line after the entries' line. */
  body: [start: number, end: number];
  counts: EncodedDeclarations['counts'];
}

interface LoadedEntry {
  entry: HeaderEntry;
  filter: IdentifierFilter;
  /** Parsed now (a header read cold) or still encoded (read from disk), never both. */
  declarations?: Declarations;
  encoded?: EncodedDeclarations;
}

/** Replays declarations still encoded: each definition stays JSON text until it is first looked up. */
function mergeEncoded(environment: TypeEnvironment, encoded: EncodedDeclarations): void {
  const text = encoded.text;
  let position = encoded.start;
  const [records, enums, typedefs, constants, helpers] = encoded.counts;
  const total = records + enums + typedefs + constants + helpers;
  for (let line = 0; line < total && position < encoded.end; line++) {
    let newline = text.indexOf('\n', position);
    if (newline === -1 || newline > encoded.end) newline = encoded.end;
    const tab = text.indexOf('\t', position);
    if (tab !== -1 && tab < newline) {
      const name = text.slice(position, tab);
      const value = text.slice(tab + 1, newline);
      if (line < records) environment.defineRecord(name, value);
      else if (line < records + enums) environment.defineEnum(name, value);
      else if (line < records + enums + typedefs) environment.defineTypedef(name, value);
      else if (line < records + enums + typedefs + constants) environment.defineStoredConstant(name, value);
      else environment.defineHelper(name, value);
    }
    position = newline + 1;
  }
}

/** C source on one line of the cache file: a backslash-newline inside a token is spliced out, as clang would. */
function oneLine(text: string): string {
  return text.replace(/\\\r?\n/g, '').replace(/[\r\n]/g, ' ');
}

/** The lines mergeEncoded reads back. */
function encodeDeclarations(declarations: Declarations): string {
  const lines: string[] = [];
  const json = (value: object | string) => (typeof value === 'string' ? value : isDeferred(value) ? oneLine(value.text()) : JSON.stringify(value));
  for (const [tag, def] of declarations.records) lines.push(`${tag}\t${json(def)}`);
  for (const [tag, def] of declarations.enums) lines.push(`${tag}\t${json(def)}`);
  for (const [name, def] of declarations.typedefs) lines.push(`${name}\t${json(def)}`);
  for (const [name, value] of declarations.constants) lines.push(`${name}\t${value}`);
  for (const [name, id] of declarations.helpers) lines.push(`${name}\t${id}`);
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}

/** A header being read cold: what it, and the headers it includes, add up to so far. */
interface RecordingFrame {
  filter: IdentifierFilter;
  files: Map<string, string>;
  resolutions: Map<string, string>;
  onceFiles: Set<string>;
  problems: string[];
  functionSources: HeaderFunctionSource[];
}

/** What one translation unit gives the index to work with. */
export interface IncludeContext {
  state: PreprocessorState;
  parser: DeclarationParser;
  search: IncludeSearch;
  readFile: ReadFile;
  /** Whether a file exists, for include resolution; fs.existsSync when absent. */
  exists?: (file: string) => boolean;
  problems: Problem[];
  /** Every header included, in order, with where it resolved to. */
  includes: { spelled: string; resolved?: string; fromFile: string; offset: number }[];
  /** Receives the headers that define functions, in include order. */
  functionSources?: HeaderFunctionSource[];
}

export interface HeaderIndexOptions {
  /** Directory for the persistent cache; null keeps the index in memory only. */
  cacheDir?: string | null;
  /**
   * Where "vmlinux.h" is on no include path, use the running kernel's, generated from its BTF
   * (runningKernelHeader.ts); true unless set to false.
   */
  runningKernelVmlinux?: boolean;
}

export interface HeaderIndexStatistics {
  memoryHits: number;
  diskHits: number;
  misses: number;
  /** Includes of a header whose include guard was defined already: skipped without reading it. */
  guardSkips: number;
}

/** Include resolution finds regular files only: a directory or a device named like a header is no header. */
function existsOnDisk(file: string): boolean {
  return isRegularFile(file);
}

function hashText(text: string): string {
  return createHash('sha1').update(text).digest('hex');
}

function macroDefinitionLine(macro: Macro): string {
  // An object-like macro's body may start with '(' too: only a function-like one is written without the space.
  return `#define ${macro.name}${macro.params ? '' : ' '}${macro.spelling}`;
}

export class HeaderIndex {
  readonly cacheDir: string | null;
  readonly statistics: HeaderIndexStatistics = { memoryHits: 0, diskHits: 0, misses: 0, guardSkips: 0 };
  /** The include guard of each header that has one, by content hash (see includeGuard). */
  private readonly guards = new Map<string, string>();
  private readonly entries = new Map<string, LoadedEntry[]>();
  private readonly frames: RecordingFrame[] = [];
  private readonly hashes = new Map<string, { text: string; hash: string }>();

  private readonly runningKernelVmlinux: boolean;

  constructor(options: HeaderIndexOptions = {}) {
    this.cacheDir = options.cacheDir === undefined ? defaultCacheDir() : options.cacheDir;
    this.runningKernelVmlinux = options.runningKernelVmlinux ?? true;
  }

  /** Drops the in-memory entries (the disk cache stays). */
  clearMemory(): void {
    this.entries.clear();
    this.hashes.clear();
  }

  /** The handler a preprocessFile() call uses for its includes within one translation unit. */
  handlerFor(context: IncludeContext, onTokens: (batch: Token[]) => void): PreprocessHandler {
    return {
      tokens: onTokens,
      include: (request) => this.include(request, context),
      hasInclude: (request) => this.resolve(request, context).resolved !== undefined,
    };
  }

  /** Processes one #include: replays the header from the index, or reads it and indexes it. */
  include(request: IncludeRequest, context: IncludeContext): void {
    const { resolved, note } = this.resolve(request, context);
    if (resolved && this.openCount(resolved) >= MAX_SELF_INCLUDES) {
      // An unguarded header that includes itself only ends at clang's depth limit, an error there;
      // each level would be read and cached again, so stop early.
      this.reportProblem(context, request, `'${request.spelled}' includes itself ${MAX_SELF_INCLUDES} levels deep without a guard: not read further`);
      return;
    }
    context.includes.push({ spelled: request.spelled, resolved, fromFile: request.fromFile, offset: request.offset });
    if (!resolved) {
      this.reportProblem(context, request, `'${request.spelled}' file not found${note ? ` (${note})` : ''}`);
      return;
    }
    if (note) this.reportProblem(context, request, note);
    if (context.state.onceFiles.has(resolved)) return;
    const text = context.readFile(resolved);
    if (text === undefined) {
      this.reportProblem(context, request, `cannot read ${resolved}`);
      return;
    }
    // The includer's complete declarations are parsed first, so that they are not recorded as the header's.
    context.parser.finish();
    const contentHash = this.contentHash(resolved, text);
    const guard = this.guards.get(contentHash);
    if (guard !== undefined && context.state.macros.has(guard)) {
      // Wholly inside #ifndef GUARD, with GUARD defined: including it again does nothing (clang's
      // multiple-include optimisation; vmlinux.h is included twice by many programs, once through
      // a helper header). The headers being read depend on that macro and on this file still.
      for (const frame of this.frames) {
        frame.filter.add(guard);
        frame.files.set(resolved, contentHash);
      }
      this.statistics.guardSkips++;
      return;
    }
    const searchKey = hashText(JSON.stringify([context.search.includeDirs, context.search.systemIncludeDirs]));
    const reusable = this.findEntry(resolved, contentHash, searchKey, context);
    if (reusable) {
      this.replay(reusable, context);
      return;
    }
    this.statistics.misses++;
    try {
      this.indexHeader(resolved, text, contentHash, searchKey, context);
    } catch (error) {
      // Headers that include each other hundreds of levels deep exhaust the stack before any limit.
      if (!(error instanceof RangeError)) throw error;
      this.reportProblem(context, request, `'${request.spelled}' nests includes too deeply to read (the stack ran out)`);
    }
  }

  /** How many of the headers being read right now are `file`. */
  private openCount(file: string): number {
    let count = 0;
    for (const frame of this.frames) if (frame.files.keys().next().value === file) count++;
    return count;
  }

  /**
   * Where an include leads: the search path, and for a "vmlinux.h" found nowhere the running
   * kernel's (with a note saying so, or why there is none).
   */
  private resolve(request: IncludeRequest, context: IncludeContext): { resolved?: string; note?: string } {
    const result = this.resolveUnrecorded(request, context);
    // Every header being read depends on where this include led, and on where it did not.
    const key = resolutionKey(request);
    for (const frame of this.frames) frame.resolutions.set(key, result.resolved ?? '');
    return result;
  }

  private resolveUnrecorded(request: IncludeRequest, context: IncludeContext): { resolved?: string; note?: string } {
    const resolved = resolveInclude(request, context.search, context.exists ?? existsOnDisk);
    if (resolved || !this.runningKernelVmlinux || request.spelled !== 'vmlinux.h') return { resolved };
    const header = runningKernelVmlinuxHeader(this.cacheDir);
    if ('reason' in header) return { note: header.reason };
    return { resolved: header.path, note: `'vmlinux.h' is on no include path: using the running kernel's, ${header.description}` };
  }

  /** The content hash of `text`, read from `file`: free when the index has hashed that text already. */
  hashOf(file: string, text: string): string {
    return this.contentHash(file, text);
  }

  /** The hash of a header's text, remembered for the text last seen at that path (vmlinux.h is 5 MB). */
  private contentHash(file: string, text: string): string {
    const known = this.hashes.get(file);
    if (known && known.text === text) return known.hash;
    const hash = hashText(text);
    this.hashes.set(file, { text, hash });
    return hash;
  }

  private reportProblem(context: IncludeContext, request: IncludeRequest, message: string): void {
    if (this.frames.length === 0) {
      context.problems.push({ message, offset: request.offset });
    } else {
      const text = `${request.fromFile}: ${message}`;
      // The headers around the innermost one take its problems when it is done.
      this.frames[this.frames.length - 1].problems.push(text);
      context.problems.push({ message: text });
    }
  }

  private environmentKey(filter: IdentifierFilter, macros: Map<string, Macro>): string {
    const seen: string[] = [];
    for (const [name, macro] of macros) if (filter.mightContain(name)) seen.push(`${name}${macro.spelling}`);
    seen.sort();
    return hashText(seen.join('\n'));
  }

  private findEntry(file: string, contentHash: string, searchKey: string, context: IncludeContext): LoadedEntry | undefined {
    let candidates = this.entries.get(contentHash);
    let fromDisk = false;
    if (!candidates) {
      candidates = this.loadFromDisk(contentHash);
      fromDisk = candidates.length > 0;
      this.entries.set(contentHash, candidates);
    }
    for (const candidate of candidates) {
      const entry = candidate.entry;
      if (entry.file !== file || entry.includeSearchKey !== searchKey) continue;
      if (this.environmentKey(candidate.filter, context.state.macros) !== entry.environmentKey) continue;
      if (!this.filesUnchanged(entry, context) || !this.resolutionsUnchanged(entry, context)) continue;
      if (fromDisk) this.statistics.diskHits++;
      else this.statistics.memoryHits++;
      return candidate;
    }
    return undefined;
  }

  private filesUnchanged(entry: HeaderEntry, context: IncludeContext): boolean {
    for (const [file, hash] of entry.files) {
      if (file === entry.file) continue;
      const text = context.readFile(file);
      if (text === undefined || this.contentHash(file, text) !== hash) return false;
    }
    return true;
  }

  private resolutionsUnchanged(entry: HeaderEntry, context: IncludeContext): boolean {
    for (const [key, resolved] of entry.resolutions) {
      const [spelled, angled, next, fromFile] = JSON.parse(key) as [string, boolean, boolean, string];
      const now = this.resolveUnrecorded({ spelled, angled, next, fromFile, offset: 0 }, context).resolved ?? '';
      if (now !== resolved) return false;
    }
    return true;
  }

  private replay(loaded: LoadedEntry, context: IncludeContext): void {
    const entry = loaded.entry;
    if (entry.guard !== undefined) this.guards.set(entry.contentHash, entry.guard);
    if (loaded.declarations) context.parser.environment.merge(loaded.declarations);
    else if (loaded.encoded) mergeEncoded(context.parser.environment, loaded.encoded);
    const replayProblems: Problem[] = [];
    definitionsFromText(entry.defines.join('\n'), context.state, replayProblems);
    for (const name of entry.undefines) context.state.macros.delete(name);
    for (const file of entry.onceFiles) context.state.onceFiles.add(file);
    for (const message of entry.problems) context.problems.push({ message });
    context.functionSources?.push(...entry.functionSources);
    for (const frame of this.frames) {
      frame.filter.addAll(loaded.filter);
      for (const [file, hash] of entry.files) frame.files.set(file, hash);
      for (const [key, resolved] of entry.resolutions) frame.resolutions.set(key, resolved);
      for (const file of entry.onceFiles) frame.onceFiles.add(file);
      frame.functionSources.push(...entry.functionSources);
    }
    // The headers around the innermost one take its problems when it is done.
    this.frames[this.frames.length - 1]?.problems.push(...entry.problems);
  }

  private indexHeader(file: string, text: string, contentHash: string, searchKey: string, context: IncludeContext): void {
    const entryMacros = new Map(context.state.macros);
    const declarations = emptyDeclarations();
    const frame: RecordingFrame = {
      filter: new IdentifierFilter(),
      files: new Map([[file, contentHash]]),
      resolutions: new Map(),
      onceFiles: new Set(),
      problems: [],
      functionSources: [],
    };
    // The header's own tokens after preprocessing (not those of the headers it includes).
    // Kept as the batches the preprocessor gave (vmlinux.h's is one of half a million tokens), not copied.
    const ownBatches: Token[][] = [];
    // Record bodies are skimmed (lexer.ts BodySkimming): their identifiers go to the filter as hashes.
    const macroHashes = new Set<number>();
    const scratch = new Uint32Array(2);
    for (const name of context.state.macros.keys()) {
      identifierHashes(name, 0, name.length, scratch);
      macroHashes.add(scratch[0]);
    }
    const tokens = tokenize(text, 0, TokenFlags.AtLineStart, {
      mayNameMacro: (hash) => macroHashes.has(hash),
      noteIdentifier: (h1, h2) => frame.filter.addHashes(h1, h2),
    });
    for (const token of tokens) if (token.kind === TokenKind.Identifier) frame.filter.add(token.text);
    const guard = includeGuard(tokens);
    if (guard !== undefined) this.guards.set(contentHash, guard);
    const environment = context.parser.environment;
    environment.recorders.push(declarations);
    this.frames.push(frame);
    const headerProblems: Problem[] = [];
    // A header's records are read when the file first uses them (DeclarationParser.deferRecords).
    const deferRecords = context.parser.deferRecords;
    context.parser.deferRecords = true;
    try {
      const handler = this.handlerFor(context, (batch) => {
        ownBatches.push(batch);
        context.parser.feed(batch);
      });
      const parserProblemsBefore = context.parser.problems.length;
      preprocessFile(file, text, context.state, handler, headerProblems, tokens);
      context.parser.finish();
      if (definesFunction(ownBatches)) {
        const source = { file, text: renderAligned(text, rewriteForTreeSitter(unskim(ownBatches.flat()), context.parser)).text };
        frame.functionSources.push(source);
        context.functionSources?.push(source);
      }
      // Declaration problems inside the header carry offsets into the header: say where in words.
      const parserProblems = context.parser.problems.splice(parserProblemsBefore);
      headerProblems.push(...parserProblems);
    } finally {
      context.parser.deferRecords = deferRecords;
      this.frames.pop();
      environment.recorders.pop();
    }
    if (context.state.onceFiles.has(file)) frame.onceFiles.add(file);
    // Line numbers only for problems: vmlinux.h has 130,000 lines and, usually, no problem.
    const starts = headerProblems.length > 0 ? lineStarts(text) : [];
    for (const problem of headerProblems) {
      const where = problem.offset !== undefined ? `${file}:${lineOfOffset(starts, problem.offset)}` : file;
      frame.problems.push(`${where}: ${problem.message}`);
    }
    for (const message of frame.problems.slice(frame.problems.length - headerProblems.length)) context.problems.push({ message });

    const defines: string[] = [];
    const undefines: string[] = [];
    for (const [name, macro] of context.state.macros) {
      if (entryMacros.get(name) !== macro) defines.push(macroDefinitionLine(macro));
    }
    for (const name of entryMacros.keys()) if (!context.state.macros.has(name)) undefines.push(name);

    const entry: HeaderEntry = {
      version: CACHE_FORMAT_VERSION,
      file,
      contentHash,
      includeSearchKey: searchKey,
      environmentKey: this.environmentKey(frame.filter, entryMacros),
      identifierFilter: '',
      files: [...frame.files],
      resolutions: [...frame.resolutions],
      defines,
      undefines,
      onceFiles: [...frame.onceFiles],
      problems: frame.problems,
      functionSources: frame.functionSources,
      ...(guard !== undefined ? { guard } : {}),
    };
    const loaded: LoadedEntry = { entry, filter: frame.filter, declarations };
    const variants = this.entries.get(contentHash) ?? [];
    variants.unshift(loaded);
    if (variants.length > MAX_VARIANTS_PER_HEADER) variants.length = MAX_VARIANTS_PER_HEADER;
    this.entries.set(contentHash, variants);
    this.saveToDisk(contentHash, variants);
    // The enclosing headers being recorded now depend on everything this one read.
    for (const outer of this.frames) {
      outer.filter.addAll(frame.filter);
      for (const [name, hash] of frame.files) outer.files.set(name, hash);
      for (const [key, resolved] of frame.resolutions) outer.resolutions.set(key, resolved);
      for (const once of frame.onceFiles) outer.onceFiles.add(once);
      outer.functionSources.push(...frame.functionSources);
    }
    // Problems go one level up only: that header hands them on when it is done.
    this.frames[this.frames.length - 1]?.problems.push(...frame.problems);
  }

  private entryPath(contentHash: string): string | undefined {
    if (!this.cacheDir) return undefined;
    return path.join(this.cacheDir, `headers-v${CACHE_FORMAT_VERSION}`, `${contentHash}.idx`);
  }

  /**
   * A cache file is one line of JSON (the entries without their declarations), then the entries'
   * declarations one a line (see EncodedDeclarations): reading vmlinux.h's entry back is one short
   * JSON.parse and a scan for line ends, and a record's definition is parsed only when looked up.
   */
  private loadFromDisk(contentHash: string): LoadedEntry[] {
    const file = this.entryPath(contentHash);
    if (!file) return [];
    // Another index of this process may still hold the file's newest content.
    const pending = pendingSaves.get(file);
    if (pending) {
      pendingSaves.delete(file);
      pending();
    }
    try {
      const text = decodeText(fs.readFileSync(file));
      const firstLineEnd = text.indexOf('\n');
      if (firstLineEnd === -1) return [];
      const stored = JSON.parse(text.slice(0, firstLineEnd)) as StoredEntry[];
      if (!Array.isArray(stored)) return [];
      const bodyStart = firstLineEnd + 1;
      return stored
        .filter((entry) => entry.version === CACHE_FORMAT_VERSION && entry.contentHash === contentHash && bodyStart + entry.body[1] <= text.length)
        .map(({ body, counts, ...entry }) => ({
          entry,
          filter: IdentifierFilter.fromBase64(entry.identifierFilter),
          encoded: { text, start: bodyStart + body[0], end: bodyStart + body[1], counts },
        }));
    } catch {
      // A missing or corrupt cache file is a cache miss, nothing more.
      return [];
    }
  }

  /**
   * Writes the header's entries soon, not now: encoding and writing vmlinux.h's entry takes a fifth
   * of a cold estimate, which the user waits for, while the file only serves the next process. The
   * write happens when the process is idle, at exit, or before any index of this process reads the
   * cache; a later save of the same header replaces a pending one.
   */
  private saveToDisk(contentHash: string, variants: LoadedEntry[]): void {
    const file = this.entryPath(contentHash);
    if (!file) return;
    pendingSaves.set(file, () => this.writeToDisk(file, variants));
    if (!saveAtExit) {
      saveAtExit = true;
      process.once('exit', writePendingSaves);
    }
    if (!saveTimer) {
      saveTimer = setTimeout(writePendingSaves, SAVE_DELAY_MS);
      saveTimer.unref();
    }
  }

  private writeToDisk(file: string, variants: LoadedEntry[]): void {
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      const bodies: string[] = [];
      let offset = 0;
      const stored = variants.map(({ entry, filter, declarations, encoded }): StoredEntry => {
        let body: string;
        let counts: EncodedDeclarations['counts'];
        if (encoded) {
          body = encoded.text.slice(encoded.start, encoded.end);
          counts = encoded.counts;
        } else {
          const parsed = declarations ?? emptyDeclarations();
          body = encodeDeclarations(parsed);
          counts = [parsed.records.length, parsed.enums.length, parsed.typedefs.length, parsed.constants.length, parsed.helpers.length];
        }
        bodies.push(body);
        const start = offset;
        offset += body.length;
        return { ...entry, identifierFilter: filter.toBase64(), body: [start, offset], counts };
      });
      // Write then rename, so that a concurrent reader never sees half a file.
      const temporary = `${file}.${process.pid}.tmp`;
      fs.writeFileSync(temporary, `${JSON.stringify(stored)}\n${bodies.join('')}`);
      fs.renameSync(temporary, file);
    } catch {
      // The cache is an optimisation: a read-only or full disk must not break analysis.
    }
  }
}

/** Header entries waiting to be written, by cache file (see HeaderIndex.saveToDisk). */
const pendingSaves = new Map<string, () => void>();
let saveTimer: NodeJS.Timeout | undefined;
let saveAtExit = false;
const SAVE_DELAY_MS = 500;

/** Writes every pending header entry now. */
export function writePendingSaves(): void {
  if (saveTimer) clearTimeout(saveTimer);
  saveTimer = undefined;
  const saves = [...pendingSaves.values()];
  pendingSaves.clear();
  for (const save of saves) save();
}

/**
 * The macro that guards a header, when the whole file is one `#ifndef NAME` ... `#endif` group with
 * no #else or #elif at its level and nothing outside it: a later include with NAME defined then
 * yields nothing at all, whatever else is defined.
 */
export function includeGuard(tokens: readonly Token[]): string | undefined {
  const isDirectiveStart = (index: number) => {
    const token = tokens[index];
    return token.kind === TokenKind.Punctuator && token.text === '#' && (token.flags & TokenFlags.AtLineStart) !== 0;
  };
  if (tokens.length < 5 || !isDirectiveStart(0) || tokens[1].text !== 'ifndef' || tokens[2].kind !== TokenKind.Identifier) return undefined;
  if (!(tokens[3].flags & TokenFlags.AtLineStart)) return undefined;
  let depth = 0;
  for (let index = 0; index < tokens.length; index++) {
    if (!isDirectiveStart(index) || index + 1 >= tokens.length || tokens[index + 1].flags & TokenFlags.AtLineStart) continue;
    const directive = tokens[index + 1].text;
    if (directive === 'if' || directive === 'ifdef' || directive === 'ifndef') depth++;
    else if (depth === 1 && (directive === 'else' || directive === 'elif' || directive === 'elifdef' || directive === 'elifndef')) return undefined;
    else if (directive === 'endif' && --depth === 0) {
      // The guard's #endif must end the file: nothing but the rest of its own line after it.
      for (let rest = index + 2; rest < tokens.length; rest++) if (tokens[rest].flags & TokenFlags.AtLineStart) return undefined;
      return tokens[2].text;
    }
  }
  return undefined;
}

/**
 * Whether preprocessed tokens hold a function definition: a `{` at file scope right after a `)` (a
 * parameter list, or the attribute that follows one). A struct or initializer brace follows a name,
 * `struct` or `=`. Most headers (vmlinux.h) define none and are never handed to tree-sitter.
 */
function definesFunction(batches: readonly (readonly Token[])[]): boolean {
  let depth = 0;
  let previous: Token | undefined;
  for (const tokens of batches) {
    for (let index = 0; index < tokens.length; index++) {
      const token = tokens[index];
      const before = previous;
      previous = token;
      if (token.kind !== TokenKind.Punctuator) continue;
      if (token.text === '{') {
        if (depth === 0 && before?.text === ')') return true;
        depth++;
      } else if (token.text === '}') depth = Math.max(0, depth - 1);
    }
  }
  return false;
}
