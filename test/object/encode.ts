/**
 * Builds BPF machine code by hand for the decoder and formatter tests: the encodings no committed
 * object contains (load-acquire, gotol, every pseudo lddw) and deliberately broken ones.
 */
export interface RawInstruction {
  opcode: number;
  dst?: number;
  src?: number;
  off?: number;
  imm?: number;
}

/** One 8-byte slot; for bpfeb the register nibbles swap and the numbers are big-endian. */
export function encodeSlot({ opcode, dst = 0, src = 0, off = 0, imm = 0 }: RawInstruction, littleEndian = true): Uint8Array {
  const bytes = new Uint8Array(8);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, opcode);
  view.setUint8(1, littleEndian ? (src << 4) | dst : (dst << 4) | src);
  view.setInt16(2, off, littleEndian);
  view.setInt32(4, imm, littleEndian);
  return bytes;
}

/** lddw: two slots, the 64-bit immediate split low half first. */
export function encodeLddw(dst: number, src: number, imm64: bigint, littleEndian = true): Uint8Array {
  const low = Number(BigInt.asIntN(32, imm64 & 0xffffffffn));
  const high = Number(BigInt.asIntN(32, (imm64 >> 32n) & 0xffffffffn));
  return concat([encodeSlot({ opcode: 0x18, dst, src, imm: low }, littleEndian), encodeSlot({ opcode: 0, imm: high }, littleEndian)]);
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

export function encodeAll(list: RawInstruction[], littleEndian = true): Uint8Array {
  return concat(list.map((i) => encodeSlot(i, littleEndian)));
}
