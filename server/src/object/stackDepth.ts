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

/**
 * A known constant: a safe integer as a number, anything else as a bigint, so that every value has
 * one representation (=== compares them) and the common small constants cost no BigInt arithmetic.
 */
type Constant = number | bigint;

type RegisterValue =
  | { kind: 'fp'; offset: number }
  | { kind: 'const'; value: Constant }
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
const FOUND_MAY_GOTO = 1;
const FOUND_BPF_LOOP_INLINED = 2;

function constant(value: bigint): Constant {
  return value >= -9007199254740991n && value <= 9007199254740991n ? Number(value) : value;
}

function bigOf(value: Constant): bigint {
  return typeof value === 'bigint' ? value : BigInt(value);
}

export function computeStackDepth(instructions: Instruction[], options: StackDepthOptions = {}): StackDepthResult {
  const count = instructions.length;
  if (count === 0) return { checkedDepth: 0, hiddenBytes: 0, hiddenReasons: [], accesses: [], reachable: [] };
  const indexOf = indexOfOffsetLookup(instructions);
  const { starts, ends, blockAt } = basicBlocks(instructions, indexOf);
  const blockCount = starts.length;
  const readOnlyAddress = options.readOnlyAddress;
  const record = options.recordAccesses === true;

  // The dataflow runs over basic blocks: a state is kept only where a block starts, and carried
  // through the block in place, so the walk allocates per block, not per instruction. Blocks are
  // taken lowest first (jumps mostly go forward, so straight-line code is walked once) and a block
  // is walked again whenever its entry state changes; so the last walk of every reached block saw
  // its final entry state, and what that walk found (the deepest access, bpf_loop and may_goto) is
  // what a separate pass over the final states would find.
  const inStates: (State | undefined)[] = new Array(blockCount).fill(undefined);
  const { queued, blockDeepest, blockFound } = blockScratch(blockCount);
  inStates[0] = initialState();
  queued[0] = 1;
  let cursor = 0;
  let steps = 0;
  // Each merge only forgets facts, so this terminates; the bound guards against a bug, not a loop.
  const maxSteps = blockCount * 64 + 1024;
  const state: State = { registers: new Array(11).fill(undefined), spills: new Map() };
  while (steps++ < maxSteps) {
    while (cursor < blockCount && queued[cursor] === 0) cursor++;
    if (cursor === blockCount) break;
    const block = cursor;
    queued[block] = 0;
    copyState(inStates[block]!, state);
    const end = ends[block];
    let deepest = 0;
    let found = 0;
    for (let index = starts[block]; index < end; index++) {
      const insn = instructions[index];
      if (!record) {
        const offset = deepestAccessOf(insn, state);
        if (-offset > deepest) deepest = -offset;
        if (insn.opcode === 0xe5) found |= FOUND_MAY_GOTO;
        else if (insn.opcode === 0x85 && insn.src === 0 && insn.imm === BPF_LOOP_HELPER && bpfLoopInlined(state)) found |= FOUND_BPF_LOOP_INLINED;
      }
      transfer(insn, state, insn.class === CLASS_LD && readOnlyAddress ? readOnlyAddress(index) : undefined);
    }
    blockDeepest[block] = deepest;
    blockFound[block] = found;
    const last = instructions[end - 1];
    if (isExit(last)) continue;
    const next = end < count ? end : -1;
    const target = jumpTarget(last);
    if (target === undefined) {
      if (next >= 0) cursor = flowInto(blockAt[next], state, inStates, queued, cursor);
      continue;
    }
    const targetIndex = indexOf(target);
    const unconditional = last.opcode === 0x05 || last.opcode === 0x06;
    const taken = unconditional ? true : decideBranch(last, state);
    if (taken !== true && next >= 0) cursor = flowInto(blockAt[next], state, inStates, queued, cursor);
    if (taken !== false && targetIndex >= 0) cursor = flowInto(blockAt[targetIndex], state, inStates, queued, cursor);
  }

  const reachable: boolean[] = new Array(count).fill(false);
  let deepest = 0;
  let found = 0;
  for (let block = 0; block < blockCount; block++) {
    if (!inStates[block]) continue; // Unreachable from the entry: the verifier never looks at it.
    reachable.fill(true, starts[block], ends[block]);
    if (blockDeepest[block] > deepest) deepest = blockDeepest[block];
    found |= blockFound[block];
  }
  const accesses: StackAccess[] = [];
  if (record) {
    deepest = 0;
    found = 0;
    for (let block = 0; block < blockCount; block++) {
      const entry = inStates[block];
      if (!entry) continue;
      copyState(entry, state);
      for (let at = starts[block]; at < ends[block]; at++) {
        const insn = instructions[at];
        if (insn.opcode === 0xe5) found |= FOUND_MAY_GOTO;
        for (const access of accessesOf(insn, at, state)) {
          accesses.push(access);
          if (-access.offset > deepest) deepest = -access.offset;
        }
        if (isHelperCall(insn) && insn.imm === BPF_LOOP_HELPER && bpfLoopInlined(state)) found |= FOUND_BPF_LOOP_INLINED;
        transfer(insn, state, insn.class === CLASS_LD && readOnlyAddress ? readOnlyAddress(at) : undefined);
      }
    }
    accesses.sort((a, b) => a.at - b.at);
  }

  const checkedDepth = Math.ceil(deepest / 8) * 8;
  const hidden = hiddenSlots({ bpfLoopInlined: (found & FOUND_BPF_LOOP_INLINED) !== 0, mayGoto: (found & FOUND_MAY_GOTO) !== 0 });
  return { checkedDepth, hiddenBytes: hidden.bytes, hiddenReasons: hidden.reasons, accesses, reachable };
}

