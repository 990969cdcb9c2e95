/**
 * Programs and subprograms as libbpf builds them from an object (libbpf.c, bpf_object__reloc_code).
 *
 * Every function symbol in an executable section other than .text is a program. Functions in .text
 * are subprograms: libbpf appends each to a program the first time the program's code calls it or
 * takes its address, and walks the appended code straight away (depth-first), so a subprogram's index
 * here is its index in the verifier, and in the "stack depth a+b+c" line.
 */
import type { Problem } from '../common/problem';
import type { ElfFile, ElfRelocation, ElfSection, ElfSymbol } from './elf';
import { SHF_EXECINSTR, STB_LOCAL, STT_FUNC, STV_HIDDEN, STV_INTERNAL } from './elf';
import {
  BPF_ALU,
  BPF_ALU64,
  BPF_JCOND,
  BPF_JMP,
  BPF_LD,
  BPF_LDX,
  BPF_TAIL_CALL_HELPER,
  CALL_OPCODE,
  LDDW_OPCODE,
  MOV64_REGISTER_OPCODE,
  type Instruction,
  type PackedRange,
  applyLibbpfSourceRegistersPacked,
  decodePackedInstructions,
  controlsOf,
  isHelperCall,
  isKfuncCall,
  isPseudoCall,
  instructionsInto,
  isPseudoFunc,
  materializeInstructions,
  packedOpcode,
} from './instruction';
import { lowerBound } from '../common/numbers';
import { programTypeForSection } from '../rules/programType';
import { MAX_SUBPROGRAMS } from '../rules/stackRules';

/** A function as it stands in the object: a symbol and its instructions. */
export interface ObjectFunction {
  name: string;
  section: ElfSection;
  symbol: ElfSymbol;
  /** Offset of the first instruction in its section, in instructions. */
  start: number;
  instructions: Instruction[];
  /**
   * Whether the verifier checks the function as a global one: a global or weak symbol of default or
   * protected visibility. libbpf gives a hidden or internal one (`__hidden`, as usdt.bpf.h's helpers
   * are) static linkage in BTF, "to enable more permissive BPF verification mode" (mark_btf_static).
   * Linkage reaches the kernel only through func_info: in an object without it (built without -g),
   * or whose BTF the kernel refuses, every function is checked as a static one, with its callers'
   * arguments (ProgramsOptions.funcInfoReachesKernel).
   */
  isGlobal: boolean;
  /** The relocations of the function's section, by instruction offset. */
  relocations: ReadonlyMap<number, ElfRelocation>;
  /**
   * Where `instructions` come from: its section's packed code, from index `first` to `end`
   * (exclusive). `instructions` is built on first use; the analysis reads the packed code and
   * builds objects only for what it inspects.
   */
  packed: PackedRange;
}

/** The instruction at `index` of a function, built from its packed code. */
export function instructionAt(fn: ObjectFunction, index: number): Instruction | undefined {
  const { packed } = fn;
  if (index < 0 || packed.first + index >= packed.end) return undefined;
  return materializeInstructions(packed.code, packed.first + index, packed.first + index + 1)[0];
}

/** How many instructions a function has, without building them. */
export function instructionCount(fn: ObjectFunction): number {
  return fn.packed.end - fn.packed.first;
}

const transientPool: Instruction[] = [];

/**
 * The function's instructions for one pass that keeps no reference to them: for a function read
 * from an object, reused objects that are valid only until the next call (see instructionsInto).
 */
export function transientInstructions(fn: ObjectFunction): Instruction[] {
  const { packed } = fn;
  return instructionsInto(packed.code, packed.first, packed.end, transientPool);
}

/** A call out of a function: a bpf2bpf call, or a function whose address is taken. */
export interface ObjectCall {
  /** Index of the calling instruction in the caller's `instructions`. */
  at: number;
  kind: 'call' | 'callback';
  /** Index of the callee in BpfProgram.subprograms. */
  callee: number;
}

