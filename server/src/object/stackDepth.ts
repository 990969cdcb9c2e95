/**
 * A subprogram's stack depth, counted the way the verifier counts it: the deepest byte below the
 * frame pointer that the code touches, in 8-byte slots (a 4-byte store at fp-100 counts as 104).
 *
 * The verifier follows values through registers, so `r1 = r10; r1 += -56; call bpf_probe_read(r1..)`
 * touches fp-56 even though no store names r10. We do the same with a small forward dataflow over the
 * function's control-flow graph: each register is either unknown, a known constant, or the frame
 * pointer plus a known offset; 8-byte spills of such pointers to the stack are followed too. What is
 * touched:
 *
 *   - loads, stores and atomics whose base is a frame-pointer value;
 *   - frame-pointer values in r1..r5 at a helper, kfunc or bpf2bpf call (the callee reads or writes
 *     the memory they point at; the deepest byte is the pointer itself, whatever the size).
 *
 * The verifier also adds slots of its own after checking (inlined bpf_loop, may_goto); those appear
 * in its "stack depth" line but were not part of the check, so they are kept apart.
 *
 * Like the verifier, the walk skips branches it can decide: a condition on constants, including
 * values read from .rodata, which libbpf freezes before loading (`const volatile` switches set at
 * load time keep their object defaults here). Code behind such a branch touches nothing.
 *
 * The pass reads the function's packed code (instruction.ts) through one reused Instruction, and
 * keeps register values in typed arrays: a large object has hundreds of thousands of instructions,
 * and an object per value or per instruction is garbage the whole-object check pays for.
 */
import { hiddenSlots } from '../rules/report';
import {
  type AluOp,
  BPF_ADD,
  BPF_ALU,
  BPF_ALU64,
  BPF_AND,
  BPF_ARSH,
  BPF_ATOMIC,
  BPF_CMPXCHG,
  BPF_DIV,
  BPF_FETCH,
  BPF_JA,
  BPF_JCOND,
  BPF_JEQ,
  BPF_JGE,
  BPF_JGT,
  BPF_JLE,
  BPF_JLT,
  BPF_JMP,
  BPF_JMP32,
  BPF_JNE,
  BPF_JSET,
  BPF_JSGE,
  BPF_JSGT,
  BPF_JSLE,
  BPF_JSLT,
  BPF_LD,
  BPF_LDX,
  BPF_LSH,
  BPF_MEM,
  BPF_MEMSX,
  BPF_MOD,
  BPF_MOV,
  BPF_MUL,
  BPF_NEG,
  BPF_OR,
  BPF_RSH,
  BPF_ST,
  BPF_STX,
  BPF_SUB,
  BPF_XOR,
  type Instruction,
  type JumpOp,
  type PackedInstructions,
  type PackedRange,
  isExit,
  isHelperCall,
  isKfuncCall,
  isLoadFromMemory,
  isPseudoCall,
  isPseudoFunc,
  isStoreToMemory,
  aluOperation,
  jumpOperation,
  jumpTarget,
  memoryAccessSize,
  mode,
  controlsOf,
  readPacked,
  usesImmediate,
} from './instruction';
import { lowerBound, roundToSlots } from '../common/numbers';

/** One access to the stack: `bytes` bytes at fp+offset (offset < 0), or a pointer handed to a call. */
export interface StackAccess {
  /** Index of the instruction in the function. */
  at: number;
  offset: number;
  /** Bytes accessed; 0 when a pointer is handed to a call that decides how much it touches. */
  bytes: number;
  kind: 'store' | 'load' | 'pointer-to-call';
  /** For stores of an immediate or a known constant: the value, so a dump can show strings built on the stack. */
  value?: bigint;
  /**
   * The pointer's offset is only known from below (a run-time index, or paths that met): `offset`
   * is the lowest the access can reach, which is what the verifier counts.
   */
  fromBelow?: true;
}

export interface StackDepthResult {
  /** The depth the verifier checks: deepest touched byte, rounded up to 8. */
  checkedDepth: number;
  /**
   * The deepest touched byte itself, unrounded: what kernels before 6.8 record as the subprogram's
   * stack_depth (update_stack_depth took -off; 6.8 grew the stack in whole slots instead).
   */
  byteDepth: number;
  /** Bytes the verifier adds after the check, and prints in its "stack depth" line. */
  hiddenBytes: number;
  hiddenReasons: string[];
  accesses: StackAccess[];
  /**
   * The instructions the verifier cannot reach from the function's entry, as ranges (`from`
   * included, `to` excluded) in ascending order; usually none.
   */
  unreachable: { from: number; to: number }[];
  /** At each bpf2bpf call the verifier reaches (by instruction index): what r1..r5 hold. */
  callArguments: Map<number, CallArguments>;
  /** The constant r0 holds at every exit the verifier reaches, if it is one constant. */
  returnValue?: number | bigint;
}

/** Whether the verifier reaches the function's `index`th instruction. */
export function isReachable(result: StackDepthResult, index: number): boolean {
  for (const range of result.unreachable) {
    if (index < range.from) return true;
    if (index < range.to) return false;
  }
  return true;
}

/** The bytes of a frozen read-only map as the object initialises them. */
export interface ReadOnlyData {
  bytes: Uint8Array;
  littleEndian: boolean;
}

