/**
 * Decodes BPF machine code into one Instruction per logical instruction, as cilium/ebpf's asm
 * package does: `lddw` (ld_imm64) is a single instruction of width 2 that spans two 8-byte slots.
 * Instruction offsets count slots, the unit jumps and bpf2bpf calls are expressed in, so byte
 * offsets are converted exactly once, here.
 *
 * The opcode byte has two layouts, chosen by the class in its low three bits
 * (include/uapi/linux/bpf_common.h, Documentation/bpf/standardization/instruction-set.rst):
 *
 *   ALU, ALU64, JMP, JMP32:           LD, LDX, ST, STX:
 *     7      4    3     2    0          7    5   4   3    2    0
 *   +--------+------+-------+         +------+------+-------+
 *   |   op   | src  | class |         | mode | size | class |
 *   +--------+------+-------+         +------+------+-------+
 *              K = 0 (imm), X = 8 (register)
 */
import type { Problem } from '../common/problem';
import { lowerBound, partitionPoint } from '../common/numbers';
import { type ElfFile, type ElfRelocation, SHF_EXECINSTR, SHN_UNDEF } from './elf';

// Instruction classes, the low three bits of the opcode.
export const BPF_LD = 0x00;
export const BPF_LDX = 0x01;
export const BPF_ST = 0x02;
export const BPF_STX = 0x03;
export const BPF_ALU = 0x04;
export const BPF_JMP = 0x05;
export const BPF_JMP32 = 0x06;
export const BPF_ALU64 = 0x07;

// Load and store sizes (bits 3-4).
export const BPF_W = 0x00;
export const BPF_H = 0x08;
export const BPF_B = 0x10;
export const BPF_DW = 0x18;

// Load and store modes (bits 5-7).
export const BPF_IMM = 0x00;
export const BPF_ABS = 0x20;
export const BPF_IND = 0x40;
export const BPF_MEM = 0x60;
/** Sign-extending load (cpu v4). */
export const BPF_MEMSX = 0x80;
export const BPF_ATOMIC = 0xc0;

// Operand source (bit 3) for ALU and jump classes.
export const BPF_K = 0x00;
export const BPF_X = 0x08;
/** For BPF_END in class ALU, the source bit chooses the byte order instead. */
export const BPF_TO_LE = 0x00;
export const BPF_TO_BE = 0x08;

/**
 * ALU and jump operations share bits 4-7 and their values (0xb0 is MOV in one class, JLE in the
 * other): each has a type of its own, so that the compiler refuses to compare a jump's operation
 * with BPF_MOV, as cilium/ebpf's ALUOp and JumpOp do. Read them with aluOperation()/jumpOperation().
 */
declare const operationKind: unique symbol;
export type AluOp = number & { readonly [operationKind]: 'alu' };
export type JumpOp = number & { readonly [operationKind]: 'jump' };

// ALU operations (bits 4-7).
export const BPF_ADD = 0x00 as AluOp;
export const BPF_SUB = 0x10 as AluOp;
export const BPF_MUL = 0x20 as AluOp;
export const BPF_DIV = 0x30 as AluOp;
export const BPF_OR = 0x40 as AluOp;
export const BPF_AND = 0x50 as AluOp;
export const BPF_LSH = 0x60 as AluOp;
export const BPF_RSH = 0x70 as AluOp;
export const BPF_NEG = 0x80 as AluOp;
export const BPF_MOD = 0x90 as AluOp;
export const BPF_XOR = 0xa0 as AluOp;
export const BPF_MOV = 0xb0 as AluOp;
export const BPF_ARSH = 0xc0 as AluOp;
export const BPF_END = 0xd0 as AluOp;

