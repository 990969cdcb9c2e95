/**
 * Prints instructions the way the kernel's disassembler does (kernel/bpf/disasm.c, print_bpf_insn),
 * which is what `bpftool prog dump xlated` and the verifier log show: `r1 += -56`,
 * `*(u64 *)(r10 -24) = r1`, `if r1 != 0x0 goto pc+3`, `call bpf_trace_printk#6`. Matching the
 * kernel's spelling lets a user hold our output next to a verifier log line by line.
 *
 * formatInstruction leaves out the kernel's "(bf) " opcode prefix; formatListing adds it back with
 * the instruction offset, as bpftool prints a whole program.
 */
import { helperName } from './helperNames';
import {
  BPF_ABS,
  BPF_ADD,
  BPF_ALU,
  BPF_AND,
  BPF_ARSH,
  BPF_B,
  BPF_H,
  BPF_JEQ,
  BPF_JGE,
  BPF_JGT,
  BPF_JLE,
  BPF_JLT,
  BPF_JNE,
  BPF_JSET,
  BPF_JSGE,
  BPF_JSGT,
  BPF_JSLE,
  BPF_JSLT,
  BPF_LSH,
  BPF_MUL,
  BPF_OR,
  BPF_RSH,
  BPF_SUB,
  BPF_W,
  BPF_XOR,
  BPF_ALU64,
  BPF_ATOMIC,
  BPF_CALL,
  BPF_CMPXCHG,
  BPF_DIV,
  BPF_DW,
  BPF_END,
  BPF_EXIT,
  BPF_FETCH,
  BPF_IMM,
  BPF_IND,
  BPF_JA,
  BPF_JCOND,
  BPF_JMP,
  BPF_JMP32,
  BPF_LD,
  BPF_LDX,
  BPF_LOAD_ACQ,
  BPF_MAY_GOTO,
  BPF_MEM,
  BPF_MEMSX,
  BPF_MOD,
  BPF_MOV,
  BPF_NEG,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_FUNC,
  BPF_PSEUDO_KFUNC_CALL,
  BPF_PSEUDO_MAP_FD,
  BPF_PSEUDO_MAP_IDX,
  BPF_PSEUDO_MAP_IDX_VALUE,
  BPF_PSEUDO_MAP_VALUE,
  BPF_ST,
  BPF_STORE_REL,
  BPF_STX,
  BPF_TO_BE,
  BPF_X,
  BPF_XCHG,
  type Instruction,
  type AluOp,
  type JumpOp,
  aluOperation,
  jumpOperation,
  mode,
  sizeField,
  source,
} from './instruction';

export interface FormatNames {
  /** The callee of a bpf2bpf or kfunc call, or the function a BPF_PSEUDO_FUNC lddw loads. */
  callTarget?: string;
  /** Helper names by id; the table generated from linux/bpf.h when left out. */
  helper?: (id: number) => string | undefined;
  /** What an lddw loads, when a relocation says (a map or a data section): printed as its value. */
  loadTarget?: string;
}

const ALU_OPERATORS: Record<AluOp, string> = {
  [BPF_ADD]: '+=',
  [BPF_SUB]: '-=',
  [BPF_MUL]: '*=',
  [BPF_DIV]: '/=',
  [BPF_OR]: '|=',
  [BPF_AND]: '&=',
  [BPF_LSH]: '<<=',
  [BPF_RSH]: '>>=',
  [BPF_MOD]: '%=',
  [BPF_XOR]: '^=',
  [BPF_MOV]: '=',
  [BPF_ARSH]: 's>>=',
};

/** The atomic operations without BPF_FETCH, in imm: ALU operations. */
const ATOMIC_OPERATIONS: Record<AluOp, string> = { [BPF_ADD]: 'add', [BPF_OR]: 'or', [BPF_AND]: 'and', [BPF_XOR]: 'xor' };

const JUMP_OPERATORS: Record<JumpOp, string> = {
  [BPF_JEQ]: '==',
  [BPF_JGT]: '>',
  [BPF_JGE]: '>=',
  [BPF_JSET]: '&',
  [BPF_JNE]: '!=',
  [BPF_JSGT]: 's>',
  [BPF_JSGE]: 's>=',
  [BPF_JLT]: '<',
  [BPF_JLE]: '<=',
  [BPF_JSLT]: 's<',
  [BPF_JSLE]: 's<=',
};

