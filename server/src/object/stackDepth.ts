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
 */
import { hiddenSlots } from '../rules/report';
import type { Instruction } from './instruction';
import {
  isExit,
  isHelperCall,
  isKfuncCall,
  isLoadFromMemory,
  isPseudoCall,
  isPseudoFunc,
  isStoreToMemory,
  jumpTarget,
  memoryAccessSize,
} from './instruction';

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
}

export interface StackDepthResult {
  /** The depth the verifier checks: deepest touched byte, rounded up to 8. */
  checkedDepth: number;
  /** Bytes the verifier adds after the check, and prints in its "stack depth" line. */
  hiddenBytes: number;
  hiddenReasons: string[];
  accesses: StackAccess[];
  /** Per instruction: whether the verifier can reach it from the function's entry. */
  reachable: boolean[];
}

type RegisterValue =
  | { kind: 'fp'; offset: number }
  | { kind: 'const'; value: bigint }
  /** The address of a function (ld_imm64 with BPF_PSEUDO_FUNC), as bpf_loop and timers take it. */
  | { kind: 'function'; imm: number }
  /** A pointer into read-only data whose bytes are known (a .rodata variable). */
  | { kind: 'readonly'; data: ReadOnlyData; offset: number }
  | undefined;

/** The bytes of a frozen read-only map as the object initialises them. */
export interface ReadOnlyData {
  bytes: Uint8Array;
  littleEndian: boolean;
}

export interface StackDepthOptions {
  /** For ld_imm64s (by index) that load the address of read-only data: the data and the byte offset. */
  readOnlyAddress?(index: number): { data: ReadOnlyData; offset: number } | undefined;
  /** Keep every stack access (for a disassembly); without it only the depth is worked out. */
  recordAccesses?: boolean;
}

interface State {
  registers: RegisterValue[];
  /** 8-byte stack slots (by fp offset) holding a spilled frame-pointer value. */
  spills: Map<number, RegisterValue>;
}

const BPF_LOOP_HELPER = 181;

export function computeStackDepth(instructions: Instruction[], options: StackDepthOptions = {}): StackDepthResult {
  if (instructions.length === 0) return { checkedDepth: 0, hiddenBytes: 0, hiddenReasons: [], accesses: [], reachable: [] };
  const indexOfOffset = new Map<number, number>();
  instructions.forEach((insn, index) => indexOfOffset.set(insn.offset, index));
  const blocks = basicBlocks(instructions, indexOfOffset);
  const readOnlyAt = (index: number) => options.readOnlyAddress?.(index);

  // The dataflow runs over basic blocks: a state is kept only where a block starts, and carried
  // through the block in place, so the walk allocates per block, not per instruction.
  const inStates = new Map<number, State>([[0, initialState()]]);
  const worklist: number[] = [0];
  const queued = new Set<number>([0]);
  let steps = 0;
  // Each merge only forgets facts, so this terminates; the bound guards against a bug, not a loop.
  const maxSteps = blocks.size * 64 + 1024;
  while (worklist.length > 0 && steps++ < maxSteps) {
    const start = worklist.shift()!;
    queued.delete(start);
    const end = blocks.get(start)!;
    const state = cloneState(inStates.get(start)!);
    for (let index = start; index < end; index++) transfer(instructions[index], state, readOnlyAt(index));
    for (const successor of successors(instructions, end - 1, indexOfOffset, state)) {
      const previous = inStates.get(successor);
      const merged = previous ? meet(previous, state) : cloneState(state);
      if (!previous || !sameState(previous, merged)) {
        inStates.set(successor, merged);
        if (!queued.has(successor)) {
          queued.add(successor);
          worklist.push(successor);
        }
      }
    }
  }

  const accesses: StackAccess[] = [];
  const reachable: boolean[] = new Array(instructions.length).fill(false);
  let deepest = 0;
  let bpfLoopInlined = false;
  let mayGoto = false;
  for (const [start, end] of blocks) {
    const entry = inStates.get(start);
    if (!entry) continue; // Unreachable from the entry: the verifier never looks at it.
    const state = cloneState(entry);
    for (let at = start; at < end; at++) {
      const insn = instructions[at];
      reachable[at] = true;
      if (insn.opcode === 0xe5) mayGoto = true;
      if (options.recordAccesses) {
        for (const access of accessesOf(insn, at, state)) {
          accesses.push(access);
          if (-access.offset > deepest) deepest = -access.offset;
        }
      } else {
        const offset = deepestAccessOf(insn, state);
        if (-offset > deepest) deepest = -offset;
      }
      if (isHelperCall(insn) && insn.imm === BPF_LOOP_HELPER) {
        const flags = state.registers[4];
        if (state.registers[2]?.kind === 'function' && flags?.kind === 'const' && flags.value === 0n) bpfLoopInlined = true;
      }
      transfer(insn, state, readOnlyAt(at));
    }
  }
  accesses.sort((a, b) => a.at - b.at);

  const checkedDepth = Math.ceil(deepest / 8) * 8;
  // bpf_loop is inlined when r2 holds a known callback and r4 (flags) is known to be 0.
  const hidden = hiddenSlots({ bpfLoopInlined, mayGoto });
  return { checkedDepth, hiddenBytes: hidden.bytes, hiddenReasons: hidden.reasons, accesses, reachable };
}