/** bpf_loop is inlined when r2 holds a known callback and r4 (flags) is known to be 0. */
function bpfLoopInlined(state: State): boolean {
  const flags = state.registers[4];
  return state.registers[2]?.kind === 'function' && flags?.kind === 'const' && flags.value === 0;
}

/** Merges the state at the end of a block into a successor's entry; queues the successor if that changed. Returns the new scan cursor. */
function flowInto(successor: number, state: State, inStates: (State | undefined)[], queued: Uint8Array, cursor: number): number {
  const previous = inStates[successor];
  if (previous) {
    if (!meetInto(previous, state)) return cursor;
  } else {
    const copy: State = { registers: new Array(11).fill(undefined), spills: new Map() };
    copyState(state, copy);
    inStates[successor] = copy;
  }
  queued[successor] = 1;
  return successor < cursor ? successor : cursor;
}

/** The instruction index at a slot offset, or -1: a binary search when the offsets ascend (as decoded), a map otherwise. */
function indexOfOffsetLookup(instructions: Instruction[]): (offset: number) => number {
  let ascending = true;
  for (let i = 1; ascending && i < instructions.length; i++) ascending = instructions[i].offset > instructions[i - 1].offset;
  if (ascending) {
    return (offset) => {
      let low = 0;
      let high = instructions.length;
      while (low < high) {
        const middle = (low + high) >> 1;
        if (instructions[middle].offset < offset) low = middle + 1;
        else high = middle;
      }
      return low < instructions.length && instructions[low].offset === offset ? low : -1;
    };
  }
  const map = new Map<number, number>();
  instructions.forEach((insn, index) => map.set(insn.offset, index));
  return (offset) => map.get(offset) ?? -1;
}

function initialState(): State {
  const registers: RegisterValue[] = new Array(11).fill(undefined);
  registers[10] = { kind: 'fp', offset: 0 };
  return { registers, spills: new Map() };
}

/** Makes `to` a copy of `from` (registers and spills), reusing `to`'s storage. */
function copyState(from: State, to: State): void {
  for (let r = 0; r < 11; r++) to.registers[r] = from.registers[r];
  to.spills.clear();
  for (const [offset, value] of from.spills) to.spills.set(offset, value);
}

