/**
 * The source-estimate provider: every open C document estimated from its text as the editor has
 * it, unsaved edits and open headers included, and judged for the configured kernels by the same
 * rule engine as the objects. It answers before anything is built, and while the built object is
 * stale.
 *
 * A run starts a short quiet time after the last change, because typing produces bursts; a run
 * whose document changed again meanwhile is dropped at its next await rather than published. The
 * first analysis of a file whose headers are large (vmlinux.h runs to megabytes) indexes them one
 * #include at a time, yielding between them, so that the editor can show progress and a newer edit
 * can cancel the run.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { estimateSource } from '../cli/estimateCommand';
import type { KernelProfile } from '../rules/kernelProfile';
import { DEFAULT_SYSTEM_INCLUDE_DIRS, type ReadFile, StatCheckedFiles, readFileFromDisk, resolveInclude } from '../source/headerIndex';
import { createPreprocessorState, definitionsFromText, type Macro } from '../source/preprocessor';
import { analyzeTranslationUnit, type TranslationUnitOptions } from '../source/translationUnit';
import { type CompileFlags, applyDefinitions, compileFlagsFor, findCompileCommands, readCompileCommands } from '../source/compileCommands';
import { type DocumentAnalysisProvider, type DocumentStackAnalysis, resolvedPath } from './documentAnalysis';
import type { LensSettings } from './settings';

/** A progress indicator in the editor, begun by the host. */
export interface ProgressHandle {
  report(message: string, percentage: number): void;
  done(): void;
}

export interface SourceEstimateHost {
  /** The text of an open document, by resolved path, so unsaved buffers stand in for files. */
  openText(filePath: string): string | undefined;
  log(message: string): void;
  /** Begins a progress indicator; undefined when the client cannot show one. */
  beginProgress(title: string): Promise<ProgressHandle | undefined>;
  /** Quiet time after the last change before a run. */
  debounceMs: number;
}

/** Direct includes at least this large make the first analysis of a file index them with progress shown. */
export const LARGE_HEADER_BYTES = 512 * 1024;

interface Estimate {
  analysis: DocumentStackAnalysis;
  /** Every file the run read (headers and compile database), so that a change to one re-runs it. */
  dependencies: Set<string>;
}

const INCLUDE_LINE = /^[ \t]*#[ \t]*include[ \t]*([<"])([^>"\n]+)[>"]/;

export class SourceEstimates implements DocumentAnalysisProvider {
  readonly origin = 'source estimate' as const;
  private readonly tracked = new Set<string>();
  private readonly estimates = new Map<string, Estimate>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** Bumped on every change of a file's inputs, so that an older run never overwrites a newer one. */
  private readonly generations = new Map<string, number>();
  /** Files whose headers were indexed once already in this session: no progress after the first analysis. */
  private readonly analyzedOnce = new Set<string>();
  private readonly listeners: ((sourcePaths: string[] | 'all') => void)[] = [];
  private settings: Pick<LensSettings, 'includePaths' | 'defines' | 'compileCommands' | 'printkModel'> | undefined;
  private profiles: KernelProfile[] = [];
  private roots: string[] = [];
  /** The compile database, read once per configuration and again when it changes on disk. */
  private database: { path: string; entries: ReturnType<typeof readCompileCommands> } | undefined;
  /** Files not open in the editor, as last read from disk: re-read only when their size or mtime changes (vmlinux.h is megabytes). */
  private readonly diskFiles = new StatCheckedFiles();

  constructor(private readonly host: SourceEstimateHost) {}

  onDidChange(listener: (sourcePaths: string[] | 'all') => void): void {
    this.listeners.push(listener);
  }

  analysesFor(sourcePath: string): DocumentStackAnalysis[] {
    const estimate = this.estimates.get(resolvedPath(sourcePath));
    return estimate ? [estimate.analysis] : [];
  }

  /** New settings, kernels or workspace roots: every tracked file is estimated again. */
  configure(settings: LensSettings, profiles: KernelProfile[], roots: string[]): void {
    this.settings = settings;
    this.profiles = profiles;
    this.roots = roots;
    this.loadDatabase();
    for (const filePath of this.tracked) this.schedule(filePath, 0);
  }

  /** A document was opened: estimate it at once, since there is no burst of typing to wait out. */
  opened(filePath: string): void {
    this.tracked.add(filePath);
    this.schedule(filePath, 0);
  }

  /** A document's text changed in the editor: it and every open file that includes it run again after the quiet time. */
  edited(filePath: string): void {
    for (const affected of this.affectedBy(filePath)) this.schedule(affected, this.host.debounceMs);
  }

