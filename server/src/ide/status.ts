/**
 * The status-bar summary of one file: the verdict that the diagnostics stand on, first, then what
 * else is known but stale, and why. The live verdict comes from the same analyses that give the
 * diagnostics their errors — a fresh object when there is one, else the buffer's estimate — so the
 * status bar never says "rejected" while Problems shows no error, nor the reverse.
 */
import type { DocumentStackAnalysis } from './analysis';

export interface FileStatus {
  /** Short, for the status bar: "BPF stack: rejected on 6.1; passes on 6.18 (estimate; seed.bpf.o stale)". */
  text: string;
  tooltip: string;
  /** The live verdict; 'stale' only when nothing but stale numbers exist. */
  state: 'rejected' | 'passes' | 'stale' | 'none';
  /** What is stale and why, when anything is ("seed.bpf.o is older than seed.bpf.c: rebuild it to update"). */
  stale?: string;
}

export function fileStatus(allAnalyses: DocumentStackAnalysis[]): FileStatus {
  // An estimate of a file without programs (a header) says nothing about any kernel.
  const analyses = allAnalyses.filter((analysis) => analysis.origin === 'object' || analysis.programs.length > 0);
  if (analyses.length === 0) return { text: 'BPF stack: no object', tooltip: 'No BPF object built from this file was found in the workspace.', state: 'none' };
  const stale = analyses.filter((analysis) => analysis.staleReason);
  const judging = (analysis: DocumentStackAnalysis) => !analysis.staleReason && analysis.programs.length > 0;
  const freshObjects = analyses.filter((analysis) => analysis.origin === 'object' && judging(analysis));
  const live = freshObjects.length > 0 ? freshObjects : analyses.filter((analysis) => analysis.origin !== 'object' && judging(analysis));
  const staleText = stale.map((analysis) => `${shortLabel(analysis)} stale`).join(', ');
  const staleWhy = stale.map((analysis) => `${shortLabel(analysis)}: ${analysis.staleReason}`).join('; ');
  const withStale = (status: FileStatus): FileStatus =>
    stale.length > 0 ? { ...status, stale: staleWhy, tooltip: `${status.tooltip}\nStale: ${staleWhy}.` } : status;

  if (live.length === 0) {
    const shown = stale.filter((analysis) => analysis.programs.length > 0);
    if (shown.length === 0)
      return withStale({ text: `BPF stack: no numbers yet (${staleText})`, tooltip: 'Nothing describes the text in the editor yet.', state: 'stale' });
    return withStale({
      text: `BPF stack: ${verdictText(shown)} (${staleText})`,
      tooltip: `Only stale numbers: from ${shown.map(shortLabel).join(', ')}.`,
      state: 'stale',
    });
  }
  const fromEstimate = live.every((analysis) => analysis.origin !== 'object');
  const notes = [...(fromEstimate ? ['estimate'] : []), ...(stale.length > 0 ? [staleText] : [])];
  const rejected = live.some((analysis) => analysis.programs.some((program) => program.verdicts.some((verdict) => !verdict.accepted)));
  const source = fromEstimate ? 'the source estimate of the text in the editor' : live.map(shortLabel).join(', ');
  return withStale({
    text: `BPF stack: ${verdictText(live)}${notes.length > 0 ? ` (${notes.join('; ')})` : ''}`,
    tooltip: `From ${source}.`,
    state: rejected ? 'rejected' : 'passes',
  });
}

/** "rejected on 6.1; passes on 6.18": every kernel that rejects any program, then the others. */
function verdictText(analyses: DocumentStackAnalysis[]): string {
  const rejectedOn = new Set<string>();
  const passesOn = new Set<string>();
  for (const analysis of analyses) {
    for (const program of analysis.programs) {
      program.verdicts.forEach((verdict) => (verdict.accepted ? passesOn : rejectedOn).add(verdict.kernel));
    }
  }
  for (const kernel of rejectedOn) passesOn.delete(kernel);
  const parts = [
    ...(rejectedOn.size > 0 ? [`rejected on ${[...rejectedOn].join(', ')}`] : []),
    ...(passesOn.size > 0 ? [`passes on ${[...passesOn].join(', ')}`] : []),
  ];
  return parts.join('; ');
}

function shortLabel(analysis: DocumentStackAnalysis): string {
  return analysis.compiledFromBuffer ? 'buffer compile' : analysis.label;
}
