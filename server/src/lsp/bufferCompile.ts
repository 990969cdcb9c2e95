/**
 * The background compile of open buffers, scheduled: a quiet time after the last edit
 * (`bpfStackLens.bufferCompile.debounceMs`), the buffer is compiled by compile/bufferCompile.ts and
 * its object's exact numbers take the estimate's place, labelled "compiled from the buffer". An edit
 * marks them stale at once (the estimate takes over again) and kills a compile under way; a file
 * has at most one compile at a time. A buffer that does not compile keeps the estimate, with a
 * status note; its errors are the C language server's to show. Only where the workspace is trusted
 * (bufferCompileAllowed) and a compile command is known for the file.
 */
import * as path from 'node:path';
import { type BufferCompileResult, compileBuffer, resolveClang } from '../compile/bufferCompile';
import type { BufferCompileFlags } from '../compile/compileFlags';
import type { KernelProfile } from '../rules/kernelProfile';
import { resolvedPath } from '../common/paths';
import type { DocumentAnalysisProvider, DocumentStackAnalysis } from '../ide/analysis';
import type { ProgressHandle } from './estimateThread';
import type { BufferCompileMode } from './settings';

/** How long a compile runs before the client is shown a progress report. */
const SLOW_COMPILE_MS = 1000;
/** A compile that takes longer is given up; the estimate stands. */
const COMPILE_TIMEOUT_MS = 120_000;

/**
 * Whether buffers are compiled: never when the client reports an untrusted workspace or the setting
 * is "off"; with "auto" only when the client reports a trusted one (clients that say nothing about
 * trust need "on").
 */
export function bufferCompileAllowed(mode: BufferCompileMode, workspaceTrusted: boolean | undefined): boolean {
  if (mode === 'off' || workspaceTrusted === false) return false;
  return workspaceTrusted === true || mode === 'on';
}

export interface BufferCompileHost {
  openText(filePath: string): string | undefined;
  /** The safe flags a buffer of the file compiles with, and whether a compile command is known for it. */
  compileFlagsFor(filePath: string): BufferCompileFlags;
  log(message: string): void;
  beginProgress(title: string): Promise<ProgressHandle | undefined>;
}

export interface BufferCompileConfiguration {
  enabled: boolean;
  debounceMs: number;
  clangSetting: string;
  profiles: KernelProfile[];
  roots: string[];
}

interface FileState {
  generation: number;
  timer?: NodeJS.Timeout;
  /** Kills the compile under way. */
  controller?: AbortController;
  /** Resolves once the compile under way has ended. */
  running?: Promise<void>;
  analysis?: DocumentStackAnalysis;
}

export class BufferCompiles implements DocumentAnalysisProvider {
  readonly origin = 'object' as const;
  private readonly files = new Map<string, FileState>();
  private readonly listeners: ((sourcePaths: string[] | 'all') => void)[] = [];
  private configuration: BufferCompileConfiguration = { enabled: false, debounceMs: 1500, clangSetting: '', profiles: [], roots: [] };

  constructor(private readonly host: BufferCompileHost) {}

  onDidChange(listener: (sourcePaths: string[] | 'all') => void): void {
    this.listeners.push(listener);
  }

  analysesFor(sourcePath: string): DocumentStackAnalysis[] {
    const analysis = this.files.get(resolvedPath(sourcePath))?.analysis;
    return analysis ? [analysis] : [];
  }

  /** New settings, trust, kernels or roots: every open file compiles again, or, turned off, loses its compiled numbers. */
  configure(configuration: BufferCompileConfiguration): void {
    this.configuration = configuration;
    if (configuration.enabled) {
      for (const filePath of this.files.keys()) this.schedule(filePath, 0);
      return;
    }
    const forgotten: string[] = [];
    for (const [filePath, state] of this.files) {
      this.cancel(state);
      if (state.analysis) forgotten.push(filePath);
      state.analysis = undefined;
    }
    if (forgotten.length > 0) this.emit(forgotten);
  }

  opened(filePath: string): void {
    if (!this.files.has(filePath)) this.files.set(filePath, { generation: 0 });
    this.schedule(filePath, 0);
  }

  /** The buffer changed: its compiled numbers no longer describe it, and it compiles again after the quiet time. */
  edited(filePath: string): void {
    const state = this.files.get(filePath);
    if (!state) return;
    if (state.analysis && !state.analysis.staleReason) {
      state.analysis = { ...state.analysis, staleReason: 'the buffer changed since it was compiled' };
      this.emit([filePath]);
    }
    this.schedule(filePath, this.configuration.debounceMs);
  }