// Jump operations (bits 4-7).
export const BPF_JA = 0x00 as JumpOp;
export const BPF_JEQ = 0x10 as JumpOp;
export const BPF_JGT = 0x20 as JumpOp;
export const BPF_JGE = 0x30 as JumpOp;
export const BPF_JSET = 0x40 as JumpOp;
export const BPF_JNE = 0x50 as JumpOp;
export const BPF_JSGT = 0x60 as JumpOp;
export const BPF_JSGE = 0x70 as JumpOp;
export const BPF_CALL = 0x80 as JumpOp;
export const BPF_EXIT = 0x90 as JumpOp;
export const BPF_JLT = 0xa0 as JumpOp;
export const BPF_JLE = 0xb0 as JumpOp;
export const BPF_JSLT = 0xc0 as JumpOp;
export const BPF_JSLE = 0xd0 as JumpOp;
/** Conditional pseudo-jump; with src_reg BPF_MAY_GOTO it is `may_goto`. */
export const BPF_JCOND = 0xe0 as JumpOp;
export const BPF_MAY_GOTO = 0;

// Atomic operations, in the imm field of BPF_STX | BPF_ATOMIC.
export const BPF_FETCH = 0x01;
export const BPF_XCHG = 0xe0 | BPF_FETCH;
export const BPF_CMPXCHG = 0xf0 | BPF_FETCH;
export const BPF_LOAD_ACQ = 0x100;
export const BPF_STORE_REL = 0x110;

// src_reg values that change what a call or an ld_imm64 means.
export const BPF_PSEUDO_MAP_FD = 1;
export const BPF_PSEUDO_MAP_VALUE = 2;
export const BPF_PSEUDO_BTF_ID = 3;
export const BPF_PSEUDO_FUNC = 4;
export const BPF_PSEUDO_MAP_IDX = 5;
export const BPF_PSEUDO_MAP_IDX_VALUE = 6;
export const BPF_PSEUDO_CALL = 1;
export const BPF_PSEUDO_KFUNC_CALL = 2;

/** bpf_tail_call's helper id. */
export const BPF_TAIL_CALL_HELPER = 12;

/** The frame pointer, read-only; the stack lies below it. */
export const BPF_REG_FP = 10;

/** One slot of BPF code is 8 bytes; lddw takes two. */
export const INSTRUCTION_SLOT_BYTES = 8;

/** ld_imm64 (lddw): a 64-bit immediate over two slots. */
export const LDDW_OPCODE = BPF_LD | BPF_IMM | BPF_DW;
const MAX_REPORTED_UNKNOWN_OPCODES = 5;
/** A call of a helper, a kfunc or a subprogram (src_reg says which). */
export const CALL_OPCODE = BPF_JMP | BPF_CALL;
/** rX = rY, the 64-bit register copy. */
export const MOV64_REGISTER_OPCODE = BPF_ALU64 | BPF_MOV | BPF_X;
const EXIT_OPCODE = BPF_JMP | BPF_EXIT;

export interface Instruction {
  /** Offset in 8-byte units from the start of its section (what jumps and calls count in). */
  offset: number;
  opcode: number;
  /** The low 3 bits of the opcode: BPF_LD ... BPF_ALU64. */
  class: number;
  dst: number;
  src: number;
  /** Signed 16-bit offset: the jump distance, or the displacement of a memory access. */
  off: number;
  /** Signed 32-bit immediate; for lddw, the low half of imm64. */
  imm: number;
  /** lddw only: the full 64-bit immediate, unsigned. */
  imm64?: bigint;
  width: 1 | 2;
}

/**
 * One slot as it lies in the section. Registers share byte 1; which nibble is which follows the
 * object's byte order, so a big-endian (bpfeb) object keeps dst in the high nibble:
 *
 *   byte  0        1                2       4                 8
 *         +--------+----------------+-------+-----------------+
 *         | opcode | regs           | off   | imm             |
 *         +--------+----------------+-------+-----------------+
 *   bpfel:           src:4 | dst:4    i16     i32, little-endian
 *   bpfeb:           dst:4 | src:4    i16     i32, big-endian
 *
 * lddw puts the high 32 bits of its immediate in the imm of a second slot whose other fields are 0.
 */
