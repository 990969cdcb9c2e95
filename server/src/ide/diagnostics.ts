/**
 * Diagnostics: one per problem of a program that points into the document (the tail call, the
 * function whose frame overflows, the call that goes too deep), with the chain of frames that leads
 * there as related information, each frame's call site with its bytes. All kernel profiles are
 * judged at once; a violation at one place under one rule is one diagnostic that says where it is
 * rejected, with each kernel's bytes when they differ, and where it passes ("rejected on 6.1 (320 B),
 * 6.18 (304 B)"), then by how much and what to shrink (advice.ts) and the largest items on the chain.
 * Numbers from an object older than the source are still shown, as information, and say so; when the
 * estimate reports the same problem, the stale object's word is a line of the estimate's diagnostic.
 * Every location follows the edits made since its analysis (relocate.ts).
 *
 * clang's own limit comes first: a function whose estimated frame is over 512 bytes will not
 * compile, so it gets an error of its own (CLANG_STACK_LIMIT_RULE), and the combined-rule violations
 * it would cause are left out.
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
import { type KernelProfile, profileLabel } from '../rules/kernelProfile';
import { TAIL_CALL_CALLERS_LIMIT } from '../rules/stackRules';
import type { FrameItem, FunctionFrame } from '../source/frameEstimate';
import { CLANG_FRAME_LIMIT, CLANG_STACK_LIMIT_RULE, excessText, roundingText, shrinkOptions, shrinkText } from './advice';
import { itemLabel, largestItems } from './items';
import { relocator } from './relocate';
import { resolvedPath } from '../common/paths';
import { type DocumentStackAnalysis, describedLineOf, diagnosticSourceFor, diagnosticSourceOf, documentFrame } from './analysis';

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

/** What the findings may know about the editor beside the analyses. */
export interface FindingOptions {
  /** The current text of an open file, so that lines follow the edits made since an analysis. */
  currentText?: (file: string) => string | undefined;
}

export function stackFindings(documentPath: string, analyses: DocumentStackAnalysis[], options: FindingOptions = {}): StackFinding[] {
  const freshObjects = analyses.filter((analysis) => analysis.origin === 'object' && !analysis.staleReason);
  // The estimate of the document knows what frames are made of; objects' messages name the largest items too.
  const estimatedFrames = analyses.find((analysis) => analysis.origin !== 'object' && analysis.frames && samePath(analysis.path, documentPath))?.frames;
  /** The first violation of each rule that a fresh object shows. */
  const freshRules = new Map<string, StackFinding>();
  const shown: StackFinding[] = [];
  const staleObjectFindings: { finding: StackFinding; label: string; reason: string }[] = [];
  for (const analysis of analyses.filter((candidate) => candidate.origin === 'object')) {
    for (const { finding } of analysisFindings(documentPath, analysis, estimatedFrames, options)) {
      if (analysis.staleReason) {
        staleObjectFindings.push({ finding, label: analysis.label, reason: analysis.staleReason });
        continue;
      }
      shown.push(finding);
      if (!freshRules.has(finding.rule)) freshRules.set(finding.rule, finding);
    }
  }
  const folded = new Set<StackFinding>();
  for (const analysis of analyses.filter((candidate) => candidate.origin !== 'object')) {
    const refused = clangLimitFindings(documentPath, analysis, freshObjects, options);
    shown.push(...refused);
    const refusedFunctions = new Set(refused.flatMap((finding) => finding.data.chain));
    for (const { finding, contributors } of analysisFindings(documentPath, analysis, analysis.frames, options)) {
      // clang refuses a frame over its limit before any kernel sees the program: that is the problem to show.
      if (finding.rule === 'combined-stack' && finding.data.chain.some((name) => refusedFunctions.has(name))) continue;
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
        // One diagnostic per problem: a stale object that says the same is a line of this one.
        const same = staleObjectFindings.filter(
          ({ finding: stale }) => !folded.has(stale) && stale.data.program === finding.data.program && stale.rule === finding.rule,
        );
        for (const { finding: stale } of same) folded.add(stale);
        const also = same.map(({ finding: stale, label, reason }) => `\n${label} (stale: ${reason}) said: ${firstLine(stale.message)}`).join('');
        shown.push({ ...finding, message: `${finding.message}${also}` });
      }
      shown.push(...contributors);
    }
  }
  // What only a stale object still says stays, as information.
  for (const { finding } of staleObjectFindings) if (!folded.has(finding)) shown.push(finding);

  for (const analysis of analyses) shown.push(...headerFindings(documentPath, analysis, options));

  const findings = new Map<string, StackFinding>();
  for (const finding of shown) {
    // A contributor is one diagnostic however many violations it feeds.
    const key =
      finding.rule === CONTRIBUTOR_RULE
        ? `${finding.location.line}:${finding.message.split('\n')[0]}`
        : `${finding.location.line}:${finding.location.column}:${finding.message}`;
    if (!findings.has(key)) findings.set(key, finding);
  }
  return [...findings.values()].sort((a, b) => a.location.line - b.location.line || a.location.column - b.location.column);
}

