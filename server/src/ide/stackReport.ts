/**
 * Reports for a person: the same text report as `bpf-stack-lens check`, for one file's objects or
 * for any object picked by hand (the status-bar summary is ide/status.ts).
 */
import { dirname } from 'node:path';
import { quoteSourceLine, readRegularFile, shownLine } from '../common/safeRead';
import type { SourceLocation } from '../common/problem';
import { analyzeObject } from '../object/analyzeObject';
import type { KernelProfile } from '../rules/kernelProfile';
import { formatEstimateText } from './estimateText';
import { formatTextReport } from './textReport';
import type { DocumentStackAnalysis } from './analysis';

/**
 * The `check` report of the analyses' objects, then the `estimate` report of the source as the
 * editor has it; `lineText` gives the current text of a source line.
 */
export function analysesReport(analyses: DocumentStackAnalysis[], lineText: (location: SourceLocation) => string | undefined): string {
  if (analyses.length === 0) return 'No BPF object built from this file was found in the workspace (settings: bpfStackLens.objectGlobs).\n';
  const objects = analyses.filter((analysis) => analysis.origin === 'object');
  const parts =
    objects.length > 0
      ? [
          formatTextReport(
            objects.map((analysis) => ({ path: analysis.path, problems: [], programs: analysis.programs })),
            { lineText },
          ),
        ]
      : [];
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