const UNSIGNED_SIZES: Record<number, string> = { [BPF_W]: 'u32', [BPF_H]: 'u16', [BPF_B]: 'u8', [BPF_DW]: 'u64' };
const SIGNED_SIZES: Record<number, string> = { [BPF_W]: 's32', [BPF_H]: 's16', [BPF_B]: 's8' };
/** movsx's off gives the width of the sign-extended source. */
const MOVSX_CASTS: Record<number, string> = { 8: '(s8)', 16: '(s16)', 32: '(s32)' };

/** The kernel's `%+d`: a sign always, so offset 0 prints as "+0". */
function signed(n: number): string {
  return n < 0 ? String(n) : `+${n}`;
}

function invalid(i: Instruction): string {
  return `<invalid opcode 0x${i.opcode.toString(16).padStart(2, '0')}>`;
}

/** The text of one instruction as `bpftool prog dump xlated` prints it, without the "(xx) " prefix. */
export function formatInstruction(i: Instruction, names?: FormatNames): string {
  switch (i.class) {
    case BPF_ALU:
    case BPF_ALU64:
      return formatAlu(i);
    case BPF_STX:
      return formatStx(i);
    case BPF_ST:
      if (mode(i) === BPF_MEM) return `*(${UNSIGNED_SIZES[sizeField(i)]} *)(r${i.dst} ${signed(i.off)}) = ${i.imm}`;
      // The verifier inserts this speculation barrier; it never comes from a compiler.
      if (mode(i) === BPF_ATOMIC) return 'nospec';
      return invalid(i);
    case BPF_LDX: {
      if (mode(i) !== BPF_MEM && mode(i) !== BPF_MEMSX) return invalid(i);
      const size = mode(i) === BPF_MEMSX ? SIGNED_SIZES[sizeField(i)] : UNSIGNED_SIZES[sizeField(i)];
      if (size === undefined) return invalid(i);
      return `r${i.dst} = *(${size} *)(r${i.src} ${signed(i.off)})`;
    }
    case BPF_LD:
      return formatLd(i, names);
    case BPF_JMP:
    case BPF_JMP32:
      return formatJump(i, names);
    default:
      return invalid(i);
  }
}

function formatAlu(i: Instruction): string {
  const reg = i.class === BPF_ALU ? 'w' : 'r';
  const op = aluOperation(i);
  if (op === BPF_END) {
    // ALU64 | END is the unconditional bswap of cpu v4; ALU | END converts to a byte order.
    if (i.class === BPF_ALU64) return `r${i.dst} = bswap${i.imm} r${i.dst}`;
    return `r${i.dst} = ${source(i) === BPF_TO_BE ? 'be' : 'le'}${i.imm} r${i.dst}`;
  }
  if (op === BPF_NEG) return `${reg}${i.dst} = -${reg}${i.dst}`;
  if (i.class === BPF_ALU64 && op === BPF_MOV && source(i) === BPF_X && i.off === 1) {
    return `r${i.dst} = addr_space_cast(r${i.src}, ${i.imm >>> 16}, ${i.imm & 0xffff})`;
  }
  const signedDivision = (op === BPF_DIV || op === BPF_MOD) && i.off === 1;
  const operator = signedDivision ? (op === BPF_DIV ? 's/=' : 's%=') : ALU_OPERATORS[op];
  if (operator === undefined) return invalid(i);
  if (source(i) === BPF_X) {
    const cast = op === BPF_MOV ? (MOVSX_CASTS[i.off] ?? '') : '';
    return `${reg}${i.dst} ${operator} ${cast}${reg}${i.src}`;
  }
  return `${reg}${i.dst} ${operator} ${i.imm}`;
}

function formatStx(i: Instruction): string {
  const size = UNSIGNED_SIZES[sizeField(i)];
  const address = `(r${i.dst} ${signed(i.off)})`;
  if (mode(i) === BPF_MEM) return `*(${size} *)${address} = r${i.src}`;
  if (mode(i) !== BPF_ATOMIC) return invalid(i);
  const width = sizeField(i) === BPF_DW ? '64' : '';
  const plain = ATOMIC_OPERATIONS[i.imm as AluOp];
  if (plain !== undefined) return `lock *(${size} *)${address} ${ALU_OPERATORS[i.imm as AluOp]} r${i.src}`;
  const fetching = (i.imm & BPF_FETCH) !== 0 ? ATOMIC_OPERATIONS[(i.imm & ~BPF_FETCH) as AluOp] : undefined;
  if (fetching !== undefined) return `r${i.src} = atomic${width}_fetch_${fetching}((${size} *)${address}, r${i.src})`;
  if (i.imm === BPF_CMPXCHG) return `r0 = atomic${width}_cmpxchg((${size} *)${address}, r0, r${i.src})`;
  if (i.imm === BPF_XCHG) return `r${i.src} = atomic${width}_xchg((${size} *)${address}, r${i.src})`;
  // Load-acquire reads through src, unlike every other instruction of class STX.
  if (i.imm === BPF_LOAD_ACQ) return `r${i.dst} = load_acquire((${size} *)(r${i.src} ${signed(i.off)}))`;
  if (i.imm === BPF_STORE_REL) return `store_release((${size} *)${address}, r${i.src})`;
  return `<invalid atomic operation 0x${(i.imm >>> 0).toString(16)}>`;
}

