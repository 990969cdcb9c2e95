/**
 * The source side's frame estimate: for every function the main file defines (and the headers it
 * includes: their static inline helpers, pyperf.h's programs, usdt.bpf.h's global functions), the
 * stack bytes its locals take, read from the preprocessed text as tree-sitter parses it and measured
 * with the file's own types.
 *
 * The model:
 *   - aggregates (structs, unions, arrays) always live on the stack; scalars and pointers live in
 *     registers unless their address is taken (`&x`), they are volatile, or they are an asm operand
 *     that may be memory ("g", "m": __sink()). A parameter whose address is taken is copied to the
 *     stack for the whole body. A compound literal whose address is taken (`&(int){0}`), or an array
 *     one, is an object of its block. A zero-length array still takes a byte (a slot);
 *   - every such local is a stack object of its type's size and alignment, live from its declaration
 *     (an uninitialised struct or array: from its first use, as StackColoring starts lifetimes)
 *     to the end of its block (clang's lifetime markers are scope-based; a variable whose address
 *     escapes into a call therefore lives to the end of its block, which is the conservative choice);
 *   - objects whose lifetimes do not overlap share space the way LLVM's StackColoring merges them:
 *     slots sorted by size, largest first, each later slot folded into the first one it never
 *     overlaps. Sibling blocks and two inlined copies of a callee called one after the other share;
 *     the remaining slots are laid out in order with natural alignment and the total is rounded up to
 *     whole 8-byte slots, as the verifier counts them;
 *   - code behind a constant condition is not counted: `if (0)` after macro expansion, an enumerator
 *     or a `const` global with an initialiser is removed by clang; a `const volatile` global is kept
 *     by clang but frozen in .rodata by libbpf, so the verifier knows its value and never walks the
 *     other branch. The estimate takes the initialiser as that value: a loader that writes the
 *     skeleton's rodata before load changes it, and the estimate cannot know. Calls in code that only
 *     the verifier proves dead are still in the object: check_max_stack_depth walks them, so they stay
 *     in the call graph, marked `dead`;
 *   - code after a return/break/continue/goto in the same block (and no label) is dead too;
 *   - `static` locals live in .rodata/.data and cost nothing;
 *   - after macro expansion bpf_printk's on-stack format is `char ____fmt[] = "..."` (BPF_NO_GLOBAL_DATA
 *     or a hand-written macro) and its argument array is `unsigned long long ___param[N]`: they are
 *     reported as 'printk-format' and 'printk-args';
 *   - a function that is always_inline, or static or global (not __weak) and only ever called
 *     directly, is inlined — unless it is static, called from several places and large, which
 *     clang's inliner keeps out of line (OUT_OF_LINE_NODES): each call adds its stack objects to
 *     the caller's (with their lifetimes, so they are colored with the caller's), and its calls and
 *     tail calls become the caller's. noinline, weak
 *     and callback functions are frames of their own. A SEC() on the prototype (libbpf's BPF_PROG
 *     family) makes the definition a program;
 *   - SROA: a struct, array or scalar whose address only goes to inlined callees that dereference
 *     it at constant offsets (and whose members and elements are only read and written at constant
 *     offsets) is split into registers and takes no stack; one whose address reaches a helper, an
 *     out-of-line function or anything else stays;
 *   - a `__naked` function's frame is its asm's: the deepest `r10 - N` it addresses, and the
 *     functions it calls through `call %[f]` with `__imm(f)`;
 *   - sizeof, _Alignof and _Static_assert operands are never evaluated: `&x` there takes no address;
 *     `typeof(x)` of a volatile x declares a volatile (on the stack) too;
 *   - what the verifier adds to the printed depth after the check is reported apart, as hidden bytes:
 *     an inlined bpf_loop (flags a known 0, a function as callback) adds 24 bytes, may_goto
 *     (can_loop/cond_break) 16 bytes on x86-64 with the timed may_goto.
 *
 * Not modelled: clang keeping a memcpy'd struct, an array indexed in a loop it unrolls, or the used
 * elements of a small volatile array in registers, spills of values kept across calls.
 *
 * Incremental use: the walk of each function is cached by its text and the types and constants it
 * could see, so re-estimating a file after a one-line edit re-walks one function.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { hiddenSlots } from '../rules/report';
import type { Node, Tree } from './parser';
import { tokenize } from './lexer';
import type { TranslationUnit } from './translationUnit';
import type { CType } from './types';
import { typeToString } from './types';
import { expressionType } from './expressionType';
import { decodeTypeofPlaceholders, typeofOperandName } from './treeSitterTokens';
import { parseIntegerLiteral, stringLiteralBytes } from './constExpr';
import { packageFile } from './packageRoot';

export type FrameItemKind = 'local' | 'printk-format' | 'printk-args' | 'inlined';

export interface FrameItem {
  what: FrameItemKind;
  name: string;
  type: string;
  /** Bytes on the stack: the size rounded up to 8-byte slots. */
  bytes: number;
  /** 1-based line in the main file. */
  line: number;
  /** The object shares its slots with this item's (their lifetimes do not overlap). */
  sharedWith?: string;
  /** The 1-based line of the item named by `sharedWith`, which may share its name with others (two printks' `____fmt`). */
  sharedWithLine?: number;
  /**
   * What the frame loses without this object: the frame colored and laid out again without its
   * slots, so 0 for one that only reuses another's slots. Absent for frames too large to recolor per item.
   */
  freesBytes?: number;
}

/** A call out of a function, as written (inlined callees' calls are already folded in). */
export interface SourceCall {
  callee: string;
  kind: 'call' | 'callback';
  /** The call passes the callee to bpf_timer_set_callback (or a wq): it runs later, on its own. */
  async: boolean;
  line: number;
  column: number;
  /**
   * In code the verifier proves dead (a `const volatile` switch): the call is in the object, so the
   * stack check walks it, but the callee is never entered from here.
   */
  dead?: boolean;
}

export interface FunctionFrame {
  name: string;
  /**
   * The header that defines the function (its line, items and calls are in that file); absent for
   * the main file's functions.
   */
  file?: string;
  /** 1-based line of the function's name. */
  line: number;
  /** The SEC("...") name, null for functions that are not programs. */
  section: string | null;
  /** Inlined into its callers: its bytes count in their frames, not as a frame of its own. */
  inline: boolean;
  /** The depth check_max_stack_depth judges (8-byte slots, shared slots counted once). */
  frameBytes: number;
  /**
   * When the frame may be larger than `frameBytes`, which counts the locals only: the upper bound,
   * with what clang may add (spills of a long function under high register pressure). Absent when
   * the estimate has no reason to doubt its number.
   */
  upTo?: number;
  /** Why `upTo` is there, in words for a hover ("long function with high register pressure"). */
  uncertainty?: string;
  items: FrameItem[];
  /** Bytes the verifier adds to the printed depth after the check (not judged): bpf_loop, may_goto. */
  hiddenBytes: number;
  /** Why, one reason per addition. */
  hiddenReasons: string[];
}

/** What the call graph builder needs besides the frame. */
export interface FunctionEstimate extends FunctionFrame {
  isStatic: boolean;
  isGlobal: boolean;
  noinline: boolean;
  alwaysInline: boolean;
  /** Calls of functions that are frames of their own, in source order, inlined callees' included. */
  calls: SourceCall[];
  /** Lines/columns of bpf_tail_call / bpf_tail_call_static, inlined callees' included (dead code too). */
  tailCalls: { line: number; column: number }[];
  /** Live code calls bpf_throw (a call, or bpf_assert's `call bpf_throw` in asm), inlined callees' included. */
  throws: boolean;
  /** The function `__exception_cb(name)` names as this program's exception callback. */
  exceptionCallback?: string;
  /** What the register allocator faces: syntax nodes and live calls of the body, inlined callees' included. */
  pressure: { nodes: number; calls: number };
}

const TAIL_CALL_HELPERS = new Set(['bpf_tail_call', 'bpf_tail_call_static']);
const ASYNC_CALLBACK_HELPERS = new Set(['bpf_timer_set_callback', 'bpf_wq_set_callback', 'bpf_wq_set_callback_impl']);

/** How dead a piece of code is: not at all, to the verifier only, or to clang already. */
const LIVE = 0;
const LOAD_DEAD = 1;
const COMPILE_DEAD = 2;
type Deadness = typeof LIVE | typeof LOAD_DEAD | typeof COMPILE_DEAD;

/** A stack object with its lifetime, in the function's program points. */
interface Slot {
  item: number;
  size: number;
  align: number;
  start: number;
  end: number;
  /**
   * SROA: clang splits the object into registers when each of these calls (callee, argument index),
   * the only ones its address goes to, is inlined and the callee's parameter is only dereferenced at
   * constant offsets. Empty: nothing takes its address, it is always split. Absent: it stays.
   */
  sroa?: [callee: string, argument: number][];
}

interface RawCall extends SourceCall {
  point: number;
  deadness: Deadness;
}

/** One function as walked, independent of its neighbours (lines relative to `baseRow`). */
interface RawFunction {
  /** The header that defines it; undefined for the main file. */
  file?: string;
  name: string;
  line: number;
  section: string | null;
  isStatic: boolean;
  noinline: boolean;
  alwaysInline: boolean;
  /** __weak: another object may replace it, so clang never inlines it. */
  weak: boolean;
  ownItems: FrameItem[];
  slots: Slot[];
  /** Number of program points the body takes. */
  points: number;
  /** Direct calls of identifiers and callbacks taken by address, in evaluation order. */
  rawCalls: RawCall[];
  tailCalls: { line: number; column: number; deadness: Deadness }[];
  bpfLoopInlined: boolean;
  mayGoto: boolean;
  throws: boolean;
  exceptionCallback?: string;
  /** Syntax nodes of the body: the size clang's inliner weighs (see OUT_OF_LINE_NODES). */
  bodyNodes: number;
  /**
   * Per parameter: the calls the pointer is passed on to when it is otherwise only dereferenced at
   * constant offsets (see Slot.sroa), null when it is used any other way.
   */
  sroaParameters: ([callee: string, argument: number][] | null)[];
}