export function decodeInstructions(
  data: Uint8Array,
  littleEndian: boolean,
  sectionName: string,
  /** ElfSection.offset, so problem offsets point into the file; 0 leaves them section-relative. */
  sectionFileOffset = 0,
): { instructions: Instruction[]; problems: Problem[] } {
  const { code, problems } = decodePackedInstructions(data, littleEndian, sectionName, sectionFileOffset);
  return { instructions: materializeInstructions(code, 0, code.count), problems };
}

/**
 * A section's instructions without Instruction objects: the section's bytes, where each
 * instruction starts, and the little that decoding adds (lddw's high half, libbpf's src_reg
 * rewrites). A large object has hundreds of thousands of instructions, and the analysis needs
 * objects only for the functions someone looks at; fields are read from the bytes when asked.
 */
export interface PackedInstructions {
  count: number;
  /** Instruction.offset of each instruction: its slot, in 8-byte units from the section start. */
  offsets: Int32Array;
  /** The section's bytes. */
  bytes: Uint8Array;
  littleEndian: boolean;
  /** For each complete lddw (width 2), by index: the high 32 bits of its immediate. */
  lddwHighs: Map<number, number>;
  /** src_reg by index where it differs from the bytes (libbpf's rewrites). */
  srcOverrides: Map<number, number>;
  /**
   * The index of every instruction of class JMP or JMP32 (jumps, calls, exits) and every lddw,
   * ascending: all that the passes over control flow and calls look at, a small part of the code.
   */
  controls: Int32Array;
}

/** A function's code: instructions `first` to `end` (exclusive) of its section's packed code. */
export interface PackedRange {
  code: PackedInstructions;
  first: number;
  end: number;
}

/**
 * Where a function's control instructions lie in `code.controls`: positions `from` to `to`
 * (exclusive), for passes that look only at jumps, calls and lddw.
 */
export function controlsOf(range: PackedRange): { from: number; to: number } {
  const { controls } = range.code;
  return { from: lowerBound(controls, range.first), to: lowerBound(controls, range.end) };
}

/** The opcode of instruction `index` of packed code. */
export function packedOpcode(code: PackedInstructions, index: number): number {
  return code.bytes[code.offsets[index] * INSTRUCTION_SLOT_BYTES];
}