function formatLd(i: Instruction, names: FormatNames | undefined): string {
  const size = UNSIGNED_SIZES[sizeField(i)];
  if (mode(i) === BPF_ABS && sizeField(i) !== BPF_DW) return `r0 = *(${size} *)skb[${i.imm}]`;
  if (mode(i) === BPF_IND && sizeField(i) !== BPF_DW) return `r0 = *(${size} *)skb[r${i.src} + ${i.imm}]`;
  if (mode(i) !== BPF_IMM || sizeField(i) !== BPF_DW) return invalid(i);
  const full = i.imm64 ?? BigInt(i.imm >>> 0);
  const high = Number(full >> 32n);
  const low = i.imm >>> 0;
  let value: string;
  if (names?.loadTarget !== undefined) value = names.loadTarget;
  else if (i.src === BPF_PSEUDO_FUNC) value = names?.callTarget ?? `subprog[${signed(i.imm)}]`;
  // bpftool's print_imm spells the map pseudo loads this way.
  else if (i.src === BPF_PSEUDO_MAP_FD) value = `map[id:${low}]`;
  else if (i.src === BPF_PSEUDO_MAP_VALUE) value = `map[id:${low}][0]+${high}`;
  else if (i.src === BPF_PSEUDO_MAP_IDX) value = `map[idx:${low}]`;
  else if (i.src === BPF_PSEUDO_MAP_IDX_VALUE) value = `map[idx:${low}]+${high}`;
  else value = `0x${full.toString(16)}`;
  return `r${i.dst} = ${value}`;
}

function formatJump(i: Instruction, names: FormatNames | undefined): string {
  const op = jumpOperation(i);
  if (i.class === BPF_JMP && op === BPF_CALL) {
    if (i.src === BPF_PSEUDO_CALL) return names?.callTarget !== undefined ? `call ${names.callTarget}` : `call pc${signed(i.imm)}`;
    if (i.src === BPF_PSEUDO_KFUNC_CALL) {
      return names?.callTarget !== undefined ? `call ${names.callTarget}` : `call kernel-function#${i.imm}`;
    }
    const helper = (names?.helper ?? helperName)(i.imm);
    return `call ${helper ?? 'unknown'}#${i.imm}`;
  }
  if (i.class === BPF_JMP && op === BPF_EXIT) return 'exit';
  if (i.class === BPF_JMP && op === BPF_JA) return source(i) === BPF_X ? `gotox r${i.dst}` : `goto pc${signed(i.off)}`;
  if (i.class === BPF_JMP32 && op === BPF_JA) return `gotol pc${signed(i.imm)}`;
  if (i.class === BPF_JMP && op === BPF_JCOND) {
    return i.src === BPF_MAY_GOTO ? `may_goto pc${signed(i.off)}` : invalid(i);
  }
  const operator = JUMP_OPERATORS[op];
  if (operator === undefined) return invalid(i);
  const reg = i.class === BPF_JMP32 ? 'w' : 'r';
  const right = source(i) === BPF_X ? `${reg}${i.src}` : `0x${(i.imm >>> 0).toString(16)}`;
  return `if ${reg}${i.dst} ${operator} ${right} goto pc${signed(i.off)}`;
}

/**
 * A whole function or section as bpftool lists it, one instruction per line:
 * `   4: (07) r1 += -56`. `namesFor` can name call targets and loads instruction by instruction.
 */
export function formatListing(instructions: readonly Instruction[], namesFor?: (i: Instruction) => FormatNames | undefined): string {
  const width = Math.max(4, String(instructions.at(-1)?.offset ?? 0).length);
  return instructions
    .map((i) => `${String(i.offset).padStart(width)}: (${i.opcode.toString(16).padStart(2, '0')}) ${formatInstruction(i, namesFor?.(i))}`)
    .join('\n');
}