/** Rounds up to whole 8-byte stack slots. */
export function roundToSlots(bytes: number): number {
  return Math.ceil(bytes / 8) * 8;
}

function roundUp(value: number, multiple: number): number {
  return Math.ceil(value / Math.max(1, multiple)) * Math.max(1, multiple);
}

/**
 * Walks of functions kept between estimates of the same files: an entry is reused when the function's
 * text, its place and everything outside function bodies that could change its meaning are the same.
 * Safe to share between files and concurrent callers (every use is synchronous).
 *
 * Beside the memory, walks persist on disk next to the header index (when it has a cache directory),
 * one file per main file: a new process re-walks only the functions that changed, and when nothing
 * did, the estimate needs no syntax tree at all (see estimateFramesFromCache).
 */
export class FrameEstimateCache {
  private readonly entries = new Map<string, RawFunction>();
  hits = 0;
  misses = 0;
  /** Walks found on disk rather than in memory (counted among the hits). */
  diskHits = 0;

  constructor(
    private readonly limit = 20000,
    /** Whether walks are also read from and written to the disk cache (the shared cache's are). */
    readonly persistent = false,
  ) {}

  get(key: string): RawFunction | undefined {
    const entry = this.entries.get(key);
    if (entry) {
      // Refresh its place in the LRU order.
      this.entries.delete(key);
      this.entries.set(key, entry);
      this.hits++;
    } else this.misses++;
    return entry;
  }

  set(key: string, raw: RawFunction): void {
    this.entries.set(key, raw);
    while (this.entries.size > this.limit) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }

  clear(): void {
    this.entries.clear();
  }
}

const sharedCache = new FrameEstimateCache(20000, true);

/** The process-wide cache estimateFrames uses by default. */
export function defaultFrameEstimateCache(): FrameEstimateCache {
  return sharedCache;
}

/** Bumped whenever RawFunction's shape changes. The code key below covers changes of the walker itself. */
const FRAME_CACHE_FORMAT = 4;
const FLUSH_DELAY_MS = 2000;

let codeKeyValue: string | undefined;

/**
 * What the walks' code is: the size and mtime of every module beside this one (the source side, or
 * the whole bundle) and of the C grammar, so that a rebuilt or upgraded extension never reuses walks
 * an older one stored.
 */
function codeKey(): string {
  if (codeKeyValue !== undefined) return codeKeyValue;
  const parts = [`v${FRAME_CACHE_FORMAT}`];
  const describe = (file: string) => {
    try {
      const stat = fs.statSync(file);
      parts.push(`${path.basename(file)}:${stat.size}:${stat.mtimeMs}`);
    } catch {
      parts.push(`${path.basename(file)}:-`);
    }
  };
  try {
    for (const name of fs.readdirSync(__dirname).sort()) if (name.endsWith('.js')) describe(path.join(__dirname, name));
  } catch {
    parts.push('?');
  }
  describe(packageFile('grammars', 'tree-sitter-c.wasm'));
  codeKeyValue = parts.join('\n');
  return codeKeyValue;
}

interface StoredFrames {
  format: number;
  code: string;
  file: string;
  /** The whole-file key of the last estimate, and its functions' keys and first rows, in order. */
  fileKey: string;
  functions: [key: string, row: number][];
  entries: [key: string, raw: RawFunction][];
}

/**
 * The walks of one main file's functions on disk: loaded on first use, written back shortly after a
 * change and at exit. Keys on disk are hashes of the in-memory keys, computed when written, so that an
 * estimate after an edit costs no hashing.
 */
class FrameDiskStore {
  /** As loaded: the whole-file key, the functions' disk keys and rows, the walks by disk key. */
  private fileKey = '';
  private functions: [string, number][] = [];
  private entries = new Map<string, RawFunction>();
  /** The last estimate, not yet written: its unit's key parts and its walks by in-memory key. */
  private pending: { unit: WholeFileKeyParts; functions: [string, number][]; walks: Map<string, RawFunction> } | undefined;

  constructor(
    readonly file: string,
    private readonly mainFile: string,
  ) {
    try {
      const stored = JSON.parse(fs.readFileSync(file, 'utf8')) as StoredFrames;
      if (stored.format !== FRAME_CACHE_FORMAT || stored.code !== codeKey() || stored.file !== mainFile || !Array.isArray(stored.entries)) return;
      this.fileKey = stored.fileKey;
      this.functions = stored.functions;
      this.entries = new Map(stored.entries);
    } catch {
      // No cache file, or a corrupt one: nothing stored.
    }
  }

  /** A walk stored under the in-memory key `key`. */
  get(key: string): RawFunction | undefined {
    return this.entries.size === 0 ? undefined : this.entries.get(diskKey(key));
  }

  /** The walks of the file's functions with their rows, when `unit` is the unit last stored. */
  wholeFile(unit: TranslationUnit): [RawFunction, number][] | undefined {
    this.flushPending();
    if (this.fileKey === '' || this.fileKey !== wholeFileKey(unit)) return undefined;
    const found: [RawFunction, number][] = [];
    for (const [key, row] of this.functions) {
      const raw = this.entries.get(key);
      if (!raw) return undefined;
      found.push([raw, row]);
    }
    return found;
  }

  /** Records the walks of the file's functions as last estimated (written later). */
  update(unit: TranslationUnit, functions: [string, number][], walks: Map<string, RawFunction>): void {
    // Only the strings the key needs: the unit itself (types, tokens) is not kept alive.
    this.pending = { unit: { file: unit.file, dependencyKey: unit.dependencyKey, aligned: { text: unit.aligned.text } }, functions, walks };
    scheduleFlush();
  }

  /** Folds the pending estimate into the stored state; true when that changed it. */
  private flushPending(): boolean {
    const pending = this.pending;
    if (!pending) return false;
    this.pending = undefined;
    const fileKey = wholeFileKey(pending.unit);
    if (fileKey === this.fileKey) return false;
    const entries = new Map<string, RawFunction>();
    for (const [key, raw] of pending.walks) entries.set(diskKey(key), raw);
    // Older walks are kept too, a few, newest first.
    const keep = Math.max(64, pending.walks.size * 3);
    const old = [...this.entries];
    for (let index = old.length - 1; index >= 0 && entries.size < keep; index--) if (!entries.has(old[index][0])) entries.set(old[index][0], old[index][1]);
    this.entries = new Map([...entries].reverse());
    this.fileKey = fileKey;
    this.functions = pending.functions.map(([key, row]) => [diskKey(key), row]);
    return true;
  }

  flush(): void {
    if (!this.flushPending()) return;
    try {
      fs.mkdirSync(path.dirname(this.file), { recursive: true });
      const stored: StoredFrames = { format: FRAME_CACHE_FORMAT, code: codeKey(), file: this.mainFile, fileKey: this.fileKey, functions: this.functions, entries: [...this.entries] };
      const temporary = `${this.file}.${process.pid}.tmp`;
      fs.writeFileSync(temporary, JSON.stringify(stored));
      fs.renameSync(temporary, this.file);
    } catch {
      // The cache is an optimisation: a read-only or full disk must not break estimates.
    }
  }
}

function diskKey(memoryKey: string): string {
  return createHash('sha1').update(memoryKey).digest('hex');
}

const diskStores = new Map<string, FrameDiskStore>();
let flushTimer: NodeJS.Timeout | undefined;
let flushAtExit = false;

function flushDiskStores(): void {
  if (flushTimer) clearTimeout(flushTimer);
  flushTimer = undefined;
  for (const store of diskStores.values()) store.flush();
}

function scheduleFlush(): void {
  if (!flushAtExit) {
    flushAtExit = true;
    process.once('exit', flushDiskStores);
  }
  if (flushTimer) return;
  flushTimer = setTimeout(flushDiskStores, FLUSH_DELAY_MS);
  flushTimer.unref();
}

function diskStoreFor(unit: TranslationUnit, cache: FrameEstimateCache): FrameDiskStore | undefined {
  if (!cache.persistent || !unit.cacheDir) return undefined;
  const file = path.join(unit.cacheDir, `frames-v${FRAME_CACHE_FORMAT}`, `${createHash('sha1').update(unit.file).digest('hex')}.json`);
  let store = diskStores.get(file);
  if (!store) {
    store = new FrameDiskStore(file, unit.file);
    diskStores.set(file, store);
  }
  return store;
}

type WholeFileKeyParts = { file: string; dependencyKey: string; aligned: { text: string } };

/** The key of the whole file's estimate: its preprocessed text and everything else the unit depends on. */
function wholeFileKey(unit: WholeFileKeyParts): string {
  return createHash('sha1').update(codeKey()).update('\0').update(unit.file).update('\0').update(unit.dependencyKey).update('\0').update(unit.aligned.text).digest('hex');
}

/** Writes all stores that changed now, rather than shortly or at exit. */
export function flushFrameEstimateCache(): void {
  flushDiskStores();
}

/** Writes all stores that changed and forgets the ones loaded, so the next use reads the disk as a new process would. For tests. */
export function reloadFrameEstimateCache(): void {
  flushDiskStores();
  diskStores.clear();
}

/**
 * The estimate of every function of the unit's file straight from the cache, without a syntax tree,
 * when the file was estimated before (in this process or, from disk, an earlier one) with the same
 * preprocessed text and the same headers, options and code. Undefined otherwise.
 */
