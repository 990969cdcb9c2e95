/**
 * CodeLens: above each function the objects measured, one line with its frame and, for each kernel,
 * the callers' bytes at the tail call it leads to ("frame 200 B · 240 B at tail call (6.18) · 256 B
 * (6.1, rejected)"), or its rounded frame when no tail call is reached through it.
 */
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

/** The lens text for a function, from the first analysis that has it, or undefined. */
export function lensTitle(name: string, analyses: DocumentStackAnalysis[]): string | undefined {
  for (const analysis of analyses) {
    const programs = analysis.programs.filter((program) => program.subprograms.some((sub) => sub.name === name));
    if (programs.length === 0) continue;
    const frame = Math.max(...programs.map((program) => program.subprograms.find((sub) => sub.name === name)?.stackDepth ?? 0));
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
    const stale = analysis.staleReason ? ' · stale: rebuild' : '';
    return [`frame ${frame} B`, ...parts].join(' · ') + stale;
  }
  return undefined;
}
