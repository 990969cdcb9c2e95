/**
 * The source-estimate provider: every open C document estimated from its text as the editor has
 * it, unsaved edits and open headers included, and judged for the configured kernels by the same
 * rule engine as the objects. It answers before anything is built, and while the built object is
 * stale.
 *
 * A run starts a short quiet time after the last change, because typing produces bursts, and runs
 * on a worker thread (estimateThread.ts), so that indexing a large header never holds up hovers and
 * other requests. A change supersedes the document's queued or running estimate: its result is never
 * computed to the end, let alone published. `bpfStackLens.sourceEstimate.enabled` turns it all off.
 */
import * as path from 'node:path';
import type { KernelProfile } from '../rules/kernelProfile';
import { type CompileDatabase, type UnitOptions, loadCompileDatabase, unitOptionsFor } from '../source/unitOptions';
import { resolvedPath } from '../common/paths';
import type { DocumentAnalysisProvider, DocumentStackAnalysis } from '../ide/analysis';
import { type EstimateInput, EstimateThread, type EstimateThreadHost } from './estimateThread';
import type { LensSettings } from './settings';

export interface SourceEstimateHost extends EstimateThreadHost {
  /** The text of an open document, by resolved path, so unsaved buffers stand in for files. */
  openText(filePath: string): string | undefined;
  /** Quiet time after the last change before a run. */
  debounceMs: number;
}

interface Estimate {
  analysis: DocumentStackAnalysis;
  /** Every file the run read (headers and compile database), so that a change to one re-runs it. */
  dependencies: Set<string>;
}

export class SourceEstimates implements DocumentAnalysisProvider {
  readonly origin = 'source estimate' as const;
  private readonly tracked = new Set<string>();
  private readonly estimates = new Map<string, Estimate>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** Bumped on every change of a file's inputs, so that an older run never overwrites a newer one. */
  private readonly generations = new Map<string, number>();
  private readonly listeners: ((sourcePaths: string[] | 'all') => void)[] = [];
  /** Files with an estimate waiting or running, each with what resolves once none is. */
  private readonly unsettled = new Map<string, { settled: Promise<void>; resolve: () => void }>();
  private settings: Pick<LensSettings, 'includePaths' | 'defines' | 'compileCommands' | 'printkModel' | 'estimateFromSource'> | undefined;
  private profiles: KernelProfile[] = [];
  private roots: string[] = [];
  /** The compile database, read once per configuration and again when it changes on disk. */
  private database: CompileDatabase | undefined;
  private readonly thread: EstimateThread;

  constructor(private readonly host: SourceEstimateHost) {
    this.thread = new EstimateThread(host);
  }

  onDidChange(listener: (sourcePaths: string[] | 'all') => void): void {
    this.listeners.push(listener);
  }

  analysesFor(sourcePath: string): DocumentStackAnalysis[] {
    const estimate = this.estimates.get(resolvedPath(sourcePath));
    return estimate ? [estimate.analysis] : [];
  }

