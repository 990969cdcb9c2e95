/**
 * Diagnostics: one per stack-rule violation that points into the document (the tail call, the
 * function whose frame overflows, the call that goes too deep), with the chain of frames that leads
 * there as related information, each frame's call site with its bytes. All kernel profiles are
 * judged at once; a violation that reads the same on several kernels is one diagnostic that says
 * where it is rejected and where it passes ("rejected on 6.1; passes on 6.18"). Numbers from an
 * object older than the source are still shown, as information, and say so.
 *
 * Each diagnostic names its provider in its source. A fresh object measures what the kernel will
 * load, so its violations win: the estimate's violations of the same rule are dropped, and its
 * others are only information, since the estimate sums locals that clang may overlap. When the
 * object is stale or absent, the estimate's violations stand on their own. The estimate also knows
 * what a frame is made of, so every heavy item on a rejected chain (an on-stack printk format or
 * argument array, or any local of 64 bytes or more) gets an information diagnostic of its own,
 * related to the violation it feeds.
 */
import * as path from 'node:path';
import type { SourceLocation } from '../common/problem';
import type { ProgramReport, ViolationReport } from '../object/analyzeObject';
import { profileLabel } from '../rules/kernelProfile';
import type { FrameItem } from '../source/frameEstimate';
import { type DocumentStackAnalysis, diagnosticSourceFor, diagnosticSourceOf, documentFrame, resolvedPath } from './documentAnalysis';

/** Items at least this large are named as contributors even when they are plain locals. */
export const HEAVY_ITEM_BYTES = 64;
/** The rule code of a contributor diagnostic; its data still names the violation's rule, for quick fixes. */
export const CONTRIBUTOR_RULE = 'stack-contributor';

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
  const freshObjects = analyses.filter((analysis) => analysis.origin === 'object' && !analysis.staleReason);
  /** The first violation of each rule that a fresh object shows. */
  const freshRules = new Map<string, StackFinding>();
  const shown: StackFinding[] = [];
  for (const analysis of analyses.filter((candidate) => candidate.origin === 'object')) {
    for (const finding of analysisFindings(documentPath, analysis)) {
      shown.push(finding);
      if (!analysis.staleReason && !freshRules.has(finding.rule)) freshRules.set(finding.rule, finding);
    }
  }
  for (const analysis of analyses.filter((candidate) => candidate.origin !== 'object')) {
    for (const { finding, contributors } of analysisFindingsWithContributors(documentPath, analysis)) {
      const winner = freshRules.get(finding.rule);
      if (winner) {
        // The object's diagnostic says the same with measured bytes; the contributors now explain it.
        shown.push(...contributors.map((contributor) => ({ ...contributor, related: [{ location: winner.location, message: firstLine(winner.message) }] })));
        continue;
      }
      if (freshObjects.length > 0) {
        const objects = freshObjects.map((object) => object.label).join(', ');
        shown.push({ ...finding, severity: 'information', message: `${finding.message}\nnot confirmed by ${objects}, which measures this rule as passing` });
      } else {
        shown.push(finding);
      }
      shown.push(...contributors);
    }
  }

  for (const analysis of analyses) shown.push(...headerFindings(documentPath, analysis));

  const findings = new Map<string, StackFinding>();
  for (const finding of shown) {
    // A contributor is one diagnostic however many violations it feeds.
    const key = finding.rule === CONTRIBUTOR_RULE ? `${finding.location.line}:${finding.message.split('\n')[0]}` : `${finding.location.line}:${finding.location.column}:${finding.message}`;
    if (!findings.has(key)) findings.set(key, finding);
  }
  return [...findings.values()].sort((a, b) => a.location.line - b.location.line || a.location.column - b.location.column);
}

/** The rule code of a diagnostic about a header the estimate could not find, or had to stand in for. */
export const HEADER_RULE = 'estimate-header';

/**
 * The estimate's problems with the document's own #include lines: a header not found leaves its
 * types at 0 bytes in every frame below (a warning); a vmlinux.h taken from the running kernel is
 * information. Problems inside headers or declarations are the compiler's to report, not ours.
 */
function headerFindings(documentPath: string, analysis: DocumentStackAnalysis): StackFinding[] {
  if (analysis.origin === 'object' || !samePath(analysis.path, documentPath)) return [];
  return (analysis.problems ?? []).flatMap((problem): StackFinding[] => {
    if (problem.line === undefined || problem.column === undefined) return [];
    const notFound = / file not found/.test(problem.message);
    if (!notFound && !/vmlinux\.h/.test(problem.message)) return [];
    return [
      {
        location: { file: analysis.path, line: problem.line, column: problem.column },
        severity: notFound ? 'warning' : 'information',
        message: notFound ? `${problem.message}: its types count 0 bytes in the stack estimate (set bpfStackLens.includePaths, or a compile_commands.json)` : problem.message,
        rule: HEADER_RULE,
        source: diagnosticSourceOf(analysis.origin),
        related: [],
        data: { program: '', chain: [], rule: HEADER_RULE },
      },
    ];
  });
}