export function estimateFramesFromCache(unit: TranslationUnit, cache: FrameEstimateCache | null = sharedCache): FunctionEstimate[] | undefined {
  if (!cache) return undefined;
  const found = diskStoreFor(unit, cache)?.wholeFile(unit);
  if (!found) return undefined;
  cache.hits += found.length;
  cache.diskHits += found.length;
  return resolveFunctions(found.map(([raw, row]) => rebase(raw, row)));
}

/** A known value and whether clang already knows it (compile) or only the verifier (load). */
interface Known {
  value: bigint;
  deadness: typeof LOAD_DEAD | typeof COMPILE_DEAD;
}

/** What the file scope tells a function walk. */
interface FileContext {
  unit: TranslationUnit;
  /** The text the functions' tree was parsed from: the main file's, or a header's. */
  text: string;
  /** File-scope constants: `const` globals (compile time) and `const volatile` ones (load time). */
  globals: Map<string, Known>;
  /** SEC() names given on a function's prototype rather than its definition, by function. */
  declaredSections: Map<string, string>;
  /** The types of the main file's global variables, for `sizeof(global)` in a body. */
  globalTypes?: Map<string, CType>;
}

/**
 * Estimates the frame of every function defined in the main file and in the headers that define
 * functions (unit.headerSources). `tree` must be tree-sitter's parse of `unit.aligned.text`, and
 * headerTrees[i], when given, that of unit.headerSources[i].text. Pass null as `cache` to walk
 * everything afresh.
 */
export function estimateFrames(unit: TranslationUnit, tree: Tree, cache: FrameEstimateCache | null = sharedCache, headerTrees: readonly Tree[] = []): FunctionEstimate[] {
  const sources = [
    { file: undefined, text: unit.aligned.text, tree },
    ...headerTrees.slice(0, unit.headerSources.length).map((headerTree, index) => ({ file: unit.headerSources[index].file, text: unit.headerSources[index].text, tree: headerTree })),
  ];
  const parsed = sources.map((source) => {
    const topLevel = source.tree.rootNode.namedChildren.filter((node): node is Node => node !== null);
    return { ...source, topLevel, definitions: topLevel.filter((node) => node.type === 'function_definition') };
  });

  // Everything a function's walk depends on besides its own text: the file-scope declarations of the
  // main file (types, constants; function bodies excluded), the content of the headers and files the
  // unit read, the options, and the code.
  let signature = '';
  const store = cache ? diskStoreFor(unit, cache) : undefined;
  if (cache) {
    const hash = createHash('sha1');
    hash.update(codeKey());
    hash.update('\0');
    hash.update(unit.file);
    hash.update('\0');
    hash.update(unit.dependencyKey);
    const { text, definitions } = parsed[0];
    let from = 0;
    for (const definition of definitions) {
      const body = definition.childForFieldName('body');
      if (!body) continue;
      hash.update(text.slice(from, body.startIndex));
      from = body.endIndex;
    }
    hash.update(text.slice(from));
    signature = hash.digest('hex');
  }

  const globalTypes = new Map<string, CType>();
  for (const declared of unit.mainFileNames) if (!declared.isTypedef && !declared.isFunctionDefinition && declared.type.k !== 'function') globalTypes.set(declared.name, declared.type);
  const raws: RawFunction[] = [];
  const stored: [string, number][] = [];
  const walks = new Map<string, RawFunction>();
  for (const { file, text, topLevel, definitions } of parsed) {
    const context: FileContext = { unit, text, globals: fileConstants(unit, topLevel), declaredSections: prototypeSections(topLevel), globalTypes };
    for (const definition of definitions) {
      const row = definition.startPosition.row;
      let raw: RawFunction | undefined;
      let key = '';
      if (cache) {
        key = `${signature}\0${file ?? ''}\0${text.slice(definition.startIndex, definition.endIndex)}`;
        raw = cache.get(key);
        if (!raw && store) {
          raw = store.get(key);
          if (raw) {
            cache.misses--;
            cache.hits++;
            cache.diskHits++;
            cache.set(key, raw);
          }
        }
      }
      if (!raw) {
        raw = readFunction(context, definition, row);
        if (raw && file !== undefined) raw.file = file;
        if (raw && cache) cache.set(key, raw);
      }
      if (raw) {
        raws.push(rebase(raw, row));
        if (store) {
          stored.push([key, row]);
          walks.set(key, raw);
        }
      }
    }
  }
  if (store) store.update(unit, stored, walks);
  return resolveFunctions(raws);
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
    tailCalls: raw.tailCalls.map((tail) => ({ ...tail, line: tail.line + row })),
  };
  placements.set(raw, { row, placed });
  return placed;
}

interface Resolved {
  estimate: FunctionEstimate;
  slots: Slot[];
  /** Items of `estimate.items` a slot refers to. */
  points: number;
  /** Every call and tail call, dead ones with their deadness, for inlining into callers. */
  calls: RawCall[];
  tailCalls: { line: number; column: number; deadness: Deadness }[];
  bpfLoopInlined: boolean;
  mayGoto: boolean;
  throws: boolean;
  /** Syntax nodes of the body and of every live inlined callee's. */
  nodes: number;
  /** Live calls that stay calls (helpers, kfuncs, functions out of line), inlined callees' included. */
  callCount: number;
}

/**
 * The size from which a static function that is not always_inline and is called from two places or
 * more stays out of line. LLVM's inliner compares an instruction cost with 225 (325 with `inline`);
 * measured on the real-world corpus (clang-19 -Rpass=inline: cpumask_success's create_cpumask_set
 * and _global_mask_array_rcu, rbtree's __add_three, local_kptr_stash's create_and_stash), that cost
 * crosses the threshold between 200 and 300 tree-sitter nodes of body, inlined callees included.
 * Not modelled: call sites clang deems cold (after a chain of early returns), where the threshold is
 * 45 and even a function called once stays out of line.
 */
const OUT_OF_LINE_NODES = 250;

/**
 * Spills: values clang keeps on the stack because r6-r9 cannot hold everything live across a call,
 * or the ten registers everything live at once. The estimate cannot know them without allocating
 * registers, so from SPILL_MIN_NODES syntax nodes of body (inlined callees included) a frame is a
 * range: its locals, up to one spill slot per SPILL_NODES_PER_SLOT nodes and one per SPILL_CALLS_PER_SLOT
 * calls more (values live across calls are what r6-r9 run out for), at most SPILL_MAX_BYTES.
 * Measured on the Linux 6.12 selftests (3,554 frames of clang-19 -O2 objects, each against its
 * estimate): below 300 nodes the compiled frame exceeds the locals in 1 % of functions (29 of 2,976,
 * mostly by 8-24 B); from 300 on in 18 % (103 of 578), by more as functions grow (read_strobe_meta
 * at 857 nodes: +72 B; strobemeta's on_event at 2,074: +120 B; pyperf600's at 6,064: +112 B). No
 * function measured more than 120 B above its locals. Our spill_pressure.bpf.c fixture, sixteen values
 * live across 40 helper calls in 847 nodes, spills 136 B.
 */
const SPILL_MIN_NODES = 300;
const SPILL_NODES_PER_SLOT = 80;
const SPILL_CALLS_PER_SLOT = 6;
const SPILL_MAX_BYTES = 192;

/**
 * The bytes of spills a function of `nodes` syntax nodes and `calls` live calls may add to its
 * locals' frame; 0 below SPILL_MIN_NODES.
 */
export function spillAllowance(nodes: number, calls: number): number {
  if (nodes < SPILL_MIN_NODES) return 0;
  return Math.min(SPILL_MAX_BYTES, (Math.ceil(nodes / SPILL_NODES_PER_SLOT) + 1 + Math.ceil(calls / SPILL_CALLS_PER_SLOT)) * 8);
}

/** Syntax-tree levels expression() follows: several times what clang's 256 nested brackets give. */
const MAX_EXPRESSION_DEPTH = 2048;

/** Frames up to this many stack objects are colored once more per object, to say what each one frees (quadratic in the slots). */
const MAX_RECOLORED_SLOTS = 128;

