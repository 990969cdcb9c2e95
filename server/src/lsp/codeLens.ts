/**
 * CodeLens: above each function an object measured or the source estimate judged, one line with its
 * frame (both numbers when both exist: "frame 200 B measured · 200 B estimated") and, for each
 * kernel, the callers' bytes at the tail call it leads to ("240 B at tail call (6.18) · 256 B (6.1,
 * rejected)"), or its rounded frame when no tail call is reached through it. The kernel numbers come
 * from a fresh object when there is one, else from the estimate of the text as it is now.
 */
import type { SubprogramReport } from '../rules/report';
import { profileLabel, ruleSetFor } from '../rules/kernelProfile';
import { TAIL_CALL_CALLERS_LIMIT } from '../rules/stackRules';
import type { DocumentStackAnalysis } from './documentAnalysis';
import type { SyntaxSnapshot } from './documents';
import { functionDefinitions } from './syntax';

export interface LensTitle {
  /** String index where the lens goes (the start of the function's name). */
  offset: number;
  title: string;
  /** A client command to run on click, with the file as argument; none for a plain label. */
  command?: string;
  file: string;
}

export function codeLenses(snapshot: SyntaxSnapshot, analyses: DocumentStackAnalysis[]): LensTitle[] {
  const lenses: LensTitle[] = [];
  for (const fn of functionDefinitions(snapshot.tree, snapshot.queries)) {
    const title = lensTitle(fn.name, analyses);
    if (title) lenses.push({ offset: fn.nameNode.startIndex, title, file: snapshot.path ?? snapshot.uri });
  }
  return lenses;
}

/** The lens text for a function, or undefined when no analysis has it. */
export function lensTitle(name: string, analyses: DocumentStackAnalysis[]): string | undefined {
  const having = analyses.filter((analysis) => analysis.programs.some((program) => program.subprograms.some((sub) => sub.name === name)));
  const measured = having.find((analysis) => analysis.origin === 'object' && !analysis.staleReason) ?? having.find((analysis) => analysis.origin === 'object');
  const estimated = having.find((analysis) => analysis.origin === 'source estimate');
  const judged = measured && !measured.staleReason ? measured : (estimated ?? measured);
  if (!judged) return undefined;
  const frame =
    measured && estimated ? `frame ${frameOf(name, measured)} measured · ${frameOf(name, estimated)} estimated` : `frame ${frameOf(name, judged)}${judged === estimated ? ' estimated' : ''}`;
  const stale = judged.staleReason ? ' · stale: rebuild' : '';
  return [frame, ...kernelParts(name, judged)].join(' · ') + stale;
}

/**
 * The largest of a function's frames, "200 B", or for an estimate that cannot know its spills
 * "≥ 48 B, up to ~288 B" (the largest low end and the largest upper bound).
 */
export function frameText(subprograms: readonly Pick<SubprogramReport, 'stackDepth' | 'stackDepthUpTo'>[]): string {
  const low = Math.max(0, ...subprograms.map((sub) => sub.stackDepth));
  const high = Math.max(low, ...subprograms.map((sub) => sub.stackDepthUpTo ?? sub.stackDepth));
  return high > low ? `≥ ${low} B, up to ~${high} B` : `${low} B`;
}

/** The function's largest frame among the analysis's programs, as frameText gives it. */
function frameOf(name: string, analysis: DocumentStackAnalysis): string {
  return frameText(analysis.programs.flatMap((program) => program.subprograms.filter((sub) => sub.name === name)));
}

function kernelParts(name: string, analysis: DocumentStackAnalysis): string[] {
  const programs = analysis.programs.filter((program) => program.subprograms.some((sub) => sub.name === name));
  const checked = Math.max(...programs.map((program) => program.subprograms.find((sub) => sub.name === name)?.checkedDepth ?? 0));
  const parts: string[] = [];
  let tailCallNamed = false;
  analysis.profiles.forEach((profile, index) => {
    const reaches = programs.flatMap((program) => program.verdicts[index]?.tailCalls.filter((reach) => reach.chain.includes(name)) ?? []);
    const label = profileLabel(profile);
    if (reaches.length > 0) {
      const deepest = Math.max(...reaches.map((reach) => reach.callersDepth));
      const verdict = deepest >= TAIL_CALL_CALLERS_LIMIT ? `${label}, rejected` : label;
      parts.push(`${deepest} B${tailCallNamed ? '' : ' at tail call'} (${verdict})`);
      tailCallNamed = true;
    } else {
      parts.push(`${ruleSetFor(profile).roundStackDepth(checked)} B rounded (${label})`);
    }
  });
  return parts;
}