/** Moves a finding's locations to where their lines are in the current text. */
function relocated(finding: StackFinding, analysis: DocumentStackAnalysis, options: FindingOptions): StackFinding {
  if (!options.currentText) return finding;
  const move = relocator(describedLineOf(analysis), options.currentText);
  return { ...finding, location: move(finding.location), related: finding.related.map((related) => ({ ...related, location: move(related.location) })) };
}

/**
 * clang's BPF back end refuses a function whose frame is over 512 bytes ("Looks like the BPF stack
 * limit is exceeded"), whatever the kernel: predicted from the estimate of each of the document's
 * own functions that has a frame of its own, with its largest locals and what to do about them.
 */
function clangLimitFindings(
  documentPath: string,
  analysis: DocumentStackAnalysis,
  freshObjects: DocumentStackAnalysis[],
  options: FindingOptions,
): StackFinding[] {
  if (!analysis.frames || !samePath(analysis.path, documentPath)) return [];
  const findings: StackFinding[] = [];
  for (const frame of analysis.frames) {
    if (frame.file !== undefined || frame.inline || frame.frameBytes <= CLANG_FRAME_LIMIT) continue;
    const largest = largestItems([frame], 3);
    const largestText = largest.map(({ item }) => `${itemLabel(item)} ${item.bytes} B (line ${item.line})`).join(', ');
    const big = largest.find(({ item }) => item.what === 'local');
    const todo = big
      ? `move ${big.item.name} into a per-CPU array map (the quick fix), or make it smaller`
      : 'make its locals smaller, or move them into a per-CPU array map';
    const program = analysis.programs.find((candidate) => candidate.subprograms.some((sub) => sub.name === frame.name));
    // clang built the fresh object, so this function's frame was within its limit after all.
    const confirmed = freshObjects.length === 0;
    const finding: StackFinding = {
      location: { file: documentPath, line: frame.line, column: 0 },
      severity: confirmed ? 'error' : 'information',
      message:
        `clang will refuse to compile ${frame.name}: its frame is ${frame.frameBytes} B, ${frame.frameBytes - CLANG_FRAME_LIMIT} B over the ${CLANG_FRAME_LIMIT} B clang allows one BPF function ("Looks like the BPF stack limit is exceeded")` +
        `\n${largestText ? `largest: ${largestText}; ` : ''}${todo} · ${analysis.label}` +
        (confirmed ? '' : `\nnot confirmed by ${freshObjects.map((object) => object.label).join(', ')}, which clang built`),
      rule: CLANG_STACK_LIMIT_RULE,
      source: diagnosticSourceFor(analysis),
      related: largest.map(({ item }) => ({
        location: { file: documentPath, line: item.line, column: 0 },
        message: `${itemLabel(item)} (${item.type}): ${item.bytes} B of the frame of ${frame.name}`,
      })),
      data: { program: program?.name ?? '', chain: [frame.name], rule: CLANG_STACK_LIMIT_RULE },
    };
    findings.push(relocated(finding, analysis, options));
  }
  return findings;
}

/** The rule code of a diagnostic about a header the estimate could not find, or had to stand in for. */
export const HEADER_RULE = 'estimate-header';

/**
 * The estimate's problems with the document's own #include lines: a header not found leaves its
 * types at 0 bytes in every frame below (a warning); a vmlinux.h taken from the running kernel is
 * information. Problems inside headers or declarations are the compiler's to report, not ours.
 */