  closed(filePath: string): void {
    this.tracked.delete(filePath);
    this.bump(filePath);
    clearTimeout(this.timers.get(filePath));
    this.timers.delete(filePath);
    if (this.estimates.delete(filePath)) this.emit([filePath]);
  }

  /** A file changed on disk: the compile database re-runs everything, a header re-runs its includers. */
  fileChanged(filePath: string): void {
    const resolved = resolvedPath(filePath);
    if (this.database && resolvedPath(this.database.path) === resolved) {
      this.loadDatabase();
      for (const tracked of this.tracked) this.schedule(tracked, this.host.debounceMs);
      return;
    }
    if (path.basename(resolved) === 'compile_commands.json' && !this.settings?.compileCommands) {
      // A database appearing where none was found before is picked up too.
      this.loadDatabase();
      for (const tracked of this.tracked) this.schedule(tracked, this.host.debounceMs);
      return;
    }
    for (const affected of this.affectedBy(resolved)) if (affected !== resolved) this.schedule(affected, this.host.debounceMs);
  }

  /** The -D definitions a file is estimated with, for features that reason about macros themselves (the printk model). */
  definesFor(filePath: string): Record<string, string> {
    return Object.fromEntries(this.optionsFor(filePath).defines.map(([name, value]) => [name, value]));
  }

  dispose(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.diskFiles.clear();
  }

  private affectedBy(filePath: string): string[] {
    const affected = this.tracked.has(filePath) ? [filePath] : [];
    for (const [source, estimate] of this.estimates) if (source !== filePath && estimate.dependencies.has(filePath)) affected.push(source);
    return affected;
  }

  private loadDatabase(): void {
    const databasePath = this.settings ? findCompileCommands(this.settings.compileCommands, this.roots) : undefined;
    this.database = databasePath ? { path: databasePath, entries: readCompileCommands(databasePath) } : undefined;
    if (databasePath && !this.database?.entries) this.host.log(`${databasePath}: not a compile database (a JSON array of entries); ignored`);
  }

  private bump(filePath: string): number {
    const generation = (this.generations.get(filePath) ?? 0) + 1;
    this.generations.set(filePath, generation);
    return generation;
  }

  private schedule(filePath: string, delayMs: number): void {
    if (!this.settings) return;
    const generation = this.bump(filePath);
    clearTimeout(this.timers.get(filePath));
    this.timers.set(
      filePath,
      setTimeout(() => {
        this.timers.delete(filePath);
        this.run(filePath, generation).catch((error) => this.host.log(`${filePath}: cannot estimate: ${error instanceof Error ? error.stack : String(error)}`));
      }, delayMs),
    );
  }

  private isCurrent(filePath: string, generation: number): boolean {
    return this.generations.get(filePath) === generation && this.tracked.has(filePath);
  }

  private async run(filePath: string, generation: number): Promise<void> {
    const text = this.host.openText(filePath);
    if (text === undefined) return;
    const { defines, flags } = this.optionsFor(filePath);
    const dependencies = new Set<string>();
    if (this.database) dependencies.add(resolvedPath(this.database.path));
    const readFile: ReadFile = (file) => {
      dependencies.add(resolvedPath(file));
      return this.host.openText(resolvedPath(file)) ?? this.diskFiles.read(file);
    };
    const options: TranslationUnitOptions = {
      includeDirs: [...(flags?.includeDirs ?? []), ...(this.settings?.includePaths ?? []).map((dir) => path.resolve(this.roots[0] ?? path.dirname(filePath), dir))],
      defines: defines.map(([name, value]) => `${name}=${value}`),
      readFile,
    };
    if (!this.analyzedOnce.has(filePath)) {
      const finished = await this.indexHeadersWithProgress(filePath, text, options, generation);
      if (!finished) return;
    }
    const report = await estimateSource(filePath, text, this.profiles, options);
    if (!this.isCurrent(filePath, generation)) return;
    this.analyzedOnce.add(filePath);
    this.estimates.set(filePath, {
      analysis: {
        origin: 'source estimate',
        label: `${path.basename(filePath)} (estimated from the source)`,
        path: filePath,
        programs: report.programs,
        profiles: this.profiles,
        frames: report.functions,
      },
      dependencies,
    });
    this.emit([filePath]);
  }

