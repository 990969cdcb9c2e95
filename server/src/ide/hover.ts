/**
 * Hover: on a function's name, its frame from the analysis the editor stands on (a fresh object,
 * else the estimate), the other analyses' number for it in one line, what the estimate's frame is
 * made of in the words the user wrote ("the format of stack_printk at line 120", never the macro's
 * `____fmt`), its rounding for each kernel with the reason said once, and per kernel the chain that
 * each rule judges through it — the tail call against 256 B, the combined stack against 512 B, the
 * number of frames — with labeled running totals, the verdict, and what would make it pass. On a
 * bpf_printk (or bpf_trace_printk, or a macro that builds its format on the stack), the bytes that
 * call puts on its function's stack and why, as printkCost.ts counts them.
 *
 * Everything taken from the user's files goes through common/markdown.ts, so that a file's
 * text reads as itself and never as markup.
 */
import type { ProgramReport, VerdictReport } from '../object/analyzeObject';
import { type KernelProfile, profileLabel, ruleSetFor } from '../rules/kernelProfile';
import { MAX_BPF_STACK, TAIL_CALL_CALLERS_LIMIT } from '../rules/stackRules';
import type { FrameItem } from '../source/frameEstimate';
import { adviceText, deepestChainThrough, roundingText, shrinkOptions, shrinkText } from './advice';
import { type DocumentStackAnalysis, documentFrame } from './analysis';
import { frameOf, frameTextOf, judgingAnalysis } from './codeLens';
import { itemLabel } from './items';
import { markdownCode, markdownText } from '../common/markdown';
import type { TextSpan } from './textSpan';
import { findPrintkCalls } from './printk';
import { costedPrintkCalls } from './printkCost';
import type { LensSettings } from './lensSettings';
import { type SyntaxView, functionDefinitions, functionNamedAt } from './syntax';

/** Stands for the kernels' labels in a chain line until the kernels that say the same line are known. */
const KERNEL = '\u0000';

export interface HoverContent {
  markdown: string;
  span: TextSpan;
}

/** The printk call that starts on a 1-based line, for naming the objects its macro declares. */
export type PrintkAt = (line: number) => string | undefined;

/**
 * `verifyCommand` is the client's command that verifies a file's objects on real kernels, when it
 * said it has one: a function measured in an object links to it.
 */
export function hoverAt(
  snapshot: SyntaxView,
  offset: number,
  analyses: DocumentStackAnalysis[],
  settings: LensSettings,
  links: { verifyCommand?: string } = {},
): HoverContent | undefined {
  const fn = functionNamedAt(functionDefinitions(snapshot.tree, snapshot.queries), offset);
  if (fn) {
    const callees = new Map(findPrintkCalls(snapshot.tree, snapshot.queries, settings).map((call) => [call.call.startPosition.row + 1, call.callee]));
    const markdown = functionHover(fn.name, analyses, (line) => callees.get(line));
    if (!markdown) return undefined;
    const built = analyses.some((analysis) => analysis.origin === 'object' && !analysis.compiledFromBuffer);
    // Parentheses too: encodeURIComponent leaves them, and a ")" in a file name would end the link.
    const argument = encodeURIComponent(JSON.stringify([snapshot.uri])).replace(/[()]/g, (bracket) => (bracket === '(' ? '%28' : '%29'));
    const verify = links.verifyCommand && built ? `\n\n[Verify on real kernels…](command:${links.verifyCommand}?${argument})` : '';
    return { markdown: markdown + verify, span: { start: fn.nameNode.startIndex, end: fn.nameNode.endIndex } };
  }
  const printk = costedPrintkCalls(snapshot, analyses, settings).find((call) => {
    const callee = call.call.childForFieldName('function');
    return callee !== null && callee.startIndex <= offset && offset <= callee.endIndex;
  });
  if (!printk) return undefined;
  const where = printk.functionName ? ` of ${markdownCode(printk.functionName)}` : '';
  const format = printk.formatBytes === undefined ? '' : `\n\nFormat string: ${markdownCode(printk.format.text)}, ${printk.formatBytes} bytes with the NUL.`;
  return {
    markdown: `**${markdownText(printk.callee)}** puts **${printk.cost.stackBytes} B** on the stack${where}.\n\n${printk.cost.reason}${format}`,
    span: { start: printk.call.startIndex, end: printk.call.endIndex },
  };
}