function initialState(): State {
  const registers: RegisterValue[] = new Array(11).fill(undefined);
  registers[10] = { kind: 'fp', offset: 0 };
  return { registers, spills: new Map() };
}

function cloneState(state: State): State {
  return { registers: [...state.registers], spills: new Map(state.spills) };
}

function sameValue(a: RegisterValue, b: RegisterValue): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.kind === 'fp' && b.kind === 'fp') return a.offset === b.offset;
  if (a.kind === 'const' && b.kind === 'const') return a.value === b.value;
  if (a.kind === 'function' && b.kind === 'function') return a.imm === b.imm;
  if (a.kind === 'readonly' && b.kind === 'readonly') return a.data === b.data && a.offset === b.offset;
  return false;
}

function meet(a: State, b: State): State {
  const registers = a.registers.map((value, index) => (sameValue(value, b.registers[index]) ? value : undefined));
  const spills = new Map<number, RegisterValue>();
  for (const [offset, value] of a.spills) {
    if (sameValue(value, b.spills.get(offset))) spills.set(offset, value);
  }
  return { registers, spills };
}

function sameState(a: State, b: State): boolean {
  if (!a.registers.every((value, index) => sameValue(value, b.registers[index]))) return false;
  if (a.spills.size !== b.spills.size) return false;
  for (const [offset, value] of a.spills) if (!sameValue(value, b.spills.get(offset))) return false;
  return true;
}

/** Basic blocks as a map from first instruction to one past the last, in instruction order. */
function basicBlocks(instructions: Instruction[], indexOfOffset: Map<number, number>): Map<number, number> {
  const leaders = new Set<number>([0]);
  instructions.forEach((insn, index) => {
    const target = jumpTarget(insn);
    if (target !== undefined) {
      const targetIndex = indexOfOffset.get(target);
      if (targetIndex !== undefined) leaders.add(targetIndex);
    }
    if ((target !== undefined || isExit(insn)) && index + 1 < instructions.length) leaders.add(index + 1);
  });
  const starts = [...leaders].sort((a, b) => a - b);
  const blocks = new Map<number, number>();
  starts.forEach((start, position) => blocks.set(start, starts[position + 1] ?? instructions.length));
  return blocks;
}

function successors(instructions: Instruction[], index: number, indexOfOffset: Map<number, number>, state: State): number[] {
  const insn = instructions[index];
  if (isExit(insn)) return [];
  const next = index + 1 < instructions.length ? [index + 1] : [];
  const target = jumpTarget(insn);
  if (target === undefined) return next;
  const targetIndex = indexOfOffset.get(target);
  const jumps = targetIndex === undefined ? [] : [targetIndex];
  const unconditional = insn.opcode === 0x05 || insn.opcode === 0x06;
  if (unconditional) return jumps;
  const taken = decideBranch(insn, state);
  if (taken === true) return jumps;
  if (taken === false) return next;
  return [...next, ...jumps];
}