/**
 * A value a static subprogram gets in r1..r5 that the verifier knows, since it verifies the callee
 * with the caller's registers: a constant, a function's address, an address in read-only data.
 * (A pointer to the caller's stack is the caller's: it stays out.)
 */
export type ArgumentValue =
  { kind: 'constant'; value: number | bigint } | { kind: 'function'; imm: number } | { kind: 'readonly'; data: ReadOnlyData; offset: number };

/** r1..r5 (index 0 is r1); undefined where nothing is known. */
export type CallArguments = readonly (ArgumentValue | undefined)[];

export function sameArgument(a: ArgumentValue | undefined, b: ArgumentValue | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.kind === 'constant' && b.kind === 'constant') return a.value === b.value;
  if (a.kind === 'function' && b.kind === 'function') return a.imm === b.imm;
  if (a.kind === 'readonly' && b.kind === 'readonly') return a.data === b.data && a.offset === b.offset;
  return false;
}

export interface StackDepthOptions {
  /** What the function gets in r1..r5 from every call site (the verifier's view of a static callee). */
  entryArguments?: CallArguments;
  /**
   * For a complete lddw (by its slot and the low half of its immediate) that loads the address of
   * read-only data: the data and the byte offset.
   */
  readOnlyAddress?(slot: number, imm: number): { data: ReadOnlyData; offset: number } | undefined;
  /** Keep every stack access (for a disassembly); without it only the depth is worked out. */
  recordAccesses?: boolean;
  /**
   * What r0 holds after a bpf2bpf call, by the call's instruction index, where the static callee
   * returns one constant on every path the verifier follows: do_check goes on from the callee's exit
   * with its r0, so a branch on it is decided (tcprtt's `ipv6_is_not_zero(zeroed) && ...`).
   */
  callReturns?: ReadonlyMap<number, number | bigint>;
}

/*
 * What a register holds. `number` and `ref` complete the kind:
 *   FP        the frame pointer plus `number`
 *   FP_RANGE  the frame pointer plus `number` or more: the stack pointer of paths that met with
 *             different offsets, or plus an index the verifier bounds (`buf[i]`). The verifier
 *             follows each path, or the index's minimum, so the deepest byte it sees is `number`'s.
 *   CONSTANT  the safe integer `number`
 *   BIG       the constant `ref` (a bigint outside the safe integers)
 *   FUNCTION  the address of a function (ld_imm64 with BPF_PSEUDO_FUNC), imm `number`
 *   READONLY  a pointer `number` bytes into the read-only data `ref`
 * Unused fields are 0 and undefined, so two values are the same exactly when all three are.
 */
const UNKNOWN = 0;
const FP = 1;
const CONSTANT = 2;
const BIG = 3;
const FUNCTION = 4;
const READONLY = 5;
const FP_RANGE = 6;
/** After this many walks of a block, a stack pointer whose lowest offset still moves is forgotten. */
const WIDEN_AFTER_WALKS = 8;

type Reference = bigint | ReadOnlyData | undefined;

const REGISTERS = 11;
const BPF_LOOP_HELPER = 181;
const FOUND_MAY_GOTO = 1;
const FOUND_BPF_LOOP_INLINED = 2;
const NO_ACCESSES: StackAccess[] = [];

export function computeStackDepth(range: PackedRange, options: StackDepthOptions = {}): StackDepthResult {
  return walker.analyze(range, options);
}

/**
 * The dataflow runs over basic blocks: a state is kept only where a block starts, and carried
 * through the block in the working registers, so the walk allocates per block, not per
 * instruction. Blocks are taken lowest first (jumps mostly go forward, so straight-line code is
 * walked once) and a block is walked again whenever its entry state changes; so the last walk of
 * every reached block saw its final entry state, and what it found (bpf_loop, may_goto, the
 * arguments of its calls) is what a separate pass over the final states would find. The deepest
 * access is the deepest of all walks: each followed paths the verifier follows too.
 *
 * One walker serves every function, one at a time and to the end: its per-block and
 * per-instruction arrays only grow, so an object of thousands of functions does not leave
 * thousands of arrays behind for the garbage collector.
 */
class DepthWalk {
  private code!: PackedInstructions;
  private first = 0;
  private count = 0;
  private readOnlyAddress: StackDepthOptions['readOnlyAddress'];
  private callReturns: StackDepthOptions['callReturns'];
  /** Per block ending in exit: r0 there as its last walk saw it (null: not a constant). */
  private exitValues = new Map<number, number | bigint | null>();
  /** The deepest byte (as a positive distance below fp) touched by the last walkBlock. */
  private deepest = 0;
  /** r1..r5 at each bpf2bpf call, as the last walk of its block saw them (the final state). */
  private callArguments = new Map<number, CallArguments>();
  /** The instruction being looked at, refilled from the packed code. */
  private readonly insn: Instruction = { offset: 0, opcode: 0, class: 0, dst: 0, src: 0, off: 0, imm: 0, width: 1, imm64: undefined };

  // The working state: registers, and the 8-byte slots (by fp offset) that hold a spilled fp value.
  private readonly kinds = new Uint8Array(REGISTERS);
  private readonly numbers = new Float64Array(REGISTERS);
  private readonly refs: Reference[] = new Array(REGISTERS).fill(undefined);
  private readonly spills = new Map<number, number>();