/** decodeInstructions without the objects: the same instructions and problems, packed. */
export function decodePackedInstructions(
  data: Uint8Array,
  littleEndian: boolean,
  sectionName: string,
  sectionFileOffset = 0,
): { code: PackedInstructions; problems: Problem[] } {
  const problems: Problem[] = [];
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const slotCount = Math.floor(data.length / INSTRUCTION_SLOT_BYTES);
  const offsets = new Int32Array(slotCount);
  const lddwHighs = new Map<number, number>();
  const controls = new Int32Array(slotCount);
  let controlCount = 0;
  let count = 0;
  let unknownOpcodes = 0;
  const bytes = data;

  // One byte per slot decides everything here; the other fields stay in the bytes until asked for.
  for (let slot = 0; slot < slotCount; slot++) {
    const at = slot * INSTRUCTION_SLOT_BYTES;
    const opcode = bytes[at];
    const index = count++;
    offsets[index] = slot;
    const cls = opcodeClass(opcode);
    if (cls === BPF_JMP || cls === BPF_JMP32 || opcode === LDDW_OPCODE) controls[controlCount++] = index;
    const known = KNOWN_OPCODES[opcode];
    if (known === 1) continue;
    if (opcode === LDDW_OPCODE) {
      if (slot + 1 >= slotCount) {
        problems.push({
          message: `section ${sectionName}: lddw at instruction ${slot} (byte ${hex(at)}) is missing its second half`,
          offset: at,
        });
        break;
      }
      const next = at + INSTRUCTION_SLOT_BYTES;
      const high = view.getUint32(next + 4, littleEndian);
      if (view.getUint8(next) !== 0 || view.getUint8(next + 1) !== 0 || view.getInt16(next + 2, littleEndian) !== 0) {
        problems.push({
          message: `section ${sectionName}: lddw at instruction ${slot} (byte ${hex(at)}): its second half has opcode ${hex(view.getUint8(next))}, not the expected all-zero fields`,
          offset: next,
        });
      }
      lddwHighs.set(index, high);
      slot++;
    } else if (
      known === 0 ||
      !isKnownOpcode({ offset: slot, opcode, class: opcodeClass(opcode), dst: 0, src: 0, off: 0, imm: view.getInt32(at + 4, littleEndian), width: 1 })
    ) {
      unknownOpcodes++;
      if (unknownOpcodes <= MAX_REPORTED_UNKNOWN_OPCODES) {
        problems.push({
          message: `section ${sectionName}: unknown opcode ${hex(opcode)} at instruction ${slot} (byte ${hex(at)})`,
          offset: at,
        });
      }
    }
  }

  if (unknownOpcodes > MAX_REPORTED_UNKNOWN_OPCODES) {
    // Past a handful, the section is most likely not BPF code at all; listing every slot helps no one.
    problems.push({ message: `section ${sectionName}: ${unknownOpcodes - MAX_REPORTED_UNKNOWN_OPCODES} more unknown opcodes not listed` });
  }
  const leftover = data.length % INSTRUCTION_SLOT_BYTES;
  if (leftover !== 0) {
    const at = data.length - leftover;
    problems.push({
      message: `section ${sectionName}: truncated instruction at byte ${hex(at)} (${leftover} bytes left over, instructions are 8)`,
      offset: at,
    });
  }
  const code: PackedInstructions = {
    count,
    offsets,
    bytes: data,
    littleEndian,
    lddwHighs,
    srcOverrides: new Map(),
    controls: controls.subarray(0, controlCount),
  };
  return { code, problems: inFile(problems, sectionFileOffset) };
}

/**
 * Fills `instruction` with instruction `index` of packed code (imm64 undefined unless a complete
 * lddw): one object reused for a whole pass reads the code without allocating per instruction.
 */
export function readPacked(code: PackedInstructions, index: number, instruction: Instruction): void {
  const { bytes } = code;
  const slot = code.offsets[index];
  const at = slot * INSTRUCTION_SLOT_BYTES;
  const opcode = bytes[at];
  const regs = bytes[at + 1];
  instruction.offset = slot;
  instruction.opcode = opcode;
  instruction.class = opcodeClass(opcode);
  if (code.littleEndian) {
    instruction.dst = regs & 0x0f;
    instruction.src = regs >> 4;
    instruction.off = ((bytes[at + 2] | (bytes[at + 3] << 8)) << 16) >> 16;
    instruction.imm = bytes[at + 4] | (bytes[at + 5] << 8) | (bytes[at + 6] << 16) | (bytes[at + 7] << 24);
  } else {
    instruction.dst = regs >> 4;
    instruction.src = regs & 0x0f;
    instruction.off = ((bytes[at + 3] | (bytes[at + 2] << 8)) << 16) >> 16;
    instruction.imm = bytes[at + 7] | (bytes[at + 6] << 8) | (bytes[at + 5] << 16) | (bytes[at + 4] << 24);
  }
  if (code.srcOverrides.size > 0) {
    const src = code.srcOverrides.get(index);
    if (src !== undefined) instruction.src = src;
  }
  const high = opcode === LDDW_OPCODE ? code.lddwHighs.get(index) : undefined;
  if (high === undefined) {
    instruction.width = 1;
    if (instruction.imm64 !== undefined) instruction.imm64 = undefined;
  } else {
    instruction.width = 2;
    instruction.imm64 = (BigInt(high) << 32n) | BigInt(instruction.imm >>> 0);
  }
}

