/**
 * The driver: every function definition of the main file and of the headers that define functions
 * is walked (walker.ts) or taken from the walk cache (walkCache.ts), placed at its row, and the
 * whole set resolved by the inliner (inlining.ts) into one estimate per function.
 */
import { createHash } from 'node:crypto';
import type { Node, Tree } from '../parser';
import type { TranslationUnit } from '../translationUnit';
import type { CType } from '../types';
import { type FileContext, constantReturns, externVariables, fileConstants, prototypeSections } from './constants';
import { resolveFunctions } from './inlining';
import type { FunctionEstimate, RawFunction } from './model';
import { type FrameEstimateCache, codeKey } from './walkCache';
import { type TimeBudget, readFunction } from './walker';

/** Milliseconds the walk of one file's functions may take by default (see FrameEstimateOptions.deadline). */
export const FRAME_TIME_BUDGET_MS = 10_000;

export interface FrameEstimateOptions {
  /**
   * performance.now() after which functions are no longer walked: the estimate is then partial
   * (FrameEstimates.partial says so). By default FRAME_TIME_BUDGET_MS from the call.
   */
  deadline?: number;
  /** The clock the deadline is read on: performance.now by default; a test's counts calls instead. */
  now?: () => number;
}

export interface FrameEstimates {
  functions: FunctionEstimate[];
  /** Set when the time budget ran out: what was not walked, as a sentence for the problems. */
  partial?: string;
}

/**
 * Estimates the frame of every function defined in the main file and in the headers that define
 * functions (unit.headerSources). `tree` must be tree-sitter's parse of `unit.aligned.text`, and
 * headerTrees[i], when given, that of unit.headerSources[i].text. `cache` keeps the walks (and, when
 * it is persistent, writes them to disk); null walks everything afresh and keeps nothing.
 */
export function estimateFrames(
  unit: TranslationUnit,
  tree: Tree,
  cache: FrameEstimateCache | null,
  headerTrees: readonly Tree[] = [],
  options: FrameEstimateOptions = {},
): FrameEstimates {
  const sources = [
    { file: undefined, text: unit.aligned.text, tree },
    ...headerTrees
      .slice(0, unit.headerSources.length)
      .map((headerTree, index) => ({ file: unit.headerSources[index].file, text: unit.headerSources[index].text, tree: headerTree })),
  ];
  const parsed = sources.map((source) => {
    const topLevel = source.tree.rootNode.namedChildren.filter((node): node is Node => node !== null);
    return { ...source, topLevel, definitions: topLevel.filter((node) => node.type === 'function_definition') };
  });
  const globalTypes = new Map<string, CType>();
  for (const declared of unit.mainFileNames)
    if (!declared.isTypedef && !declared.isFunctionDefinition && declared.type.k !== 'function') globalTypes.set(declared.name, declared.type);
  const contexts = parsed.map(({ text, topLevel, definitions }) => {
    const context: FileContext = {
      unit,
      text,
      globals: fileConstants(unit, topLevel),
      declaredSections: prototypeSections(topLevel),
      globalTypes,
      externVariables: externVariables(topLevel),
    };
    context.constantReturns = constantReturns(definitions, context);
    return context;
  });
  // A caller's walk depends on what its callees return, which their bodies say: part of the key.
  const signature = cache ? fileScopeSignature(unit, parsed[0].text, parsed[0].definitions, contexts) : '';
  const store = cache?.diskStoreFor(unit);
  const now = options.now ?? (() => performance.now());
  const budget: TimeBudget = { deadline: options.deadline ?? now() + FRAME_TIME_BUDGET_MS, exhausted: false, now };

  const raws: RawFunction[] = [];
  const stored: [string, number][] = [];
  const walks = new Map<string, RawFunction>();
  const total = parsed.reduce((sum, source) => sum + source.definitions.length, 0);
  let visited = 0;
  let cutShort: string | undefined;
  for (const [at, { file, text, definitions }] of parsed.entries()) {
    const context = contexts[at];
    for (const definition of definitions) {
      if (!budget.exhausted && now() > budget.deadline) budget.exhausted = true;
      if (budget.exhausted) break;
      visited++;
      const row = definition.startPosition.row;
      const key = cache ? `${signature}\0${file ?? ''}\0${text.slice(definition.startIndex, definition.endIndex)}` : '';
      let raw = cache ? cachedWalk(cache, store, key) : undefined;
      if (!raw) {
        raw = readFunction(context, definition, row, budget);
        if (raw && file !== undefined) raw.file = file;
        if (raw?.partial) cutShort = raw.name;
        else if (raw && cache) cache.set(key, raw);
      }
      if (!raw) continue;
      raws.push(rebase(raw, row));
      if (store) {
        stored.push([key, row]);
        walks.set(key, raw);
      }
    }
  }
  // A partial estimate is never the file's stored state: the next process walks it again.
  if (store && !budget.exhausted) store.update(unit, stored, walks);
  const functions = resolveFunctions(raws);
  if (!budget.exhausted) return { functions };
  const left = total - visited;
  const what = [
    cutShort !== undefined ? `${cutShort} was walked only in part` : undefined,
    left > 0 ? `${left} more function${left === 1 ? ' was' : 's were'} not walked` : undefined,
  ]
    .filter(Boolean)
    .join(' and ');
  return { functions, partial: `the frame estimate of ${unit.file} ran out of time${what ? `: ${what}` : ''}, so this estimate is partial` };
}

