/**
 * One C file with everything it includes: preprocessed with clang's BPF predefines, its headers
 * read through the header index, its own declarations parsed into the same type environment, and
 * its text rendered line-aligned for tree-sitter. This is the entry point of the source side.
 */
import { isRegularFile } from '../common/safeRead';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { tokenize, tokenizeUntil, TokenFlags, TokenKind } from './lexer';
import type { Token } from './lexer';
import { createPreprocessorState, expansionBudget, preprocessFile, renderAligned } from './preprocessor';
import type { AlignedText, MacroTable, PreprocessHandler, PreprocessorState } from './preprocessor';
import { DeclarationParser } from './declarations';
import type { DeclaredName } from './declarations';
import { DEFAULT_SYSTEM_INCLUDE_DIRS, HeaderIndex, readFileFromDisk, resolveInclude } from './headerIndex';
import type { HeaderFunctionSource, IncludeContext, IncludeSearch, ReadFile } from './headerIndex';
import { LayoutEngine } from './layout';
import { TypeEnvironment } from './types';
import { rewriteForTreeSitter } from './treeSitterTokens';
import type { Problem } from '../common/problem';

export interface TranslationUnitOptions {
  /** -I directories, searched before the system directories. */
  includeDirs?: readonly string[];
  /** -D definitions: `{ NAME: 'value' }` or `['NAME=value', 'FLAG']`. */
  defines?: Record<string, string> | readonly string[];
  /** Replaces DEFAULT_SYSTEM_INCLUDE_DIRS. */
  systemIncludeDirs?: readonly string[];
  /** How files are read (an editor passes one that prefers open buffers). */
  readFile?: ReadFile;
  /** The header index to use; by default one per process, persisted in the default cache dir. */
  index?: HeaderIndex;
  /** Keeps each file's include prefix analysed, for the next analysis of the same file. */
  cache?: TranslationUnitCache;
}

export interface IncludedHeader {
  spelled: string;
  /** Where it was found; undefined when it was not. */
  resolved?: string;
  fromFile: string;
  /** Offset of the #include directive in `fromFile`. */
  offset: number;
}

export interface TranslationUnit {
  file: string;
  /** The main file preprocessed, line for line, for tree-sitter. */
  aligned: AlignedText;
  /** The main file's tokens after preprocessing (offsets in the original file). */
  tokens: Token[];
  environment: TypeEnvironment;
  layout: LayoutEngine;
  /** Parses further declarations (local variables) against the file's types. */
  declarations: DeclarationParser;
  /** Functions, variables and typedefs the main file declares at file scope. */
  mainFileNames: DeclaredName[];
  /** The macro table at the end of the file. */
  macros: MacroTable;
  includes: IncludedHeader[];
  /** The included headers that define functions, preprocessed (their functions are estimated too). */
  headerSources: HeaderFunctionSource[];
  /** Parts of the main file skipped by #if, as [start, end) offsets. */
  inactiveRanges: [number, number][];
  /** Offsets are into the main file; problems in headers have the header and line in the message. */
  problems: Problem[];
  /**
   * A hash of everything besides the main file's text that the unit's meaning depends on: the
   * options (definitions, include directories), the content of every file read and the answer of
   * every existence probe. Equal keys and equal text give an equal unit.
   */
  dependencyKey: string;
  /** The header index's persistent cache directory (null: memory only), for other caches to sit beside it. */
  cacheDir: string | null;
  /** Macro expansion ran out of its budget (preprocessor.ts): why; the rest of the file was not expanded. */
  expansionCutShort?: string;
  /**
   * Milliseconds this analysis spent reading headers (0 when the include prefix was reused): the
   * rest of its time was the main file's own, which the estimate's parse budget counts.
   */
  headerMs: number;
}

let sharedIndex: HeaderIndex | undefined;

/** The process-wide header index, persisted under defaultCacheDir(). */
export function defaultHeaderIndex(): HeaderIndex {
  sharedIndex ??= new HeaderIndex();
  return sharedIndex;
}