  // Per instruction: whether a block starts there, and which.
  private leader = new Uint8Array(256);
  private blockAt = new Int32Array(256);
  // Per block: where it starts (it ends where the next starts), whether it has been entered and
  // with which state, whether it waits for a walk, and what its last walk found.
  private blocks = 0;
  private starts = new Int32Array(64);
  private entered = new Uint8Array(64);
  private queued = new Uint8Array(64);
  private blockDeepest = new Float64Array(64);
  private blockFound = new Uint8Array(64);
  private walks = new Uint16Array(64);
  private entryKinds = new Uint8Array(64 * REGISTERS);
  private entryNumbers = new Float64Array(64 * REGISTERS);
  private entryRefs: Reference[] = new Array(64 * REGISTERS).fill(undefined);
  private entrySpills: (Map<number, number> | undefined)[] = new Array(64).fill(undefined);

  analyze(range: PackedRange, options: StackDepthOptions): StackDepthResult {
    this.code = range.code;
    this.first = range.first;
    this.count = Math.max(0, range.end - range.first);
    this.readOnlyAddress = options.readOnlyAddress;
    this.callReturns = options.callReturns;
    this.exitValues.clear();
    if (this.count === 0)
      return { checkedDepth: 0, byteDepth: 0, hiddenBytes: 0, hiddenReasons: [], accesses: NO_ACCESSES, unreachable: [], callArguments: new Map() };
    this.findBlocks();
    this.callArguments = new Map();
    this.solve(options.entryArguments);

    const { blocks, entered, blockDeepest, blockFound } = this;
    let deepest = 0;
    let found = 0;
    const unreachable: { from: number; to: number }[] = [];
    for (let block = 0; block < blocks; block++) {
      if (entered[block] === 0) {
        // Unreachable from the entry: the verifier never looks at it.
        const last = unreachable[unreachable.length - 1];
        if (last?.to === this.starts[block]) last.to = this.endOf(block);
        else unreachable.push({ from: this.starts[block], to: this.endOf(block) });
        continue;
      }
      if (blockDeepest[block] > deepest) deepest = blockDeepest[block];
      found |= blockFound[block];
    }
    let accesses = NO_ACCESSES;
    if (options.recordAccesses === true) {
      // Every reached block once more from its final entry state, this time keeping what it touches.
      accesses = [];
      for (let block = 0; block < blocks; block++) {
        if (entered[block] === 0) continue;
        this.loadEntry(block);
        this.walkBlock(block, accesses);
      }
      accesses.sort((a, b) => a.at - b.at);
    }
    this.readOnlyAddress = undefined;
    this.callReturns = undefined;
    let returnValue: number | bigint | null | undefined;
    for (const [block, value] of this.exitValues) {
      if (entered[block] === 0) continue;
      returnValue = returnValue === undefined || returnValue === value ? value : null;
    }

    const checkedDepth = roundToSlots(deepest);
    const hidden = hiddenSlots({ bpfLoopInlined: (found & FOUND_BPF_LOOP_INLINED) !== 0, mayGoto: (found & FOUND_MAY_GOTO) !== 0 });
    return {
      checkedDepth,
      byteDepth: deepest,
      hiddenBytes: hidden.bytes,
      hiddenReasons: hidden.reasons,
      accesses,
      unreachable,
      callArguments: this.callArguments,
      ...(returnValue === undefined || returnValue === null ? {} : { returnValue }),
    };
  }

  /** Walks blocks until no entry state changes. */
  private solve(entryArguments: CallArguments | undefined): void {
    const { blocks, queued, count, insn } = this;
    this.kinds.fill(UNKNOWN);
    this.numbers.fill(0);
    this.refs.fill(undefined);
    this.kinds[10] = FP;
    entryArguments?.forEach((value, index) => {
      if (value?.kind === 'constant') this.setConstant(index + 1, value.value);
      else if (value?.kind === 'function') this.set(index + 1, FUNCTION, value.imm, undefined);
      else if (value?.kind === 'readonly') this.set(index + 1, READONLY, value.offset, value.data);
    });
    this.spills.clear();
    this.saveEntry(0);
    queued[0] = 1;
    let cursor = 0;
    let steps = 0;
    // Each merge only forgets facts, so this terminates; the bound guards against a bug, not a loop.
    const maxSteps = blocks * 64 + 1024;
    while (steps++ < maxSteps) {
      while (cursor < blocks && queued[cursor] === 0) cursor++;
      if (cursor === blocks) break;
      const block = cursor;
      queued[block] = 0;
      this.loadEntry(block);
      this.blockFound[block] = this.walkBlock(block, undefined);
      // Every walk of a block follows paths the verifier follows too: the deepest of them counts.
      if (this.deepest > this.blockDeepest[block]) this.blockDeepest[block] = this.deepest;
      if (this.walks[block] < 0xffff) this.walks[block]++;
      const end = this.endOf(block);
      readPacked(this.code, this.first + end - 1, insn);
      if (isExit(insn)) continue;
      const next = end < count ? this.blockAt[end] : -1;
      const target = jumpTarget(insn);
      if (target === undefined) {
        if (next >= 0) cursor = this.flowInto(next, cursor);
        continue;
      }
      const targetIndex = this.indexOfSlot(target);
      const targetBlock = targetIndex >= 0 ? this.blockAt[targetIndex] : -1;
      // ja and gotol (JMP32 | JA) always jump.
      const unconditional = insn.opcode === (BPF_JMP | BPF_JA) || insn.opcode === (BPF_JMP32 | BPF_JA);
      const taken = unconditional ? true : this.decideBranch(insn);
      if (taken !== true && next >= 0) cursor = this.flowInto(next, cursor);
      if (taken !== false && targetBlock >= 0) cursor = this.flowInto(targetBlock, cursor);
    }
  }

