/**
 * The walk cache: walks of functions (RawFunction) kept in memory and, for a persistent cache, on
 * disk beside the header index, keyed by everything a walk depends on, including the code that made
 * it (codeKey).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { packageFile, packageRoot } from '../packageRoot';
import type { TranslationUnit } from '../translationUnit';
import type { RawFunction } from './model';

/**
 * Walks of functions kept between estimates of the same files: an entry is reused when the function's
 * text, its place and everything outside function bodies that could change its meaning are the same.
 * Safe to share between files and concurrent callers (every use is synchronous).
 *
 * Beside the memory, walks persist on disk next to the header index (when it has a cache directory),
 * one file per main file: a new process re-walks only the functions that changed, and when nothing
 * did, the estimate needs no syntax tree at all (see estimateFramesFromCache). A persistent cache
 * writes its stores shortly after a change and at process exit (see scheduleFlush); the caller that
 * creates one (estimateSource.ts's process-wide cache, a test) decides that, nothing else does.
 */
export class FrameEstimateCache {
  private readonly entries = new Map<string, RawFunction>();
  hits = 0;
  misses = 0;
  /** Walks found on disk rather than in memory (counted among the hits). */
  diskHits = 0;
  /** One store per main file, loaded on first use. */
  private readonly diskStores = new Map<string, FrameDiskStore>();
  private flushTimer: NodeJS.Timeout | undefined;
  private flushesAtExit = false;

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

  /** The disk store of the unit's main file, when this cache persists and the unit has a cache directory. */
  diskStoreFor(unit: TranslationUnit): FrameDiskStore | undefined {
    if (!this.persistent || !unit.cacheDir) return undefined;
    const file = path.join(unit.cacheDir, `frames-v${FRAME_CACHE_FORMAT}`, `${createHash('sha1').update(unit.file).digest('hex')}.json`);
    let store = this.diskStores.get(file);
    if (!store) {
      store = new FrameDiskStore(file, unit.file, () => this.scheduleFlush());
      this.diskStores.set(file, store);
    }
    return store;
  }

  /** Writes every store that changed now, rather than shortly or at exit. */
  flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    for (const store of this.diskStores.values()) store.flush();
  }

  /**
   * A write shortly after the last change, on an unref'd timer (a one-shot command exits without
   * waiting), and one at exit, hooked the first time this cache has something to write.
   */
  private scheduleFlush(): void {
    if (!this.flushesAtExit) {
      this.flushesAtExit = true;
      process.once('exit', () => this.flush());
    }
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => this.flush(), FLUSH_DELAY_MS);
    this.flushTimer.unref();
  }
}

/** Bumped whenever RawFunction's shape changes. The code key below covers changes of the walker itself. */
const FRAME_CACHE_FORMAT = 7;
const FLUSH_DELAY_MS = 2000;

let codeKeyValue: string | undefined;

/**
 * What the walks' code is: the size and mtime of every compiled module of the server (out/server
 * for tsc's output, dist/ for the bundle: the tree this module ships in, found from the package root
 * rather than from the folder this file sits in, so that moving a module neither drops nor hides
 * one) and of the C grammar, so that a rebuilt or upgraded extension never reuses walks an older one
 * stored.
 */
export function codeKey(): string {
  codeKeyValue ??= describeCode().join('\n');
  return codeKeyValue;
}

/** The parts of codeKey(): one line per module, relative to the package root. */
export function describeCode(): string[] {
  const root = packageRoot();
  const parts = [`v${FRAME_CACHE_FORMAT}`];
  const describe = (file: string) => {
    const name = path.relative(root, file);
    try {
      const stat = fs.statSync(file);
      parts.push(`${name}:${stat.size}:${stat.mtimeMs}`);
    } catch {
      parts.push(`${name}:-`);
    }
  };
  const walk = (directory: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(directory, { withFileTypes: true });
    } catch {
      parts.push(`${path.relative(root, directory)}:?`);
      return;
    }
    for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const full = path.join(directory, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.js')) describe(full);
    }
  };
  walk(compiledServerRoot(root));
  describe(packageFile('grammars', 'tree-sitter-c.wasm'));
  return parts;
}

/** The folder of compiled server code that holds this module: <root>/out/server, or <root>/dist. */
function compiledServerRoot(root: string): string {
  const top = path.relative(root, __dirname).split(path.sep)[0];
  if (!top || top === '..') return __dirname;
  const server = path.join(root, top, 'server');
  return fs.existsSync(server) ? server : path.join(root, top);
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
export class FrameDiskStore {
  /** As loaded: the whole-file key, the functions' disk keys and rows, the walks by disk key. */
  private fileKey = '';
  private functions: [string, number][] = [];
  private entries = new Map<string, RawFunction>();
  /** The last estimate, not yet written: its unit's key parts and its walks by in-memory key. */
  private pending: { unit: WholeFileKeyParts; functions: [string, number][]; walks: Map<string, RawFunction> } | undefined;

  constructor(
    readonly file: string,
    private readonly mainFile: string,
    /** Asks the owning cache to write this store soon. */
    private readonly changed: () => void,
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
    this.changed();
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
      const stored: StoredFrames = {
        format: FRAME_CACHE_FORMAT,
        code: codeKey(),
        file: this.mainFile,
        fileKey: this.fileKey,
        functions: this.functions,
        entries: [...this.entries],
      };
      const temporary = `${this.file}.${process.pid}.tmp`;
      fs.writeFileSync(temporary, JSON.stringify(stored));
      fs.renameSync(temporary, this.file);
    } catch {
      // The cache is an optimisation: a read-only or full disk must not break estimates.
    }
  }
}

type WholeFileKeyParts = { file: string; dependencyKey: string; aligned: { text: string } };

/** The key of the whole file's estimate: its preprocessed text and everything else the unit depends on. */
export function wholeFileKey(unit: WholeFileKeyParts): string {
  return createHash('sha1')
    .update(codeKey())
    .update('\0')
    .update(unit.file)
    .update('\0')
    .update(unit.dependencyKey)
    .update('\0')
    .update(unit.aligned.text)
    .digest('hex');
}

function diskKey(memoryKey: string): string {
  return createHash('sha1').update(memoryKey).digest('hex');
}