export interface Subprogram {
  fn: ObjectFunction;
  calls: ObjectCall[];
  /** Index in `fn.instructions` of each bpf_tail_call. */
  tailCalls: number[];
  /** Each kfunc call: where, and the kfunc's name (its extern symbol). */
  kfuncCalls: { at: number; name: string }[];
  /** The first call of each helper id, in instruction order (dead code included): where, and the id. */
  helperCalls: { at: number; helper: number }[];
  /** Where the first may_goto is (an opcode kernels before 6.9 do not know), if any. */
  mayGotoAt?: number;
  /** Whether the code registers this function as an async callback (timer, workqueue). */
  isAsyncCallback: boolean;
}

export interface BpfProgram {
  name: string;
  section: string;
  programType: string;
  /** The main function first, then subprograms in the order libbpf appends them. */
  subprograms: Subprogram[];
  /**
   * The code calls more functions than the verifier takes: `subprograms` stops at MAX_SUBPROGRAMS,
   * which bounds a program's report (a thousand programs over a chain of a thousand functions
   * would otherwise be a million frames), and the verdict is "too many subprograms".
   */
  moreSubprograms?: true;
}

/** may_goto: a jump whose condition is the verifier's own loop budget (BPF_JMP | BPF_JCOND | BPF_K). */
const MAY_GOTO_OPCODE = BPF_JMP | BPF_JCOND;

/** Helpers that register their r2 argument as an asynchronous callback. */
const ASYNC_CALLBACK_HELPERS: ReadonlySet<number> = new Set([170 /* bpf_timer_set_callback */]);
/** Kfuncs that do the same; called through an extern symbol of this name. */
const ASYNC_CALLBACK_KFUNC_PREFIXES = ['bpf_wq_set_callback', 'bpf_task_work_schedule'];

export interface ProgramsResult {
  programs: BpfProgram[];
  functions: ObjectFunction[];
  problems: Problem[];
}

export interface ProgramsOptions {
  /**
   * Whether the kernel gets the object's func_info (BTF, .BTF.ext, and BTF the kernel accepts);
   * default true. Without it subprog_is_global() is false for every function (ObjectFunction.isGlobal).
   */
  funcInfoReachesKernel?: boolean;
}

export function buildPrograms(elf: ElfFile, options: ProgramsOptions = {}): ProgramsResult {
  const problems: Problem[] = [];
  const functions = readFunctions(elf, options.funcInfoReachesKernel ?? true, problems);
  const bySectionStart = new Map<string, ObjectFunction>();
  for (const fn of functions) bySectionStart.set(`${fn.section.index}:${fn.start}`, fn);

  const programs: BpfProgram[] = [];
  for (const fn of functions) {
    if (fn.section.name === '.text') continue;
    if (fn.symbol.bind === STB_LOCAL) {
      problems.push({
        message: `function ${fn.name} in section ${fn.section.name} is static: libbpf rejects static programs outside .text`,
        offset: fn.section.offset + fn.start * 8,
      });
      continue;
    }
    programs.push(buildProgram(elf, fn, bySectionStart, problems));
  }
  if (programs.length === 0 && functions.length > 0) {
    // A library object, or SEC() forgotten: nothing here is loaded as a program on its own.
    const names =
      functions
        .slice(0, 5)
        .map((fn) => fn.name)
        .join(', ') + (functions.length > 5 ? ', ...' : '');
    problems.push({ message: `no programs: every function (${names}) is in .text; libbpf loads only functions of other sections (SEC("...")) as programs` });
  }
  return { programs, functions, problems };
}