/**
 * The instructions `from` to `to` (exclusive) of packed code written into `pool`'s objects, which
 * are reused from call to call (the pool grows to the longest range asked for). The array and its
 * objects are valid until the next call with the same pool: for a pass over one function's code
 * that keeps no reference to its instructions, without allocating per instruction.
 */
export function instructionsInto(code: PackedInstructions, from: number, to: number, pool: Instruction[]): Instruction[] {
  const length = to > from ? to - from : 0;
  while (pool.length < length) pool.push({ offset: 0, opcode: 0, class: 0, dst: 0, src: 0, off: 0, imm: 0, width: 1, imm64: undefined });
  const view = pool.length === length ? pool : pool.slice(0, length);
  for (let at = 0; at < length; at++) readPacked(code, from + at, view[at]);
  return view;
}

/** The Instruction objects for instructions `from` to `to` (exclusive) of packed code, as decodeInstructions builds them. */
export function materializeInstructions(code: PackedInstructions, from: number, to: number): Instruction[] {
  const instructions: Instruction[] = [];
  for (let index = from; index < to; index++) {
    const instruction: Instruction = { offset: 0, opcode: 0, class: 0, dst: 0, src: 0, off: 0, imm: 0, width: 1 };
    readPacked(code, index, instruction);
    instructions.push(instruction);
  }
  return instructions;
}

/** Problems inside a section carry section-relative offsets until the section's place in the file is added. */
function inFile(problems: Problem[], sectionFileOffset: number): Problem[] {
  if (sectionFileOffset === 0) return problems;
  return problems.map((p) => (p.offset === undefined ? p : { ...p, offset: p.offset + sectionFileOffset }));
}

function hex(n: number): string {
  return '0x' + n.toString(16);
}

/** The class of an opcode (BPF_LD ... BPF_ALU64): its low three bits. */
export function opcodeClass(opcode: number): number {
  return opcode & 0x07;
}

/** The operation of an ALU or ALU64 opcode (BPF_ADD, BPF_MOV, ...). */
export function aluOperation(i: Pick<Instruction, 'opcode'>): AluOp {
  return (i.opcode & 0xf0) as AluOp;
}

/** The operation of a JMP or JMP32 opcode (BPF_JEQ, BPF_CALL, ...). */
export function jumpOperation(i: Pick<Instruction, 'opcode'>): JumpOp {
  return (i.opcode & 0xf0) as JumpOp;
}

/** Whether an ALU or jump opcode takes its right operand from imm (BPF_K) rather than src (BPF_X). */
export function usesImmediate(i: Pick<Instruction, 'opcode'>): boolean {
  return (i.opcode & BPF_X) === 0;
}

/** BPF_K or BPF_X for ALU and jump opcodes. */
export function source(i: Instruction): number {
  return i.opcode & 0x08;
}

/** BPF_W, BPF_H, BPF_B or BPF_DW for load and store opcodes. */
export function sizeField(i: Instruction): number {
  return i.opcode & 0x18;
}

/** BPF_IMM, BPF_ABS, BPF_IND, BPF_MEM, BPF_MEMSX or BPF_ATOMIC for load and store opcodes. */
export function mode(i: Pick<Instruction, 'opcode'>): number {
  return i.opcode & 0xe0;
}

export function isLddw(i: Instruction): boolean {
  return i.opcode === LDDW_OPCODE;
}

/**
 * A bpf2bpf call. In a relocatable object a call to an extern kfunc also carries src_reg 1 (LLVM
 * emits it that way and libbpf rewrites it to 2 while loading), so check the call's relocation
 * before trusting this on an object's code.
 */
export function isPseudoCall(i: Instruction): boolean {
  return i.opcode === CALL_OPCODE && i.src === BPF_PSEUDO_CALL;
}