function resolveFunctions(all: RawFunction[]): FunctionEstimate[] {
  // One definition per name: the main file's come first and win over a header's.
  const byName = new Map<string, RawFunction>();
  for (const raw of all) if (!byName.has(raw.name)) byName.set(raw.name, raw);
  const raws = [...byName.values()];

  // Functions whose address is taken (callbacks) are never inlined.
  const addressTaken = new Set<string>();
  for (const raw of raws) for (const call of raw.rawCalls) if (call.kind === 'callback' && call.deadness !== COMPILE_DEAD) addressTaken.add(call.callee);
  const isInlined = (raw: RawFunction) =>
    raw.section === null && (raw.isStatic || !raw.weak) && !raw.noinline && (raw.alwaysInline || !addressTaken.has(raw.name));

  // clang's inliner: a static function called once is inlined whatever its size (LLVM's bonus for
  // the last call of a local function); one called from several places only when it is small.
  const callSites = new Map<string, number>();
  for (const raw of raws) for (const call of raw.rawCalls) if (call.kind === 'call' && call.deadness !== COMPILE_DEAD) callSites.set(call.callee, (callSites.get(call.callee) ?? 0) + 1);
  const keptOutOfLine = (raw: RawFunction, nodes: number) => !raw.alwaysInline && raw.isStatic && (callSites.get(raw.name) ?? 0) >= 2 && nodes >= OUT_OF_LINE_NODES;
  const results = new Map<string, Resolved>();
  const inProgress = new Set<string>();
  const resolve = (raw: RawFunction): Resolved => {
    const done = results.get(raw.name);
    if (done) return done;
    inProgress.add(raw.name);
    const items: FrameItem[] = raw.ownItems.map((item) => ({ ...item }));
    const slots: Slot[] = [];
    const calls: RawCall[] = [];
    const tailCalls = raw.tailCalls.map((tail) => ({ ...tail }));
    let bpfLoopInlined = raw.bpfLoopInlined;
    let mayGoto = raw.mayGoto;
    let throws = raw.throws;

    // Every inlined call inserts the callee's program points right after the call's.
    const expansions: { point: number; length: number }[] = [];
    const inlined = new Map<RawCall, Resolved>();
    for (const call of raw.rawCalls) {
      const callee = byName.get(call.callee);
      if (call.kind === 'call' && callee && isInlined(callee) && !inProgress.has(callee.name)) {
        if (call.deadness === COMPILE_DEAD) continue;
        const resolved = resolve(callee);
        if (!resolved.estimate.inline) continue;
        inlined.set(call, resolved);
        if (call.deadness === LIVE) expansions.push({ point: call.point, length: resolved.points + 1 });
      }
    }
    // Expansions are in point order (calls are recorded in evaluation order): binary search.
    expansions.sort((a, b) => a.point - b.point);
    const before: number[] = [0];
    for (const expansion of expansions) before.push(before[before.length - 1] + expansion.length);
    const mapped = (point: number) => {
      let low = 0;
      let high = expansions.length;
      while (low < high) {
        const middle = (low + high) >> 1;
        if (expansions[middle].point < point) low = middle + 1;
        else high = middle;
      }
      return point + before[low];
    };
    // SROA: an object whose address only goes to inlined callees that dereference it at constant
    // offsets is split into registers: its slot and item go.
    const splitParameter = (callee: string, argument: number, seen: Set<string>): boolean => {
      const key = `${callee}\0${argument}`;
      if (seen.has(key)) return false;
      seen.add(key);
      const target = byName.get(callee);
      const conditions = target?.sroaParameters[argument];
      return !!conditions && results.get(callee)?.estimate.inline === true && conditions.every(([next, index]) => splitParameter(next, index, seen));
    };
    const split = new Set<number>();
    for (const slot of raw.slots) if (slot.sroa?.every(([callee, argument]) => splitParameter(callee, argument, new Set()))) split.add(slot.item);
    const newIndex = new Map<number, number>();
    items.forEach((_, index) => {
      if (!split.has(index)) newIndex.set(index, newIndex.size);
    });
    if (split.size > 0) items.splice(0, items.length, ...items.filter((_, index) => !split.has(index)));
    for (const slot of raw.slots) {
      const item = newIndex.get(slot.item);
      if (item !== undefined) slots.push({ ...slot, item, start: mapped(slot.start), end: mapped(slot.end) });
    }

    for (const call of raw.rawCalls) {
      const callee = byName.get(call.callee);
      const resolved = inlined.get(call);
      if (resolved) {
        const deadness = call.deadness;
        if (deadness === LIVE) {
          const base = mapped(call.point) + 1;
          const itemBase = items.length;
          if (resolved.estimate.frameBytes > 0) {
            items.push({ what: 'inlined', name: resolved.estimate.name, type: `inline ${resolved.estimate.name}()`, bytes: resolved.estimate.frameBytes, line: call.line });
            for (const slot of resolved.slots) slots.push({ ...slot, item: itemBase, start: slot.start + base, end: slot.end + base });
          }
          bpfLoopInlined ||= resolved.bpfLoopInlined;
          mayGoto ||= resolved.mayGoto;
          throws ||= resolved.throws;
        }
        // What the inlined body calls, it calls from here; in dead code, dead calls.
        for (const inner of resolved.calls) {
          const innerDeadness = Math.max(inner.deadness, deadness) as Deadness;
          if (innerDeadness === COMPILE_DEAD) continue;
          calls.push({ ...inner, line: call.line, column: call.column, point: call.point, deadness: innerDeadness, dead: innerDeadness !== LIVE || undefined });
        }
        for (const inner of resolved.tailCalls) {
          const innerDeadness = Math.max(inner.deadness, deadness) as Deadness;
          if (innerDeadness !== COMPILE_DEAD) tailCalls.push({ line: call.line, column: call.column, deadness: innerDeadness });
        }
        continue;
      }
      if (call.deadness === COMPILE_DEAD) continue;
      if (callee) calls.push({ ...call, dead: call.deadness !== LIVE || undefined });
    }
    tailCalls.sort((a, b) => a.line - b.line || a.column - b.column);

    // The size the inliner weighs: the body with what was inlined into it.
    let nodes = raw.bodyNodes;
    let callCount = 0;
    for (const call of raw.rawCalls) if (call.kind === 'call' && call.deadness === LIVE && !inlined.has(call)) callCount++;
    for (const [call, resolved] of inlined) {
      if (call.deadness !== LIVE) continue;
      nodes += resolved.nodes;
      callCount += resolved.callCount;
    }
    const frameBytes = colorAndLayout(slots, items);
    if (slots.length <= MAX_RECOLORED_SLOTS) {
      items.forEach((item, index) => {
        const others = slots.filter((slot) => slot.item !== index);
        item.freesBytes = frameBytes - colorAndLayout(others, items.map((other) => ({ ...other, sharedWith: undefined })));
      });
    }
    const spill = spillAllowance(nodes, callCount);
    const { bytes: hiddenBytes, reasons: hiddenReasons } = hiddenSlots({ bpfLoopInlined, mayGoto });
    const estimate: FunctionEstimate = {
      name: raw.name,
      ...(raw.file !== undefined ? { file: raw.file } : {}),
      line: raw.line,
      section: raw.section,
      inline: isInlined(raw) && !keptOutOfLine(raw, nodes),
      frameBytes,
      ...(spill > 0
        ? {
            upTo: frameBytes + spill,
            uncertainty: `long function with high register pressure (${nodes} syntax nodes with its inlined callees, ${callCount} calls): clang may spill up to ~${spill} B more than its locals`,
          }
        : {}),
      items,
      hiddenBytes,
      hiddenReasons,
      isStatic: raw.isStatic,
      isGlobal: !raw.isStatic,
      noinline: raw.noinline,
      alwaysInline: raw.alwaysInline,
      calls: calls.map(({ callee, kind, async, line, column, dead }) => (dead ? { callee, kind, async, line, column, dead } : { callee, kind, async, line, column })),
      tailCalls: tailCalls.map(({ line, column }) => ({ line, column })),
      throws,
      ...(raw.exceptionCallback !== undefined ? { exceptionCallback: raw.exceptionCallback } : {}),
      pressure: { nodes, calls: callCount },
    };
    const points = raw.points + expansions.reduce((sum, expansion) => sum + expansion.length, 0);
    const resolved: Resolved = { estimate, slots, points, calls, tailCalls, bpfLoopInlined, mayGoto, throws, nodes, callCount };
    inProgress.delete(raw.name);
    results.set(raw.name, resolved);
    return resolved;
  };
  return raws.map((raw) => resolve(raw).estimate);
}

/**
 * LLVM's StackColoring, then its frame layout: slots sorted by size (largest first, stable), each
 * folded into the first earlier survivor whose lifetime it never overlaps; survivors placed in order,
 * each aligned, growing down. Marks merged items with `sharedWith`; returns the frame in 8-byte slots.
 */
function colorAndLayout(slots: Slot[], items: FrameItem[]): number {
  const order = slots.map((_, index) => index).sort((a, b) => slots[b].size - slots[a].size || a - b);
  const intervals: [number, number][][] = slots.map((slot) => [[slot.start, slot.end]]);
  const merged = new Array<boolean>(slots.length).fill(false);
  const sizes = slots.map((slot) => slot.size);
  const aligns = slots.map((slot) => slot.align);
  const overlaps = (a: [number, number][], b: [number, number][]) => a.some(([s1, e1]) => b.some(([s2, e2]) => s1 <= e2 && s2 <= e1));
  for (let i = 0; i < order.length; i++) {
    const first = order[i];
    if (merged[first]) continue;
    for (let j = i + 1; j < order.length; j++) {
      const second = order[j];
      if (merged[second] || overlaps(intervals[first], intervals[second])) continue;
      merged[second] = true;
      intervals[first].push(...intervals[second]);
      aligns[first] = Math.max(aligns[first], aligns[second]);
      const into = items[slots[first].item];
      const from = items[slots[second].item];
      if (into && from && into !== from && from.sharedWith === undefined) {
        from.sharedWith = into.name;
        from.sharedWithLine = into.line;
      }
    }
  }
  let offset = 0;
  for (let index = 0; index < slots.length; index++) {
    if (merged[index]) continue;
    offset = roundUp(offset + sizes[index], aligns[index]);
  }
  return roundToSlots(offset);
}

/** The JSON shape of a function's frame, without the call graph's extra fields. */
export function frameOf(estimate: FunctionEstimate): FunctionFrame {
  return {
    name: estimate.name,
    ...(estimate.file !== undefined ? { file: estimate.file } : {}),
    line: estimate.line,
    section: estimate.section,
    inline: estimate.inline,
    frameBytes: estimate.frameBytes,
    ...(estimate.upTo !== undefined ? { upTo: estimate.upTo, uncertainty: estimate.uncertainty } : {}),
    items: estimate.items.map((item) => ({ ...item })),
    hiddenBytes: estimate.hiddenBytes,
    hiddenReasons: [...estimate.hiddenReasons],
  };
}

function functionName(declarator: Node | null): Node | undefined {
  let node = declarator;
  while (node) {
    if (node.type === 'function_declarator') {
      const inner = node.childForFieldName('declarator');
      if (inner?.type === 'identifier') return inner;
      node = inner;
      continue;
    }
    if (node.type === 'identifier') return undefined;
    node = node.childForFieldName('declarator');
  }
  return undefined;
}