function readFunctions(elf: ElfFile, funcInfoReachesKernel: boolean, problems: Problem[]): ObjectFunction[] {
  const functions: ObjectFunction[] = [];
  const executable = elf.sections.filter((section) => (section.flags & SHF_EXECINSTR) !== 0 && section.size > 0);
  for (const section of executable) {
    const decoded = decodePackedInstructions(section.data, elf.littleEndian, section.name);
    const decodeProblems = decoded.problems;
    // The object leaves kfunc calls and callback addresses as plain calls and loads; libbpf marks
    // them (src_reg 2 and 4) from their relocations when it loads the program, and so do we.
    const { code } = decoded;
    applyLibbpfSourceRegistersPacked(code, section.index, elf);
    const relocations = new Map<number, ElfRelocation>();
    for (const relocation of elf.relocations.get(section.index) ?? []) relocations.set(relocation.offset / 8, relocation);
    for (const problem of decodeProblems) {
      problems.push({ ...problem, offset: problem.offset === undefined ? undefined : section.offset + problem.offset });
    }
    const symbols = elf.symbols.filter((symbol) => symbol.type === STT_FUNC && symbol.sectionIndex === section.index).sort((a, b) => a.value - b.value);
    if (symbols.length === 0) {
      problems.push({ message: `section ${section.name} has code but no function symbols (stripped object?)`, offset: section.offset });
      continue;
    }
    symbols.forEach((symbol, position) => {
      const start = symbol.value / 8;
      // A zero size happens in hand-written assembly; the function then runs to the next symbol.
      const nextStart = position + 1 < symbols.length ? symbols[position + 1].value / 8 : section.size / 8;
      const end = symbol.size > 0 ? start + symbol.size / 8 : nextStart;
      const first = lowerBound(code.offsets, start, 0, code.count);
      const last = Math.max(first, lowerBound(code.offsets, end, 0, code.count));
      const isGlobal = funcInfoReachesKernel && verifiedAsGlobal(symbol);
      functions.push(new CodeFunction(symbol.name, section, symbol, start, isGlobal, relocations, { code, first, end: last }));
    });
  }
  return functions;
}

/** libbpf's rule for a function's BTF linkage (see ObjectFunction.isGlobal). */
function verifiedAsGlobal(symbol: ElfSymbol): boolean {
  return symbol.bind !== STB_LOCAL && symbol.visibility !== STV_HIDDEN && symbol.visibility !== STV_INTERNAL;
}

/** A function read from an object: its Instruction objects are built from the packed code on first use. */
class CodeFunction implements ObjectFunction {
  private built: Instruction[] | undefined;

  constructor(
    readonly name: string,
    readonly section: ElfSection,
    readonly symbol: ElfSymbol,
    readonly start: number,
    readonly isGlobal: boolean,
    readonly relocations: ReadonlyMap<number, ElfRelocation>,
    readonly packed: PackedRange,
  ) {}

  get instructions(): Instruction[] {
    this.built ??= materializeInstructions(this.packed.code, this.packed.first, this.packed.end);
    return this.built;
  }
}

function buildProgram(elf: ElfFile, main: ObjectFunction, bySectionStart: Map<string, ObjectFunction>, problems: Problem[]): BpfProgram {
  const subprograms: Subprogram[] = [];
  const indexOf = new Map<ObjectFunction, number>();

  // libbpf appends a callee the first time it is met and walks it at once, before the rest of the
  // caller: a depth-first walk, kept on an explicit stack so that a chain thousands of functions
  // deep costs memory, not the JavaScript call stack.
  const walking: { index: number; cursor: number; to: number }[] = [];
  const append = (fn: ObjectFunction): number => {
    const index = subprograms.length;
    subprograms.push({ fn, calls: [], tailCalls: [], kfuncCalls: [], helperCalls: [], isAsyncCallback: false });
    indexOf.set(fn, index);
    const { from, to } = controlsOf(fn.packed);
    walking.push({ index, cursor: from, to });
    return index;
  };

  let moreSubprograms = false;
  append(main);
  while (walking.length > 0) {
    const frame = walking[walking.length - 1];
    if (frame.cursor >= frame.to) {
      walking.pop();
      continue;
    }
    const c = frame.cursor++;
    const subprogram = subprograms[frame.index];
    const { fn } = subprogram;
    const { code, first } = fn.packed;
    // Only calls and lddw matter here: the section's control instructions hold them.
    const at = code.controls[c] - first;
    const opcode = packedOpcode(code, code.controls[c]);
    if (opcode === MAY_GOTO_OPCODE) subprogram.mayGotoAt ??= at;
    if (opcode !== CALL_OPCODE && opcode !== LDDW_OPCODE) continue;
    const insn = instructionAt(fn, at)!;
    if (isHelperCall(insn) && insn.imm === BPF_TAIL_CALL_HELPER) subprogram.tailCalls.push(at);
    if (isHelperCall(insn) && !subprogram.helperCalls.some((call) => call.helper === insn.imm)) subprogram.helperCalls.push({ at, helper: insn.imm });
    if (isKfuncCall(insn)) {
      const name = kfuncName(elf, fn, insn);
      if (name !== undefined) subprogram.kfuncCalls.push({ at, name });
    }
    const pseudoCall = isPseudoCall(insn);
    if (!pseudoCall && !isPseudoFunc(insn)) continue;
    const target = resolveTarget(elf, fn, insn, pseudoCall, bySectionStart);
    if (!target) {
      problems.push({
        message: `${fn.name}: ${pseudoCall ? 'call' : 'function address'} at instruction ${insn.offset} of section ${fn.section.name} points at no function`,
        offset: fn.section.offset + insn.offset * 8,
      });
      continue;
    }
    const known = indexOf.get(target);
    if (known === undefined && subprograms.length >= MAX_SUBPROGRAMS) {
      moreSubprograms = true;
      continue;
    }
    const callee = known ?? append(target);
    subprogram.calls.push({ at, kind: pseudoCall ? 'call' : 'callback', callee });
    if (!pseudoCall && registersAsyncCallback(elf, fn, at)) subprograms[callee].isAsyncCallback = true;
  }
  return {
    name: main.name,
    section: main.section.name,
    programType: programTypeForSection(main.section.name),
    subprograms,
    ...(moreSubprograms ? { moreSubprograms: true as const } : {}),
  };
}