  /**
   * Indexes the headers of a file one #include at a time (each step preprocesses the text up to the
   * next include, so every header is indexed with the macros it will really see), reporting each
   * one. Only when the direct includes are large: small sets index faster than a progress bar
   * appears. Returns false when a newer change made the run stale.
   */
  private async indexHeadersWithProgress(filePath: string, text: string, options: TranslationUnitOptions, generation: number): Promise<boolean> {
    const includes = topLevelIncludes(filePath, text, options.includeDirs ?? []);
    const totalBytes = includes.reduce((sum, include) => sum + include.bytes, 0);
    if (totalBytes < LARGE_HEADER_BYTES) return true;
    const progress = await this.host.beginProgress(`Indexing the headers of ${path.basename(filePath)}`);
    try {
      for (const [index, include] of includes.entries()) {
        if (!this.isCurrent(filePath, generation)) return false;
        progress?.report(`${include.spelled} (${formatBytes(include.bytes)})`, Math.round((100 * index) / includes.length));
        // Let the report go out and newer edits come in before the long synchronous step.
        await new Promise((resolve) => setImmediate(resolve));
        analyzeTranslationUnit(filePath, text.slice(0, include.endOffset), options);
      }
      return this.isCurrent(filePath, generation);
    } finally {
      progress?.done();
    }
  }

  /** Definitions from the settings, the compile database (its -include files' macros first) and the printk model, in that order of precedence. */
  private optionsFor(filePath: string): { defines: [string, string][]; flags?: CompileFlags } {
    const databaseEntries = this.database?.entries;
    const flags = databaseEntries && this.database ? compileFlagsFor(databaseEntries, filePath, path.dirname(this.database.path)) : undefined;
    const defines = new Map<string, string>();
    for (const forced of flags?.forcedIncludes ?? []) for (const [name, value] of forcedIncludeDefines(forced, this.host.openText(resolvedPath(forced)))) defines.set(name, value);
    applyDefinitions(flags?.defines ?? [], defines);
    for (const [name, value] of Object.entries(this.settings?.defines ?? {})) defines.set(name, value);
    // The printk model is only a default for files that do not decide it themselves.
    if (this.settings?.printkModel === 'stack') defines.set('BPF_NO_GLOBAL_DATA', defines.get('BPF_NO_GLOBAL_DATA') ?? '1');
    if (this.settings?.printkModel === 'rodata') defines.delete('BPF_NO_GLOBAL_DATA');
    return { defines: [...defines], flags };
  }

  private emit(sourcePaths: string[] | 'all'): void {
    for (const listener of this.listeners) listener(sourcePaths);
  }
}

interface TopLevelInclude {
  spelled: string;
  /** The offset just past the directive's line, where the step that indexes it stops. */
  endOffset: number;
  bytes: number;
}

/** The #include lines of a file, with the size of each header they resolve to (0 when not found). */
function topLevelIncludes(filePath: string, text: string, includeDirs: readonly string[]): TopLevelInclude[] {
  const includes: TopLevelInclude[] = [];
  let offset = 0;
  for (const line of text.split('\n')) {
    const lineEnd = offset + line.length + 1;
    const match = INCLUDE_LINE.exec(line);
    if (match) {
      const resolved = resolveInclude(
        { spelled: match[2], angled: match[1] === '<', next: false, fromFile: filePath, offset },
        { includeDirs: includeDirs.map((dir) => path.resolve(dir)), systemIncludeDirs: DEFAULT_SYSTEM_INCLUDE_DIRS },
        (file) => fs.existsSync(file),
      );
      let bytes = 0;
      try {
        if (resolved) bytes = fs.statSync(resolved).size;
      } catch {
        // A header that vanished costs nothing to index.
      }
      includes.push({ spelled: match[2], endOffset: Math.min(lineEnd, text.length), bytes });
    }
    offset = lineEnd;
  }
  return includes;
}

/**
 * The macros a forced include (-include FILE) defines, as -D definitions. Its types are not seen:
 * the estimate takes the file's text as it is, and forced includes are almost always configuration
 * headers of macros.
 */
function forcedIncludeDefines(file: string, openText: string | undefined): [string, string][] {
  const text = openText ?? readFileFromDisk(file);
  if (text === undefined) return [];
  const state = createPreprocessorState();
  const predefined = new Set(state.macros.keys());
  definitionsFromText(text, state, []);
  return [...state.macros.values()].filter((macro) => !predefined.has(macro.name)).map(defineOf);
}

/** A macro as the name and value of a -D: `F(a,...)` and its body for function-like ones, whose spelling starts with the parameter list. */
function defineOf(macro: Macro): [string, string] {
  if (!macro.params) return [macro.name, macro.spelling.trim()];
  const close = macro.spelling.indexOf(')') + 1;
  return [`${macro.name}${macro.spelling.slice(0, close)}`, macro.spelling.slice(close).trim()];
}

function formatBytes(bytes: number): string {
  return bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MB` : `${Math.ceil(bytes / 1024)} KB`;
}