/** A call to a kernel helper by id (imm). */
export function isHelperCall(i: Instruction): boolean {
  return i.opcode === CALL_OPCODE && i.src === 0;
}

/** A kfunc call as the kernel sees it, after libbpf has resolved the extern. */
export function isKfuncCall(i: Instruction): boolean {
  return i.opcode === CALL_OPCODE && i.src === BPF_PSEUDO_KFUNC_CALL;
}

/**
 * A function's address taken for a callback (bpf_loop, timers). In a relocatable object LLVM
 * leaves src_reg 0 and relocates the lddw against the code section (R_BPF_64_64); libbpf sets
 * src_reg 4 while loading, so object code needs the relocation check as well.
 */
export function isPseudoFunc(i: Instruction): boolean {
  return i.opcode === LDDW_OPCODE && i.src === BPF_PSEUDO_FUNC;
}

export function isExit(i: Instruction): boolean {
  return i.opcode === EXIT_OPCODE;
}

export function isTailCall(i: Instruction): boolean {
  return isHelperCall(i) && i.imm === BPF_TAIL_CALL_HELPER;
}

function isAtomic(i: Instruction): boolean {
  return i.class === BPF_STX && mode(i) === BPF_ATOMIC;
}

/** LDX with mode MEM or MEMSX, or a load-acquire (which is encoded in class STX). */
export function isLoadFromMemory(i: Instruction): boolean {
  if (i.class === BPF_LDX) return mode(i) === BPF_MEM || mode(i) === BPF_MEMSX;
  return isAtomic(i) && i.imm === BPF_LOAD_ACQ;
}

/**
 * ST or STX with mode MEM, and every atomic operation except load-acquire: they all write the
 * memory at dst + off (the read-modify-write ones read it too).
 */
export function isStoreToMemory(i: Instruction): boolean {
  if (i.class === BPF_ST || i.class === BPF_STX) {
    if (mode(i) === BPF_MEM) return true;
    return isAtomic(i) && i.imm !== BPF_LOAD_ACQ;
  }
  return false;
}

/** The register that holds the address of a memory access: src for loads, dst for stores and atomics. */
export function memoryBaseRegister(i: Instruction): number | undefined {
  if (isLoadFromMemory(i)) return i.src;
  if (isStoreToMemory(i)) return i.dst;
  return undefined;
}

export function memoryAccessSize(i: Instruction): 1 | 2 | 4 | 8 {
  switch (sizeField(i)) {
    case BPF_B:
      return 1;
    case BPF_H:
      return 2;
    case BPF_W:
      return 4;
    default:
      return 8;
  }
}

/**
 * Where control goes when a jump is taken, in instruction slots: `offset + off + 1`, except for
 * JMP32|JA (gotol), whose 32-bit distance is in imm. Undefined for anything that is not a jump;
 * calls and exit are not jumps.
 */
export function jumpTarget(i: Instruction): number | undefined {
  if (i.class !== BPF_JMP && i.class !== BPF_JMP32) return undefined;
  const op = jumpOperation(i);
  if (op === BPF_CALL || op === BPF_EXIT) return undefined;
  if (i.class === BPF_JMP32 && op === BPF_JA) return i.offset + i.imm + 1;
  if (op === BPF_JA && source(i) === BPF_X) return undefined; // gotox: an indirect jump.
  return i.offset + i.off + 1;
}

/** The callee of a bpf2bpf call within the same section, in slots: `offset + imm + 1`. */
export function callTarget(i: Instruction): number | undefined {
  return isPseudoCall(i) ? i.offset + i.imm + 1 : undefined;
}

/** A jump whose fall-through is also possible (everything but JA, gotol and exit). */
export function isConditionalJump(i: Instruction): boolean {
  if (i.class !== BPF_JMP && i.class !== BPF_JMP32) return false;
  const op = jumpOperation(i);
  return op !== BPF_JA && op !== BPF_CALL && op !== BPF_EXIT;
}