/**
 * The main file up to the end of its last #include (its "include prefix"), analysed: the macro state,
 * the file-scope types (headers' and the prefix's own), what the prefix produced, and everything it
 * depended on. An analysis of a text that starts with the same prefix, with the same options, starts
 * from here, the types shared as the base of the rest of the file's scope.
 */
interface PrefixSnapshot {
  optionsKey: string;
  /** The include prefix's macro expansion ran out of its budget: why. */
  expansionCutShort: string | undefined;
  index: HeaderIndex;
  /** text.slice(0, splitOffset). */
  prefixText: string;
  /** Offset of the first token after the prefix (text.length when none). */
  splitOffset: number;
  /** That token's flags (what the lexer had seen before it). */
  splitFlags: number;
  /**
   * Whether a token followed the prefix: the rest of a text that starts with the prefix can then be
   * tokenized on its own. Otherwise only the same text again can reuse the prefix.
   */
  endsAtToken: boolean;
  sourceTokens: Token[];
  /** Frozen: nothing is declared in it after the prefix. */
  environment: TypeEnvironment;
  macros: MacroTable;
  onceFiles: Set<string>;
  counter: number;
  /** Tokens of a declaration the prefix left incomplete, for the rest of the file to complete. */
  pendingTokens: Token[];
  mainTokens: Token[];
  mainFileNames: DeclaredName[];
  includes: IncludedHeader[];
  headerSources: HeaderFunctionSource[];
  inactiveRanges: [number, number][];
  preprocessorProblems: Problem[];
  parserProblems: Problem[];
  /** Every file read and its text (undefined: unreadable), every existence probed and its answer. */
  reads: Map<string, string | undefined>;
  probes: Map<string, boolean>;
  /** The last text analysed from this snapshot, and its tokens after the prefix. */
  lastText?: string;
  lastRestTokens?: Token[];
  /** The hash of options, reads and probes, once computed. */
  dependencyKey?: string;
  /** Milliseconds spent inside #include directives. */
  headerMs: number;
}

/** The snapshot's options, every file it read (by content hash) and every probe it made, hashed once. */
function snapshotDependencyKey(snapshot: PrefixSnapshot): string {
  if (snapshot.dependencyKey !== undefined) return snapshot.dependencyKey;
  const hash = createHash('sha1');
  hash.update(snapshot.optionsKey);
  for (const [file, text] of snapshot.reads) hash.update(`\0r${file}\0${text === undefined ? '-' : snapshot.index.hashOf(file, text)}`);
  for (const [file, answer] of snapshot.probes) hash.update(`\0p${file}\0${answer ? 1 : 0}`);
  snapshot.dependencyKey = hash.digest('hex');
  return snapshot.dependencyKey;
}

/**
 * The tokens of `text` after the snapshot's prefix, re-tokenizing only around what changed since the
 * last text: tokens well before the first changed character are kept, and once tokenizing reaches a
 * token that starts where an old one started (shifted by the change in length) with the same flags,
 * in the unchanged tail, the rest are the old tokens, shifted.
 */
