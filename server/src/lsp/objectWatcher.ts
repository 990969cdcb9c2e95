/**
 * The object index: finds the BPF objects of the workspace, analyzes each one, and answers which of
 * them were built from a given source file (BTF line info records the file names clang compiled).
 *
 * Objects change under our feet: a build rewrites them, deletes them, or leaves them half-written
 * when it fails. Every change is debounced (a build touches a file several times in a burst), a
 * file that changes while it is read or whose ELF tables run past its end is read once more after a
 * short delay, and one that is still incomplete then contributes nothing: results come only from
 * whole files, and a bad file never stops the server.
 */
import { type GlobMatcher, compileGlob } from '../common/globs';
import { readRegularFileAsync } from '../common/safeRead';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { SourceLocation } from '../common/problem';
import { analyzeObject, type ProgramReport } from '../object/analyzeObject';
import type { KernelProfile } from '../rules/kernelProfile';
import { resolvedPath } from '../common/paths';
import type { DocumentAnalysisProvider, DocumentStackAnalysis } from '../ide/analysis';

export interface ObjectIndexOptions {
  /** Quiet time after the last change of a file before it is read. */
  debounceMs: number;
  /** Delay before the one retry of a file that was incomplete. */
  retryMs: number;
  log(message: string): void;
}

interface ObjectEntry {
  objectPath: string;
  mtimeMs: number;
  /** Resolved paths of the source files that BTF names. */
  sources: Set<string>;
  programs: ProgramReport[];
  profiles: KernelProfile[];
  /** The compiled text of every line the programs point at, by "file:line", so that lines can follow edits. */
  lineTexts: Map<string, string>;
}

/** Directories never searched for objects. */
const SKIPPED_DIRECTORIES = new Set(['node_modules', '.git']);
/** A bound on the scan, so that opening a huge tree cannot stall the server. */
const MAX_SCANNED_ENTRIES = 200_000;

export class ObjectIndex implements DocumentAnalysisProvider {
  readonly origin = 'object' as const;
  private readonly entries = new Map<string, ObjectEntry>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** Bumped on every event for a path, so that an older read never overwrites a newer one. */
  private readonly generations = new Map<string, number>();
  private readonly listeners: ((sourcePaths: string[] | 'all') => void)[] = [];
  private profiles: KernelProfile[] = [];
  private matchers: GlobMatcher[] = [];
  private roots: string[] = [];
  /** While a rescan runs, listeners hear once at its end rather than once per object. */
  private scanning = false;

  constructor(private readonly options: ObjectIndexOptions) {}

  onDidChange(listener: (sourcePaths: string[] | 'all') => void): void {
    this.listeners.push(listener);
  }

  /** Sets roots, globs and profiles, then rescans every root; resolves when every object found was read. */
  async configure(roots: string[], globs: string[], profiles: KernelProfile[]): Promise<void> {
    this.roots = roots.map((root) => path.resolve(root));
    // Settings are validated before they get here; a glob that still does not compile matches nothing.
    this.matchers = globs.flatMap((glob) => {
      const compiled = compileGlob(glob);
      return 'matcher' in compiled ? [compiled.matcher] : [];
    });
    this.profiles = profiles;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.entries.clear();
    const found = this.roots.flatMap((root) => scanForObjects(root, (relative) => this.matches(relative)));
    this.scanning = true;
    try {
      await Promise.all(found.map((objectPath) => this.load(objectPath, this.bump(objectPath), 0)));
    } finally {
      this.scanning = false;
    }
    this.emit('all');
  }

  /** Whether `filePath` is an object this index would watch. */
  watches(filePath: string): boolean {
    const absolute = path.resolve(filePath);
    return this.roots.some((root) => {
      const relative = path.relative(root, absolute);
      return (
        !relative.startsWith('..') &&
        !path.isAbsolute(relative) &&
        !relative.split(path.sep).some((part) => SKIPPED_DIRECTORIES.has(part)) &&
        this.matches(relative)
      );
    });
  }

  /** A file was created, changed or deleted: read it again once the burst of changes is over. */
  fileChanged(filePath: string): void {
    const objectPath = path.resolve(filePath);
    if (!this.watches(objectPath) && !this.entries.has(objectPath)) return;
    const generation = this.bump(objectPath);
    this.schedule(objectPath, this.options.debounceMs, () => this.load(objectPath, generation, 0));
  }