/**
 * Whether the opcode is one the kernel defines. Only clearly undefined encodings are rejected;
 * the verifier remains the judge of operand rules.
 */
export function isKnownOpcode(i: Instruction): boolean {
  const size = sizeField(i);
  switch (i.class) {
    case BPF_LD:
      if (i.opcode === LDDW_OPCODE) return true;
      return (mode(i) === BPF_ABS || mode(i) === BPF_IND) && size !== BPF_DW;
    case BPF_LDX:
      return mode(i) === BPF_MEM || (mode(i) === BPF_MEMSX && size !== BPF_DW);
    case BPF_ST:
      return mode(i) === BPF_MEM;
    case BPF_STX:
      if (mode(i) === BPF_MEM) return true;
      if (mode(i) !== BPF_ATOMIC) return false;
      if (i.imm === BPF_LOAD_ACQ || i.imm === BPF_STORE_REL) return true;
      return (size === BPF_W || size === BPF_DW) && isAtomicReadModifyWrite(i.imm);
    case BPF_ALU:
    case BPF_ALU64: {
      const op = aluOperation(i);
      // 0xe0 and 0xf0 are unassigned; ALU64 has no byte-order source bit, only bswap (BPF_K).
      if (op > BPF_END) return false;
      return !(i.class === BPF_ALU64 && op === BPF_END && source(i) === BPF_X);
    }
    case BPF_JMP: {
      const op = jumpOperation(i);
      if (op === BPF_CALL || op === BPF_EXIT || op === BPF_JCOND) return source(i) === BPF_K;
      return op <= BPF_JSLE;
    }
    case BPF_JMP32: {
      const op = jumpOperation(i);
      if (op === BPF_JA) return source(i) === BPF_K;
      return op !== BPF_CALL && op !== BPF_EXIT && op <= BPF_JSLE;
    }
    default:
      return false;
  }
}

function isAtomicReadModifyWrite(imm: number): boolean {
  const op = imm & ~BPF_FETCH;
  if (imm === BPF_XCHG || imm === BPF_CMPXCHG) return true;
  return op === BPF_ADD || op === BPF_OR || op === BPF_AND || op === BPF_XOR;
}

/**
 * isKnownOpcode by opcode byte: 1 known whatever the other fields, 0 unknown, 2 when the answer
 * depends on imm (atomics), so decoding asks isKnownOpcode only for those; 3 for lddw.
 */
const KNOWN_OPCODES: Uint8Array = (() => {
  const table = new Uint8Array(256);
  for (let opcode = 0; opcode < 256; opcode++) {
    const probe = (imm: number): boolean => isKnownOpcode({ offset: 0, opcode, class: opcodeClass(opcode), dst: 0, src: 0, off: 0, imm, width: 1 });
    const isAtomicOpcode = opcodeClass(opcode) === BPF_STX && mode({ opcode }) === BPF_ATOMIC;
    table[opcode] = isAtomicOpcode ? 2 : probe(0) ? 1 : 0;
  }
  table[LDDW_OPCODE] = 3; // Known, with a second slot to read.
  return table;
})();

/**
 * Rewrites src_reg the way libbpf does while it loads an object (bpf_program__record_reloc and
 * bpf_object__relocate), so that isKfuncCall and isPseudoFunc can be trusted on an object's code:
 *
 * - LLVM emits a call to an extern kfunc with src_reg 1, like a bpf2bpf call, relocated against
 *   the undefined extern symbol; libbpf makes it src_reg 2 (BPF_PSEUDO_KFUNC_CALL).
 * - LLVM emits a callback's address (bpf_loop, timers) as an lddw with src_reg 0, relocated against
 *   a function or section symbol in an executable section; libbpf makes it src_reg 4 (BPF_PSEUDO_FUNC).
 *
 * Immediates are left alone: they still hold the object's relocation addends. Instructions that
 * change are copied; the input array is not modified.
 */