/** The outcome of a conditional jump on known constants, or undefined when it depends on data. */
function decideBranch(insn: Instruction, state: State): boolean | undefined {
  const op = insn.opcode & 0xf0;
  if (op === 0xe0) return undefined; // may_goto: the verifier explores both ways.
  const left = state.registers[insn.dst];
  const right: RegisterValue = (insn.opcode & 0x08) === 0 ? { kind: 'const', value: BigInt(insn.imm) } : state.registers[insn.src];
  if (left?.kind !== 'const' || right?.kind !== 'const') return undefined;
  const narrow = insn.class === 0x06; // JMP32 compares the low 32 bits.
  const bits = narrow ? 32 : 64;
  const unsignedLeft = BigInt.asUintN(bits, left.value);
  const unsignedRight = BigInt.asUintN(bits, right.value);
  const signedLeft = BigInt.asIntN(bits, left.value);
  const signedRight = BigInt.asIntN(bits, right.value);
  switch (op) {
    case 0x10: return unsignedLeft === unsignedRight;
    case 0x50: return unsignedLeft !== unsignedRight;
    case 0x20: return unsignedLeft > unsignedRight;
    case 0x30: return unsignedLeft >= unsignedRight;
    case 0xa0: return unsignedLeft < unsignedRight;
    case 0xb0: return unsignedLeft <= unsignedRight;
    case 0x40: return (unsignedLeft & unsignedRight) !== 0n;
    case 0x60: return signedLeft > signedRight;
    case 0x70: return signedLeft >= signedRight;
    case 0xc0: return signedLeft < signedRight;
    case 0xd0: return signedLeft <= signedRight;
    default: return undefined;
  }
}

/** Reads `size` bytes of read-only data as an unsigned integer, or undefined past its end. */
function readConstant(data: ReadOnlyData, offset: number, size: number): bigint | undefined {
  if (offset < 0 || offset + size > data.bytes.length) return undefined;
  let value = 0n;
  for (let i = 0; i < size; i++) {
    const byte = BigInt(data.bytes[offset + (data.littleEndian ? i : size - 1 - i)]);
    value |= byte << BigInt(8 * i);
  }
  return value;
}

const CLASS_LD = 0x00;
const CLASS_LDX = 0x01;
const CLASS_ALU = 0x04;
const CLASS_ALU64 = 0x07;