  analysesFor(sourcePath: string): DocumentStackAnalysis[] {
    const source = resolvedPath(sourcePath);
    const analyses: DocumentStackAnalysis[] = [];
    for (const entry of this.entries.values()) {
      if (!entry.sources.has(source)) continue;
      analyses.push({
        origin: 'object',
        label: path.basename(entry.objectPath),
        path: entry.objectPath,
        staleReason: staleReason(entry, source),
        programs: entry.programs,
        profiles: entry.profiles,
        lineTexts: entry.lineTexts,
      });
    }
    return analyses.sort((a, b) => a.path.localeCompare(b.path));
  }

  /** Every source file (resolved) some analyzed object was built from. */
  sourcePaths(): string[] {
    return [...new Set([...this.entries.values()].flatMap((entry) => [...entry.sources]))].sort();
  }

  /** Every object analyzed, for reports. */
  objectPaths(): string[] {
    return [...this.entries.keys()].sort();
  }

  dispose(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  private matches(relativePath: string): boolean {
    const normalized = relativePath.split(path.sep).join('/');
    return this.matchers.some((matcher) => matcher(normalized));
  }

  private bump(objectPath: string): number {
    const generation = (this.generations.get(objectPath) ?? 0) + 1;
    this.generations.set(objectPath, generation);
    return generation;
  }

  private schedule(objectPath: string, delayMs: number, run: () => Promise<void>): void {
    clearTimeout(this.timers.get(objectPath));
    this.timers.set(
      objectPath,
      setTimeout(() => {
        this.timers.delete(objectPath);
        run().catch((error) => this.options.log(`${objectPath}: ${String(error)}`));
      }, delayMs),
    );
  }

  private async load(objectPath: string, generation: number, attempt: number): Promise<void> {
    const read = await readWhole(objectPath);
    if (this.generations.get(objectPath) !== generation) return;
    if (read.kind === 'missing') {
      this.remove(objectPath);
      return;
    }
    const analysis = read.kind === 'whole' ? analyzeObject(read.bytes, objectPath, this.profiles) : undefined;
    const incompleteReason =
      read.kind === 'changing' ? 'it changed while it was read' : analysis && incompleteness(read.bytes, analysis.readable, analysis.report.problems);
    if (read.kind !== 'whole' || !analysis || incompleteReason) {
      if (attempt === 0) {
        this.schedule(objectPath, this.options.retryMs, () => this.load(objectPath, generation, 1));
      } else {
        this.options.log(`${objectPath}: ignored (${incompleteReason ?? 'unreadable'})`);
        this.remove(objectPath);
      }
      return;
    }
    const sources = sourcesOf(analysis.report.programs, path.dirname(objectPath));
    if (sources.size === 0) {
      // Not built from C with -g, or not BPF at all: nothing to show in any source.
      this.remove(objectPath);
      return;
    }
    const previous = this.entries.get(objectPath);
    const lineTexts = pointedLineTexts(analysis.report.programs, analysis.lineTextOf);
    this.entries.set(objectPath, { objectPath, mtimeMs: read.mtimeMs, sources, programs: analysis.report.programs, profiles: this.profiles, lineTexts });
    this.options.log(`${objectPath}: ${analysis.report.programs.length} program(s) from ${[...sources].map((s) => path.basename(s)).join(', ')}`);
    this.emit([...new Set([...(previous?.sources ?? []), ...sources])]);
  }

  private remove(objectPath: string): void {
    const previous = this.entries.get(objectPath);
    if (!previous) return;
    this.entries.delete(objectPath);
    this.emit([...previous.sources]);
  }

  private emit(sourcePaths: string[] | 'all'): void {
    if (this.scanning) return;
    for (const listener of this.listeners) listener(sourcePaths);
  }
}

type ReadResult = { kind: 'whole'; bytes: Uint8Array; mtimeMs: number } | { kind: 'changing' } | { kind: 'missing' };

/** Reads a file and checks that its size and time did not change meanwhile. */
async function readWhole(filePath: string): Promise<ReadResult> {
  try {
    const before = await fs.promises.stat(filePath);
    if (!before.isFile()) return { kind: 'missing' };
    // Read through the safe reader: the file can become a FIFO or a device between the stat and the read.
    const read = await readRegularFileAsync(filePath);
    if ('reason' in read) return { kind: 'missing' };
    const buffer = read.bytes;
    const after = await fs.promises.stat(filePath);
    if (before.size !== after.size || before.mtimeMs !== after.mtimeMs || buffer.byteLength !== after.size) return { kind: 'changing' };
    return { kind: 'whole', bytes: new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength), mtimeMs: after.mtimeMs };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR' ? { kind: 'missing' } : { kind: 'changing' };
  }
}