  private endOf(block: number): number {
    return block + 1 < this.blocks ? this.starts[block + 1] : this.count;
  }

  /**
   * Runs one block from the working state, leaving it the state at the block's end. Returns what it
   * found (may_goto, an inlined bpf_loop) as the last walk of the block sees it, since the verifier
   * inlines bpf_loop only if every path agrees; the deepest access is left in `deepest`. With
   * `accesses`, every access is recorded there too.
   */
  private walkBlock(block: number, accesses: StackAccess[] | undefined): number {
    const { insn, kinds, numbers } = this;
    const end = this.endOf(block);
    let deepest = 0;
    let found = 0;
    for (let index = this.starts[block]; index < end; index++) {
      readPacked(this.code, this.first + index, insn);
      const cls = insn.class;
      if (cls === BPF_JMP || cls === BPF_JMP32) {
        if (insn.opcode === (BPF_JMP | BPF_JCOND)) found |= FOUND_MAY_GOTO;
        else if (isHelperCall(insn) || isKfuncCall(insn) || isPseudoCall(insn)) {
          // The callee reads or writes what r1..r5 point at.
          for (let r = 1; r <= 5; r++) {
            if ((kinds[r] !== FP && kinds[r] !== FP_RANGE) || numbers[r] >= 0) continue;
            if (-numbers[r] > deepest) deepest = -numbers[r];
            if (accesses) {
              const access: StackAccess = { at: index, offset: numbers[r], bytes: 0, kind: 'pointer-to-call' };
              if (kinds[r] === FP_RANGE) access.fromBelow = true;
              accesses.push(access);
            }
          }
          if (insn.imm === BPF_LOOP_HELPER && isHelperCall(insn) && this.bpfLoopInlined()) found |= FOUND_BPF_LOOP_INLINED;
          if (isPseudoCall(insn)) this.callArguments.set(index, this.argumentsNow());
        }
      } else if (cls === BPF_LDX || cls === BPF_ST || cls === BPF_STX) {
        const load = isLoadFromMemory(insn);
        const base = load ? insn.src : isStoreToMemory(insn) ? insn.dst : -1;
        if (base >= 0 && (kinds[base] === FP || kinds[base] === FP_RANGE)) {
          const offset = numbers[base] + insn.off;
          if (-offset > deepest) deepest = -offset;
          if (accesses) {
            const access = this.accessRecord(index, offset, load);
            if (kinds[base] === FP_RANGE) access.fromBelow = true;
            accesses.push(access);
          }
        }
      }
      this.transfer();
      if ((cls === BPF_JMP || cls === BPF_JMP32) && this.callReturns !== undefined && isPseudoCall(insn)) {
        const returned = this.callReturns.get(index);
        if (returned !== undefined) this.setConstant(0, returned);
      }
      if (isExit(insn)) this.exitValues.set(block, this.constantIn(0) ?? null);
    }
    this.deepest = deepest;
    return found;
  }

  private accessRecord(at: number, offset: number, load: boolean): StackAccess {
    const { insn } = this;
    const access: StackAccess = { at, offset, bytes: memoryAccessSize(insn), kind: load ? 'load' : 'store' };
    if (load) return access;
    if (insn.class === BPF_ST) access.value = BigInt(insn.imm);
    else if (insn.class === BPF_STX && mode(insn) === BPF_MEM) {
      const kind = this.kinds[insn.src];
      if (kind === CONSTANT) access.value = BigInt(this.numbers[insn.src]);
      else if (kind === BIG) access.value = this.refs[insn.src] as bigint;
    }
    return access;
  }

  /** What r1..r5 hold now, as a callee would get them. */
  private argumentsNow(): CallArguments {
    const values: (ArgumentValue | undefined)[] = [];
    for (let r = 1; r <= 5; r++) {
      const kind = this.kinds[r];
      if (kind === CONSTANT || kind === BIG) values.push({ kind: 'constant', value: this.constantIn(r)! });
      else if (kind === FUNCTION) values.push({ kind: 'function', imm: this.numbers[r] });
      else if (kind === READONLY) values.push({ kind: 'readonly', data: this.refs[r] as ReadOnlyData, offset: this.numbers[r] });
      else values.push(undefined);
    }
    return values;
  }

  /** bpf_loop is inlined when r2 holds a known callback and r4 (flags) is known to be 0. */
  private bpfLoopInlined(): boolean {
    return this.kinds[2] === FUNCTION && this.kinds[4] === CONSTANT && this.numbers[4] === 0;
  }

  private set(register: number, kind: number, value: number, ref: Reference): void {
    this.kinds[register] = kind;
    this.numbers[register] = value;
    this.refs[register] = ref;
  }