/** `section("x")` or `__section__("?" "x")`: both spellings, the name possibly pasted from several literals. */
const SECTION_ATTRIBUTE = /(?:\b|__)section(?:__)?\s*\(\s*((?:"[^"]*"\s*)+)\)/;

/** The section name of a header's section attribute, its adjacent string literals joined. */
function sectionIn(header: string): string | undefined {
  const literals = SECTION_ATTRIBUTE.exec(header)?.[1];
  return literals === undefined ? undefined : [...literals.matchAll(/"([^"]*)"/g)].map((match) => match[1]).join('');
}
/** bpf_experimental.h's `__exception_cb(name)`: btf_decl_tag("exception_callback:" #name), the strings already pasted or not. */
const EXCEPTION_CALLBACK_TAG = /\bbtf_decl_tag\s*\(\s*"exception_callback:"?\s*"?(\w+)"/;

/**
 * Sections given on prototypes. libbpf's BPF_PROG family expands `SEC("x") int BPF_PROG(name, ...)`
 * to `SEC("x") int name(unsigned long long *ctx); ... typeof(name(0)) name(unsigned long long *ctx)
 * { return ____name(...); }`: the attribute sits on the prototype, and clang applies it to the
 * definition that follows.
 */
function prototypeSections(topLevel: Node[]): Map<string, string> {
  const sections = new Map<string, string>();
  for (const declaration of topLevel) {
    if (declaration.type !== 'declaration') continue;
    // As for definitions: an attribute that ends the previous declaration may be attached here.
    const text = declaration.text.replace(/;\s*$/, '');
    const section = sectionIn(text.slice(text.lastIndexOf(';') + 1));
    if (section === undefined) continue;
    for (const declarator of declaration.childrenForFieldName('declarator')) {
      const name = functionName(declarator);
      if (name) sections.set(name.text, section);
    }
  }
  return sections;
}

/**
 * `const` and `const volatile` globals with a constant initialiser. A `const volatile` one is in
 * .rodata, which libbpf freezes: the verifier sees the value the object holds — unless the loader
 * writes another one into the skeleton's rodata before loading, which the source cannot tell.
 */
function fileConstants(unit: TranslationUnit, topLevel: Node[]): Map<string, Known> {
  const constants = new Map<string, Known>();
  for (const declaration of topLevel) {
    if (declaration.type !== 'declaration') continue;
    let isConst = false;
    let isVolatile = false;
    let isExtern = false;
    for (const child of declaration.namedChildren) {
      if (child?.type === 'type_qualifier') {
        if (child.text === 'const') isConst = true;
        if (/volatile/.test(child.text)) isVolatile = true;
      }
      if (child?.type === 'storage_class_specifier' && child.text === 'extern') isExtern = true;
    }
    if (!isConst || isExtern) continue;
    for (const declarator of declaration.childrenForFieldName('declarator')) {
      if (declarator?.type !== 'init_declarator') continue;
      const name = declarator.childForFieldName('declarator');
      const value = declarator.childForFieldName('value');
      if (name?.type !== 'identifier' || !value) continue;
      const known = evaluate(value, { unit, text: '', globals: constants, declaredSections: new Map() }, new Set());
      if (known) constants.set(name.text, { value: known.value, deadness: isVolatile ? LOAD_DEAD : known.deadness });
    }
  }
  return constants;
}

/** The value of a constant expression, or undefined. `shadowed` are names declared in the function. */
function evaluate(node: Node | null, context: FileContext, shadowed: ReadonlySet<string>): Known | undefined {
  if (!node) return undefined;
  switch (node.type) {
    case 'number_literal': {
      try {
        return { value: parseIntegerLiteral(node.text).value, deadness: COMPILE_DEAD };
      } catch {
        return undefined;
      }
    }
    case 'true':
      return { value: 1n, deadness: COMPILE_DEAD };
    case 'false':
    case 'null':
      return { value: 0n, deadness: COMPILE_DEAD };
    case 'identifier': {
      if (shadowed.has(node.text)) return undefined;
      const global = context.globals.get(node.text);
      if (global) return global;
      const constant = context.unit.environment.constant(node.text);
      return constant === undefined ? undefined : { value: constant, deadness: COMPILE_DEAD };
    }
    case 'parenthesized_expression':
      return node.namedChildCount === 1 ? evaluate(node.namedChild(0), context, shadowed) : undefined;
    case 'cast_expression':
      return evaluate(node.childForFieldName('value'), context, shadowed);
    case 'unary_expression': {
      const operand = evaluate(node.childForFieldName('argument'), context, shadowed);
      if (!operand) return undefined;
      const operator = node.childForFieldName('operator')?.type;
      const value = operator === '!' ? (operand.value === 0n ? 1n : 0n) : operator === '-' ? -operand.value : operator === '~' ? ~operand.value : operator === '+' ? operand.value : undefined;
      return value === undefined ? undefined : { value, deadness: operand.deadness };
    }
    case 'conditional_expression': {
      const condition = evaluate(node.childForFieldName('condition'), context, shadowed);
      if (!condition) return undefined;
      const chosen = evaluate(node.childForFieldName(condition.value !== 0n ? 'consequence' : 'alternative'), context, shadowed);
      return chosen ? { value: chosen.value, deadness: Math.min(condition.deadness, chosen.deadness) as Known['deadness'] } : undefined;
    }
    case 'binary_expression': {
      const operator = node.childForFieldName('operator')?.type ?? '';
      const left = evaluate(node.childForFieldName('left'), context, shadowed);
      if ((operator === '&&' || operator === '||') && left && (left.value === 0n) === (operator === '&&')) {
        return { value: operator === '&&' ? 0n : 1n, deadness: left.deadness };
      }
      const right = evaluate(node.childForFieldName('right'), context, shadowed);
      if (!left || !right) return undefined;
      const deadness = Math.min(left.deadness, right.deadness) as Known['deadness'];
      const a = left.value;
      const b = right.value;
      const value = binary(operator, a, b);
      return value === undefined ? undefined : { value, deadness };
    }
    default:
      return undefined;
  }
}

function binary(operator: string, a: bigint, b: bigint): bigint | undefined {
  switch (operator) {
    case '+': return a + b;
    case '-': return a - b;
    case '*': return a * b;
    case '/': return b === 0n ? undefined : a / b;
    case '%': return b === 0n ? undefined : a % b;
    case '<<': return b < 0n || b > 63n ? undefined : a << b;
    case '>>': return b < 0n || b > 63n ? undefined : a >> b;
    case '&': return a & b;
    case '|': return a | b;
    case '^': return a ^ b;
    case '==': return a === b ? 1n : 0n;
    case '!=': return a !== b ? 1n : 0n;
    case '<': return a < b ? 1n : 0n;
    case '>': return a > b ? 1n : 0n;
    case '<=': return a <= b ? 1n : 0n;
    case '>=': return a >= b ? 1n : 0n;
    case '&&': return a !== 0n && b !== 0n ? 1n : 0n;
    case '||': return a !== 0n || b !== 0n ? 1n : 0n;
    default: return undefined;
  }
}

const TERMINATORS = new Set(['return_statement', 'break_statement', 'continue_statement', 'goto_statement']);

/** Walks one function body in evaluation order, giving every declaration, call and block end a program point. */
class FunctionWalker {
  private point = 0;
  private readonly scopes: Slot[][] = [];
  private readonly addressTaken = new Set<string>();
  private readonly shadowed = new Set<string>();
  /** Names the body declares (a local hides the parameter of the same name from `&`). */
  private readonly declaredInBody = new Set<string>();
  /** The declared type of each parameter and local seen so far, for `typeof(expression)`. */
  private readonly localTypes = new Map<string, CType>();
  private readonly noteType = (name: string, type: CType) => this.localTypes.set(name, type);
  /** Locals declared volatile: `typeof(x)` of one is volatile too (the type model has no qualifiers). */
  private readonly volatileLocals = new Set<string>();
  /** Names clang cannot split into registers: asm memory operands, names declared twice. */
  private readonly pinned = new Set<string>();
  private body: Node | undefined;
  /** Uninitialised locals not used yet, by name: their slots start at the first use. */
  private readonly firstUse = new Map<string, Slot>();

  constructor(
    private readonly context: FileContext,
    private readonly raw: RawFunction,
    private readonly baseRow: number,
    /** `__naked`: the body is asm that addresses the stack through r10 itself. */
    private readonly naked = false,
  ) {}

  run(definition: Node, body: Node): void {
    // BPF_CORE_READ's `typeof((src)->a) __r` is sized by the types of the names in scope.
    const declarations = this.context.unit.declarations;
    const outerExpressionType = declarations.expressionType;
    declarations.expressionType = (tokens, start, end) =>
      expressionType(tokens, start, end, {
        typeOf: (name) => this.localTypes.get(name) ?? (this.shadowed.has(name) ? undefined : this.context.globalTypes?.get(name)),
        layout: declarations.layout,
        typeName: (typeTokens, typeStart, typeEnd) => declarations.parseTypeName(typeTokens, typeStart, typeEnd),
      });
    try {
      this.walk(definition, body);
    } finally {
      declarations.expressionType = outerExpressionType;
    }
  }

  private walk(definition: Node, body: Node): void {
    for (const pointer of body.descendantsOfType('pointer_expression')) {
      if (!pointer || pointer.childForFieldName('operator')?.type !== '&' || isUnevaluated(pointer)) continue;
      const root = rootIdentifier(pointer.childForFieldName('argument'));
      if (root) this.addressTaken.add(root);
    }
    // An asm operand that may be memory ("g", "m": bpf_misc.h's __sink(x) is `asm volatile("" : "+g"(x))`)
    // is given one by clang for BPF: the variable lives on the stack, as if its address were taken.
    for (const operand of [...body.descendantsOfType('gnu_asm_output_operand'), ...body.descendantsOfType('gnu_asm_input_operand')]) {
      const constraint = operand?.childForFieldName('constraint')?.text ?? '';
      if (!/^"[^"]*[gm][^"]*"$/.test(constraint)) continue;
      const root = rootIdentifier(operand?.childForFieldName('value') ?? null);
      if (root) {
        this.addressTaken.add(root);
        this.pinned.add(root);
      }
    }
    // Parameters and locals hide file-scope constants of the same name.
    for (const identifier of definition.childForFieldName('declarator')?.descendantsOfType('identifier') ?? []) if (identifier) this.shadowed.add(identifier.text);
    for (const declaration of body.descendantsOfType('declaration')) {
      for (const declarator of declaration?.childrenForFieldName('declarator') ?? []) {
        const name = innermostName(declarator);
        if (name) {
          this.shadowed.add(name);
          if (this.declaredInBody.has(name)) this.pinned.add(name);
          this.declaredInBody.add(name);
        }
      }
    }
    this.body = body;
    // A parameter whose address is taken is copied to the stack on entry and lives to the return.
    this.scopes.push([]);
    const start = ++this.point;
    const parameters = functionParameters(definition.childForFieldName('declarator'));
    for (const parameter of parameters) {
      const name = innermostName(parameter.childForFieldName('declarator'));
      const onStack = name !== undefined && this.addressTaken.has(name) && !this.declaredInBody.has(name);
      const items = parameterItems(this.context.unit, parameter, this.baseRow, this.noteType);
      if (onStack) this.addSlots(items, start);
      this.raw.sroaParameters.push(name === undefined || this.declaredInBody.has(name) ? null : (splitConditions(body, name, 'pointer', this.context, this.shadowed) ?? null));
    }
    this.statement(body, LIVE);
    this.closeScope();
    this.raw.points = this.point + 1;
  }

  private addSlots(items: { item: FrameItem; size: number; align: number }[], start: number): void {
    for (const { item, size, align } of items) {
      const slot: Slot = { item: this.raw.ownItems.length, size, align, start, end: start };
      this.raw.ownItems.push(item);
      this.raw.slots.push(slot);
      this.scopes[this.scopes.length - 1]?.push(slot);
    }
  }

  /** Visits a node; returns how surely control does not fall through it (LIVE = it may). */
  private statement(node: Node, deadness: Deadness): Deadness {
    switch (node.type) {
      case 'compound_statement':
        return this.block(node.namedChildren, deadness, true);
      case 'if_statement': {
        this.expression(node.childForFieldName('condition'), deadness);
        const known = evaluate(node.childForFieldName('condition'), this.context, this.shadowed);
        const consequence = node.childForFieldName('consequence');
        const alternative = node.childForFieldName('alternative');
        const elseBody = alternative?.namedChildren.find((child): child is Node => child !== null && child.type !== 'comment') ?? null;
        const thenDeadness = known && known.value === 0n ? (Math.max(deadness, known.deadness) as Deadness) : deadness;
        const elseDeadness = known && known.value !== 0n ? (Math.max(deadness, known.deadness) as Deadness) : deadness;
        const thenEnds = consequence ? this.scoped(consequence, thenDeadness) : LIVE;
        const elseEnds = elseBody ? this.scoped(elseBody, elseDeadness) : LIVE;
        if (known) {
          const taken = known.value !== 0n ? thenEnds : elseEnds;
          return taken === LIVE ? LIVE : (Math.min(taken, known.deadness) as Deadness);
        }
        return Math.min(thenEnds, elseEnds) as Deadness;
      }
      case 'for_statement': {
        // The initializer's declarations live in the loop's own scope.
        this.scopes.push([]);
        const body = node.childForFieldName('body');
        for (const child of node.namedChildren) if (child && child.type !== 'comment' && child.id !== body?.id) this.statement(child, deadness);
        if (body) this.scoped(body, deadness);
        this.closeScope();
        return LIVE;
      }
      case 'while_statement':
      case 'do_statement':
      case 'switch_statement': {
        this.expression(node.childForFieldName('condition'), deadness);
        const body = node.childForFieldName('body');
        if (body) this.scoped(body, deadness);
        return LIVE;
      }
      case 'declaration':
        this.declaration(node, deadness);
        return LIVE;
      case 'labeled_statement':
      case 'case_statement':
        return this.block(node.namedChildren, deadness, false);
      default: {
        this.expression(node, deadness);
        return TERMINATORS.has(node.type) ? COMPILE_DEAD : LIVE;
      }
    }
  }

  /** A statement in a scope of its own (a branch or loop body that is not a block). */
  private scoped(node: Node, deadness: Deadness): Deadness {
    if (node.type === 'compound_statement') return this.statement(node, deadness);
    this.scopes.push([]);
    const ends = this.statement(node, deadness);
    this.closeScope();
    return ends;
  }

  /** Statements in sequence: after one that never falls through, the rest is dead until a label. */
  private block(children: (Node | null)[], deadness: Deadness, newScope: boolean): Deadness {
    if (newScope) this.scopes.push([]);
    let ends: Deadness = LIVE;
    for (const child of children) {
      if (!child || child.type === 'comment') continue;
      if (child.type === 'labeled_statement' || child.type === 'case_statement') ends = LIVE;
      const childDeadness = Math.max(deadness, ends) as Deadness;
      const childEnds = this.statement(child, childDeadness);
      if (childEnds !== LIVE && ends === LIVE) ends = childEnds;
      else if (childEnds !== LIVE) ends = Math.min(ends, childEnds) as Deadness;
    }
    if (newScope) this.closeScope();
    return ends;
  }

  private closeScope(): void {
    const end = ++this.point;
    for (const slot of this.scopes.pop() ?? []) slot.end = end;
  }

  private declaration(node: Node, deadness: Deadness): void {
    // Initializers run before the variable is live.
    for (const declarator of node.childrenForFieldName('declarator')) {
      if (declarator?.type === 'init_declarator') this.expression(declarator.childForFieldName('value'), deadness);
    }
    if (deadness !== LIVE) return;
    const slots = this.raw.slots.length;
    this.addSlots(localItems(this.context.unit, node, this.addressTaken, this.volatileLocals, this.baseRow, this.noteType), ++this.point);
    const initialized = new Set(node.childrenForFieldName('declarator').filter((declarator) => declarator?.type === 'init_declarator').map((declarator) => innermostName(declarator)));
    for (const slot of this.raw.slots.slice(slots)) {
      const name = this.raw.ownItems[slot.item].name;
      const type = this.localTypes.get(name);
      const kind = type && this.context.unit.layout.resolve(type).k;
      const mode = kind === 'array' ? 'array' : kind === 'struct' || kind === 'union' ? 'object' : 'scalar';
      // LLVM's StackColoring starts an object's lifetime at its first use: an uninitialised aggregate's later.
      if (!initialized.has(name) && mode !== 'scalar') this.firstUse.set(name, slot);
      if (!this.body || !type || this.pinned.has(name) || this.volatileLocals.has(name)) continue;
      const conditions = splitConditions(this.body, name, mode, this.context, this.shadowed);
      if (conditions) slot.sroa = conditions;
    }
  }

  /** How deep expression() has descended: clang refuses brackets nested past 256, so real code stays shallow. */
  private expressionDepth = 0;

  /** Visits an expression (or any node) in evaluation order: calls, statement expressions, asm. */
  private expression(node: Node | null, deadness: Deadness): void {
    if (!node) return;
    if (this.expressionDepth >= MAX_EXPRESSION_DEPTH) return;
    this.expressionDepth++;
    try {
      this.visitExpression(node, deadness);
    } finally {
      this.expressionDepth--;
    }
  }

  private visitExpression(node: Node, deadness: Deadness): void {
    switch (node.type) {
      case 'compound_statement':
        this.statement(node, deadness);
        return;
      case 'conditional_expression': {
        this.expression(node.childForFieldName('condition'), deadness);
        const known = evaluate(node.childForFieldName('condition'), this.context, this.shadowed);
        const thenDeadness = known && known.value === 0n ? (Math.max(deadness, known.deadness) as Deadness) : deadness;
        const elseDeadness = known && known.value !== 0n ? (Math.max(deadness, known.deadness) as Deadness) : deadness;
        this.expression(node.childForFieldName('consequence'), thenDeadness);
        this.expression(node.childForFieldName('alternative'), elseDeadness);
        return;
      }
      case 'gnu_asm_expression':
        // may_goto by name, or as bpf_experimental.h spells it for an assembler that lacks it: its
        // opcode byte 0xe5 (BPF_JMP | BPF_JCOND).
        if (deadness === LIVE && /\bmay_goto\b|\.byte\s+0xe5\b/.test(node.text)) this.raw.mayGoto = true;
        if (deadness === LIVE && /\bcall\s+bpf_throw\b/.test(node.text)) this.raw.throws = true;
        // Asm in an ordinary function that addresses the stack itself (`r4 = r10; r4 += -16`) reaches
        // below clang's frame as a naked function's does: the verifier counts the deepest byte.
        if (this.naked || /\br10\b/.test(node.text)) this.nakedAsm(node, deadness);
        return;
      case 'call_expression':
        this.call(node, deadness);
        return;
      case 'compound_literal_expression':
        this.expression(node.childForFieldName('value'), deadness);
        if (deadness === LIVE) this.addSlots(compoundLiteralItems(this.context.unit, node, this.baseRow), ++this.point);
        return;
      case 'declaration':
      case 'if_statement':
      case 'for_statement':
      case 'while_statement':
      case 'do_statement':
      case 'switch_statement':
      case 'labeled_statement':
        this.statement(node, deadness);
        return;
      case 'identifier': {
        const slot = this.firstUse.get(node.text);
        if (slot) {
          slot.start = Math.max(slot.start, this.point);
          this.firstUse.delete(node.text);
        }
        return;
      }
      case 'string_literal':
      case 'number_literal':
      case 'field_identifier':
      case 'comment':
      case 'sizeof_expression':
      case 'alignof_expression':
        return;
      default:
        for (const child of node.namedChildren) this.expression(child, deadness);
    }
  }

  /**
   * The asm body of a `__naked` function is its whole code: clang gives it no frame, the asm's own
   * stack addresses are its stack (the deepest, in 8-byte slots; see nakedAsmStackDepth), and `call %[f]` with
   * `__imm(f)` (`[f] "i"(f)`) calls f.
   */
  private nakedAsm(node: Node, deadness: Deadness): void {
    const code = node.childForFieldName('assembly_code')?.text ?? '';
    const deepest = nakedAsmStackDepth(code);
    if (deepest > 0 && deadness === LIVE) {
      const item: FrameItem = { what: 'local', name: '(asm stack)', type: `r10 - ${deepest}`, bytes: roundToSlots(deepest), line: node.startPosition.row + 1 - this.baseRow };
      this.addSlots([{ item, size: deepest, align: 8 }], ++this.point);
    }
    const called = new Set([...code.matchAll(/\bcall\s+%\[(\w+)\]/g)].map((match) => match[1]));
    for (const operand of node.descendantsOfType('gnu_asm_input_operand')) {
      const symbol = operand?.childForFieldName('symbol')?.text;
      const value = operand?.childForFieldName('value');
      if (!operand || symbol === undefined || !called.has(symbol) || value?.type !== 'identifier') continue;
      this.raw.rawCalls.push({ callee: value.text, kind: 'call', async: false, line: operand.startPosition.row + 1 - this.baseRow, column: operand.startPosition.column + 1, point: ++this.point, deadness });
    }
  }

  private call(node: Node, deadness: Deadness): void {
    const callee = node.childForFieldName('function');
    if (callee?.type === 'identifier' && STATIC_ASSERTS.has(callee.text)) return;
    const argumentList = node.childForFieldName('arguments');
    if (callee && callee.type !== 'identifier') this.expression(callee, deadness);
    const args = argumentList?.namedChildren.filter((child): child is Node => child !== null && child.type !== 'comment') ?? [];
    for (const argument of args) this.expression(argument, deadness);
    const line = node.startPosition.row + 1 - this.baseRow;
    const column = node.startPosition.column + 1;
    const calleeName = callee?.type === 'identifier' ? callee.text : undefined;
    const point = ++this.point;
    if (calleeName && TAIL_CALL_HELPERS.has(calleeName)) this.raw.tailCalls.push({ line, column, deadness });
    if (calleeName === 'bpf_throw' && deadness === LIVE) this.raw.throws = true;
    const callbacks: RawCall[] = [];
    // A function named as an argument is a callback (bpf_loop, bpf_for_each_map_elem, timers).
    for (const argument of args) {
      let target: Node | null = argument;
      if (target.type === 'pointer_expression' && target.childForFieldName('operator')?.type === '&') target = target.childForFieldName('argument');
      if (target?.type !== 'identifier') continue;
      callbacks.push({
        callee: target.text,
        kind: 'callback',
        async: calleeName !== undefined && ASYNC_CALLBACK_HELPERS.has(calleeName),
        line: target.startPosition.row + 1 - this.baseRow,
        column: target.startPosition.column + 1,
        point,
        deadness,
      });
    }
    if (calleeName) this.raw.rawCalls.push({ callee: calleeName, kind: 'call', async: false, line, column, point, deadness });
    this.raw.rawCalls.push(...callbacks);
    // The verifier inlines bpf_loop when its flags are a known 0 (a literal, or frozen .rodata).
    if (calleeName === 'bpf_loop' && deadness === LIVE && args.length === 4 && args[1].type === 'identifier') {
      const flags = evaluate(args[3], this.context, this.shadowed);
      if (flags && flags.value === 0n) this.raw.bpfLoopInlined = true;
    }
  }
}

function readFunction(context: FileContext, definition: Node, baseRow: number): RawFunction | undefined {
  const nameNode = functionName(definition.childForFieldName('declarator'));
  const body = definition.childForFieldName('body');
  if (!nameNode || !body) return undefined;
  const text = context.text;
  // tree-sitter attaches an attribute that ends the previous declaration (`} m SEC(".maps");`) to
  // this definition: the header starts after the last ';'.
  const fullHeader = text.slice(definition.startIndex, body.startIndex);
  const header = fullHeader.slice(fullHeader.lastIndexOf(';') + 1);
  const section = sectionIn(header) ?? context.declaredSections.get(nameNode.text) ?? null;
  const isStatic = definition.namedChildren.some((child) => child?.type === 'storage_class_specifier' && child.text === 'static');
  const raw: RawFunction = {
    name: nameNode.text,
    line: nameNode.startPosition.row + 1 - baseRow,
    section,
    isStatic,
    noinline: /\bnoinline\b|__noinline__/.test(header),
    weak: /\bweak\b|__weak__/.test(header),
    alwaysInline: /\balways_inline\b|__always_inline__/.test(header),
    ownItems: [],
    slots: [],
    points: 0,
    rawCalls: [],
    tailCalls: [],
    bpfLoopInlined: false,
    mayGoto: false,
    throws: false,
    bodyNodes: body.descendantCount,
    sroaParameters: [],
  };
  const exceptionCallback = EXCEPTION_CALLBACK_TAG.exec(header)?.[1];
  if (exceptionCallback !== undefined) raw.exceptionCallback = exceptionCallback;
  new FunctionWalker(context, raw, baseRow, /\bnaked\b/.test(header)).run(definition, body);
  return raw;
}

/**
 * Whether SROA can split `name` (a local struct or array, or a pointer parameter) into registers:
 * every use is a member or element at a constant offset (`x.f`, `x[2].f`, `p->f`, `*p`) that is
 * not itself addressed or passed to a call, or hands the address on as a call's argument (`f(&x)`,
 * `f(p)`). Returns those calls (callee, argument index), or undefined when some use escapes.
 */
function splitConditions(body: Node, name: string, mode: 'object' | 'array' | 'pointer' | 'scalar', context: FileContext, shadowed: ReadonlySet<string>): [string, number][] | undefined {
  const conditions: [string, number][] = [];
  const constantIndex = (node: Node) => {
    const index = node.childForFieldName('index');
    return index !== null && evaluate(index, context, shadowed) !== undefined;
  };
  const passedAs = (node: Node): [string, number] | undefined => {
    const list = node.parent;
    const call = list?.parent;
    const callee = call?.childForFieldName('function');
    if (list?.type !== 'argument_list' || call?.type !== 'call_expression' || callee?.type !== 'identifier') return undefined;
    const args = list.namedChildren.filter((child): child is Node => child !== null && child.type !== 'comment');
    return [callee.text, args.findIndex((arg) => arg.id === node.id)];
  };
  for (const use of body.descendantsOfType('identifier')) {
    if (!use || use.text !== name || isUnevaluated(use)) continue;
    const parent = use.parent;
    if (!parent) return undefined;
    if (parent.childForFieldName('declarator')?.id === use.id) continue;
    const operator = parent.childForFieldName('operator')?.type;
    const isArgument = parent.childForFieldName('argument')?.id === use.id;
    let top: Node | undefined;
    if (isArgument && parent.type === 'field_expression' && operator === (mode === 'pointer' ? '->' : '.')) top = parent;
    else if (isArgument && parent.type === 'subscript_expression' && mode !== 'object' && constantIndex(parent)) top = parent;
    else if (isArgument && parent.type === 'pointer_expression' && operator === '*' && mode === 'pointer') top = parent;
    if (top) {
      for (let up = top.parent; up && up.childForFieldName('argument')?.id === top.id; up = up.parent) {
        if (up.type === 'field_expression' && up.childForFieldName('operator')?.type === '.') top = up;
        else if (up.type === 'subscript_expression' && constantIndex(up)) top = up;
        else break;
      }
      const around = top.parent;
      if (!around || (around.type === 'pointer_expression' && around.childForFieldName('operator')?.type === '&')) return undefined;
      // A member passed on by value is a load, unless it is an array (its address) or a struct.
      if (around.type === 'argument_list' && !isScalarValue(top, context)) return undefined;
      continue;
    }
    // The address handed on: `f(&x)`, an array or a pointer as an argument.
    let operand = use;
    while (operand.parent?.type === 'parenthesized_expression') operand = operand.parent;
    const around = operand.parent;
    const addressed = around?.type === 'pointer_expression' && around.childForFieldName('operator')?.type === '&' ? around : undefined;
    if (mode === 'scalar' && !addressed) continue;
    const address = addressed && mode !== 'pointer' ? addressed : mode === 'array' || mode === 'pointer' ? use : undefined;
    const passed = address && passedAs(address);
    if (!passed) return undefined;
    conditions.push(passed);
  }
  return conditions;
}

/** Whether the expression's type is known to be a scalar, a pointer or an enum. */
function isScalarValue(node: Node, context: FileContext): boolean {
  const tokens = tokenize(node.text);
  const type = context.unit.declarations.expressionType?.(tokens, 0, tokens.length);
  const kind = type && context.unit.layout.resolve(type).k;
  return kind === 'scalar' || kind === 'pointer' || kind === 'enum';
}

/** tree-sitter reads `_Static_assert(e, "...")` in a body as a call. */
const STATIC_ASSERTS = new Set(['_Static_assert', 'static_assert']);

/**
 * Whether `node` sits in an operand clang never evaluates: sizeof, _Alignof, _Static_assert.
 * bpf_experimental.h's `_Static_assert(sizeof(&(LHS)), "... lvalue")` takes no address at run time.
 */
function isUnevaluated(node: Node): boolean {
  for (let current = node.parent; current; current = current.parent) {
    if (current.type === 'sizeof_expression' || current.type === 'alignof_expression') return true;
    if (current.type === 'call_expression') {
      const callee = current.childForFieldName('function');
      if (callee?.type === 'identifier' && STATIC_ASSERTS.has(callee.text)) return true;
    }
    if (current.type === 'function_definition') return false;
  }
  return false;
}

/** `x`, `x.f`, `x[3].f` -> "x". */
function rootIdentifier(node: Node | null): string | undefined {
  let current = node;
  while (current) {
    if (current.type === 'identifier') return current.text;
    if (current.type === 'field_expression') {
      if (current.childForFieldName('operator')?.type === '->') return undefined;
      current = current.childForFieldName('argument');
    } else if (current.type === 'subscript_expression') current = current.childForFieldName('argument');
    else if (current.type === 'parenthesized_expression') current = current.namedChildren[0] ?? null;
    else return undefined;
  }
  return undefined;
}

function localItems(
  unit: TranslationUnit,
  declaration: Node,
  addressTaken: Set<string>,
  volatileLocals: Set<string>,
  baseRow: number,
  noteType?: (name: string, type: CType) => void,
): { item: FrameItem; size: number; align: number }[] {
  const specifiers = declaration.namedChildren.filter((child): child is Node => child !== null);
  if (specifiers.some((child) => child.type === 'storage_class_specifier' && (child.text === 'static' || child.text === 'extern'))) return [];
  // bpf_experimental.h's bpf_cmp_unlikely copies its operand into `typeof(LHS) __lhs`: a volatile
  // LHS makes __lhs volatile, a second stack slot.
  const typeofName = typeofOperandName(declaration.childForFieldName('type')?.text ?? '');
  const isVolatile =
    specifiers.some((child) => child.type === 'type_qualifier' && /volatile/.test(child.text)) || (typeofName !== undefined && volatileLocals.has(typeofName));
  const initializers = new Map<string, Node>();
  for (const child of declaration.childrenForFieldName('declarator')) {
    const name = innermostName(child);
    if (name && isVolatile) volatileLocals.add(name);
    if (child?.type !== 'init_declarator') continue;
    const value = child.childForFieldName('value');
    if (name && value) initializers.set(name, value);
  }

  const line = declaration.startPosition.row + 1 - baseRow;
  return stackObjects(unit, declaration.text, line, initializers, (name, aggregate) => aggregate || isVolatile || addressTaken.has(name), noteType);
}

/**
 * A compound literal is an unnamed object of its block: `&(int){0}` (a map key written in place) or
 * an array literal, which decays to its address, lives on the stack. A struct literal that only
 * initialises or is assigned to a variable is folded into that variable by clang.
 */
function compoundLiteralItems(unit: TranslationUnit, literal: Node, baseRow: number): { item: FrameItem; size: number; align: number }[] {
  const type = literal.childForFieldName('type');
  if (!type) return [];
  const parent = literal.parent;
  const addressTaken = parent?.type === 'pointer_expression' && parent.childForFieldName('operator')?.type === '&';
  const tokens = tokenize(type.text);
  const parsed = unit.declarations.parseTypeName(tokens, 0, tokens.length);
  if (!parsed || parsed.next !== tokens.length) return [];
  if (!addressTaken && unit.layout.resolve(parsed.type).k !== 'array') return [];
  const item: FrameItem = { what: 'local', name: '(compound literal)', type: typeToString(parsed.type), bytes: roundToSlots(parsed.layout.size), line: literal.startPosition.row + 1 - baseRow };
  return [{ item, size: parsed.layout.size, align: Math.max(1, parsed.layout.align) }];
}

/** A parameter copied to the stack (its address is taken): a local of its type, to the items list. */
function parameterItems(
  unit: TranslationUnit,
  parameter: Node,
  baseRow: number,
  noteType?: (name: string, type: CType) => void,
): { item: FrameItem; size: number; align: number }[] {
  return stackObjects(unit, `${parameter.text};`, parameter.startPosition.row + 1 - baseRow, new Map(), () => true, noteType);
}

/** The stack objects a declaration's text declares, those `onStack` keeps, sized with the file's types. */
function stackObjects(
  unit: TranslationUnit,
  text: string,
  line: number,
  initializers: Map<string, Node>,
  onStack: (name: string, aggregate: boolean) => boolean,
  /** Told every declared name's type, on the stack or not. */
  noteType?: (name: string, type: CType) => void,
): { item: FrameItem; size: number; align: number }[] {
  // The tree spells a typeof(expression) as a placeholder; the declaration parser sizes the typeof.
  const tokens = tokenize(decodeTypeofPlaceholders(text));
  const problemsBefore = unit.declarations.problems.length;
  const declared = unit.declarations.parseDeclaration(tokens, 0, tokens.length);
  unit.declarations.problems.splice(problemsBefore);

  const items: { item: FrameItem; size: number; align: number }[] = [];
  for (const name of declared) {
    if (name.isTypedef) continue;
    noteType?.(name.name, name.type);
    const resolved = unit.layout.resolve(name.type);
    if (resolved.k === 'function') continue;
    const aggregate = resolved.k === 'struct' || resolved.k === 'union' || resolved.k === 'array';
    if (!onStack(name.name, aggregate)) continue;
    const layout = unit.layout.layoutOf(name.type);
    let size = layout.size;
    if (resolved.k === 'array' && resolved.n === undefined) {
      size = unsizedArrayBytes(unit, resolved.of, initializers.get(name.name));
    } else if (resolved.k === 'array' && resolved.n === 0 && /\[\s*0\s*\]/.test(text)) {
      // A zero-length array (BPF_SEQ_PRINTF's `___param[0]` with no arguments) passed by address
      // is still an object: LLVM gives it a byte, which takes a slot.
      size = 1;
    }
    const what: FrameItemKind = name.name === '____fmt' ? 'printk-format' : name.name === '___param' ? 'printk-args' : 'local';
    const type = resolved.k === 'array' && resolved.n === undefined ? `${typeToString(resolved.of)}[${size / Math.max(1, unit.layout.layoutOf(resolved.of).size)}]` : typeToString(name.type);
    items.push({ item: { what, name: name.name, type, bytes: roundToSlots(size), line }, size, align: Math.max(1, layout.align) });
  }
  return items;
}

/** The parameter declarations of a function definition's declarator. */
function functionParameters(declarator: Node | null): Node[] {
  let node = declarator;
  while (node && node.type !== 'function_declarator') node = node.childForFieldName('declarator');
  const list = node?.childForFieldName('parameters');
  return list?.namedChildren.filter((child): child is Node => child?.type === 'parameter_declaration') ?? [];
}

function innermostName(node: Node | null): string | undefined {
  let current = node;
  while (current) {
    if (current.type === 'identifier') return current.text;
    current = current.childForFieldName('declarator');
  }
  return undefined;
}

/** sizeof a `T x[] = init`: the string's bytes with its NUL, or the initializer list's length. */
function unsizedArrayBytes(unit: TranslationUnit, element: CType, init: Node | undefined): number {
  const elementSize = unit.layout.layoutOf(element).size;
  if (!init) return 0;
  if (init.type === 'string_literal' || init.type === 'concatenated_string') {
    const literals = init.type === 'string_literal' ? [init] : init.namedChildren.filter((child): child is Node => child?.type === 'string_literal');
    return literals.reduce((sum, literal) => sum + stringLiteralBytes(literal.text), 0) + 1;
  }
  if (init.type === 'initializer_list') return init.namedChildren.filter((child) => child !== null && child.type !== 'comment').length * elementSize;
  return 0;
}


/**
 * The deepest stack byte a naked function's asm addresses: `r10 - N` itself, and a register that
 * holds r10 plus a constant (`r2 = r10; r2 += -8;`, the usual way to pass a stack buffer to a helper),
 * both as the pointer it is (a helper writes through it: the verifier counts what the helper may
 * reach from there as used) and through its accesses (`*(u64 *)(r2 + 0)`). One pass in text order,
 * ignoring branches: a register keeps the last offset given to it, which can only count deeper.
 */
export function nakedAsmStackDepth(code: string): number {
  let deepest = 0;
  for (const match of code.matchAll(/\br10\s*(?:-|\+\s*-)\s*(\d+)/g)) deepest = Math.max(deepest, Number(match[1]));
  const offsets = new Map<string, number>();
  const note = (offset: number) => {
    if (offset < 0) deepest = Math.max(deepest, -offset);
  };
  for (const raw of code.split(/[;\n]|\\n/)) {
    // The asm is C string literals: their quotes and line-continuation backslashes are not code.
    const statement = raw.replace(/["\\]/g, ' ').trim();
    let match: RegExpMatchArray | null;
    for (const access of statement.matchAll(/\(\s*(r\d)\s*([+-])\s*(-?\d+)\s*\)/g)) {
      const base = offsets.get(access[1]);
      if (base !== undefined && access[1] !== 'r10') note(base + (access[2] === '-' ? -1 : 1) * Number(access[3]));
    }
    if ((match = statement.match(/^(r\d)\s*=\s*(r\d+)$/))) {
      const from = match[2] === 'r10' ? 0 : offsets.get(match[2]);
      if (from === undefined) offsets.delete(match[1]);
      else offsets.set(match[1], from);
    } else if ((match = statement.match(/^(r\d)\s*([+-])=\s*(-?\d+)$/))) {
      const base = offsets.get(match[1]);
      if (base !== undefined) {
        const offset = base + (match[2] === '-' ? -1 : 1) * Number(match[3]);
        offsets.set(match[1], offset);
        note(offset);
      }
    } else if ((match = statement.match(/^(r\d)\s*(?:[-+*/|&^]|<<|>>|s>>)?=/))) {
      offsets.delete(match[1]);
    } else if (/^call\b/.test(statement)) {
      // Helpers clobber r0-r5.
      for (const register of ['r0', 'r1', 'r2', 'r3', 'r4', 'r5']) offsets.delete(register);
    }
  }
  return deepest;
}
