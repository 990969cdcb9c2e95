/**
 * The object analyzer: bytes of a clang-built BPF object in, plain data out — for every program the
 * subprograms in verifier order, each one's stack depth as the verifier counts it, where it is in the
 * source, and the verdict of check_max_stack_depth for every kernel profile asked for.
 */
import type { Problem, SourceLocation } from '../common/problem';
import { type DepthStep, type FrameGraph, deepeningSteps } from '../rules/frameGraph';
import { type KernelProfile, ruleSetFor } from '../rules/kernelProfile';
import { judgeStack } from '../rules/stackRules';
import {
  type ProgramReport,
  type SubprogramReport,
  addStackDepthLines,
  addVerifierSubprograms,
  printAsRejected,
  printedStackDepths,
  verdictReport,
} from '../rules/report';
import { BTF_FUNC_EXTERN, type Btf, readBtf } from './btf';
import { type BtfExt, type LineInfo, readBtfExt } from './btfExt';
import { type ElfFile, SHN_UNDEF, readElf } from './elf';
import { LDDW_OPCODE, controlsOf, packedOpcode } from './instruction';
import { helperIdOf, helperName } from './helperNames';
import { type BpfProgram, type ObjectFunction, type Subprogram, buildPrograms } from './program';
import { firstRefusedBackEdge } from './controlFlow';
import { callsRecurse, deepestVerifiedChain, sameArguments, verifyProgram } from './programVerification';
import { type CallArguments, type ReadOnlyData, type StackDepthResult, computeStackDepth, isReachable } from './stackDepth';

export interface ObjectReport {
  path: string;
  problems: Problem[];
  programs: ProgramReport[];
}

// The report shapes are shared with the source estimator; re-exported for the object's consumers.
export type { ProgramReport, SubprogramReport, VerdictReport, ViolationReport } from '../rules/report';
export { verdictReport } from '../rules/report';

/** Everything the analyzer learned, for the disassembly view and the language server. */
export interface ObjectAnalysis {
  report: ObjectReport;
  programs: BpfProgram[];
  /** Per program, per subprogram: its stack analysis as the verifier enters it in that program. */
  depths: Map<BpfProgram, StackDepthResult[]>;
  btf?: Btf;
  /** The source line an instruction of a function came from. */
  lineOf(fn: ObjectFunction, instructionIndex: number): LineInfo | undefined;
  /** The text of a source line as BTF carries it: the source as it was compiled. */
  lineTextOf(file: string, line: number): string | undefined;
  /** Whether the object could be read at all (an ELF object for BPF). */
  readable: boolean;
}

export interface AnalyzeOptions {
  /** Keep every stack access of every function, as the disassembly view shows them. */
  recordStackAccesses?: boolean;
}