  private setConstant(register: number, value: number | bigint): void {
    if (typeof value === 'number') this.set(register, CONSTANT, value, undefined);
    else if (value >= -9007199254740991n && value <= 9007199254740991n) this.set(register, CONSTANT, Number(value), undefined);
    else this.set(register, BIG, 0, value);
  }

  private forget(register: number): void {
    this.set(register, UNKNOWN, 0, undefined);
  }

  /** A register's constant, or undefined when it holds no known constant. */
  private constantIn(register: number): number | bigint | undefined {
    const kind = this.kinds[register];
    if (kind === CONSTANT) return this.numbers[register];
    if (kind === BIG) return this.refs[register] as bigint;
    return undefined;
  }

  /** Applies the current instruction to the working state. */
  private transfer(): void {
    const { insn, kinds, numbers } = this;
    const op = aluOperation(insn);
    const immediate = usesImmediate(insn);
    const cls = insn.class;
    const dst = insn.dst;

    if (cls === BPF_ALU64) {
      const dstKind = kinds[dst];
      if (op === BPF_MOV && insn.off === 0) {
        // mov: an immediate, or a copy of a register.
        if (immediate) this.set(dst, CONSTANT, insn.imm, undefined);
        else this.set(dst, kinds[insn.src], numbers[insn.src], this.refs[insn.src]);
      } else if ((op === BPF_ADD || op === BPF_SUB) && immediate && dstKind !== UNKNOWN) {
        const delta = op === BPF_ADD ? insn.imm : -insn.imm;
        if (dstKind === FP || dstKind === FP_RANGE || dstKind === READONLY) numbers[dst] += delta;
        else if (dstKind === CONSTANT || dstKind === BIG) this.setConstant(dst, addConstant(this.constantIn(dst)!, delta));
        else this.forget(dst);
      } else if (op === BPF_ADD && !immediate && !(this.constantIn(dst) !== undefined && this.constantIn(insn.src) !== undefined)) {
        this.addRegister(dst, insn.src);
      } else {
        this.foldConstant(64);
      }
      return;
    }
    if (cls === BPF_ALU) {
      if (op === BPF_MOV && immediate && insn.off === 0) this.set(dst, CONSTANT, insn.imm >>> 0, undefined);
      else this.foldConstant(32);
      return;
    }
    if (cls === BPF_JMP || cls === BPF_JMP32) {
      if (isHelperCall(insn) || isKfuncCall(insn) || isPseudoCall(insn)) {
        for (let r = 0; r <= 5; r++) this.forget(r);
      }
      return;
    }
    if (cls === BPF_LD) {
      if (isPseudoFunc(insn)) {
        this.set(dst, FUNCTION, insn.imm, undefined);
        return;
      }
      const readOnly = insn.imm64 !== undefined ? this.readOnlyAddress?.(insn.offset, insn.imm) : undefined;
      if (readOnly) this.set(dst, READONLY, readOnly.offset, readOnly.data);
      else if (insn.imm64 !== undefined && insn.src === 0) this.setConstant(dst, insn.imm64);
      else this.forget(dst);
      return;
    }
    if (isLoadFromMemory(insn)) {
      const base = insn.src;
      const size = memoryAccessSize(insn);
      const signExtends = mode(insn) === BPF_MEMSX;
      if (kinds[base] === FP && size === 8) {
        const spilled = this.spills.get(numbers[base] + insn.off);
        if (spilled === undefined) this.forget(dst);
        else this.set(dst, FP, spilled, undefined);
      } else if (kinds[base] === READONLY && !signExtends) {
        const value = readConstant(this.refs[base] as ReadOnlyData, numbers[base] + insn.off, size);
        if (value === undefined) this.forget(dst);
        else this.setConstant(dst, value);
      } else {
        this.forget(dst);
      }
      return;
    }
    if (isStoreToMemory(insn)) {
      if (kinds[dst] === FP_RANGE && this.spills.size > 0) {
        // The store may land anywhere from its lowest offset up: no spill there survives it.
        const lowest = numbers[dst] + insn.off;
        for (const slot of this.spills.keys()) if (slot + 8 > lowest) this.spills.delete(slot);
      }
      if (kinds[dst] === FP) {
        const offset = numbers[dst] + insn.off;
        const size = memoryAccessSize(insn);
        const { spills } = this;
        if (spills.size > 0) {
          // Deleting the entry being visited is allowed while iterating a Map.
          for (const slot of spills.keys()) {
            if (slot < offset + size && offset < slot + 8) spills.delete(slot);
          }
        }
        const isRegisterStore = cls === BPF_STX && mode(insn) === BPF_MEM;
        if (isRegisterStore && size === 8 && kinds[insn.src] === FP) spills.set(offset, numbers[insn.src]);
      }
      // Atomic fetch operations write their source register (or r0 for cmpxchg).
      if (mode(insn) === BPF_ATOMIC) {
        if (insn.imm === BPF_CMPXCHG) this.forget(0);
        else if (insn.imm & BPF_FETCH) this.forget(insn.src);
      }
    }
  }