  /** New settings, kernels or workspace roots: every tracked file is estimated again, or, with the estimate turned off, forgotten. */
  configure(settings: LensSettings, profiles: KernelProfile[], roots: string[]): void {
    this.settings = settings;
    this.profiles = profiles;
    this.roots = roots;
    this.loadDatabase();
    if (settings.estimateFromSource) {
      for (const filePath of this.tracked) this.schedule(filePath, 0);
      return;
    }
    for (const filePath of this.tracked) {
      this.cancel(filePath);
      this.settle(filePath);
    }
    const forgotten = [...this.estimates.keys()];
    this.estimates.clear();
    if (forgotten.length > 0) this.emit(forgotten);
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
    this.cancel(filePath);
    this.settle(filePath);
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

  /** Resolves once the file has no estimate waiting or running. */
  settled(filePath: string): Promise<void> {
    return this.unsettled.get(filePath)?.settled ?? Promise.resolve();
  }

  /** The -D definitions a file is estimated with, for features that reason about macros themselves (the printk model). */
  definesFor(filePath: string): Record<string, string> {
    return Object.fromEntries(this.optionsFor(filePath).defines.map(([name, value]) => [name, value]));
  }

  dispose(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.thread.dispose();
    for (const filePath of [...this.unsettled.keys()]) this.settle(filePath);
  }

  private affectedBy(filePath: string): string[] {
    const affected = this.tracked.has(filePath) ? [filePath] : [];
    for (const [source, estimate] of this.estimates) if (source !== filePath && estimate.dependencies.has(filePath)) affected.push(source);
    return affected;
  }

  private loadDatabase(): void {
    this.database = this.settings ? loadCompileDatabase(this.settings.compileCommands, this.roots) : undefined;
    if (this.database && !this.database.entries) this.host.log(`${this.database.path}: not a compile database (a JSON array of entries); ignored`);
  }

  private bump(filePath: string): number {
    const generation = (this.generations.get(filePath) ?? 0) + 1;
    this.generations.set(filePath, generation);
    return generation;
  }

  /** Stops whatever estimate of the file is waiting or running: a newer change or a close made it stale. */
  private cancel(filePath: string): number {
    const generation = this.bump(filePath);
    clearTimeout(this.timers.get(filePath));
    this.timers.delete(filePath);
    this.thread.supersede(filePath);
    return generation;
  }

  private schedule(filePath: string, delayMs: number): void {
    if (!this.settings?.estimateFromSource) return;
    const generation = this.cancel(filePath);
    // Whoever waits for the file waits through re-runs, for the estimate of its latest text.
    if (!this.unsettled.has(filePath)) {
      let resolve = () => {};
      const settled = new Promise<void>((resolvePromise) => (resolve = resolvePromise));
      this.unsettled.set(filePath, { settled, resolve });
    }
    this.timers.set(
      filePath,
      setTimeout(() => {
        this.timers.delete(filePath);
        this.run(filePath, generation)
          .catch((error) => this.host.log(`${filePath}: cannot estimate: ${error instanceof Error ? error.stack : String(error)}`))
          .finally(() => {
            if (this.generations.get(filePath) === generation) this.settle(filePath);
          });
      }, delayMs),
    );
  }

  private settle(filePath: string): void {
    this.unsettled.get(filePath)?.resolve();
    this.unsettled.delete(filePath);
  }

  private isCurrent(filePath: string, generation: number): boolean {
    return this.generations.get(filePath) === generation && this.tracked.has(filePath);
  }

  private async run(filePath: string, generation: number): Promise<void> {
    const result = await this.thread.estimate(filePath, () => this.inputFor(filePath));
    if (!result || !this.isCurrent(filePath, generation)) return;
    const dependencies = new Set(result.dependencies);
    if (this.database) dependencies.add(resolvedPath(this.database.path));
    this.estimates.set(filePath, {
      analysis: {
        origin: 'source estimate',
        label: `${path.basename(filePath)} (estimated from the source)`,
        path: filePath,
        programs: result.report.programs,
        profiles: this.profiles,
        frames: result.report.functions,
        estimatedText: result.text,
        problems: result.report.problems,
      },
      dependencies,
    });
    this.emit([filePath]);
  }

  /** What the worker needs for one run, read when the run's turn comes; undefined once the document is closed. */
  private inputFor(filePath: string): EstimateInput | undefined {
    const text = this.host.openText(filePath);
    if (text === undefined) return undefined;
    const { includeDirs, defines } = this.optionsFor(filePath);
    return { filePath, text, profiles: this.profiles, includeDirs, defines: defines.map(([name, value]) => `${name}=${value}`) };
  }

  /** The file's include paths and definitions from the compile database and the settings, as the CLI computes them from its flags. */
  optionsFor(filePath: string): UnitOptions {
    return unitOptionsFor(filePath, {
      ...this.configuredInputFor(filePath),
      printkModel: this.settings?.printkModel,
      openText: (file) => this.host.openText(resolvedPath(file)),
    });
  }

  /** The compile database and the settings' include paths (absolute) and definitions, which the estimate and the buffer compile of a file both start from. */
  configuredInputFor(filePath: string): { database?: CompileDatabase; includePaths: string[]; defines: string[] } {
    return {
      database: this.database,
      includePaths: (this.settings?.includePaths ?? []).map((dir) => path.resolve(this.roots[0] ?? path.dirname(filePath), dir)),
      defines: Object.entries(this.settings?.defines ?? {}).map(([name, value]) => `${name}=${value}`),
    };
  }

  private emit(sourcePaths: string[] | 'all'): void {
    for (const listener of this.listeners) listener(sourcePaths);
  }
}