/**
 * Everything a function's walk depends on besides its own text: the file-scope declarations of the
 * main file (types, constants; function bodies excluded), what its functions are known to return,
 * the content of the headers and files the unit read, the options, and the code.
 */
function fileScopeSignature(unit: TranslationUnit, text: string, definitions: readonly Node[], contexts: readonly FileContext[]): string {
  const hash = createHash('sha1');
  for (const context of contexts) {
    for (const [name, known] of context.constantReturns ?? []) hash.update(`${name}=${known.value}:${known.unsigned}:${known.deadness}\0`);
    hash.update('\0');
  }
  hash.update(codeKey());
  hash.update('\0');
  hash.update(unit.file);
  hash.update('\0');
  hash.update(unit.dependencyKey);
  let from = 0;
  for (const definition of definitions) {
    const body = definition.childForFieldName('body');
    if (!body) continue;
    hash.update(text.slice(from, body.startIndex));
    from = body.endIndex;
  }
  hash.update(text.slice(from));
  return hash.digest('hex');
}

/** A walk from memory, or from disk (then kept in memory too), counted as a hit or a miss. */
function cachedWalk(cache: FrameEstimateCache, store: ReturnType<FrameEstimateCache['diskStoreFor']>, key: string): RawFunction | undefined {
  const raw = cache.get(key);
  if (raw || !store) return raw;
  const stored = store.get(key);
  if (stored) {
    cache.misses--;
    cache.hits++;
    cache.diskHits++;
    cache.set(key, stored);
  }
  return stored;
}

/**
 * The estimate of every function of the unit's file straight from the cache, without a syntax tree,
 * when the file was estimated before (in this process or, from disk, an earlier one) with the same
 * preprocessed text and the same headers, options and code. Undefined otherwise.
 */
export function estimateFramesFromCache(unit: TranslationUnit, cache: FrameEstimateCache | null): FunctionEstimate[] | undefined {
  if (!cache) return undefined;
  const found = cache.diskStoreFor(unit)?.wholeFile(unit);
  if (!found) return undefined;
  cache.hits += found.length;
  cache.diskHits += found.length;
  return resolveFunctions(found.map(([raw, row]) => rebase(raw, row)));
}

/** The last placement of each cached walk: an edit elsewhere in the file leaves most functions where they were. */
const placements = new WeakMap<RawFunction, { row: number; placed: RawFunction }>();

/** A cached walk (lines relative to the definition's first row) placed at `row`; nothing downstream changes it. */
function rebase(raw: RawFunction, row: number): RawFunction {
  const last = placements.get(raw);
  if (last?.row === row) return last.placed;
  const placed = {
    ...raw,
    line: raw.line + row,
    ownItems: raw.ownItems.map((item) => ({ ...item, line: item.line + row })),
    rawCalls: raw.rawCalls.map((call) => ({ ...call, line: call.line + row })),
    helperCalls: raw.helperCalls.map((call) => ({ ...call, line: call.line + row })),
    tailCalls: raw.tailCalls.map((tail) => ({ ...tail, line: tail.line + row })),
  };
  placements.set(raw, { row, placed });
  return placed;
}