  /**
   * An ALU operation on constants, computed as the verifier does (it tracks them exactly): a
   * `wide >>= 32` after `wide <<= 32` still decides the branch on it. Anything else is forgotten;
   * the 32-bit class works on the low halves and zero-extends.
   */
  private foldConstant(bits: 32 | 64): void {
    const { insn } = this;
    const dst = insn.dst;
    const op = aluOperation(insn);
    const left = this.constantIn(dst);
    const right = usesImmediate(insn) ? insn.imm : this.constantIn(insn.src);
    const folded =
      op === BPF_MOV
        ? moveConstant(bits, insn.off, right)
        : left === undefined || right === undefined
          ? undefined
          : aluConstant(op, bits, insn.off, left, right);
    if (folded === undefined) this.forget(dst);
    else this.setConstant(dst, folded);
  }

  /**
   * dst += src (64-bit). A stack pointer plus a constant moves; plus any other scalar (pointer plus
   * pointer is not allowed, so an unknown operand is a scalar) it becomes a range from where it was:
   * the verifier accepts such an access only with the index bounded, and clang's indexes start at 0.
   */
  private addRegister(dst: number, src: number): void {
    const { kinds, numbers } = this;
    const dstKind = kinds[dst];
    const srcKind = kinds[src];
    const dstIsStack = dstKind === FP || dstKind === FP_RANGE;
    const srcIsStack = srcKind === FP || srcKind === FP_RANGE;
    const dstIsConstant = dstKind === CONSTANT || dstKind === BIG;
    const srcIsConstant = srcKind === CONSTANT || srcKind === BIG;
    if (srcIsStack && dstIsConstant) {
      // r1 = -56; r1 += r10
      this.set(dst, srcKind, numbers[src] + Number(this.constantIn(dst)), undefined);
    } else if (dstIsStack && srcIsConstant) {
      numbers[dst] += Number(this.constantIn(src));
    } else if (dstIsStack && srcKind === UNKNOWN) {
      kinds[dst] = FP_RANGE;
    } else if (srcIsStack && dstKind === UNKNOWN) {
      this.set(dst, FP_RANGE, numbers[src], undefined);
    } else {
      this.forget(dst);
    }
  }

  /** The outcome of the current conditional jump on known constants, or undefined when it depends on data. */
  private decideBranch(insn: Instruction): boolean | undefined {
    const op = jumpOperation(insn);
    if (op === BPF_JCOND) return undefined; // may_goto: the verifier explores both ways.
    const leftValue = this.constantIn(insn.dst);
    const rightValue = usesImmediate(insn) ? insn.imm : this.constantIn(insn.src);
    if (rightValue === undefined) return undefined;
    const narrow = insn.class === BPF_JMP32; // JMP32 compares the low 32 bits.
    if (leftValue === undefined) return decideByUnsignedLimits(op, narrow ? 32 : 64, rightValue);
    if (typeof leftValue === 'number' && typeof rightValue === 'number' && op !== BPF_JSET) {
      return narrow ? compare(op, low32(leftValue), low32(rightValue)) : compare(op, leftValue, rightValue);
    }
    return compareBig(op, narrow ? 32 : 64, BigInt(leftValue), BigInt(rightValue));
  }

  /** Saves the working state as the entry state of `block`. */
  private saveEntry(block: number): void {
    const base = block * REGISTERS;
    for (let r = 0; r < REGISTERS; r++) {
      this.entryKinds[base + r] = this.kinds[r];
      this.entryNumbers[base + r] = this.numbers[r];
      this.entryRefs[base + r] = this.refs[r];
    }
    this.entrySpills[block] = this.spills.size > 0 ? new Map(this.spills) : undefined;
    this.entered[block] = 1;
  }

  /** Makes the working state the entry state of `block`. */
  private loadEntry(block: number): void {
    const base = block * REGISTERS;
    for (let r = 0; r < REGISTERS; r++) {
      this.kinds[r] = this.entryKinds[base + r];
      this.numbers[r] = this.entryNumbers[base + r];
      this.refs[r] = this.entryRefs[base + r];
    }
    this.spills.clear();
    const spills = this.entrySpills[block];
    if (spills) for (const [slot, offset] of spills) this.spills.set(slot, offset);
  }

  /** Merges the working state into a successor's entry; queues the successor if that changed. Returns the new scan cursor. */
  private flowInto(successor: number, cursor: number): number {
    if (this.entered[successor] === 0) this.saveEntry(successor);
    else if (!this.meetInto(successor)) return cursor;
    this.queued[successor] = 1;
    return successor < cursor ? successor : cursor;
  }

  /** Forgets in the entry state of `block` every fact the working state does not share; whether anything was forgotten. */
  private meetInto(block: number): boolean {
    const base = block * REGISTERS;
    const { entryKinds, entryNumbers, entryRefs } = this;
    let changed = false;
    for (let r = 0; r < REGISTERS; r++) {
      const at = base + r;
      const entryKind = entryKinds[at];
      if (entryKind === UNKNOWN) continue;
      const kind = this.kinds[r];
      if (entryKind === kind && entryNumbers[at] === this.numbers[r] && entryRefs[at] === this.refs[r]) continue;
      const entryIsStack = entryKind === FP || entryKind === FP_RANGE;
      if (entryIsStack && (kind === FP || kind === FP_RANGE)) {
        // Stack pointers at different offsets meet as a range from the lowest of them.
        const lowest = Math.min(entryNumbers[at], this.numbers[r]);
        if (entryKind === FP_RANGE && lowest === entryNumbers[at]) continue;
        if (entryKind === FP_RANGE && this.walks[block] >= WIDEN_AFTER_WALKS) {
          // A pointer that keeps moving down (p-- in a loop) would never settle.
          entryKinds[at] = UNKNOWN;
          entryNumbers[at] = 0;
        } else {
          entryKinds[at] = FP_RANGE;
          entryNumbers[at] = lowest;
        }
        changed = true;
        continue;
      }
      entryKinds[at] = UNKNOWN;
      entryNumbers[at] = 0;
      entryRefs[at] = undefined;
      changed = true;
    }
    const spills = this.entrySpills[block];
    if (spills) {
      for (const [slot, offset] of spills) {
        if (this.spills.get(slot) !== offset) {
          spills.delete(slot);
          changed = true;
        }
      }
    }
    return changed;
  }

