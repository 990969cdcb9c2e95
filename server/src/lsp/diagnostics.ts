/**
 * Diagnostics: one per stack-rule violation that points into the document (the tail call, the
 * function whose frame overflows, the call that goes too deep), with the chain of frames that leads
 * there as related information, each frame's call site with its bytes. All kernel profiles are
 * judged at once; a violation that reads the same on several kernels is one diagnostic that says
 * where it is rejected and where it passes ("rejected on 6.1; passes on 6.18"). Numbers from an
 * object older than the source are still shown, as information, and say so.
 */
import * as path from 'node:path';
import type { SourceLocation } from '../common/problem';
import type { ProgramReport, ViolationReport } from '../object/analyzeObject';
import { profileLabel } from '../rules/kernelProfile';
import { type DocumentStackAnalysis, diagnosticSourceOf, resolvedPath } from './documentAnalysis';

export interface StackFinding {
  location: SourceLocation;
  severity: 'error' | 'warning' | 'information';
  /** Starts with the verifier's message word for word. */
  message: string;
  rule: string;
  source: string;
  related: { location: SourceLocation; message: string }[];
  /** Carried on the LSP diagnostic so that code actions know the chain the violation is about. */
  data: FindingData;
}

export interface FindingData {
  program: string;
  /** Function names from the root to the offending function. */
  chain: string[];
  rule: string;
}

export function stackFindings(documentPath: string, analyses: DocumentStackAnalysis[]): StackFinding[] {
  const findings = new Map<string, StackFinding>();
  for (const analysis of analyses) {
    for (const program of analysis.programs) {
      for (const finding of programFindings(documentPath, analysis, program)) {
        const key = `${finding.location.line}:${finding.location.column}:${finding.message}`;
        if (!findings.has(key)) findings.set(key, finding);
      }
    }
  }
  return [...findings.values()].sort((a, b) => a.location.line - b.location.line || a.location.column - b.location.column);
}

/** One violation at one place in the document, as each kernel profile judged it. */
interface ViolationGroup {
  location: SourceLocation;
  rule: string;
  byKernel: Map<string, ViolationReport>;
}

function programFindings(documentPath: string, analysis: DocumentStackAnalysis, program: ProgramReport): StackFinding[] {
  const labels = program.verdicts.map((verdict) => profileLabel({ version: verdict.kernel, jit: verdict.jit }));
  const groups = new Map<string, ViolationGroup>();
  program.verdicts.forEach((verdict, index) => {
    for (const violation of verdict.violations) {
      const location = locateInDocument(documentPath, violation, program);
      if (!location) continue;
      const key = `${location.line}:${location.column}:${violation.rule}`;
      let group = groups.get(key);
      if (!group) {
        group = { location, rule: violation.rule, byKernel: new Map() };
        groups.set(key, group);
      }
      // The first chain a kernel meets is the one it prints; keep that one per kernel.
      if (!group.byKernel.has(labels[index])) group.byKernel.set(labels[index], violation);
    }
  });

  const findings: StackFinding[] = [];
  for (const group of groups.values()) {
    const passes = labels.filter((label) => !group.byKernel.has(label));
    const byMessage = new Map<string, string[]>();
    for (const [label, violation] of group.byKernel) byMessage.set(violation.message, [...(byMessage.get(violation.message) ?? []), label]);
    for (const [message, rejectedOn] of byMessage) {
      const violation = group.byKernel.get(rejectedOn[0]) as ViolationReport;
      const verdictText = `rejected on ${rejectedOn.join(', ')}${passes.length > 0 ? `; passes on ${passes.join(', ')}` : ''}`;
      const chainText = violation.frames.map((frame) => `${frame.name} ${frame.roundedDepth} B`).join(' → ');
      const stale = analysis.staleReason ? ` (stale: ${analysis.staleReason})` : '';
      findings.push({
        location: group.location,
        severity: analysis.staleReason ? 'information' : 'error',
        message: `${message}\n${verdictText} · program ${program.name}: ${chainText} (${rejectedOn[0]}) · ${analysis.label}${stale}`,
        rule: group.rule,
        source: diagnosticSourceOf(analysis.origin),
        related: relatedFrames(violation, program, rejectedOn[0]),
        data: { program: program.name, chain: violation.chain, rule: violation.rule },
      });
    }
  }
  return findings;
}

/**
 * Where in this document a violation shows: where the rule points if that is here; otherwise the
 * deepest call on its chain made from this document (a tail call in a header is reported at the
 * call that reaches it).
 */
function locateInDocument(documentPath: string, violation: ViolationReport, program: ProgramReport): SourceLocation | undefined {
  const inDocument = (location?: SourceLocation) => location !== undefined && samePath(location.file, documentPath);
  if (inDocument(violation.source)) return violation.source;
  for (let index = violation.frames.length - 1; index >= 0; index--) {
    const callSource = violation.frames[index].callSource;
    if (inDocument(callSource)) return callSource;
  }
  const root = program.subprograms.find((sub) => sub.name === violation.chain[0]);
  return inDocument(root?.source) ? root?.source : undefined;
}

/** Each frame of the chain at its call site (the root at its definition), with its bytes and the running total. */
function relatedFrames(violation: ViolationReport, program: ProgramReport, kernel: string): StackFinding['related'] {
  const related: StackFinding['related'] = [];
  let runningTotal = 0;
  violation.frames.forEach((frame, index) => {
    const location = index === 0 ? program.subprograms.find((sub) => sub.name === frame.name)?.source : frame.callSource;
    const last = index === violation.frames.length - 1;
    let message: string;
    if (last && violation.rule === 'tail-call-depth') {
      message = `${frame.name} tail-calls with ${violation.depth} B of callers' frames on ${kernel} (the limit is below 256 B)`;
    } else {
      if (!frame.privateStack) runningTotal += frame.roundedDepth;
      const where = index === 0 ? `${frame.name}` : `calls ${frame.name}`;
      const stack = frame.privateStack ? 'on its private stack' : `${runningTotal} B so far`;
      message = `${where}: frame ${frame.stackDepth} B, ${frame.roundedDepth} B rounded on ${kernel}, ${stack}`;
    }
    if (location) related.push({ location, message });
  });
  return related;
}

function samePath(a: string, b: string): boolean {
  return path.resolve(a) === path.resolve(b) || resolvedPath(a) === resolvedPath(b);
}