function headerFindings(documentPath: string, analysis: DocumentStackAnalysis, options: FindingOptions): StackFinding[] {
  if (analysis.origin === 'object' || !samePath(analysis.path, documentPath)) return [];
  return (analysis.problems ?? []).flatMap((problem): StackFinding[] => {
    if (problem.line === undefined || problem.column === undefined) return [];
    const notFound = / file not found/.test(problem.message);
    if (!notFound && !/vmlinux\.h/.test(problem.message)) return [];
    return [
      relocated(
        {
          location: { file: analysis.path, line: problem.line, column: problem.column },
          severity: notFound ? 'warning' : 'information',
          message: notFound
            ? `${problem.message}: its types count 0 bytes in the stack estimate (set bpfStackLens.includePaths, or a compile_commands.json)`
            : problem.message,
          rule: HEADER_RULE,
          source: diagnosticSourceOf(analysis.origin),
          related: [],
          data: { program: '', chain: [], rule: HEADER_RULE },
        },
        analysis,
        options,
      ),
    ];
  });
}

interface FindingWithContributors {
  finding: StackFinding;
  contributors: StackFinding[];
}

function analysisFindings(
  documentPath: string,
  analysis: DocumentStackAnalysis,
  frames: FunctionFrame[] | undefined,
  options: FindingOptions,
): FindingWithContributors[] {
  return analysis.programs.flatMap((program) =>
    programFindings(documentPath, analysis, program, frames).map(({ finding, contributors }) => ({
      finding: relocated(finding, analysis, options),
      contributors: contributors.map((contributor) => relocated(contributor, analysis, options)),
    })),
  );
}

function firstLine(text: string): string {
  return text.split('\n')[0];
}

/** One violation at one place in the document, as each kernel profile judged it. */
interface ViolationGroup {
  location: SourceLocation;
  rule: string;
  byKernel: Map<string, { violation: ViolationReport; profile: KernelProfile }>;
}

/**
 * One finding per problem of a program: a violation at one place under one rule, however many
 * kernels reject it and with whatever bytes each counts ("rejected on 6.1 (320 B), 6.18 (304 B)").
 */
function programFindings(
  documentPath: string,
  analysis: DocumentStackAnalysis,
  program: ProgramReport,
  frames: FunctionFrame[] | undefined,
): FindingWithContributors[] {
  const profiles = program.verdicts.map((verdict, index) => analysis.profiles[index] ?? { version: verdict.kernel, jit: verdict.jit });
  const labels = profiles.map(profileLabel);
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
      if (!group.byKernel.has(labels[index])) group.byKernel.set(labels[index], { violation, profile: profiles[index] });
    }
  });

  const findings: FindingWithContributors[] = [];
  for (const group of groups.values()) {
    const rejectedOn = [...group.byKernel.keys()];
    const judged = [...group.byKernel.values()];
    const passes = labels.filter((label) => !group.byKernel.has(label));
    const { violation, profile } = judged[0];
    const depthsDiffer = new Set(judged.map((entry) => entry.violation.depth)).size > 1;
    const rejectedText = rejectedOn.map((label, index) => (depthsDiffer ? `${label} (${judged[index].violation.depth} B)` : label)).join(', ');
    const verdictText = `rejected on ${rejectedText}${passes.length > 0 ? `; passes on ${passes.join(', ')}` : ''}`;
    // What a kernel lacks is refused before the stack is weighed: the frames say where, not how much.
    const lacksFeature = violation.rule === 'kernel-lacks-feature';
    const chainText = violation.frames.map((frame) => (lacksFeature ? frame.name : `${frame.name} ${frame.roundedDepth} B`)).join(' → ');
    const stale = analysis.staleReason ? ` (stale: ${analysis.staleReason})` : '';
    // What the verdicts rest on besides measured rules: versions outside the model, unprobed facts.
    const caveats = [
      ...new Set(program.verdicts.flatMap((verdict) => [...(verdict.notes ?? []), ...(verdict.assumes ?? []).map((fact) => `assumes ${fact}`)])),
    ];
    const caveatText = caveats.map((caveat) => `\n${caveat}`).join('');
    const largest = lacksFeature ? undefined : largestText(violation, frames);
    const finding: StackFinding = {
      location: group.location,
      severity: analysis.staleReason ? 'information' : 'error',
      message:
        `${violation.message}\n${verdictText} · program ${program.name}: ${chainText} (${rejectedOn[0]}) · ${analysis.label}${stale}` +
        `\n${adviceLines(judged, rejectedOn)}${largest ? `\n${largest}` : ''}${caveatText}`,
      rule: group.rule,
      source: diagnosticSourceFor(analysis),
      related: relatedFrames(violation, program, rejectedOn[0], profile),
      data: { program: program.name, chain: violation.chain, rule: violation.rule },
    };
    findings.push({ finding, contributors: contributorFindings(documentPath, analysis, violation, finding, rejectedOn) });
  }
  return findings;
}

