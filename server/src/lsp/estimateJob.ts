/**
 * One source estimate as the worker thread runs it: what the language server sends (the text, the
 * definitions, the open buffers that changed), what comes back (progress, then the report and the
 * files it read, or word that it was superseded), all plain data for postMessage, and the run
 * itself.
 *
 * The first analysis of a file whose headers are large (vmlinux.h runs to megabytes) indexes them
 * one #include at a time, reporting each one, and checks between steps whether a newer edit has
 * superseded the run: a superseded run stops there instead of computing a result nobody will see.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { estimateSource, type EstimateReport } from '../source/estimateSource';
import { resolvedPath } from '../common/paths';
import type { KernelProfile } from '../rules/kernelProfile';
import { DEFAULT_SYSTEM_INCLUDE_DIRS, type ReadFile, StatCheckedFiles, resolveInclude } from '../source/headerIndex';
import { analyzeTranslationUnit, type TranslationUnitOptions } from '../source/translationUnit';

/** Direct includes at least this large make the first analysis of a file index them with progress shown. */
export const LARGE_HEADER_BYTES = 512 * 1024;

export interface EstimateRequest {
  kind: 'estimate';
  /** Increases with every request, so that one cell of shared memory can name the superseded one. */
  id: number;
  filePath: string;
  text: string;
  profiles: KernelProfile[];
  includeDirs: string[];
  /** `NAME=VALUE` definitions, in order of precedence. */
  defines: string[];
  /** The file's first analysis in this session: index its large headers step by step, with progress. */
  indexHeadersFirst: boolean;
  /** Editor buffers that changed since the worker last heard, by resolved path; null for those closed since. */
  openBuffers: [string, string | null][];
}

export type EstimateReply =
  | { kind: 'progress-begin'; id: number; title: string }
  | { kind: 'progress-report'; id: number; message: string; percentage: number }
  | { kind: 'progress-end'; id: number }
  | { kind: 'estimated'; id: number; report: EstimateReport; dependencies: string[] }
  | { kind: 'superseded'; id: number }
  | { kind: 'failed'; id: number; error: string };

/** What a worker keeps between runs: the editor's buffers and the headers read from disk (re-read only when their size or mtime changes). */
export class EstimateWorkspace {
  private readonly buffers = new Map<string, string>();
  private readonly diskFiles = new StatCheckedFiles();

  applyBuffers(changes: [string, string | null][]): void {
    for (const [filePath, text] of changes) {
      if (text === null) this.buffers.delete(filePath);
      else this.buffers.set(filePath, text);
    }
  }

  /** A ReadFile that prefers open buffers, so unsaved headers stand in for files, and records every file read. */
  reader(dependencies: Set<string>): ReadFile {
    return (file) => {
      const resolved = resolvedPath(file);
      dependencies.add(resolved);
      return this.buffers.get(resolved) ?? this.diskFiles.read(file);
    };
  }
}

/**
 * Runs one request, posting progress and then exactly one of estimated, superseded or failed.
 * `isSuperseded` is asked between the long synchronous steps.
 */
export async function runEstimateJob(
  request: EstimateRequest,
  workspace: EstimateWorkspace,
  post: (reply: EstimateReply) => void,
  isSuperseded: () => boolean,
): Promise<void> {
  const { id } = request;
  try {
    workspace.applyBuffers(request.openBuffers);
    const dependencies = new Set<string>();
    const options: TranslationUnitOptions = { includeDirs: request.includeDirs, defines: request.defines, readFile: workspace.reader(dependencies) };
    if (request.indexHeadersFirst && !(await indexHeadersWithProgress(request, options, post, isSuperseded))) {
      post({ kind: 'superseded', id });
      return;
    }
    if (isSuperseded()) {
      post({ kind: 'superseded', id });
      return;
    }
    const report = await estimateSource(request.filePath, request.text, request.profiles, options);
    post(isSuperseded() ? { kind: 'superseded', id } : { kind: 'estimated', id, report, dependencies: [...dependencies] });
  } catch (error) {
    post({ kind: 'failed', id, error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  }
}

/**
 * Indexes the headers of a file one #include at a time (each step preprocesses the text up to the
 * next include, so every header is indexed with the macros it will really see), reporting each
 * one. Only when the direct includes are large: small sets index faster than a progress bar
 * appears. Returns false when a newer edit superseded the run.
 */
async function indexHeadersWithProgress(
  request: EstimateRequest,
  options: TranslationUnitOptions,
  post: (reply: EstimateReply) => void,
  isSuperseded: () => boolean,
): Promise<boolean> {
  const { id, filePath, text } = request;
  const includes = topLevelIncludes(filePath, text, options.includeDirs ?? []);
  const totalBytes = includes.reduce((sum, include) => sum + include.bytes, 0);
  if (totalBytes < LARGE_HEADER_BYTES) return true;
  post({ kind: 'progress-begin', id, title: `Indexing the headers of ${path.basename(filePath)}` });
  try {
    for (const [index, include] of includes.entries()) {
      if (isSuperseded()) return false;
      post({
        kind: 'progress-report',
        id,
        message: `${include.spelled} (${formatBytes(include.bytes)})`,
        percentage: Math.round((100 * index) / includes.length),
      });
      // Let the report go out before the long synchronous step.
      await new Promise((resolve) => setImmediate(resolve));
      analyzeTranslationUnit(filePath, text.slice(0, include.endOffset), options);
    }
    return !isSuperseded();
  } finally {
    post({ kind: 'progress-end', id });
  }
}

interface TopLevelInclude {
  spelled: string;
  /** The offset just past the directive's line, where the step that indexes it stops. */
  endOffset: number;
  bytes: number;
}

const INCLUDE_LINE = /^[ \t]*#[ \t]*include[ \t]*([<"])([^>"\n]+)[>"]/;

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

function formatBytes(bytes: number): string {
  return bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MB` : `${Math.ceil(bytes / 1024)} KB`;
}