export function applyLibbpfSourceRegisters(
  instructions: readonly Instruction[],
  sectionIndex: number,
  elf: Pick<ElfFile, 'relocations' | 'symbols' | 'sections'>,
): Instruction[] {
  const relocations = elf.relocations.get(sectionIndex) ?? [];
  const result = instructions.slice();
  const rewrite = (index: number, relocation: ElfRelocation) => {
    const instruction = instructions[index];
    const symbol = elf.symbols[relocation.symbolIndex];
    if (!symbol) return;
    if (instruction.opcode === CALL_OPCODE && symbol.sectionIndex === SHN_UNDEF) {
      result[index] = { ...instruction, src: BPF_PSEUDO_KFUNC_CALL };
      return;
    }
    const targetSection = elf.sections[symbol.sectionIndex];
    if (isLddw(instruction) && symbol.sectionIndex !== SHN_UNDEF && targetSection && (targetSection.flags & SHF_EXECINSTR) !== 0) {
      result[index] = { ...instruction, src: BPF_PSEUDO_FUNC };
    }
  };
  let ascending = true;
  for (let i = 1; ascending && i < instructions.length; i++) ascending = instructions[i].offset > instructions[i - 1].offset;
  if (!ascending) {
    const relocationsBySlot = new Map<number, ElfRelocation>();
    for (const relocation of relocations) relocationsBySlot.set(relocation.offset / INSTRUCTION_SLOT_BYTES, relocation);
    instructions.forEach((instruction, index) => {
      const relocation = relocationsBySlot.get(instruction.offset);
      if (relocation) rewrite(index, relocation);
    });
    return result;
  }
  forEachRelocatedInstruction(relocations, instructions.length, (index) => instructions[index].offset, rewrite);
  return result;
}

/**
 * applyLibbpfSourceRegisters on packed code, in place: the src_reg of each relocated call to an
 * extern becomes 2, of each relocated lddw of a code address 4.
 */
export function applyLibbpfSourceRegistersPacked(
  code: PackedInstructions,
  sectionIndex: number,
  elf: Pick<ElfFile, 'relocations' | 'symbols' | 'sections'>,
): void {
  const relocations = elf.relocations.get(sectionIndex) ?? [];
  const { offsets, count } = code;
  forEachRelocatedInstruction(
    relocations,
    count,
    (index) => offsets[index],
    (index, relocation) => {
      const symbol = elf.symbols[relocation.symbolIndex];
      if (!symbol) return;
      const opcode = packedOpcode(code, index);
      if (opcode === CALL_OPCODE && symbol.sectionIndex === SHN_UNDEF) {
        code.srcOverrides.set(index, BPF_PSEUDO_KFUNC_CALL);
        return;
      }
      const targetSection = elf.sections[symbol.sectionIndex];
      if (opcode === LDDW_OPCODE && symbol.sectionIndex !== SHN_UNDEF && targetSection && (targetSection.flags & SHF_EXECINSTR) !== 0) {
        code.srcOverrides.set(index, BPF_PSEUDO_FUNC);
      }
    },
  );
}

/**
 * Calls `visit` for each instruction a relocation applies to, with the last relocation of its slot
 * (the one that counts). Relocations are few next to instructions, so each is found by binary
 * search over the ascending instruction offsets.
 */
function forEachRelocatedInstruction(
  relocations: readonly ElfRelocation[],
  count: number,
  offsetAt: (index: number) => number,
  visit: (index: number, relocation: ElfRelocation) => void,
): void {
  const done = new Set<number>();
  for (let r = relocations.length - 1; r >= 0; r--) {
    const slot = relocations[r].offset / INSTRUCTION_SLOT_BYTES;
    if (done.has(slot)) continue;
    done.add(slot);
    const low = partitionPoint(0, count, (index) => offsetAt(index) < slot);
    if (low < count && offsetAt(low) === slot) visit(low, relocations[r]);
  }
}