  /** A header or the compile database changed on disk: every open buffer compiles again. */
  fileChanged(filePath: string): void {
    if (!/\.(h|c)$|compile_commands\.json$/.test(filePath)) return;
    for (const tracked of this.files.keys()) if (tracked !== resolvedPath(filePath)) this.schedule(tracked, this.configuration.debounceMs);
  }

  closed(filePath: string): void {
    const state = this.files.get(filePath);
    if (!state) return;
    this.cancel(state);
    this.files.delete(filePath);
    if (state.analysis) this.emit([filePath]);
  }

  /** Resolves once the file has no compile waiting or running. */
  async settled(filePath: string): Promise<void> {
    for (;;) {
      const state = this.files.get(filePath);
      if (!state || (!state.timer && !state.running)) return;
      await (state.running ?? new Promise((resolve) => setTimeout(resolve, 20)));
    }
  }

  dispose(): void {
    for (const state of this.files.values()) this.cancel(state);
    this.files.clear();
  }

  private cancel(state: FileState): void {
    state.generation++;
    clearTimeout(state.timer);
    state.timer = undefined;
    state.controller?.abort();
  }

  private schedule(filePath: string, delayMs: number): void {
    const state = this.files.get(filePath);
    if (!state || !this.configuration.enabled) return;
    this.cancel(state);
    const generation = state.generation;
    state.timer = setTimeout(() => {
      state.timer = undefined;
      this.run(filePath, state, generation).catch((error) =>
        this.host.log(`${filePath}: cannot compile the buffer: ${error instanceof Error ? error.stack : String(error)}`),
      );
    }, delayMs);
  }

  private async run(filePath: string, state: FileState, generation: number): Promise<void> {
    // One compile at a time per file: the one a newer edit cancelled is gone before the next starts.
    await state.running;
    if (state.generation !== generation) return;
    const text = this.host.openText(filePath);
    if (text === undefined) return;
    const { known, flags, refused } = this.host.compileFlagsFor(filePath);
    if (!known) return this.show(filePath, state, undefined);
    if (refused.length > 0)
      return this.show(
        filePath,
        state,
        this.note(filePath, `not compiled from the buffer: its compile command carries ${refused.join(' ')}, which would load code or read flags from files`),
      );
    const { clang, problem } = resolveClang(this.configuration.clangSetting, this.configuration.roots);
    if (!clang) return this.show(filePath, state, this.note(filePath, `not compiled from the buffer: ${problem}`));

    const controller = new AbortController();
    state.controller = controller;
    let progress: Promise<ProgressHandle | undefined> | undefined;
    const compiling = compileBuffer({
      file: filePath,
      text,
      flags,
      clang,
      profiles: this.configuration.profiles,
      signal: controller.signal,
      timeoutMs: COMPILE_TIMEOUT_MS,
      slowAfterMs: SLOW_COMPILE_MS,
      onSlow: () => {
        progress = this.host.beginProgress(`Compiling ${path.basename(filePath)} from the buffer`);
      },
    });
    const running = compiling.then(() => undefined);
    state.running = running;
    let result: BufferCompileResult;
    try {
      result = await compiling;
    } finally {
      if (state.running === running) state.running = undefined;
      if (state.controller === controller) state.controller = undefined;
      void progress?.then((handle) => handle?.done());
    }
    if (state.generation !== generation || this.files.get(filePath) !== state) return;
    if (result.kind === 'cancelled') return;
    if (result.kind === 'compiled') {
      return this.show(filePath, state, {
        origin: 'object',
        compiledFromBuffer: true,
        label: `${path.basename(filePath)} (compiled from the buffer)`,
        path: filePath,
        programs: result.programs,
        profiles: this.configuration.profiles,
      });
    }
    const why = result.kind === 'timed out' ? `the compile took over ${result.timeoutMs} ms` : 'the buffer does not compile';
    this.show(filePath, state, this.note(filePath, `${why}; exact numbers wait for a compiling buffer`));
  }

  /** An analysis without programs whose stale reason is the status note: the estimate stays in charge. */
  private note(filePath: string, staleReason: string): DocumentStackAnalysis {
    return {
      origin: 'object',
      compiledFromBuffer: true,
      label: `${path.basename(filePath)} (compiled from the buffer)`,
      path: filePath,
      programs: [],
      profiles: this.configuration.profiles,
      staleReason,
    };
  }

  private show(filePath: string, state: FileState, analysis: DocumentStackAnalysis | undefined): void {
    if (!state.analysis && !analysis) return;
    state.analysis = analysis;
    this.emit([filePath]);
  }

  private emit(sourcePaths: string[] | 'all'): void {
    for (const listener of this.listeners) listener(sourcePaths);
  }
}