function tokenizeRest(snapshot: PrefixSnapshot, text: string): Token[] {
  const oldText = snapshot.lastText;
  const oldTokens = snapshot.lastRestTokens;
  if (oldText === undefined || oldTokens === undefined) return tokenize(text, snapshot.splitOffset, snapshot.splitFlags);
  if (oldText === text) return oldTokens;
  const shorter = Math.min(oldText.length, text.length);
  let changeStart = snapshot.splitOffset;
  while (changeStart < shorter && oldText.charCodeAt(changeStart) === text.charCodeAt(changeStart)) changeStart++;
  let common = 0;
  while (common < shorter - changeStart && oldText.charCodeAt(oldText.length - 1 - common) === text.charCodeAt(text.length - 1 - common)) common++;
  const oldChangeEnd = oldText.length - common;
  const delta = text.length - oldText.length;

  // Keep the tokens that end at least 3 characters before the change (a punctuator looks 2 ahead).
  let kept = 0;
  while (kept < oldTokens.length) {
    const token = oldTokens[kept];
    if (token.offset + token.text.length + 3 > changeStart) break;
    kept++;
  }
  const restart = kept > 0 ? oldTokens[kept - 1].offset + oldTokens[kept - 1].text.length : snapshot.splitOffset;
  const restartFlags = kept > 0 ? 0 : snapshot.splitFlags;
  let next = kept;
  const { tokens: middle, stoppedAt } = tokenizeUntil(text, restart, restartFlags, (offset, flags) => {
    const oldOffset = offset - delta;
    if (oldOffset < oldChangeEnd) return false;
    while (next < oldTokens.length && oldTokens[next].offset < oldOffset) next++;
    return next < oldTokens.length && oldTokens[next].offset === oldOffset && oldTokens[next].flags === flags;
  });
  const tokens = kept > 0 ? oldTokens.slice(0, kept) : [];
  for (const token of middle) tokens.push(token);
  if (stoppedAt !== undefined) {
    for (let index = next; index < oldTokens.length; index++) {
      const token = oldTokens[index];
      tokens.push(delta === 0 ? token : { kind: token.kind, text: token.text, offset: token.offset + delta, flags: token.flags });
    }
  }
  return tokens;
}

/**
 * What analyzeTranslationUnit keeps between analyses of the same files (one per open document, or
 * shared): each file's include prefix, so an edit below the includes re-reads only the rest.
 */
export class TranslationUnitCache {
  private readonly snapshots = new Map<string, PrefixSnapshot>();

  constructor(private readonly limit = 8) {}

  /** @internal */
  get(file: string): PrefixSnapshot | undefined {
    return this.snapshots.get(file);
  }

  /** @internal */
  set(file: string, snapshot: PrefixSnapshot): void {
    this.snapshots.delete(file);
    this.snapshots.set(file, snapshot);
    while (this.snapshots.size > this.limit) {
      const oldest = this.snapshots.keys().next().value;
      if (oldest === undefined) break;
      this.snapshots.delete(oldest);
    }
  }

  clear(): void {
    this.snapshots.clear();
  }
}

const INCLUDE_DIRECTIVES = new Set(['include', 'include_next', 'import']);

/**
 * Where the include prefix ends: the index of the first token after the last line, at conditional
 * depth 0, that ends an #include or the #if group holding one. 0 when there is no #include.
 */
function prefixEnd(tokens: readonly Token[]): number {
  let depth = 0;
  let split = 0;
  let sawInclude = false;
  const count = tokens.length;
  for (let index = 0; index < count; index++) {
    const token = tokens[index];
    if (!(token.flags & TokenFlags.AtLineStart) || token.text !== '#' || token.kind !== TokenKind.Punctuator) continue;
    let end = index + 1;
    while (end < count && !(tokens[end].flags & TokenFlags.AtLineStart)) end++;
    const directive = index + 1 < end ? tokens[index + 1].text : '';
    if (directive === 'if' || directive === 'ifdef' || directive === 'ifndef') depth++;
    else if (directive === 'endif') depth = Math.max(0, depth - 1);
    else if (INCLUDE_DIRECTIVES.has(directive)) sawInclude = true;
    if (depth === 0 && sawInclude) {
      split = end;
      sawInclude = false;
    }
    index = end - 1;
  }
  return split;
}

function normalizedDefines(defines: TranslationUnitOptions['defines']): string[] {
  if (!defines) return [];
  return [...(Array.isArray(defines) ? defines : Object.entries(defines).map(([name, value]) => `${name}=${value}`))];
}

/** Whether every file the prefix read reads the same, and every existence probe answers the same. */
function dependenciesUnchanged(snapshot: PrefixSnapshot, readFile: ReadFile, exists: (file: string) => boolean): boolean {
  for (const [file, answer] of snapshot.probes) if (exists(file) !== answer) return false;
  for (const [file, text] of snapshot.reads) if (readFile(file) !== text) return false;
  return true;
}

