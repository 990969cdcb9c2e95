/**
 * The seam between the analysis front ends and the editor features: for one source file, every set
 * of judged programs that describes it. The object index provides one per object built from the
 * file; the source estimate provides one from the C text as the editor has it. Diagnostics, hover
 * and CodeLens read only this shape, so each provider plugs in without touching them.
 */
import type { EstimateProblem } from '../source/estimateSource';
import * as path from 'node:path';
import type { ProgramReport } from '../object/analyzeObject';
import type { KernelProfile } from '../rules/kernelProfile';
import type { FunctionFrame } from '../source/frameEstimate';
import { resolvedPath } from '../common/paths';
import type { DescribedLine } from './relocate';

/** Where the numbers come from; the diagnostics' `source` is "bpf-stack-lens (ORIGIN)". */
export type AnalysisOrigin = 'object' | 'source estimate';

export interface DocumentStackAnalysis {
  origin: AnalysisOrigin;
  /** A short name for messages, such as the object's file name. */
  label: string;
  /** The object's absolute path, or the source's for an estimate. */
  path: string;
  /** Set when the numbers may no longer describe the text ("seed.bpf.o is older than seed.bpf.c"). */
  staleReason?: string;
  /** Programs whose verdicts are in the order of `profiles`. */
  programs: ProgramReport[];
  profiles: KernelProfile[];
  /** What each function's frame is made of, when the analysis knows (only the source estimate does). */
  frames?: FunctionFrame[];
  /** The text the estimate was made from: its items' lines describe this text, and no other version of the document. */
  estimatedText?: string;
  /** What the estimate could not read (headers not found, ...), placed in the document where it can be. */
  problems?: EstimateProblem[];
  /** Set on an object compiled from the buffer in the background, which carries its own staleness (buffer edited since). */
  compiledFromBuffer?: true;
  /** An object's compiled text of the lines it points at, by "file:line" (from BTF), so that its lines can follow edits. */
  lineTexts?: ReadonlyMap<string, string>;
}

export interface DocumentAnalysisProvider {
  readonly origin: AnalysisOrigin;
  /** Every analysis that describes the source file at `sourcePath` (absolute, resolved). */
  analysesFor(sourcePath: string): DocumentStackAnalysis[];
  /** Calls `listener` with the source files whose analyses changed, or 'all'. */
  onDidChange(listener: (sourcePaths: string[] | 'all') => void): void;
}

/** All registered providers, asked together. */
export class DocumentAnalyses {
  private readonly providers: DocumentAnalysisProvider[] = [];

  register(provider: DocumentAnalysisProvider): void {
    this.providers.push(provider);
  }

  analysesFor(sourcePath: string): DocumentStackAnalysis[] {
    return this.providers.flatMap((provider) => provider.analysesFor(sourcePath));
  }

  onDidChange(listener: (sourcePaths: string[] | 'all') => void): void {
    for (const provider of this.providers) provider.onDidChange(listener);
  }
}

/**
 * The analyses as they stand against a buffer whose text is not the file on disk (unsaved edits, or
 * a file changed on disk that the editor has not reloaded): an object built from the file cannot
 * describe that text, so it counts as stale, and the estimate of the buffer takes over.
 */
export function againstUnsavedChanges(analyses: DocumentStackAnalysis[], differsFromDisk: boolean): DocumentStackAnalysis[] {
  if (!differsFromDisk) return analyses;
  return analyses.map((analysis) =>
    analysis.origin === 'object' && !analysis.staleReason && !analysis.compiledFromBuffer
      ? { ...analysis, staleReason: `the text in the editor is not the file on disk (unsaved changes), which ${path.basename(analysis.path)} was built from` }
      : analysis,
  );
}

/**
 * The buffer's compile stands in for a built object: while a fresh built object describes the
 * text, the compile of the same text would only repeat it, so it is left out.
 */
export function withBufferCompile(analyses: DocumentStackAnalysis[]): DocumentStackAnalysis[] {
  const built = analyses.some((analysis) => analysis.origin === 'object' && !analysis.compiledFromBuffer && !analysis.staleReason);
  return built ? analyses.filter((analysis) => !analysis.compiledFromBuffer) : analyses;
}

/** The diagnostic source name of an analysis: its origin's, or "compiled from the buffer". */
export function diagnosticSourceFor(analysis: Pick<DocumentStackAnalysis, 'origin' | 'compiledFromBuffer'>): string {
  return analysis.compiledFromBuffer ? 'bpf-stack-lens (compiled from the buffer)' : diagnosticSourceOf(analysis.origin);
}

/** The diagnostic source name for an origin. */
export function diagnosticSourceOf(origin: AnalysisOrigin): string {
  return `bpf-stack-lens (${origin})`;
}

/**
 * The estimate's frame of the function `name` defined in the document itself: frames of functions
 * that headers define have their lines in the header, which diagnostics and hovers on the
 * document must not point at.
 */
export function documentFrame(frames: readonly FunctionFrame[] | undefined, name: string | undefined): FunctionFrame | undefined {
  return frames?.find((frame) => frame.name === name && frame.file === undefined);
}

/** The text a line of the analysis had when it was made: from BTF for an object, from the estimated text for an estimate. */
export function describedLineOf(analysis: DocumentStackAnalysis): DescribedLine {
  if (analysis.origin === 'object') return (file, line) => analysis.lineTexts?.get(`${file}:${line}`);
  const lines = analysis.estimatedText?.split(/\r?\n/);
  const estimated = resolvedPath(analysis.path);
  return (file, line) => (lines && resolvedPath(file) === estimated ? lines[line - 1] : undefined);
}