export function analyzeObject(bytes: Uint8Array, path: string, profiles: KernelProfile[], options: AnalyzeOptions = {}): ObjectAnalysis {
  const problems: Problem[] = [];
  const { elf, problems: elfProblems } = readElf(bytes);
  problems.push(...elfProblems);
  const empty: ObjectAnalysis = {
    report: { path, problems, programs: [] },
    programs: [],
    depths: new Map(),
    lineOf: () => undefined,
    lineTextOf: () => undefined,
    readable: false,
  };
  if (!elf) return empty;

  const { btf, problems: btfProblems } = readBtf(elf.sectionByName('.BTF')?.data, elf.littleEndian);
  problems.push(...btfProblems);
  const { ext, problems: extProblems } = readBtfExt(elf.sectionByName('.BTF.ext')?.data, elf.littleEndian, btf);
  problems.push(...extProblems);
  const lines = lineTable(ext);

  const funcInfoReachesKernel = kernelGetsFuncInfo(btf, ext);
  const { programs, problems: programProblems } = buildPrograms(elf, { funcInfoReachesKernel });
  problems.push(...programProblems);

  const depths = new Map<BpfProgram, StackDepthResult[]>();
  const readOnlyData = new Map<number, ReadOnlyData>();
  const readOnlyAddress = (fn: ObjectFunction, slot: number, imm: number) => {
    const relocation = fn.relocations.get(slot);
    const symbol = relocation && elf.symbols[relocation.symbolIndex];
    const section = symbol && elf.sections[symbol.sectionIndex];
    // libbpf freezes .rodata before loading, so the verifier reads these bytes as constants.
    if (!symbol || !section || !section.name.startsWith('.rodata') || section.data.length === 0) return undefined;
    let data = readOnlyData.get(section.index);
    if (!data) {
      data = { bytes: section.data, littleEndian: elf.littleEndian };
      readOnlyData.set(section.index, data);
    }
    return { data, offset: symbol.value + imm };
  };
  // A function shared by several programs, or entered with the same arguments, is analysed once.
  type Returns = ReadonlyMap<number, number | bigint> | undefined;
  const sameReturns = (a: Returns, b: Returns) =>
    a === b || (a !== undefined && b !== undefined && a.size === b.size && [...a].every(([at, value]) => b.get(at) === value));
  const analyses = new Map<ObjectFunction, { args: CallArguments | undefined; returns: Returns; result: StackDepthResult }[]>();
  const analyze = (sub: Subprogram, args: CallArguments | undefined, returns?: Returns): StackDepthResult => {
    const { fn } = sub;
    const known = analyses.get(fn) ?? [];
    const found = known.find((entry) => sameArguments(entry.args, args) && sameReturns(entry.returns, returns));
    if (found) return found.result;
    const result = computeStackDepth(fn.packed, {
      entryArguments: args,
      callReturns: returns,
      readOnlyAddress: (slot, imm) => readOnlyAddress(fn, slot, imm),
      recordAccesses: options.recordStackAccesses,
    });
    analyses.set(fn, [...known, { args, returns, result }]);
    return result;
  };
  const lineOf = (fn: ObjectFunction, index: number) => lines(fn.section.name, offsetAt(fn, index) ?? fn.start);
  const locationOf = (fn: ObjectFunction, index: number): SourceLocation | undefined =>
    ext?.lineTables.get(fn.section.name)?.locate(offsetAt(fn, index) ?? fn.start);

  // In a program calling a helper some judged kernel lacks, the functions a stopped verifier is in
  // (the one calling it, and callers on the way) print the depth they had reached: they need their
  // depth at each point.
  const lowestHelperLimit = Math.min(...profiles.map((profile) => ruleSetFor(profile).helperIdLimit));
  const callsMissingHelper = (sub: Subprogram) => sub.helperCalls.some((call) => call.helper >= lowestHelperLimit);
  const steps = new Map<StackDepthResult, DepthStep[]>();
  const depthStepsOf = (program: BpfProgram, sub: Subprogram, result: StackDepthResult): DepthStep[] | undefined => {
    if (!callsMissingHelper(sub) && (sub.calls.length === 0 || !program.subprograms.some(callsMissingHelper))) return undefined;
    let known = steps.get(result);
    if (!known) {
      const analysis = analyses.get(sub.fn)?.find((entry) => entry.result === result);
      const { accesses } = computeStackDepth(sub.fn.packed, {
        entryArguments: analysis?.args,
        callReturns: analysis?.returns,
        readOnlyAddress: (slot, imm) => readOnlyAddress(sub.fn, slot, imm),
        recordAccesses: true,
      });
      steps.set(result, (known = deepeningSteps(accesses.map((access) => ({ at: access.at, byteDepth: -access.offset })))));
    }
    return known;
  };

  const loadTimeTests = new Map<ObjectFunction, LoadTimeTests>();
  const loadTimeTestsFor = (fn: ObjectFunction) => {
    let known = loadTimeTests.get(fn);
    if (known === undefined) loadTimeTests.set(fn, (known = loadTimeTestsOf(elf, btf, ext, fn)));
    return known;
  };

  const exceptionCallbackOwners = functionsWithExceptionCallbacks(btf);
  const btfHasEmptyDatasec = (btf?.types ?? []).some((type) => type.kind === 'datasec' && type.vlen === 0);
  // Only kernels before 6.7 refuse a back edge in check_cfg; the walk over the instructions is for them.
  const judgesControlFlow = profiles.some((profile) => ruleSetFor(profile).recursion === 'check_cfg');
  const deepestCallLimit = Math.max(0, ...profiles.map((profile) => ruleSetFor(profile).maxCallFrames));
  const sharedReports = new SharedSubprogramReports();
  const programReports = programs.map((program): ProgramReport => {
    const { results, entered, reachedFromMain } = verifyProgram(program, analyze);
    // A subprogram never entered is shown as its code reads, knowing nothing of its arguments.
    const programDepths = program.subprograms.map((sub, index) => results[index] ?? analyze(sub, undefined));
    depths.set(program, programDepths);
    const subprograms = program.subprograms.map((sub, index): SubprogramReport => {
      const depth = programDepths[index];
      // A static function that no live code calls is never verified: its depth stays 0.
      const verified = entered.has(index);
      // A subprogram shared by many programs, analysed the same way in each, is one report object:
      // a thousand programs over one chain of a thousand functions would otherwise be a million.
      const shareKey = sharedReports.keyOf(sub, depth, verified, reachedFromMain.has(index));
      const shared = index > 0 ? sharedReports.get(shareKey) : undefined;
      if (shared) return shared;
      const report: SubprogramReport = {
        name: sub.fn.name,
        stackDepth: verified ? depth.checkedDepth + depth.hiddenBytes : 0,
        checkedDepth: verified ? depth.checkedDepth : 0,
        byteDepth: verified ? depth.byteDepth : 0,
        verified,
        reachedFromMain: reachedFromMain.has(index),
        hiddenReasons: depth.hiddenReasons,
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
      if (index > 0) sharedReports.set(shareKey, report);
      return report;
    });
    const graph: FrameGraph = {
      programType: program.programType,
      section: program.section,
      moreSubprograms: program.moreSubprograms,
      hasFuncInfo: ext?.funcInfo.has(program.section) ?? false,
      btfHasEmptyDatasec,
      ...(callsRecurse(program) ? { verifiedChainFrames: deepestVerifiedChain(program, analyze, deepestCallLimit) } : {}),
      ...(judgesControlFlow ? { cfgBackEdge: firstRefusedBackEdge(program) } : {}),
      subprograms: program.subprograms.map((sub, index) => {
        const depth = programDepths[index];
        const reached = (at: number) => entered.has(index) && isReachable(depth, at);
        return {
          name: sub.fn.name,
          stackDepth: subprograms[index].checkedDepth,
          byteDepth: subprograms[index].byteDepth,
          hasTailCall: sub.tailCalls.length > 0,
          tailCallSource: subprograms[index].tailCalls[0],
          isGlobal: sub.fn.isGlobal,
          reachedFromMain: reachedFromMain.has(index),
          isAsyncCallback: sub.isAsyncCallback,
          calls: sub.calls.map((call, position) => ({
            callee: call.callee,
            kind: call.kind,
            source: subprograms[index].calls[position].source,
            at: call.at,
            ...(reached(call.at) ? {} : { deadCode: true }),
          })),
          source: subprograms[index].source,
          helperCalls: sub.helperCalls
            .filter((call) => reached(call.at))
            .map((call) => ({
              helper: call.helper,
              name: helperName(call.helper),
              at: call.at,
              source: locationOf(sub.fn, call.at),
              ...(loadTimeTestsFor(sub.fn).holdsLoadTimeValues ? { mayBeGuarded: true } : {}),
              ...(loadTimeTestsFor(sub.fn).checkedHelpers.has(call.helper) ? { existenceChecked: true } : {}),
            })),
          depthSteps: entered.has(index) ? depthStepsOf(program, sub, depth) : undefined,
          ...(sub.mayGotoAt === undefined ? {} : { mayGoto: { at: sub.mayGotoAt, source: locationOf(sub.fn, sub.mayGotoAt) } }),
        };
      }),
    };
    const verdicts = profiles.map((profile) => verdictReport(judgeStack(graph, profile)));
    const throws = throwsWithoutCallback(program, entered, programDepths, exceptionCallbackOwners);
    addStackDepthLines(subprograms, verdicts, profiles, throws, funcInfoReachesKernel);
    if (verdicts[0]) printAsRejected(subprograms, verdicts[0]);
    const report: ProgramReport = {
      name: program.name,
      section: program.section,
      type: program.programType,
      subprograms,
      stackDepths: printedStackDepths(subprograms, verdicts[0], profiles[0]),
      verdicts,
    };
    addVerifierSubprograms(report, throws);
    return report;
  });

  return {
    report: { path, problems, programs: programReports },
    programs,
    depths,
    btf,
    lineOf,
    lineTextOf: lazyLineTexts(ext),
    readable: true,
  };
}

/** A CO-RE flavour suffix ("bpf_func_id___usdt" is libbpf's bpf_func_id): libbpf ignores it when it matches. */
function withoutFlavour(name: string): string {
  const at = name.indexOf('___');
  return at > 0 ? name.slice(0, at) : name;
}

/** CO-RE relocations whose value a program tests to learn what the kernel has. */
const EXISTENCE_RELOCATIONS: ReadonlySet<string> = new Set(['field_exists', 'type_exists', 'enumval_exists', 'enumval_value', 'type_matches']);

/** What a function tests at load time to see what the kernel has. */
interface LoadTimeTests {
  /**
   * It holds a value libbpf sets at load: a CO-RE existence relocation, or an ld_imm64 of an extern
   * variable (.kconfig's LINUX_KERNEL_VERSION and CONFIG_*, __ksym).
   */
  holdsLoadTimeValues: boolean;
  /**
   * The helpers whose own existence it tests: bpf_core_enum_value_exists(enum bpf_func_id,
   * BPF_FUNC_x), the enum flavoured or not (libbpf's usdt.bpf.h declares its own enum
   * bpf_func_id___usdt with a made-up value, so the helper is known by its enumerator's name, not
   * its value), or libbpf's .kconfig LINUX_HAS_BPF_COOKIE, true exactly when its probe finds
   * bpf_get_attach_cookie.
   */
  checkedHelpers: Set<number>;
}

/** One pass over the function's CO-RE relocations and its ld_imm64 of externs. */
function loadTimeTestsOf(elf: ElfFile, btf: Btf | undefined, ext: BtfExt | undefined, fn: ObjectFunction): LoadTimeTests {
  const tests: LoadTimeTests = { holdsLoadTimeValues: false, checkedHelpers: new Set() };
  const { code, first, end } = fn.packed;
  if (end <= first) return tests;
  const [from, to] = [code.offsets[first], code.offsets[end - 1]];
  for (const relocation of ext?.coreRelocations.get(fn.section.name) ?? []) {
    if (relocation.insnOffset < from || relocation.insnOffset > to || !EXISTENCE_RELOCATIONS.has(relocation.kind)) continue;
    tests.holdsLoadTimeValues = true;
    if (relocation.kind !== 'enumval_exists') continue;
    const type = btf?.types[relocation.typeId];
    if (!type || withoutFlavour(type.name) !== 'bpf_func_id') continue;
    const enumerator = type.enumValues?.[Number(relocation.accessString)];
    const name = enumerator && withoutFlavour(enumerator.name);
    const id = name?.startsWith('BPF_FUNC_') ? helperIdOf(`bpf_${name.slice('BPF_FUNC_'.length)}`) : undefined;
    if (id !== undefined) tests.checkedHelpers.add(id);
  }
  const cookie = helperIdOf('bpf_get_attach_cookie');
  const controls = controlsOf(fn.packed);
  for (let c = controls.from; c < controls.to; c++) {
    if (packedOpcode(code, code.controls[c]) !== LDDW_OPCODE) continue;
    const relocation = fn.relocations.get(code.offsets[code.controls[c]]);
    const symbol = relocation && elf.symbols[relocation.symbolIndex];
    if (symbol?.sectionIndex !== SHN_UNDEF) continue;
    tests.holdsLoadTimeValues = true;
    if (symbol.name === 'LINUX_HAS_BPF_COOKIE' && cookie !== undefined) tests.checkedHelpers.add(cookie);
  }
  return tests;
}

/** Subprogram reports shared between programs: the same function, analysed alike, called alike. */
class SharedSubprogramReports {
  private readonly reports = new Map<string, SubprogramReport>();
  private readonly depthIds = new Map<StackDepthResult, number>();
  private readonly functionIds = new Map<ObjectFunction, number>();

  /** Equal keys mean equal reports: the function, its analysis, whether (and when) it was verified, and where its calls go. */
  keyOf(sub: Subprogram, depth: StackDepthResult, verified: boolean, reachedFromMain: boolean): string {
    const id = <T>(ids: Map<T, number>, value: T) => {
      let known = ids.get(value);
      if (known === undefined) ids.set(value, (known = ids.size));
      return known;
    };
    return `${id(this.functionIds, sub.fn)}:${id(this.depthIds, depth)}:${verified}:${reachedFromMain}:${sub.isAsyncCallback}`;
  }

  get(key: string): SubprogramReport | undefined {
    return this.reports.get(key);
  }

  set(key: string, report: SubprogramReport): void {
    this.reports.set(key, report);
  }
}

/**
 * Whether a program reaches bpf_throw from code the verifier walks and declares no exception
 * callback of its own (a BTF decl tag "exception_callback:NAME" on the main function): then the
 * verifier supplies the default callback.
 */
function throwsWithoutCallback(program: BpfProgram, entered: Set<number>, depths: StackDepthResult[], exceptionCallbackOwners: Set<string>): boolean {
  if (exceptionCallbackOwners.has(program.subprograms[0].fn.name)) return false;
  return program.subprograms.some(
    (sub, index) => entered.has(index) && sub.kfuncCalls.some((call) => call.name === 'bpf_throw' && isReachable(depths[index], call.at)),
  );
}

/**
 * Whether the kernel gets the object's func_info: the object has BTF and func_info, and none of its
 * defined functions has a parameter without a name (the kernel refuses such BTF, "FUNC f type_id=1
 * Invalid arg#1", and libbpf loads the programs without it). Without func_info every function is
 * verified as a static one (ObjectFunction.isGlobal), and 7.3 cannot name the subprograms in its
 * statistics (report.ts SUBPROGRAM_NAME_UNKNOWN). The kernels before 5.12 that refuse an empty
 * DATASEC are the rules' (KernelRuleSet.loadsEmptyDatasec).
 */
function kernelGetsFuncInfo(btf: Btf | undefined, ext: BtfExt | undefined): boolean {
  if (!btf || !ext || ext.funcInfo.size === 0) return false;
  return !btf.types.some(
    (type) =>
      type.kind === 'func' &&
      type.linkage !== BTF_FUNC_EXTERN &&
      (btf.types[type.type ?? 0]?.params ?? []).some((param) => param.name === '' && param.type !== 0),
  );
}

/** The functions that declare an exception callback: a BTF decl tag "exception_callback:NAME" on their FUNC. */
function functionsWithExceptionCallbacks(btf: Btf | undefined): Set<string> {
  const owners = new Set<string>();
  const types = btf?.types ?? [];
  for (const type of types) {
    if (type.kind !== 'decl_tag' || !type.name.startsWith('exception_callback:')) continue;
    const target = types[type.type ?? 0];
    if (target?.kind === 'func') owners.add(target.name);
  }
  return owners;
}

/** The slot offset of a function's instruction, read from its packed code. */
function offsetAt(fn: ObjectFunction, index: number): number | undefined {
  const { packed } = fn;
  return index >= 0 && packed.first + index < packed.end ? packed.code.offsets[packed.first + index] : undefined;
}

/** A lookup from (section, instruction offset) to the line info in force there. */
function lineTable(ext: BtfExt | undefined): (section: string, offset: number) => LineInfo | undefined {
  return (section, offset) => ext?.lineTables.get(section)?.find(offset);
}

/** Indexes line texts on first use: only reports for a person need them. */
function lazyLineTexts(ext: BtfExt | undefined): (file: string, line: number) => string | undefined {
  let texts: Map<string, string> | undefined;
  return (file, line) => {
    if (!texts) {
      texts = new Map();
      for (const infos of ext?.lineInfo.values() ?? []) {
        for (const info of infos) texts.set(`${info.file}:${info.line}`, info.lineText);
      }
    }
    return texts.get(`${file}:${line}`);
  };
}