/**
 * Why an object looks cut short, or undefined when it looks whole. clang writes the section header
 * table last, at the end of the file, so a file that ends before the table (or before any section
 * the table lists) is still being written.
 */
export function incompleteness(bytes: Uint8Array, readable: boolean, problems: { message: string }[]): string | undefined {
  if (!readable) return problems[0]?.message ?? 'not an ELF object';
  const elfEnd = elfExtent(bytes);
  if (elfEnd !== undefined && elfEnd > bytes.length) return `the ELF tables need ${elfEnd} bytes, the file has ${bytes.length}`;
  const truncated = problems.find((problem) => /truncat|beyond the end|past the end/i.test(problem.message));
  return truncated?.message;
}

/** The end of the furthest section or of the section header table, from the ELF headers. */
function elfExtent(bytes: Uint8Array): number | undefined {
  if (bytes.length < 0x40 || bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) return undefined;
  const is64 = bytes[4] === 2;
  const little = bytes[5] === 1;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u16 = (at: number) => view.getUint16(at, little);
  const u32 = (at: number) => view.getUint32(at, little);
  const word = (at: number) => (is64 ? Number(view.getBigUint64(at, little)) : u32(at));
  const shoff = word(is64 ? 0x28 : 0x20);
  const shentsize = u16(is64 ? 0x3a : 0x2e);
  const shnum = u16(is64 ? 0x3c : 0x30);
  let end = shoff + shentsize * shnum;
  if (end > bytes.length || shentsize < (is64 ? 0x40 : 0x28)) return end;
  const SHT_NOBITS = 8;
  for (let index = 0; index < shnum; index++) {
    const header = shoff + index * shentsize;
    if (u32(header + 4) === SHT_NOBITS) continue;
    const offset = word(header + (is64 ? 0x18 : 0x10));
    const size = word(header + (is64 ? 0x20 : 0x14));
    end = Math.max(end, offset + size);
  }
  return end;
}

/** Every place the programs point at: each function, its calls and its tail calls. */
function* pointedLocations(programs: ProgramReport[]): Generator<SourceLocation> {
  for (const program of programs) {
    for (const sub of program.subprograms) {
      if (sub.source) yield sub.source;
      yield* sub.tailCalls;
      for (const call of sub.calls) if (call.source) yield call.source;
    }
  }
}

/** The source files an object's BTF names, made absolute (relative names are taken from the object's folder). */
function sourcesOf(programs: ProgramReport[], objectDirectory: string): Set<string> {
  const sources = new Set<string>();
  for (const location of pointedLocations(programs)) if (location.file) sources.add(resolvedPath(path.resolve(objectDirectory, location.file)));
  return sources;
}

/** The BTF text of each line the programs point at, by "file:line". */
function pointedLineTexts(programs: ProgramReport[], lineTextOf: (file: string, line: number) => string | undefined): Map<string, string> {
  const texts = new Map<string, string>();
  for (const location of pointedLocations(programs)) {
    const key = `${location.file}:${location.line}`;
    const text = texts.has(key) ? undefined : lineTextOf(location.file, location.line);
    if (text !== undefined) texts.set(key, text);
  }
  return texts;
}

function staleReason(entry: ObjectEntry, source: string): string | undefined {
  try {
    const sourceTime = fs.statSync(source).mtimeMs;
    if (sourceTime > entry.mtimeMs) return `${path.basename(entry.objectPath)} is older than ${path.basename(source)}: rebuild it to update`;
  } catch {
    // An unsaved or vanished source has no time to compare; the object is the best we have.
  }
  return undefined;
}

/** Files under `root` whose relative path matches, skipping node_modules and .git. */
function scanForObjects(root: string, matches: (relativePath: string) => boolean): string[] {
  const found: string[] = [];
  const pending = [root];
  let seen = 0;
  while (pending.length > 0 && seen < MAX_SCANNED_ENTRIES) {
    const directory = pending.pop() as string;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(directory, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const entry of entries) {
      seen++;
      const full = path.join(directory, entry.name);
      if (entry.isDirectory()) {
        if (!SKIPPED_DIRECTORIES.has(entry.name)) pending.push(full);
      } else if (entry.isFile() && matches(path.relative(root, full))) {
        found.push(full);
      }
    }
  }
  return found;
}