function analysisFindings(documentPath: string, analysis: DocumentStackAnalysis): StackFinding[] {
  return analysisFindingsWithContributors(documentPath, analysis).map(({ finding }) => finding);
}

function analysisFindingsWithContributors(documentPath: string, analysis: DocumentStackAnalysis): { finding: StackFinding; contributors: StackFinding[] }[] {
  return analysis.programs.flatMap((program) => programFindings(documentPath, analysis, program));
}

function firstLine(text: string): string {
  return text.split('\n')[0];
}

/** One violation at one place in the document, as each kernel profile judged it. */
interface ViolationGroup {
  location: SourceLocation;
  rule: string;
  byKernel: Map<string, ViolationReport>;
}

function programFindings(documentPath: string, analysis: DocumentStackAnalysis, program: ProgramReport): { finding: StackFinding; contributors: StackFinding[] }[] {
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

  const findings: { finding: StackFinding; contributors: StackFinding[] }[] = [];
  for (const group of groups.values()) {
    const passes = labels.filter((label) => !group.byKernel.has(label));
    const byMessage = new Map<string, string[]>();
    for (const [label, violation] of group.byKernel) byMessage.set(violation.message, [...(byMessage.get(violation.message) ?? []), label]);
    for (const [message, rejectedOn] of byMessage) {
      const violation = group.byKernel.get(rejectedOn[0]) as ViolationReport;
      const verdictText = `rejected on ${rejectedOn.join(', ')}${passes.length > 0 ? `; passes on ${passes.join(', ')}` : ''}`;
      const chainText = violation.frames.map((frame) => `${frame.name} ${frame.roundedDepth} B`).join(' → ');
      const stale = analysis.staleReason ? ` (stale: ${analysis.staleReason})` : '';
      // What the verdicts rest on besides measured rules: versions outside the model, unprobed facts.
      const caveats = [...new Set(program.verdicts.flatMap((verdict) => [...(verdict.notes ?? []), ...(verdict.assumes ?? []).map((fact) => `assumes ${fact}`)]))];
      const caveatText = caveats.map((caveat) => `\n${caveat}`).join('');
      const finding: StackFinding = {
        location: group.location,
        severity: analysis.staleReason ? 'information' : 'error',
        message: `${message}\n${verdictText} · program ${program.name}: ${chainText} (${rejectedOn[0]}) · ${analysis.label}${stale}${caveatText}`,
        rule: group.rule,
        source: diagnosticSourceFor(analysis),
        related: relatedFrames(violation, program, rejectedOn[0]),
        data: { program: program.name, chain: violation.chain, rule: violation.rule },
      };
      findings.push({ finding, contributors: contributorFindings(documentPath, analysis, violation, finding, rejectedOn) });
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

/**
 * The heavy items of the frames a violation counts (a tail call's own frame is not among its
 * callers'), each as information at its line, related to the violation.
 */
function contributorFindings(documentPath: string, analysis: DocumentStackAnalysis, violation: ViolationReport, violationFinding: StackFinding, rejectedOn: string[]): StackFinding[] {
  if (!analysis.frames || !samePath(analysis.path, documentPath)) return [];
  const counted = violation.rule === 'tail-call-depth' ? violation.frames.slice(0, -1) : violation.frames;
  const findings: StackFinding[] = [];
  for (const frame of counted) {
    if (frame.privateStack) continue;
    const items = documentFrame(analysis.frames, frame.name)?.items ?? [];
    for (const item of items.filter(isHeavy)) {
      findings.push({
        location: { file: documentPath, line: item.line, column: 0 },
        severity: 'information',
        message: `${describeItem(item)} puts ${item.bytes} B on the stack of ${frame.name}\non the chain rejected on ${rejectedOn.join(', ')}: ${firstLine(violationFinding.message)}`,
        rule: CONTRIBUTOR_RULE,
        source: violationFinding.source,
        related: [{ location: violationFinding.location, message: firstLine(violationFinding.message) }],
        data: violationFinding.data,
      });
    }
  }
  return findings;
}

function isHeavy(item: FrameItem): boolean {
  return item.what === 'printk-format' || item.what === 'printk-args' || item.bytes >= HEAVY_ITEM_BYTES;
}

function describeItem(item: FrameItem): string {
  switch (item.what) {
    case 'printk-format':
      return `The printk format ${item.name} (${item.type}, built on the stack)`;
    case 'printk-args':
      return `The printk argument array ${item.name} (${item.type})`;
    case 'inlined':
      return `The inlined ${item.name}`;
    case 'local':
      return `${item.name} (${item.type})`;
  }
}

function samePath(a: string, b: string): boolean {
  return path.resolve(a) === path.resolve(b) || resolvedPath(a) === resolvedPath(b);
}