function sameValue(a: RegisterValue, b: RegisterValue): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  if (a.kind === 'fp' && b.kind === 'fp') return a.offset === b.offset;
  if (a.kind === 'const' && b.kind === 'const') return a.value === b.value;
  if (a.kind === 'function' && b.kind === 'function') return a.imm === b.imm;
  if (a.kind === 'readonly' && b.kind === 'readonly') return a.data === b.data && a.offset === b.offset;
  return false;
}

/** Forgets in `into` every fact `other` does not share; whether anything was forgotten. */
function meetInto(into: State, other: State): boolean {
  let changed = false;
  for (let r = 0; r < 11; r++) {
    const value = into.registers[r];
    if (value !== undefined && !sameValue(value, other.registers[r])) {
      into.registers[r] = undefined;
      changed = true;
    }
  }
  if (into.spills.size > 0) {
    for (const [offset, value] of into.spills) {
      if (!sameValue(value, other.spills.get(offset))) {
        into.spills.delete(offset);
        changed = true;
      }
    }
  }
  return changed;
}

/**
 * Work arrays, reused from function to function (the analysis runs one function at a time, to the
 * end): a large object has thousands of functions, and fresh typed arrays for each one add up to
 * garbage-collection work of their own. Each call hands out zeroed (blockAt: -1) arrays of at
 * least the length asked for.
 */
let scratchLeader = new Uint8Array(256);
let scratchBlockAt = new Int32Array(256);
let scratchQueued = new Uint8Array(64);
let scratchBlockDeepest = new Float64Array(64);
let scratchBlockFound = new Uint8Array(64);

function instructionScratch(count: number): { leader: Uint8Array; blockAt: Int32Array } {
  if (scratchLeader.length < count) {
    scratchLeader = new Uint8Array(count * 2);
    scratchBlockAt = new Int32Array(count * 2);
  }
  scratchLeader.fill(0, 0, count);
  scratchBlockAt.fill(-1, 0, count);
  return { leader: scratchLeader, blockAt: scratchBlockAt };
}

function blockScratch(blockCount: number): { queued: Uint8Array; blockDeepest: Float64Array; blockFound: Uint8Array } {
  if (scratchQueued.length < blockCount) {
    scratchQueued = new Uint8Array(blockCount * 2);
    scratchBlockDeepest = new Float64Array(blockCount * 2);
    scratchBlockFound = new Uint8Array(blockCount * 2);
  }
  scratchQueued.fill(0, 0, blockCount);
  scratchBlockDeepest.fill(0, 0, blockCount);
  scratchBlockFound.fill(0, 0, blockCount);
  return { queued: scratchQueued, blockDeepest: scratchBlockDeepest, blockFound: scratchBlockFound };
}

/**
 * Basic blocks in instruction order: block b runs from starts[b] to one before ends[b]; blockAt
 * maps the first instruction of each block to its number.
 */
function basicBlocks(instructions: Instruction[], indexOf: (offset: number) => number): { starts: number[]; ends: number[]; blockAt: Int32Array } {
  const count = instructions.length;
  const { leader, blockAt } = instructionScratch(count);
  leader[0] = 1;
  for (let index = 0; index < count; index++) {
    const insn = instructions[index];
    const cls = insn.class;
    if (cls !== 0x05 && cls !== 0x06) continue;
    const target = jumpTarget(insn);
    if (target !== undefined) {
      const targetIndex = indexOf(target);
      if (targetIndex >= 0) leader[targetIndex] = 1;
    }
    if ((target !== undefined || isExit(insn)) && index + 1 < count) leader[index + 1] = 1;
  }
  const starts: number[] = [];
  for (let index = 0; index < count; index++) {
    if (leader[index] === 0) continue;
    blockAt[index] = starts.length;
    starts.push(index);
  }
  const ends: number[] = new Array(starts.length);
  for (let block = 0; block < starts.length; block++) ends[block] = block + 1 < starts.length ? starts[block + 1] : count;
  return { starts, ends, blockAt };
}