  /** The instruction index (within the function) at a slot offset, or -1; slots ascend in packed code. */
  private indexOfSlot(slot: number): number {
    const { offsets } = this.code;
    const end = this.first + this.count;
    const at = lowerBound(offsets, slot, this.first, end);
    return at < end && offsets[at] === slot ? at - this.first : -1;
  }

  /**
   * Basic blocks in instruction order: a block starts at the entry, at every jump target and after
   * every jump and exit; `starts` lists them, `blockAt` maps each start to its block.
   */
  private findBlocks(): void {
    const { count, insn, code, first } = this;
    if (this.leader.length < count) {
      this.leader = new Uint8Array(count * 2);
      this.blockAt = new Int32Array(count * 2);
    }
    const { leader, blockAt } = this;
    leader.fill(0, 0, count);
    leader[0] = 1;
    // Only jumps and exits end blocks: the section's control instructions in this function.
    const { controls } = code;
    const { from, to } = controlsOf({ code, first, end: first + count });
    for (let c = from; c < to; c++) {
      const index = controls[c] - first;
      readPacked(code, controls[c], insn);
      const target = jumpTarget(insn);
      if (target !== undefined) {
        const targetIndex = this.indexOfSlot(target);
        if (targetIndex >= 0) leader[targetIndex] = 1;
      }
      if ((target !== undefined || isExit(insn)) && index + 1 < count) leader[index + 1] = 1;
    }
    let blocks = 0;
    for (let index = 0; index < count; index++) if (leader[index] !== 0) blocks++;
    this.reserveBlocks(blocks);
    blocks = 0;
    for (let index = 0; index < count; index++) {
      if (leader[index] === 0) continue;
      blockAt[index] = blocks;
      this.starts[blocks++] = index;
    }
    this.blocks = blocks;
  }

  /** Room for `blocks` blocks, each not entered, not queued, with nothing found. */
  private reserveBlocks(blocks: number): void {
    if (this.starts.length < blocks) {
      const room = blocks * 2;
      this.starts = new Int32Array(room);
      this.entered = new Uint8Array(room);
      this.queued = new Uint8Array(room);
      this.blockDeepest = new Float64Array(room);
      this.blockFound = new Uint8Array(room);
      this.walks = new Uint16Array(room);
      this.entryKinds = new Uint8Array(room * REGISTERS);
      this.entryNumbers = new Float64Array(room * REGISTERS);
      // What a block's entry holds is written when it is first entered, so stale values are never read.
      this.entryRefs = new Array(room * REGISTERS).fill(undefined);
      this.entrySpills = new Array(room).fill(undefined);
    }
    this.entered.fill(0, 0, blocks);
    this.queued.fill(0, 0, blocks);
    this.blockDeepest.fill(0, 0, blocks);
    this.blockFound.fill(0, 0, blocks);
    this.walks.fill(0, 0, blocks);
  }
}

const walker = new DepthWalk();

/** The low 32 bits of a safe integer, as a signed 32-bit number. */
function low32(value: number): number {
  return Number.isInteger(value) && value >= -0x80000000 && value <= 0xffffffff ? value | 0 : Number(BigInt.asIntN(32, BigInt(value)));
}

/**
 * A comparison of two signed values that fit their width (safe integers for 64 bits, int32 for 32):
 * the signed operators compare them as they are; the unsigned ones agree with them when the signs
 * match, and otherwise the negative one is the larger (its top bit is set).
 */
function compare(op: JumpOp, l: number, r: number): boolean | undefined {
  const sameSign = l < 0 === r < 0;
  switch (op) {
    case BPF_JEQ:
      return l === r;
    case BPF_JNE:
      return l !== r;
    case BPF_JGT:
      return sameSign ? l > r : l < 0;
    case BPF_JGE:
      return sameSign ? l >= r : l < 0;
    case BPF_JLT:
      return sameSign ? l < r : r < 0;
    case BPF_JLE:
      return sameSign ? l <= r : r < 0;
    case BPF_JSGT:
      return l > r;
    case BPF_JSGE:
      return l >= r;
    case BPF_JSLT:
      return l < r;
    case BPF_JSLE:
      return l <= r;
    default:
      return undefined;
  }
}

/**
 * A comparison of an unknown value with 0 or with the largest unsigned value decides itself (x >= 0
 * and x <= U64_MAX always hold, unsigned), as the verifier's bounds decide it: bpf_assert_range(x,
 * 0, ~0ULL) never throws.
 */