/**
 * Where a call or a function address points. With a relocation the target is relative to the
 * relocation's symbol: a global callee is named by its own symbol (imm = -1), a static callee in
 * another section by the section symbol with imm counting from the section start (in instructions
 * for calls, in bytes for ld_imm64). Without one, it is relative to the instruction.
 */
function resolveTarget(
  elf: ElfFile,
  fn: ObjectFunction,
  insn: Instruction,
  pseudoCall: boolean,
  bySectionStart: Map<string, ObjectFunction>,
): ObjectFunction | undefined {
  const relocation = relocationAt(fn, insn);
  if (!relocation) {
    return bySectionStart.get(`${fn.section.index}:${insn.offset + insn.imm + 1}`);
  }
  const symbol = elf.symbols[relocation.symbolIndex];
  if (!symbol) return undefined;
  const target = pseudoCall ? symbol.value / 8 + insn.imm + 1 : symbol.value / 8 + insn.imm / 8;
  return bySectionStart.get(`${symbol.sectionIndex}:${target}`);
}

/**
 * Whether the function address loaded at `at` reaches r2 of a helper or kfunc that registers async
 * callbacks, before anything overwrites the register. The verifier learns the same from the call.
 */
function registersAsyncCallback(elf: ElfFile, fn: ObjectFunction, at: number): boolean {
  let register = fn.instructions[at].dst;
  for (let i = at + 1; i < fn.instructions.length; i++) {
    const insn = fn.instructions[i];
    const isCall = isHelperCall(insn) || isKfuncCall(insn) || isPseudoCall(insn);
    if (isCall) {
      if (register !== 2) return false;
      if (isHelperCall(insn)) return ASYNC_CALLBACK_HELPERS.has(insn.imm);
      if (isKfuncCall(insn)) {
        const name = kfuncName(elf, fn, insn);
        return name !== undefined && ASYNC_CALLBACK_KFUNC_PREFIXES.some((prefix) => name.startsWith(prefix));
      }
      return false;
    }
    // Follow a plain register copy of the address (rX = rY), which clang emits when it shuffles arguments.
    if (insn.opcode === MOV64_REGISTER_OPCODE && insn.src === register) {
      register = insn.dst;
      continue;
    }
    if (writesRegister(insn, register)) return false;
  }
  return false;
}

function relocationAt(fn: ObjectFunction, insn: Instruction): ElfRelocation | undefined {
  return fn.relocations.get(insn.offset);
}

/** The name of the extern a kfunc call is relocated against. */
export function kfuncName(elf: ElfFile, fn: ObjectFunction, insn: Instruction): string | undefined {
  const relocation = relocationAt(fn, insn);
  return relocation ? elf.symbols[relocation.symbolIndex]?.name : undefined;
}

/** Whether the instruction writes `register` (ALU, loads and lddw write dst). */
function writesRegister(insn: Instruction, register: number): boolean {
  const cls = insn.class;
  const writesDst = cls === BPF_ALU || cls === BPF_ALU64 || cls === BPF_LDX || cls === BPF_LD;
  return writesDst && insn.dst === register;
}