/** Preprocesses and reads the declarations of `text`, the content of `file`. Never throws on bad input. */
export function analyzeTranslationUnit(file: string, text: string, options: TranslationUnitOptions = {}): TranslationUnit {
  const absoluteFile = path.resolve(file);
  const index = options.index ?? defaultHeaderIndex();
  const defines = normalizedDefines(options.defines);
  const search = {
    includeDirs: (options.includeDirs ?? []).map((directory) => path.resolve(directory)),
    systemIncludeDirs: options.systemIncludeDirs ?? DEFAULT_SYSTEM_INCLUDE_DIRS,
  };
  const readFile = options.readFile ?? readFileFromDisk;
  const exists = isRegularFile;
  const optionsKey = JSON.stringify([defines, search.includeDirs, search.systemIncludeDirs]);

  // The include prefix: reused when the text still starts with it and nothing it read changed.
  const cache = options.cache;
  let snapshot = cache?.get(absoluteFile);
  let sourceTokens: Token[] | undefined;
  let headerMs = 0;
  if (
    !snapshot ||
    snapshot.optionsKey !== optionsKey ||
    snapshot.index !== index ||
    !(snapshot.endsAtToken ? text.startsWith(snapshot.prefixText) : text === snapshot.prefixText) ||
    !dependenciesUnchanged(snapshot, readFile, exists)
  ) {
    sourceTokens = tokenize(text);
    snapshot = analyzePrefix(absoluteFile, text, sourceTokens, prefixEnd(sourceTokens), defines, search, readFile, exists, index, optionsKey);
    headerMs = snapshot.headerMs;
    if (cache) cache.set(absoluteFile, snapshot);
  }
  const split = snapshot.sourceTokens.length;
  const restTokens = sourceTokens ? sourceTokens.slice(split) : snapshot.endsAtToken ? tokenizeRest(snapshot, text) : [];
  snapshot.lastText = text;
  snapshot.lastRestTokens = restTokens;

  // The rest of the file, in a scope on top of the prefix's.
  const state: PreprocessorState = {
    macros: new Map(snapshot.macros),
    onceFiles: new Set(snapshot.onceFiles),
    counter: snapshot.counter,
    budget: expansionBudget(),
  };
  const environment = new TypeEnvironment(undefined, snapshot.environment);
  const layout = new LayoutEngine(environment);
  const parserProblems: Problem[] = [];
  const declarations = new DeclarationParser(environment, parserProblems, layout);
  const mainFileNames: DeclaredName[] = [...snapshot.mainFileNames];
  const problems: Problem[] = [...snapshot.preprocessorProblems];
  const batches: Token[][] = [snapshot.mainTokens];
  // __has_include after the prefix: its probes are dependencies too.
  const restProbes: string[] = [];
  const handler: PreprocessHandler = {
    tokens: (batch) => {
      batches.push(batch);
      declarations.feed(batch);
    },
    // The prefix ends after the last #include: none is left.
    include: () => undefined,
    hasInclude: (request) => {
      const resolved = resolveInclude(request, search, exists);
      restProbes.push(`${request.angled ? '<' : '"'}${request.spelled}\0${resolved ?? ''}`);
      return resolved !== undefined;
    },
  };
  declarations.onDeclaredName = (declared) => mainFileNames.push(declared);
  if (snapshot.pendingTokens.length > 0) declarations.feed(snapshot.pendingTokens);
  const result = preprocessFile(absoluteFile, text, state, handler, problems, restTokens);
  declarations.finish();
  declarations.onDeclaredName = undefined;
  problems.push(...snapshot.parserProblems, ...parserProblems);
  problems.sort((a, b) => (a.offset ?? -1) - (b.offset ?? -1));
  const mainTokens = batches.length < 1000 ? ([] as Token[]).concat(...batches) : batches.flat();
  return {
    file: absoluteFile,
    aligned: renderAligned(text, rewriteForTreeSitter(mainTokens, declarations)),
    tokens: mainTokens,
    environment,
    layout,
    declarations,
    mainFileNames,
    macros: state.macros,
    includes: snapshot.includes,
    headerSources: snapshot.headerSources,
    inactiveRanges: [...snapshot.inactiveRanges, ...result.inactiveRanges],
    problems,
    dependencyKey:
      restProbes.length === 0
        ? snapshotDependencyKey(snapshot)
        : createHash('sha1').update(snapshotDependencyKey(snapshot)).update(restProbes.join('\n')).digest('hex'),
    cacheDir: index.cacheDir,
    headerMs,
    ...((snapshot.expansionCutShort ?? state.budget?.exhausted) !== undefined
      ? { expansionCutShort: snapshot.expansionCutShort ?? state.budget?.exhausted }
      : {}),
  };
}