function decideByUnsignedLimits(op: JumpOp, bits: number, right: number | bigint): boolean | undefined {
  const limit = BigInt.asUintN(bits, BigInt(right));
  const isZero = limit === 0n;
  const isMax = limit === (1n << BigInt(bits)) - 1n;
  if (op === BPF_JGE && isZero) return true; // x >= 0
  if (op === BPF_JLT && isZero) return false; // x < 0
  if (op === BPF_JLE && isMax) return true; // x <= MAX
  if (op === BPF_JGT && isMax) return false; // x > MAX
  return undefined;
}

/** The same comparison on any two 64-bit constants (and jset), at the jump's width. */
function compareBig(op: JumpOp, bits: number, l: bigint, r: bigint): boolean | undefined {
  const unsignedLeft = BigInt.asUintN(bits, l);
  const unsignedRight = BigInt.asUintN(bits, r);
  const signedLeft = BigInt.asIntN(bits, l);
  const signedRight = BigInt.asIntN(bits, r);
  switch (op) {
    case BPF_JEQ:
      return unsignedLeft === unsignedRight;
    case BPF_JNE:
      return unsignedLeft !== unsignedRight;
    case BPF_JGT:
      return unsignedLeft > unsignedRight;
    case BPF_JGE:
      return unsignedLeft >= unsignedRight;
    case BPF_JLT:
      return unsignedLeft < unsignedRight;
    case BPF_JLE:
      return unsignedLeft <= unsignedRight;
    case BPF_JSET:
      return (unsignedLeft & unsignedRight) !== 0n;
    case BPF_JSGT:
      return signedLeft > signedRight;
    case BPF_JSGE:
      return signedLeft >= signedRight;
    case BPF_JSLT:
      return signedLeft < signedRight;
    case BPF_JSLE:
      return signedLeft <= signedRight;
    default:
      return undefined;
  }
}

/** Reads `size` bytes of read-only data as an unsigned integer, or undefined past its end. */
function readConstant(data: ReadOnlyData, offset: number, size: number): number | bigint | undefined {
  if (offset < 0 || offset + size > data.bytes.length) return undefined;
  if (size <= 4) {
    let value = 0;
    for (let i = 0; i < size; i++) value += data.bytes[offset + (data.littleEndian ? i : size - 1 - i)] * 2 ** (8 * i);
    return value;
  }
  let value = 0n;
  for (let i = 0; i < size; i++) {
    const byte = BigInt(data.bytes[offset + (data.littleEndian ? i : size - 1 - i)]);
    value |= byte << BigInt(8 * i);
  }
  return value;
}

/** mov and movsx (off = 8, 16, 32: sign-extend that many low bits) of a constant, at the class's width. */
function moveConstant(bits: 32 | 64, off: number, value: number | bigint | undefined): bigint | undefined {
  if (value === undefined) return undefined;
  let result = BigInt(value);
  if (off === 8 || off === 16 || off === 32) result = BigInt.asIntN(off, result);
  else if (off !== 0) return undefined;
  return bits === 32 ? BigInt.asUintN(32, result) : BigInt.asIntN(64, result);
}

/**
 * One ALU operation on two constants at the class's width (BPF semantics: division by zero gives
 * 0, modulo by zero leaves the dividend; off = 1 makes div and mod signed), as a signed 64-bit
 * value, 32-bit results zero-extended. Undefined for byte swaps and unknown operations.
 */
function aluConstant(op: AluOp, bits: 32 | 64, off: number, leftValue: number | bigint, rightValue: number | bigint): bigint | undefined {
  const width = BigInt(bits);
  const left = BigInt.asUintN(bits, BigInt(leftValue));
  const right = BigInt.asUintN(bits, BigInt(rightValue));
  const signedLeft = BigInt.asIntN(bits, left);
  const signedRight = BigInt.asIntN(bits, right);
  const shift = right & (width - 1n);
  let result: bigint;
  switch (op) {
    case BPF_ADD:
      result = left + right;
      break;
    case BPF_SUB:
      result = left - right;
      break;
    case BPF_MUL:
      result = left * right;
      break;
    case BPF_DIV:
      if (right === 0n) result = 0n;
      else result = off === 1 ? signedLeft / signedRight : left / right;
      break;
    case BPF_OR:
      result = left | right;
      break;
    case BPF_AND:
      result = left & right;
      break;
    case BPF_LSH:
      result = left << shift;
      break;
    case BPF_RSH:
      result = left >> shift;
      break;
    case BPF_NEG:
      result = -left;
      break;
    case BPF_MOD:
      if (right === 0n) result = left;
      else result = off === 1 ? signedLeft % signedRight : left % right;
      break;
    case BPF_XOR:
      result = left ^ right;
      break;
    case BPF_ARSH:
      result = signedLeft >> shift;
      break;
    default:
      return undefined;
  }
  return bits === 32 ? BigInt.asUintN(32, result) : BigInt.asIntN(64, result);
}

/** A constant plus a 32-bit delta, wrapped to 64 bits as the ALU64 add does. */
function addConstant(value: number | bigint, delta: number): number | bigint {
  if (typeof value === 'number') {
    const sum = value + delta;
    if (Number.isSafeInteger(sum)) return sum;
  }
  return BigInt.asIntN(64, BigInt(value) + BigInt(delta));
}