/** Applies one instruction to the state, in place. */
function transfer(insn: Instruction, state: State, readOnly: { data: ReadOnlyData; offset: number } | undefined): State {
  const { registers } = state;
  const op = insn.opcode & 0xf0;
  const usesImmediate = (insn.opcode & 0x08) === 0;

  if (isHelperCall(insn) || isKfuncCall(insn) || isPseudoCall(insn)) {
    for (let r = 0; r <= 5; r++) registers[r] = undefined;
    return state;
  }
  if (insn.class === CLASS_ALU64) {
    const dst = registers[insn.dst];
    if (op === 0xb0 && insn.off === 0) {
      // mov: a copy of a register, or an immediate.
      registers[insn.dst] = usesImmediate ? { kind: 'const', value: BigInt(insn.imm) } : registers[insn.src];
    } else if ((op === 0x00 || op === 0x10) && usesImmediate && dst) {
      const delta = op === 0x00 ? insn.imm : -insn.imm;
      if (dst.kind === 'fp') registers[insn.dst] = { kind: 'fp', offset: dst.offset + delta };
      else if (dst.kind === 'readonly') registers[insn.dst] = { ...dst, offset: dst.offset + delta };
      else if (dst.kind === 'const') registers[insn.dst] = { kind: 'const', value: BigInt.asIntN(64, dst.value + BigInt(delta)) };
      else registers[insn.dst] = undefined;
    } else if (op === 0x00 && !usesImmediate && dst?.kind === 'const' && registers[insn.src]?.kind === 'fp') {
      // r1 = -56; r1 += r10
      const fp = registers[insn.src] as { kind: 'fp'; offset: number };
      registers[insn.dst] = { kind: 'fp', offset: fp.offset + Number(dst.value) };
    } else if (op === 0x00 && !usesImmediate && dst?.kind === 'fp' && registers[insn.src]?.kind === 'const') {
      const delta = Number((registers[insn.src] as { kind: 'const'; value: bigint }).value);
      registers[insn.dst] = { kind: 'fp', offset: dst.offset + delta };
    } else {
      registers[insn.dst] = undefined;
    }
    return state;
  }
  if (insn.class === CLASS_ALU) {
    registers[insn.dst] = op === 0xb0 && usesImmediate && insn.off === 0 ? { kind: 'const', value: BigInt(insn.imm >>> 0) } : undefined;
    return state;
  }
  if (insn.class === CLASS_LD) {
    if (isPseudoFunc(insn)) registers[insn.dst] = { kind: 'function', imm: insn.imm };
    else if (readOnly) registers[insn.dst] = { kind: 'readonly', ...readOnly };
    else registers[insn.dst] = insn.imm64 !== undefined && insn.src === 0 ? { kind: 'const', value: insn.imm64 } : undefined;
    return state;
  }
  if (insn.class === CLASS_LDX && isLoadFromMemory(insn)) {
    const base = registers[insn.src];
    const size = memoryAccessSize(insn);
    const signExtends = (insn.opcode & 0xe0) === 0x80; // BPF_MEMSX
    if (base?.kind === 'fp' && size === 8) registers[insn.dst] = state.spills.get(base.offset + insn.off);
    else if (base?.kind === 'readonly' && !signExtends) {
      const value = readConstant(base.data, base.offset + insn.off, size);
      registers[insn.dst] = value === undefined ? undefined : { kind: 'const', value };
    } else registers[insn.dst] = undefined;
    return state;
  }
  if (isStoreToMemory(insn)) {
    const base = registers[insn.dst];
    if (base?.kind === 'fp') {
      const offset = base.offset + insn.off;
      const size = memoryAccessSize(insn);
      for (const slot of [...state.spills.keys()]) {
        if (slot < offset + size && offset < slot + 8) state.spills.delete(slot);
      }
      const isRegisterStore = insn.class === 0x03 && (insn.opcode & 0xe0) === 0x60;
      if (isRegisterStore && size === 8 && registers[insn.src]?.kind === 'fp') state.spills.set(offset, registers[insn.src]);
    }
    // Atomic fetch operations write their source register (or r0 for cmpxchg).
    if ((insn.opcode & 0xe0) === 0xc0) {
      if (insn.imm === 0xf1) registers[0] = undefined;
      else if (insn.imm & 0x01) registers[insn.src] = undefined;
    }
    return state;
  }
  return state;
}

/** The lowest frame-pointer offset the instruction touches (0 for none), without building records. */
function deepestAccessOf(insn: Instruction, state: State): number {
  const { registers } = state;
  if (isHelperCall(insn) || isKfuncCall(insn) || isPseudoCall(insn)) {
    let lowest = 0;
    for (let r = 1; r <= 5; r++) {
      const value = registers[r];
      if (value?.kind === 'fp' && value.offset < lowest) lowest = value.offset;
    }
    return lowest;
  }
  const base = isLoadFromMemory(insn) ? registers[insn.src] : isStoreToMemory(insn) ? registers[insn.dst] : undefined;
  return base?.kind === 'fp' ? Math.min(0, base.offset + insn.off) : 0;
}

function accessesOf(insn: Instruction, at: number, state: State): StackAccess[] {
  const { registers } = state;
  if (isHelperCall(insn) || isKfuncCall(insn) || isPseudoCall(insn)) {
    const pointers: StackAccess[] = [];
    for (let r = 1; r <= 5; r++) {
      const value = registers[r];
      if (value?.kind === 'fp' && value.offset < 0) pointers.push({ at, offset: value.offset, bytes: 0, kind: 'pointer-to-call' });
    }
    return pointers;
  }
  if (isLoadFromMemory(insn)) {
    const base = registers[insn.src];
    if (base?.kind !== 'fp') return [];
    return [{ at, offset: base.offset + insn.off, bytes: memoryAccessSize(insn), kind: 'load' }];
  }
  if (isStoreToMemory(insn)) {
    const base = registers[insn.dst];
    if (base?.kind !== 'fp') return [];
    const access: StackAccess = { at, offset: base.offset + insn.off, bytes: memoryAccessSize(insn), kind: 'store' };
    if (insn.class === 0x02) access.value = BigInt(insn.imm);
    else if (insn.class === 0x03 && (insn.opcode & 0xe0) === 0x60) {
      const source = registers[insn.src];
      if (source?.kind === 'const') access.value = source.value;
    }
    return [access];
  }
  return [];
}
