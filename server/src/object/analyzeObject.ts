/**
 * The object analyzer: bytes of a clang-built BPF object in, plain data out — for every program the
 * subprograms in verifier order, each one's stack depth as the verifier counts it, where it is in the
 * source, and the verdict of check_max_stack_depth for every kernel profile asked for.
 */
import type { Problem, SourceLocation } from '../common/problem';
import type { FrameGraph } from '../rules/frameGraph';
import type { KernelProfile } from '../rules/kernelProfile';
import { type Verdict, judgeStack } from '../rules/stackRules';
import { type Btf, readBtf } from './btf';
import { type BtfExt, type LineInfo, readBtfExt } from './btfExt';
import { readElf } from './elf';
import { type BpfProgram, type ObjectFunction, type Subprogram, buildPrograms } from './program';
import { type StackDepthResult, computeStackDepth } from './stackDepth';

export interface SubprogramReport {
  name: string;
  /** The depth the verifier prints in its "stack depth" line (checked depth plus hidden slots). */
  stackDepth: number;
  /** The depth check_max_stack_depth judges. */
  checkedDepth: number;
  /** Why stackDepth exceeds checkedDepth, if it does. */
  hiddenBytes: string[];
  hasTailCall: boolean;
  isGlobal: boolean;
  isAsyncCallback: boolean;
  source?: SourceLocation;
  tailCalls: SourceLocation[];
  calls: { callee: string; kind: 'call' | 'callback'; source?: SourceLocation }[];
}

export interface ViolationReport {
  rule: string;
  message: string;
  depth: number;
  chain: string[];
  source?: SourceLocation;
  frames: { name: string; stackDepth: number; roundedDepth: number; privateStack: boolean; callSource?: SourceLocation }[];
  reportedByKernel: boolean;
}

export interface VerdictReport {
  kernel: string;
  jit: boolean;
  accepted: boolean;
  violations: ViolationReport[];
  maxCombinedDepth: number;
  maxCombinedChain: string[];
  tailCalls: { name: string; callersDepth: number; chain: string[]; source?: SourceLocation }[];
}

export interface ProgramReport {
  name: string;
  section: string;
  type: string;
  subprograms: SubprogramReport[];
  stackDepths: string;
  verdicts: VerdictReport[];
}

export interface ObjectReport {
  path: string;
  problems: Problem[];
  programs: ProgramReport[];
}

/** Everything the analyzer learned, for the disassembly view and the language server. */
export interface ObjectAnalysis {
  report: ObjectReport;
  programs: BpfProgram[];
  depths: Map<ObjectFunction, StackDepthResult>;
  btf?: Btf;
  /** The source line an instruction of a function came from. */
  lineOf(fn: ObjectFunction, instructionIndex: number): LineInfo | undefined;
  /** Source line texts that BTF carries, keyed by "file:line": the source as it was compiled. */
  lineTexts: Map<string, string>;
  /** Whether the object could be read at all (an ELF object for BPF). */
  readable: boolean;
}

