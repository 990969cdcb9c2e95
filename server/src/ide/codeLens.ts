/**
 * CodeLens: above each function an object measured or the source estimate judged, one short line
 * with its frame and, for each rule the kernels judge on the chains through it, the bytes and the
 * verdict, kernels that agree said once: "frame 200 B · tail call at 256 B: rejected on 6.1 · 240 B:
 * passes on 6.18", "frame 264 B · 544 B of 512: rejected on 5.15, 6.1 · 528 B of 512: passes on
 * 6.18", "frame 32 B · 9 frames of 8: rejected on 6.1". The numbers come from a fresh object when
 * there is one, else from the estimate of the text as it is now (its frame marked "≈"), so the line
 * keeps its shape when the estimate comes in beside a fresh object (the hover has both numbers).
 * Clicking it runs the client's command for the stack report, when the client has one.
 */
import { MAX_BPF_STACK } from '../rules/stackRules';
import { type KernelProfile, profileLabel, ruleSetFor } from '../rules/kernelProfile';
import { type ChainMeasure, measureThrough } from './advice';
import type { DocumentStackAnalysis } from './analysis';
import { type SyntaxView, functionDefinitions } from './syntax';
import type { SubprogramReport } from '../rules/report';

export interface LensTitle {
  /** String index where the lens goes (the start of the function's name). */
  offset: number;
  title: string;
  /** A client command to run on click, with the file as argument; none for a plain label. */
  command?: string;
  file: string;
}

/** `command` is the client's command that shows a file's stack report, when it said it has one. */
export function codeLenses(snapshot: SyntaxView, analyses: DocumentStackAnalysis[], command?: string): LensTitle[] {
  const lenses: LensTitle[] = [];
  for (const fn of functionDefinitions(snapshot.tree, snapshot.queries)) {
    const title = lensTitle(fn.name, analyses);
    if (title) lenses.push({ offset: fn.nameNode.startIndex, title, command, file: snapshot.path ?? snapshot.uri });
  }
  return lenses;
}

/** The analysis whose numbers the editor stands on for a function: a fresh object, else the estimate, else a stale object. */
export function judgingAnalysis(name: string, analyses: DocumentStackAnalysis[]): DocumentStackAnalysis | undefined {
  const having = analyses.filter((analysis) => analysis.programs.some((program) => program.subprograms.some((sub) => sub.name === name)));
  return (
    having.find((analysis) => analysis.origin === 'object' && !analysis.staleReason) ??
    having.find((analysis) => analysis.origin === 'source estimate') ??
    having.find((analysis) => analysis.origin === 'object')
  );
}

/** The lens text for a function, or undefined when no analysis has it. */
export function lensTitle(name: string, analyses: DocumentStackAnalysis[]): string | undefined {
  const judged = judgingAnalysis(name, analyses);
  if (!judged) return undefined;
  const frame = frameTextOf(name, judged);
  // An estimate is approximate ("≈"), unless it says how far it may be off (a range).
  const approximate = judged.origin === 'object' || frame.startsWith('≥') ? '' : '≈';
  const stale = judged.staleReason ? ' · stale: rebuild' : '';
  return [`frame ${approximate}${frame}`, ...kernelParts(name, judged)].join(' · ') + stale;
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

/** The function's frame among the analysis's programs, as frameText gives it. */
export function frameTextOf(name: string, analysis: DocumentStackAnalysis): string {
  return frameText(analysis.programs.flatMap((program) => program.subprograms.filter((sub) => sub.name === name)));
}

/** The function's largest frame among the analysis's programs. */
export function frameOf(name: string, analysis: DocumentStackAnalysis): number {
  return Math.max(...analysis.programs.map((program) => program.subprograms.find((sub) => sub.name === name)?.stackDepth ?? 0));
}

/** Each kernel's measure of the chains through `name`: a violation first, else the deepest, over every program that has it. */
export function measuresByKernel(name: string, analysis: DocumentStackAnalysis): { profile: KernelProfile; measure: ChainMeasure }[] {
  const programs = analysis.programs.filter((program) => program.subprograms.some((sub) => sub.name === name));
  return analysis.profiles.flatMap((profile, index) => {
    const measures = programs.flatMap((program) => {
      const verdict = program.verdicts[index];
      const measure = verdict && measureThrough(name, program, verdict, profile);
      return measure ? [measure] : [];
    });
    const worst =
      measures.find((measure) => measure.kind === 'violation') ??
      measures.find((measure) => measure.kind === 'tail call') ??
      measures.sort((a, b) => b.depth - a.depth)[0];
    return worst ? [{ profile, measure: worst }] : [];
  });
}

/** What a measure says in a lens, without its verdict. */
export function measureText(measure: ChainMeasure, profile: KernelProfile): string {
  if (measure.kind === 'tail call') return `tail call at ${measure.depth} B`;
  if (measure.kind === 'combined') return `${measure.depth} B of ${MAX_BPF_STACK}`;
  switch (measure.rule) {
    case 'tail-call-depth':
      return `tail call at ${measure.depth} B`;
    case 'combined-stack':
      return `${measure.depth} B of ${MAX_BPF_STACK}`;
    case 'subprog-stack':
      return `private stack ${measure.depth} B of ${MAX_BPF_STACK}`;
    case 'call-depth':
      return `${measure.frames} frames of ${ruleSetFor(profile).maxCallFrames}`;
    case 'tail-call-with-calls':
      return 'tail call beside bpf-to-bpf calls';
    case 'recursion':
      return 'recursion';
    case 'back-edge':
      return 'loop entered in its middle';
    case 'kernel-lacks-feature': {
      const since = measure.violation.missingFeature?.since;
      return since ? `needs ${since}` : 'needs a helper no kernel has';
    }
    default:
      return measure.rule;
  }
}

function kernelParts(name: string, analysis: DocumentStackAnalysis): string[] {
  const groups = new Map<string, { text: string; rejected: boolean; kernels: string[] }>();
  for (const { profile, measure } of measuresByKernel(name, analysis)) {
    const rejected = measure.kind === 'violation';
    const text = measureText(measure, profile);
    const key = `${rejected}:${text}`;
    const group = groups.get(key) ?? { text, rejected, kernels: [] };
    group.kernels.push(profileLabel(profile));
    groups.set(key, group);
  }
  const ordered = [...groups.values()].sort((a, b) => Number(b.rejected) - Number(a.rejected));
  return ordered.map((group, index) => {
    // "tail call at 256 B: rejected on 6.1 · 240 B: passes on 6.18": the rule is named once.
    const previous = ordered[index - 1];
    const text =
      previous && previous.text.startsWith('tail call at ') && group.text.startsWith('tail call at ') ? group.text.slice('tail call at '.length) : group.text;
    return `${text}: ${group.rejected ? 'rejected' : 'passes'} on ${group.kernels.join(', ')}`;
  });
}