/** Markdown for a function in every program of the analysis the editor stands on, or undefined. */
export function functionHover(name: string, analyses: DocumentStackAnalysis[], printkAt: PrintkAt = () => undefined): string | undefined {
  const judged = judgingAnalysis(name, analyses);
  if (!judged) return undefined;
  const programs = judged.programs.filter((program) => program.subprograms.some((sub) => sub.name === name));
  const subs = programs.map((program) => program.subprograms.find((sub) => sub.name === name)).filter((sub) => sub !== undefined);
  const frame = frameOf(name, judged);
  const checked = Math.max(...subs.map((sub) => sub.checkedDepth));
  const hiddenSub = subs.find((sub) => sub.stackDepth > sub.checkedDepth);
  const hidden = hiddenSub ? ` (${hiddenSub.checkedDepth} B checked; ${hiddenSub.hiddenBytes.join(', ')})` : '';
  const inPrograms = programs.map((program) => `program ${markdownCode(program.name)}, ${markdownCode(`SEC(${JSON.stringify(program.section)})`)}`).join('; ');
  const lines: string[] = [`**${markdownText(name)}** — frame **${frameTextOf(name, judged)}**${hidden}, ${how(judged)} (${inPrograms})`];
  const ranged = subs.find((sub) => sub.uncertainty !== undefined);
  if (ranged) lines.push(`\n_Range: ${markdownText(ranged.uncertainty!)}._`);

  // The others' number for it, once each: an object and the estimate that agree are not said twice.
  for (const other of analyses) {
    if (other === judged || !other.programs.some((program) => program.subprograms.some((sub) => sub.name === name))) continue;
    const otherFrame = frameOf(name, other);
    const stale = other.staleReason ? `, stale: ${markdownText(other.staleReason)}` : '';
    lines.push(`\n${capitalized(how(other))}: ${otherFrame} B${otherFrame === frame ? ' (the same)' : ''}${stale}.`);
  }
  if (judged.staleReason) lines.push(`\n_Stale: ${markdownText(judged.staleReason)}._`);

  const estimate = analyses.find((analysis) => analysis.origin === 'source estimate' && documentFrame(analysis.frames, name));
  const items = documentFrame(estimate?.frames, name)?.items ?? [];
  if (items.length > 0) {
    lines.push(
      `\nMade of (as the estimate counts it): ${items.map((item) => `${describedItem(item, printkAt)} ${item.bytes} B (line ${item.line})`).join(' · ')}`,
    );
    lines.push('\n_Every object takes whole 8-byte stack slots (a 4-byte `__u32` takes 8 B), and objects never alive at the same time share slots._');
  }

  lines.push('');
  const rounded = judged.profiles.map((profile) => `${profileLabel(profile)}: ${ruleSetFor(profile).roundStackDepth(checked)} B`);
  lines.push(`Rounded as the verifier counts it — ${rounded.join(' · ')} (${roundingReasons(judged.profiles)})`);
  for (const program of programs) {
    // Kernels that judge a chain alike share its line ("5.15, 6.1: entry 224 B …").
    const byText = new Map<string, string[]>();
    program.verdicts.forEach((verdict, index) => {
      const profile = judged.profiles[index] ?? { version: verdict.kernel, jit: verdict.jit };
      for (const line of chainLines(name, program, verdict, profile)) byText.set(line, [...(byText.get(line) ?? []), profileLabel(profile)]);
    });
    for (const [line, labels] of byText) lines.push(`\n- ${line.replaceAll(KERNEL, labels.join(', '))}`);
  }
  return lines.join('\n');
}

function how(analysis: DocumentStackAnalysis): string {
  return analysis.origin === 'object' ? `measured in ${markdownCode(analysis.label)}` : 'estimated from the source';
}

