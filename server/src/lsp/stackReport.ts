/**
 * Reports for a person: the status-bar summary of a file (does any configured kernel reject what
 * was built from it?) and the same text report as `bpf-stack-lens check`, for one file's objects or
 * for any object picked by hand.
 */
import { dirname } from 'node:path';
import { quoteSourceLine, readRegularFile, shownLine } from '../common/safeRead';
import type { SourceLocation } from '../common/problem';
import { analyzeObject } from '../object/analyzeObject';
import type { KernelProfile } from '../rules/kernelProfile';
import { formatEstimateText } from '../cli/estimateCommand';
import { formatTextReport } from '../cli/textReport';
import type { DocumentStackAnalysis } from './documentAnalysis';
import type { FileStatus } from './protocol';

export function fileStatus(allAnalyses: DocumentStackAnalysis[]): FileStatus {
  // An estimate of a file without programs (a header) says nothing about any kernel.
  const analyses = allAnalyses.filter((analysis) => analysis.origin === 'object' || analysis.programs.length > 0);
  if (analyses.length === 0) return { text: 'BPF stack: no object', tooltip: 'No BPF object built from this file was found in the workspace.', state: 'none' };
  const rejectedOn = new Set<string>();
  const passesOn = new Set<string>();
  for (const analysis of analyses) {
    for (const program of analysis.programs) {
      for (const verdict of program.verdicts) (verdict.accepted ? passesOn : rejectedOn).add(verdict.kernel);
    }
  }
  for (const kernel of rejectedOn) passesOn.delete(kernel);
  const objects = analyses.map((analysis) => analysis.label).join(', ');
  const stale = analyses.find((analysis) => analysis.staleReason)?.staleReason;
  const tooltip = `From ${objects}.${stale ? ` Stale: ${stale}.` : ''}`;
  if (rejectedOn.size > 0) return { text: `BPF stack: rejected on ${[...rejectedOn].join(', ')}`, tooltip, state: stale ? 'stale' : 'rejected' };
  return { text: `BPF stack: passes on ${[...passesOn].join(', ')}`, tooltip, state: stale ? 'stale' : 'passes' };
}

/**
 * The `check` report of the analyses' objects, then the `estimate` report of the source as the
 * editor has it; `lineText` gives the current text of a source line.
 */
export function analysesReport(analyses: DocumentStackAnalysis[], lineText: (location: SourceLocation) => string | undefined): string {
  if (analyses.length === 0) return 'No BPF object built from this file was found in the workspace (settings: bpfStackLens.objectGlobs).\n';
  const objects = analyses.filter((analysis) => analysis.origin === 'object');
  const parts = objects.length > 0 ? [formatTextReport(objects.map((analysis) => ({ path: analysis.path, problems: [], programs: analysis.programs })), { lineText })] : [];
  for (const estimate of analyses.filter((analysis) => analysis.origin === 'source estimate')) {
    parts.push(formatEstimateText({ file: estimate.path, functions: estimate.frames ?? [], programs: estimate.programs, problems: [] }));
  }
  return parts.join('\n');
}

/** The `check` report of any object file. */
export function objectReport(objectPath: string, profiles: KernelProfile[], quoteRoots: readonly string[] = []): string {
  const read = readRegularFile(objectPath);
  if ('reason' in read) return `${objectPath}: cannot read: ${read.reason}\n`;
  const bytes = new Uint8Array(read.bytes.buffer, read.bytes.byteOffset, read.bytes.byteLength);
  const analysis = analyzeObject(bytes, objectPath, profiles);
  if (!analysis.readable) return `${objectPath}: ${analysis.report.problems.map((problem) => problem.message).join('; ')}\n`;
  return formatTextReport([analysis.report], {
    lineText: (location) => {
      // Quoted from disk only under the workspace or next to the object; else the object's own copy.
      const onDisk = quoteSourceLine(location.file, location.line, { roots: [...quoteRoots, dirname(objectPath)] });
      return shownLine(onDisk, onDisk && 'text' in onDisk ? undefined : analysis.lineTextOf(location.file, location.line));
    },
  });
}