export function analyzeObject(bytes: Uint8Array, path: string, profiles: KernelProfile[]): ObjectAnalysis {
  const problems: Problem[] = [];
  const { elf, problems: elfProblems } = readElf(bytes);
  problems.push(...elfProblems);
  const empty: ObjectAnalysis = {
    report: { path, problems, programs: [] },
    programs: [],
    depths: new Map(),
    lineOf: () => undefined,
    lineTexts: new Map(),
    readable: false,
  };
  if (!elf) return empty;

  const { btf, problems: btfProblems } = readBtf(elf.sectionByName('.BTF')?.data, elf.littleEndian);
  problems.push(...btfProblems);
  const { ext, problems: extProblems } = readBtfExt(elf.sectionByName('.BTF.ext')?.data, elf.littleEndian, btf);
  problems.push(...extProblems);
  const lines = lineTable(ext);

  const { programs, problems: programProblems } = buildPrograms(elf);
  problems.push(...programProblems);

  const depths = new Map<ObjectFunction, StackDepthResult>();
  const depthOf = (sub: Subprogram) => {
    const { fn } = sub;
    let result = depths.get(fn);
    if (!result) {
      result = computeStackDepth(fn.instructions, { functionAddresses: sub.functionAddresses });
      depths.set(fn, result);
    }
    return result;
  };
  const lineOf = (fn: ObjectFunction, index: number) => lines(fn.section.name, fn.instructions[index]?.offset ?? fn.start);
  const locationOf = (fn: ObjectFunction, index: number): SourceLocation | undefined => {
    const line = lineOf(fn, index);
    return line ? { file: line.file, line: line.line, column: line.column } : undefined;
  };

  const programReports = programs.map((program): ProgramReport => {
    const subprograms = program.subprograms.map((sub): SubprogramReport => {
      const depth = depthOf(sub);
      return {
        name: sub.fn.name,
        stackDepth: depth.checkedDepth + depth.hiddenBytes,
        checkedDepth: depth.checkedDepth,
        hiddenBytes: depth.hiddenReasons,
        hasTailCall: sub.tailCalls.length > 0,
        isGlobal: sub.fn.isGlobal,
        isAsyncCallback: sub.isAsyncCallback,
        source: locationOf(sub.fn, 0),
        tailCalls: sub.tailCalls.flatMap((at) => locationOf(sub.fn, at) ?? []),
        calls: sub.calls.map((call) => ({
          callee: program.subprograms[call.callee].fn.name,
          kind: call.kind,
          source: locationOf(sub.fn, call.at),
        })),
      };
    });
    const graph: FrameGraph = {
      programType: program.programType,
      subprograms: program.subprograms.map((sub, index) => ({
        name: sub.fn.name,
        stackDepth: subprograms[index].checkedDepth,
        hasTailCall: sub.tailCalls.length > 0,
        tailCallSource: subprograms[index].tailCalls[0],
        isGlobal: sub.fn.isGlobal,
        isAsyncCallback: sub.isAsyncCallback,
        calls: sub.calls.map((call) => ({ callee: call.callee, kind: call.kind, source: locationOf(sub.fn, call.at) })),
        source: subprograms[index].source,
      })),
    };
    return {
      name: program.name,
      section: program.section,
      type: program.programType,
      subprograms,
      stackDepths: subprograms.map((sub) => sub.stackDepth).join('+'),
      verdicts: profiles.map((profile) => verdictReport(judgeStack(graph, profile))),
    };
  });

  return {
    report: { path, problems, programs: programReports },
    programs,
    depths,
    btf,
    lineOf,
    lineTexts: lineTextsOf(ext),
    readable: true,
  };
}

export function verdictReport(verdict: Verdict): VerdictReport {
  return {
    kernel: verdict.kernel,
    jit: verdict.jit,
    accepted: verdict.accepted,
    violations: verdict.violations.map((violation) => ({
      rule: violation.rule,
      message: violation.message,
      depth: violation.depth,
      chain: violation.chain,
      source: violation.source,
      frames: violation.frames.map((frame) => ({
        name: frame.name,
        stackDepth: frame.stackDepth,
        roundedDepth: frame.roundedDepth,
        privateStack: frame.privateStack,
        callSource: frame.callSource,
      })),
      reportedByKernel: violation.reportedByKernel,
    })),
    maxCombinedDepth: verdict.maxCombinedDepth,
    maxCombinedChain: verdict.maxCombinedChain,
    tailCalls: verdict.tailCalls.map((reach) => ({
      name: reach.name,
      callersDepth: reach.callersDepth,
      chain: reach.chain,
      source: reach.source,
    })),
  };
}

/** A lookup from (section, instruction offset) to the line info in force there. */
function lineTable(ext: BtfExt | undefined): (section: string, offset: number) => LineInfo | undefined {
  const bySection = new Map<string, LineInfo[]>();
  for (const [section, infos] of ext?.lineInfo ?? []) {
    bySection.set(section, [...infos].sort((a, b) => a.insnOffset - b.insnOffset));
  }
  return (section, offset) => {
    const infos = bySection.get(section);
    if (!infos || infos.length === 0) return undefined;
    let low = 0;
    let high = infos.length - 1;
    let found: LineInfo | undefined;
    while (low <= high) {
      const middle = (low + high) >> 1;
      if (infos[middle].insnOffset <= offset) {
        found = infos[middle];
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    return found;
  };
}

function lineTextsOf(ext: BtfExt | undefined): Map<string, string> {
  const texts = new Map<string, string>();
  for (const infos of ext?.lineInfo.values() ?? []) {
    for (const info of infos) texts.set(`${info.file}:${info.line}`, info.lineText);
  }
  return texts;
}