function capitalized(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** A frame item as the user wrote it: a printk's objects are named after the call, with their types. */
function describedItem(item: FrameItem, printkAt: PrintkAt): string {
  const callee = printkAt(item.line);
  if (item.what === 'printk-format' && callee) return `the format of ${markdownCode(callee)} (${markdownCode(item.type)})`;
  if (item.what === 'printk-args' && callee) return `the arguments of ${markdownCode(callee)} (${markdownCode(item.type)})`;
  if (item.what === 'local') return `${markdownCode(item.name)} (${markdownCode(item.type)})`;
  return markdownText(itemLabel(item));
}

/** Each kernel's rounding, said once for the kernels that share it. */
function roundingReasons(profiles: KernelProfile[]): string {
  const byReason = new Map<string, string[]>();
  for (const profile of profiles) byReason.set(roundingText(profile), [...(byReason.get(roundingText(profile)) ?? []), profileLabel(profile)]);
  return [...byReason].map(([reason, labels]) => `${labels.join(', ')}: ${reason}`).join('; ');
}

/**
 * For one kernel, every rule's chain through `name`: each tail call it leads to (against 256 B),
 * each violation through it that is not a tail call's, and, when nothing else is said, the deepest
 * chain through it against 512 B.
 */
function chainLines(name: string, program: ProgramReport, verdict: VerdictReport, profile: KernelProfile): string[] {
  const round = ruleSetFor(profile).roundStackDepth;
  const label = KERNEL;
  const lines: string[] = [];
  for (const reach of verdict.tailCalls.filter((candidate) => candidate.chain.includes(name))) {
    let runningTotal = 0;
    const callers = reach.chain.slice(0, -1).map((caller) => {
      const depth = round(program.subprograms.find((sub) => sub.name === caller)?.checkedDepth ?? 0);
      runningTotal += depth;
      return `${markdownText(caller)} ${depth} B (total ${runningTotal} B)`;
    });
    const violation = verdict.violations.find((candidate) => candidate.rule === 'tail-call-depth' && candidate.chain.join('>') === reach.chain.join('>'));
    const fate = violation
      ? `**rejected** (must stay below ${TAIL_CALL_CALLERS_LIMIT} B)${shrinkSuffix(violation, profile)}`
      : `passes (the tail-calling ${markdownText(reach.name)}'s own frame is not counted)`;
    lines.push(`${label}: ${[...callers, `tail call in ${markdownText(reach.name)}`].join(' → ')} at **${reach.callersDepth} B** of callers' frames — ${fate}`);
  }
  const others = verdict.violations.filter((violation) => violation.rule !== 'tail-call-depth' && violation.chain.includes(name));
  for (const violation of others) {
    if (violation.rule === 'kernel-lacks-feature') {
      lines.push(`${label}: **rejected** before the stack is checked (${markdownText(violation.message)}): ${markdownText(adviceText(violation, profile))}`);
      continue;
    }
    const chain = violation.frames
      .map((frame) => (frame.privateStack ? `${markdownText(frame.name)} (private stack)` : `${markdownText(frame.name)} ${frame.roundedDepth} B`))
      .join(' → ');
    const measure = violation.rule === 'call-depth' ? `**${violation.frames.length} frames**` : `**${violation.depth} B**`;
    lines.push(`${label}: ${chain} = ${measure} — **rejected**: ${adviceText(violation, profile)}`);
  }
  if (lines.length === 0) {
    const deepest = deepestChainThrough(name, program, verdict, profile);
    if (deepest !== undefined)
      lines.push(
        `${label}: the deepest chain through ${markdownText(name)} is **${deepest} B** of ${MAX_BPF_STACK} — ${verdict.accepted ? 'passes' : 'passes here (the program is rejected elsewhere)'}`,
      );
  }
  return lines;
}

/** ": entry must lose 8 B (200 → 192 B) to pass", or nothing when no frame can do it alone. */
function shrinkSuffix(violation: VerdictReport['violations'][number], profile: KernelProfile): string {
  const shrink = shrinkText(shrinkOptions(violation, profile));
  return shrink ? `: ${shrink} to pass` : '';
}
