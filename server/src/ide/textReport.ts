/**
 * The `check` report for a person: each program, its frames in verifier order, and for each kernel
 * the verdict with the chain of frames that leads to every violation and the source line it points at.
 */
import { basename } from 'node:path';
import type { SourceLocation } from '../common/problem';
import type { ObjectReport, ProgramReport, VerdictReport } from '../object/analyzeObject';
import { profileLabel } from '../rules/kernelProfile';
import { missingFeatureText } from '../ide/advice';

export interface SourceLines {
  /** The text of a source line, when the file can be read (or BTF carried it). */
  lineText(location: SourceLocation): string | undefined;
}

export function formatTextReport(objects: ObjectReport[], sources: SourceLines): string {
  const out: string[] = [];
  for (const object of objects) {
    const repeats = new Repeats();
    out.push(object.path);
    for (const problem of object.problems) {
      out.push(`  warning: ${problem.message}${problem.offset === undefined ? '' : ` (byte 0x${problem.offset.toString(16)})`}`);
    }
    if (object.programs.length === 0) out.push('  no programs');
    for (const program of object.programs) out.push(...formatProgram(program, sources, repeats));
    out.push('');
  }
  return out.join('\n');
}

function where(location: SourceLocation | undefined): string {
  return location ? `${basename(location.file)}:${location.line}` : '';
}

function formatProgram(program: ProgramReport, sources: SourceLines, repeats: Repeats): string[] {
  const out: string[] = [];
  out.push(`  program ${program.name} (SEC("${program.section}"), ${program.type}): ${repeats.say(`stack depth ${program.stackDepths}`, program.name)}`);
  const nameWidth = Math.max(...program.subprograms.map((sub) => sub.name.length));
  const sameFrames = repeats.sameFrames(program);
  if (sameFrames) out.push(`    #0 ${program.subprograms[0].name}, then the same ${program.subprograms.length - 1} frames as program ${sameFrames}`);
  (sameFrames ? [] : program.subprograms).forEach((sub, index) => {
    const notes: string[] = [];
    if (sub.isGlobal && index > 0) notes.push('global');
    if (sub.isAsyncCallback) notes.push('async callback');
    if (sub.hasTailCall) notes.push(`tail call at ${sub.tailCalls.map(where).join(', ') || 'unknown line'}`);
    if (sub.hiddenReasons.length > 0) notes.push(`checked as ${sub.checkedDepth} B; the verifier adds ${sub.hiddenReasons.join(', ')}`);
    out.push(
      `    #${index} ${sub.name.padEnd(nameWidth)} ${String(sub.stackDepth).padStart(4)} B  ${where(sub.source).padEnd(20)}${notes.length ? ` ${notes.join('; ')}` : ''}`.trimEnd(),
    );
  });
  for (const added of program.addedSubprograms ?? []) out.push(`    +  ${added}: 0 B, added by the verifier after its check`);
  for (const verdict of program.verdicts) out.push(...formatVerdict(verdict, sources, (text) => repeats.say(text, program.name)));
  return out;
}

/** What the kernel's own log would say, and what the verdict rests on besides the rules. */
function verdictContext(verdict: VerdictReport, said: (text: string) => string): string[] {
  const out: string[] = [];
  if (verdict.stackDepthLine) out.push(`      verifier prints: ${said(verdict.stackDepthLine)}`);
  for (const line of verdict.subprogramStackLines ?? []) out.push(`        subprog ${line.index} (${line.name}) ${line.kind} stack ${line.stack}`);
  for (const note of verdict.notes ?? []) out.push(`      warning: ${note}`);
  for (const assumption of verdict.assumes ?? []) out.push(`      assumes: ${assumption}`);
  return out;
}

function formatVerdict(verdict: VerdictReport, sources: SourceLines, said: (text: string) => string): string[] {
  const label = profileLabel({ version: verdict.kernel, jit: verdict.jit });
  if (verdict.accepted) {
    const tail = verdict.tailCalls.map((reach) => `; ${reach.callersDepth} B before the tail call in ${reach.name}`).join('');
    return [`    kernel ${label}: passes (deepest chain ${verdict.maxCombinedDepth} B of 512${tail})`, ...verdictContext(verdict, said)];
  }
  const out = [`    kernel ${label}: REJECTED`, ...verdictContext(verdict, said)];
  for (const violation of verdict.violations) {
    out.push(`      ${violation.reportedByKernel ? 'error' : 'also'}: ${violation.message}`);
    if (violation.missingFeature) {
      out.push(`        kernel lacks: ${missingFeatureText(violation.missingFeature, { version: verdict.kernel, jit: verdict.jit })}`);
    } else {
      const chain = violation.frames.map((frame) => `${frame.name} (${frame.privateStack ? 'private stack' : `${frame.roundedDepth} B`})`).join(' -> ');
      out.push(`        chain: ${chain}`);
    }
    if (violation.source) {
      const text = sources.lineText(violation.source);
      out.push(`        at ${violation.source.file}:${violation.source.line}:${violation.source.column}`);
      if (text !== undefined) out.push(`        ${String(violation.source.line).padStart(5)} | ${text.trim()}`);
    }
  }
  return out;
}

/** Frames and lines longer than this are said once per object, then referred to. */
const REPEAT_MIN_FRAMES = 8;
const REPEAT_MIN_CHARACTERS = 160;

/**
 * What a report has already said, so that it is said once: programs that share their subprograms
 * (a thousand programs over one chain) would otherwise repeat the same frames and the same long
 * "stack depth" line each, and the report would grow with programs × frames instead of the object.
 */
class Repeats {
  private readonly framesSeen = new Map<string, string>();
  private readonly linesSeen = new Map<string, string>();
  private readonly ids = new WeakMap<object, number>();
  private nextId = 0;

  /** The earlier program with the same frames after its main function, if there are many. */
  sameFrames(program: ProgramReport): string | undefined {
    if (program.subprograms.length <= REPEAT_MIN_FRAMES) return undefined;
    const key = program.subprograms
      .slice(1)
      .map((sub) => this.idOf(sub))
      .join(',');
    const first = this.framesSeen.get(key);
    if (first === undefined) this.framesSeen.set(key, program.name);
    return first;
  }

  /** The text, or a reference to the program that printed it first when it is long. */
  say(text: string, owner: string): string {
    if (text.length < REPEAT_MIN_CHARACTERS) return text;
    const first = this.linesSeen.get(text);
    if (first === undefined) {
      this.linesSeen.set(text, owner);
      return text;
    }
    const words = /^[^0-9]*/.exec(text)?.[0] ?? '';
    return `${words}(the same ${text.split('+').length} numbers as program ${first})`;
  }

  private idOf(sub: object): number {
    let id = this.ids.get(sub);
    if (id === undefined) this.ids.set(sub, (id = this.nextId++));
    return id;
  }
}
