/**
 * Hover: on a function's name, its frame as the object measured it and as the source estimate
 * counts it (with what the estimate's frame is made of), rounded for each kernel, and
 * every chain through it that reaches a tail call, with the running total the verifier compares
 * against 256 bytes. On a bpf_printk (or bpf_trace_printk, or a macro that builds its format on the
 * stack), the bytes that call puts on its function's stack and why, as printkCost.ts counts them.
 */
import type { ProgramReport, SubprogramReport, VerdictReport } from '../object/analyzeObject';
import { type KernelProfile, profileLabel, ruleSetFor } from '../rules/kernelProfile';
import { TAIL_CALL_CALLERS_LIMIT } from '../rules/stackRules';
import type { TextSpan } from './convert';
import { type DocumentStackAnalysis, documentFrame } from './documentAnalysis';
import type { SyntaxSnapshot } from './documents';
import { costedPrintkCalls } from './printkCost';
import type { LensSettings } from './settings';
import { frameText } from './codeLens';
import { functionDefinitions, functionNamedAt } from './syntax';

export interface HoverContent {
  markdown: string;
  span: TextSpan;
}

export function hoverAt(snapshot: SyntaxSnapshot, offset: number, analyses: DocumentStackAnalysis[], settings: LensSettings): HoverContent | undefined {
  const fn = functionNamedAt(functionDefinitions(snapshot.tree, snapshot.queries), offset);
  if (fn) {
    const markdown = functionHover(fn.name, analyses);
    return markdown ? { markdown, span: { start: fn.nameNode.startIndex, end: fn.nameNode.endIndex } } : undefined;
  }
  const printk = costedPrintkCalls(snapshot, analyses, settings).find((call) => {
    const callee = call.call.childForFieldName('function');
    return callee !== null && callee.startIndex <= offset && offset <= callee.endIndex;
  });
  if (!printk) return undefined;
  const where = printk.functionName ? ` of \`${printk.functionName}\`` : '';
  const format = printk.formatBytes === undefined ? '' : `\n\nFormat string: ${printk.formatBytes} bytes with the NUL.`;
  return {
    markdown: `**${printk.callee}** puts **${printk.cost.stackBytes} B** on the stack${where}.\n\n${printk.cost.reason}${format}`,
    span: { start: printk.call.startIndex, end: printk.call.endIndex },
  };
}

/** Markdown for a function in every program of every analysis that has it, or undefined. */
export function functionHover(name: string, analyses: DocumentStackAnalysis[]): string | undefined {
  const sections: string[] = [];
  const summary = bothFrames(name, analyses);
  if (summary) sections.push(summary);
  for (const analysis of analyses) {
    for (const program of analysis.programs) {
      const sub = program.subprograms.find((candidate) => candidate.name === name);
      if (sub) sections.push(programSection(sub, program, analysis));
    }
  }
  return sections.length > (summary ? 1 : 0) ? sections.join('\n\n---\n\n') : undefined;
}

/** "frame 200 B measured · 200 B estimated", when an object and the estimate both have the function. */
function bothFrames(name: string, analyses: DocumentStackAnalysis[]): string | undefined {
  const frameIn = (origin: DocumentStackAnalysis['origin']) => {
    const depths = analyses
      .filter((analysis) => analysis.origin === origin)
      .flatMap((analysis) => analysis.programs.flatMap((program) => program.subprograms.filter((sub) => sub.name === name)));
    return depths.length > 0 ? frameText(depths) : undefined;
  };
  const measured = frameIn('object');
  const estimated = frameIn('source estimate');
  return measured !== undefined && estimated !== undefined ? `**${name}**: frame ${measured} measured · ${estimated} estimated` : undefined;
}

function programSection(sub: SubprogramReport, program: ProgramReport, analysis: DocumentStackAnalysis): string {
  const lines: string[] = [];
  const hidden = sub.stackDepth > sub.checkedDepth ? ` (${sub.checkedDepth} B checked; ${sub.hiddenBytes.join(', ')})` : '';
  const how = analysis.origin === 'object' ? `measured in \`${analysis.label}\`` : 'estimated from the source';
  const frame = sub.stackDepthUpTo !== undefined ? `**≥ ${sub.stackDepth} B, up to ~${sub.stackDepthUpTo} B**` : `**${sub.stackDepth} B**`;
  lines.push(`**${sub.name}** — frame ${frame}${hidden}, ${how} (program \`${program.name}\`, SEC("${program.section}"))`);
  if (sub.uncertainty) lines.push(`\n_Range: ${sub.uncertainty}._`);
  if (analysis.staleReason) lines.push(`\n_Stale: ${analysis.staleReason}._`);
  const items = documentFrame(analysis.frames, sub.name)?.items ?? [];
  if (items.length > 0) lines.push(`\nMade of: ${items.map((item) => `\`${item.name}\` ${item.bytes} B (line ${item.line})`).join(' · ')}`);
  lines.push('');
  const rounded = analysis.profiles.map((profile) => `${profileLabel(profile)}: ${ruleSetFor(profile).roundStackDepth(sub.checkedDepth)} B`);
  lines.push(`Rounded as the verifier counts it — ${rounded.join(' · ')}`);
  program.verdicts.forEach((verdict, index) => {
    const profile = analysis.profiles[index] ?? { version: verdict.kernel, jit: verdict.jit };
    for (const line of tailCallLines(sub.name, program, verdict, profile)) lines.push(`\n- ${line}`);
  });
  return lines.join('\n');
}

/** Each chain through `name` to a tail call, with the running total, for one kernel. */
function tailCallLines(name: string, program: ProgramReport, verdict: VerdictReport, profile: KernelProfile): string[] {
  const round = ruleSetFor(profile).roundStackDepth;
  const label = profileLabel(profile);
  return verdict.tailCalls
    .filter((reach) => reach.chain.includes(name))
    .map((reach) => {
      let runningTotal = 0;
      const callers = reach.chain.slice(0, -1).map((caller) => {
        const depth = round(program.subprograms.find((sub) => sub.name === caller)?.checkedDepth ?? 0);
        runningTotal += depth;
        return `${caller} ${depth} B (${runningTotal})`;
      });
      const fate = reach.callersDepth >= TAIL_CALL_CALLERS_LIMIT ? `**rejected** (must stay below ${TAIL_CALL_CALLERS_LIMIT} B)` : 'passes';
      return `${label}: ${[...callers, `tail call in ${reach.name}`].join(' → ')} at **${reach.callersDepth} B** — ${fate}`;
    });
}