/** Preprocesses and parses tokens[0, split) of the main file, with its headers, into a snapshot. */
function analyzePrefix(
  absoluteFile: string,
  text: string,
  tokens: Token[],
  split: number,
  defines: string[],
  search: IncludeSearch,
  readFile: ReadFile,
  exists: (file: string) => boolean,
  index: HeaderIndex,
  optionsKey: string,
): PrefixSnapshot {
  // The include prefix (headers) has its own budget; the rest of the file gets a fresh one.
  const state = { ...createPreprocessorState(defines), budget: expansionBudget() };
  const environment = new TypeEnvironment();
  const layout = new LayoutEngine(environment);
  const parserProblems: Problem[] = [];
  const declarations = new DeclarationParser(environment, parserProblems, layout);
  const mainFileNames: DeclaredName[] = [];
  const preprocessorProblems: Problem[] = [];
  const reads = new Map<string, string | undefined>();
  const probes = new Map<string, boolean>();
  const context: IncludeContext = {
    state,
    parser: declarations,
    search,
    readFile: (header) => {
      const content = readFile(header);
      reads.set(header, content);
      return content;
    },
    exists: (candidate) => {
      const answer = exists(candidate);
      probes.set(candidate, answer);
      return answer;
    },
    problems: preprocessorProblems,
    includes: [],
    functionSources: [],
  };
  const mainTokens: Token[] = [];
  const handler = index.handlerFor(context, (batch) => {
    for (const token of batch) mainTokens.push(token);
    declarations.feed(batch);
  });
  // Names are collected only while the main file's own declarations are parsed.
  const collectMainFileNames = (declared: DeclaredName) => mainFileNames.push(declared);
  let headerMs = 0;
  const wrappedHandler: PreprocessHandler = {
    ...handler,
    include: (request) => {
      const started = performance.now();
      declarations.finish();
      declarations.onDeclaredName = undefined;
      const parserProblemsBefore = parserProblems.length;
      handler.include(request);
      parserProblems.splice(parserProblemsBefore);
      declarations.onDeclaredName = collectMainFileNames;
      headerMs += performance.now() - started;
    },
  };
  declarations.onDeclaredName = collectMainFileNames;
  const prefixTokens = tokens.slice(0, split);
  const result = preprocessFile(absoluteFile, text, state, wrappedHandler, preprocessorProblems, prefixTokens);
  declarations.onDeclaredName = undefined;
  const splitOffset = split < tokens.length ? tokens[split].offset : text.length;
  return {
    optionsKey,
    index,
    prefixText: text.slice(0, splitOffset),
    splitOffset,
    splitFlags: split < tokens.length ? tokens[split].flags : TokenFlags.AtLineStart,
    endsAtToken: split < tokens.length,
    sourceTokens: prefixTokens,
    environment,
    macros: state.macros,
    onceFiles: state.onceFiles,
    counter: state.counter,
    pendingTokens: declarations.takePending(),
    mainTokens,
    mainFileNames,
    includes: context.includes,
    headerSources: uniqueSources(context.functionSources ?? []),
    inactiveRanges: result.inactiveRanges,
    expansionCutShort: state.budget.exhausted,
    preprocessorProblems,
    parserProblems,
    reads,
    probes,
    headerMs,
  };
}

/** Each header's functions once: a header without a guard included twice defines them twice over. */
function uniqueSources(sources: readonly HeaderFunctionSource[]): HeaderFunctionSource[] {
  const seen = new Set<string>();
  return sources.filter((source) => {
    if (seen.has(source.file)) return false;
    seen.add(source.file);
    return true;
  });
}