/** The outcome of a conditional jump on known constants, or undefined when it depends on data. */
function decideBranch(insn: Instruction, state: State): boolean | undefined {
  const op = insn.opcode & 0xf0;
  if (op === 0xe0) return undefined; // may_goto: the verifier explores both ways.
  const left = state.registers[insn.dst];
  if (left?.kind !== 'const') return undefined;
  let rightValue: Constant;
  if ((insn.opcode & 0x08) === 0) rightValue = insn.imm;
  else {
    const right = state.registers[insn.src];
    if (right?.kind !== 'const') return undefined;
    rightValue = right.value;
  }
  const narrow = insn.class === 0x06; // JMP32 compares the low 32 bits.
  const leftValue = left.value;
  if (typeof leftValue === 'number' && typeof rightValue === 'number' && op !== 0x40) {
    return narrow ? compare(op, low32(leftValue), low32(rightValue)) : compare(op, leftValue, rightValue);
  }
  const bits = narrow ? 32 : 64;
  const l = bigOf(leftValue);
  const r = bigOf(rightValue);
  const unsignedLeft = BigInt.asUintN(bits, l);
  const unsignedRight = BigInt.asUintN(bits, r);
  const signedLeft = BigInt.asIntN(bits, l);
  const signedRight = BigInt.asIntN(bits, r);
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

/** The low 32 bits of a safe integer, as a signed 32-bit number. */
function low32(value: number): number {
  return Number.isInteger(value) && value >= -0x80000000 && value <= 0xffffffff ? value | 0 : Number(BigInt.asIntN(32, BigInt(value)));
}

/**
 * A comparison of two signed values that fit their width (safe integers for 64 bits, int32 for 32):
 * the signed operators compare them as they are; the unsigned ones agree with them when the signs
 * match, and otherwise the negative one is the larger (its top bit is set).
 */
function compare(op: number, l: number, r: number): boolean | undefined {
  const sameSign = l < 0 === r < 0;
  switch (op) {
    case 0x10: return l === r;
    case 0x50: return l !== r;
    case 0x20: return sameSign ? l > r : l < 0;
    case 0x30: return sameSign ? l >= r : l < 0;
    case 0xa0: return sameSign ? l < r : r < 0;
    case 0xb0: return sameSign ? l <= r : r < 0;
    case 0x60: return l > r;
    case 0x70: return l >= r;
    case 0xc0: return l < r;
    case 0xd0: return l <= r;
    default: return undefined;
  }
}

/** Reads `size` bytes of read-only data as an unsigned integer, or undefined past its end. */
function readConstant(data: ReadOnlyData, offset: number, size: number): Constant | undefined {
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
  return constant(value);
}

const CLASS_LD = 0x00;
const CLASS_LDX = 0x01;
const CLASS_ALU = 0x04;
const CLASS_ALU64 = 0x07;

/** Applies one instruction to the state, in place. */
function transfer(insn: Instruction, state: State, readOnly: { data: ReadOnlyData; offset: number } | undefined): void {
  const { registers } = state;
  const op = insn.opcode & 0xf0;
  const usesImmediate = (insn.opcode & 0x08) === 0;
  const cls = insn.class;

  if (cls === CLASS_ALU64) {
    const dst = registers[insn.dst];
    if (op === 0xb0 && insn.off === 0) {
      // mov: a copy of a register, or an immediate.
      registers[insn.dst] = usesImmediate ? { kind: 'const', value: insn.imm } : registers[insn.src];
    } else if ((op === 0x00 || op === 0x10) && usesImmediate && dst) {
      const delta = op === 0x00 ? insn.imm : -insn.imm;
      if (dst.kind === 'fp') registers[insn.dst] = { kind: 'fp', offset: dst.offset + delta };
      else if (dst.kind === 'readonly') registers[insn.dst] = { kind: 'readonly', data: dst.data, offset: dst.offset + delta };
      else if (dst.kind === 'const') registers[insn.dst] = { kind: 'const', value: addConstant(dst.value, delta) };
      else registers[insn.dst] = undefined;
    } else if (op === 0x00 && !usesImmediate && dst?.kind === 'const' && registers[insn.src]?.kind === 'fp') {
      // r1 = -56; r1 += r10
      const fp = registers[insn.src] as { kind: 'fp'; offset: number };
      registers[insn.dst] = { kind: 'fp', offset: fp.offset + Number(dst.value) };
    } else if (op === 0x00 && !usesImmediate && dst?.kind === 'fp' && registers[insn.src]?.kind === 'const') {
      const delta = Number((registers[insn.src] as { kind: 'const'; value: Constant }).value);
      registers[insn.dst] = { kind: 'fp', offset: dst.offset + delta };
    } else {
      registers[insn.dst] = undefined;
    }
    return;
  }
  if (cls === CLASS_ALU) {
    registers[insn.dst] = op === 0xb0 && usesImmediate && insn.off === 0 ? { kind: 'const', value: insn.imm >>> 0 } : undefined;
    return;
  }
  if (cls === 0x05 || cls === 0x06) {
    if (isHelperCall(insn) || isKfuncCall(insn) || isPseudoCall(insn)) {
      for (let r = 0; r <= 5; r++) registers[r] = undefined;
    }
    return;
  }
  if (cls === CLASS_LD) {
    if (isPseudoFunc(insn)) registers[insn.dst] = { kind: 'function', imm: insn.imm };
    else if (readOnly) registers[insn.dst] = { kind: 'readonly', data: readOnly.data, offset: readOnly.offset };
    else registers[insn.dst] = insn.imm64 !== undefined && insn.src === 0 ? { kind: 'const', value: constant(insn.imm64) } : undefined;
    return;
  }
  if (cls === CLASS_LDX && isLoadFromMemory(insn)) {
    const base = registers[insn.src];
    const size = memoryAccessSize(insn);
    const signExtends = (insn.opcode & 0xe0) === 0x80; // BPF_MEMSX
    if (base?.kind === 'fp' && size === 8) registers[insn.dst] = state.spills.get(base.offset + insn.off);
    else if (base?.kind === 'readonly' && !signExtends) {
      const value = readConstant(base.data, base.offset + insn.off, size);
      registers[insn.dst] = value === undefined ? undefined : { kind: 'const', value };
    } else registers[insn.dst] = undefined;
    return;
  }
  if (isStoreToMemory(insn)) {
    const base = registers[insn.dst];
    if (base?.kind === 'fp') {
      const offset = base.offset + insn.off;
      const size = memoryAccessSize(insn);
      if (state.spills.size > 0) {
        // Deleting the entry being visited is allowed while iterating a Map.
        for (const slot of state.spills.keys()) {
          if (slot < offset + size && offset < slot + 8) state.spills.delete(slot);
        }
      }
      const isRegisterStore = insn.class === 0x03 && (insn.opcode & 0xe0) === 0x60;
      if (isRegisterStore && size === 8 && registers[insn.src]?.kind === 'fp') state.spills.set(offset, registers[insn.src]);
    }
    // Atomic fetch operations write their source register (or r0 for cmpxchg).
    if ((insn.opcode & 0xe0) === 0xc0) {
      if (insn.imm === 0xf1) registers[0] = undefined;
      else if (insn.imm & 0x01) registers[insn.src] = undefined;
    }
  }
}

/** A constant plus a 32-bit delta, wrapped to 64 bits as the ALU64 add does. */
function addConstant(value: Constant, delta: number): Constant {
  if (typeof value === 'number') {
    const sum = value + delta;
    if (Number.isSafeInteger(sum)) return sum;
  }
  return constant(BigInt.asIntN(64, bigOf(value) + BigInt(delta)));
}

/** The lowest frame-pointer offset the instruction touches (0 for none), without building records. */
function deepestAccessOf(insn: Instruction, state: State): number {
  const { registers } = state;
  const cls = insn.class;
  if (cls === CLASS_ALU64 || cls === CLASS_ALU || cls === CLASS_LD) return 0;
  if (cls === 0x05 || cls === 0x06) {
    if (!(isHelperCall(insn) || isKfuncCall(insn) || isPseudoCall(insn))) return 0;
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
      if (source?.kind === 'const') access.value = bigOf(source.value);
    }
    return [access];
  }
  return [];
}