/** By how much, and what would make it pass, per kernel; kernels that need the same are said once. */
function adviceLines(judged: { violation: ViolationReport; profile: KernelProfile }[], labels: string[]): string {
  const byText = new Map<string, string[]>();
  judged.forEach(({ violation, profile }, index) => {
    const shrink = shrinkText(shrinkOptions(violation, profile));
    const text = `${excessText(violation, profile)}\u0000${shrink ?? ''}`;
    byText.set(text, [...(byText.get(text) ?? []), labels[index]]);
  });
  return [...byText]
    .map(([text, kernels]) => {
      const [excess, shrink] = text.split('\u0000');
      return shrink ? `${excess} on ${kernels.join(', ')}: ${shrink} to pass` : `${excess} (${kernels.join(', ')})`;
    })
    .join('; ');
}

/** "largest: buf 320 B (entry), the format of the printk at line 120 48 B (entry)", from the estimate's frames. */
function largestText(violation: ViolationReport, frames: FunctionFrame[] | undefined): string | undefined {
  if (!frames) return undefined;
  const counted = (violation.rule === 'tail-call-depth' ? violation.frames.slice(0, -1) : violation.frames).filter((frame) => !frame.privateStack);
  const items = largestItems(
    counted.flatMap((frame) => {
      const estimated = documentFrame(frames, frame.name);
      return estimated ? [{ name: frame.name, items: estimated.items }] : [];
    }),
    3,
  );
  if (items.length === 0) return undefined;
  return `largest: ${items.map(({ item, frame }) => `${itemLabel(item)} ${item.bytes} B (${frame}, line ${item.line})`).join(', ')}`;
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
function relatedFrames(violation: ViolationReport, program: ProgramReport, kernel: string, profile: KernelProfile): StackFinding['related'] {
  const related: StackFinding['related'] = [];
  let runningTotal = 0;
  violation.frames.forEach((frame, index) => {
    const location = index === 0 ? program.subprograms.find((sub) => sub.name === frame.name)?.source : frame.callSource;
    const last = index === violation.frames.length - 1;
    let message: string;
    if (last && violation.rule === 'tail-call-depth') {
      message = `${frame.name} tail-calls with ${violation.depth} B of callers' frames on ${kernel}; a tail call needs them under ${TAIL_CALL_CALLERS_LIMIT} B`;
    } else {
      if (!frame.privateStack) runningTotal += frame.roundedDepth;
      const where = index === 0 ? `${frame.name}` : `calls ${frame.name}`;
      const stack = frame.privateStack ? 'on its private stack' : `${runningTotal} B so far`;
      message = `${where}: frame ${frame.stackDepth} B, ${frame.roundedDepth} B rounded on ${kernel}${index === 0 ? ` (${roundingText(profile)})` : ''}, ${stack}`;
    }
    if (location) related.push({ location, message });
  });
  return related;
}

/**
 * The heavy items of the frames a violation counts (a tail call's own frame is not among its
 * callers'), each as information at its line, related to the violation.
 */
function contributorFindings(
  documentPath: string,
  analysis: DocumentStackAnalysis,
  violation: ViolationReport,
  violationFinding: StackFinding,
  rejectedOn: string[],
): StackFinding[] {
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
      return `The format of the printk at line ${item.line} (${item.type}, copied to the stack)`;
    case 'printk-args':
      return `The arguments of the printk at line ${item.line} (${item.type})`;
    case 'inlined':
      return `The inlined ${item.name}`;
    case 'local':
      return `${item.name} (${item.type})`;
  }
}

function samePath(a: string, b: string): boolean {
  return path.resolve(a) === path.resolve(b) || resolvedPath(a) === resolvedPath(b);
}
