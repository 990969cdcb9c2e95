/**
 * Writes small BPF ELF objects by hand, for the hostile-input tests and the fuzz corpus: shapes no
 * compiler is asked to produce (a call chain thousands of static functions deep, a thousand programs
 * sharing one chain, line info naming /dev/zero or a FIFO). Every byte comes from this file, so the
 * corpus holds no third-party object.
 *
 * Layout: null, .text (the static chain), one program section, its .rel section, .symtab, .strtab,
 * .shstrtab, and optionally .BTF and .BTF.ext carrying one line-info record per program.
 */
import { concat, encodeAll, type RawInstruction } from '../object/encode';

export interface CraftedObject {
  /** Static functions in .text, f0 calling f1 calling ... f(chain-1). */
  chain: number;
  /** Global programs in the program section, each calling f0 (or returning at once when chain is 0). */
  programs: number;
  /** The SEC() name of the programs. */
  section?: string;
  /** Stack bytes each function stores to (a multiple of 8; 0 for none). */
  frameBytes?: number;
  /** A source file for BTF line info: every program's first instruction is said to come from line 1 of it. */
  lineInfoFile?: string;
}

const SHT_PROGBITS = 1;
const SHT_SYMTAB = 2;
const SHT_STRTAB = 3;
const SHT_REL = 9;
const SHF_ALLOC = 2;
const SHF_EXECINSTR = 4;
const STT_FUNC = 2;
const STT_SECTION = 3;
const STB_GLOBAL = 1;
const R_BPF_64_32 = 10;

const EXIT: RawInstruction[] = [{ opcode: 0xb7, dst: 0, imm: 0 }, { opcode: 0x95 }];

/** A string table that hands out offsets as names are added. */
class Strings {
  private readonly parts: Uint8Array[] = [new Uint8Array(1)];
  private size = 1;
  private readonly known = new Map<string, number>();

  add(name: string): number {
    const found = this.known.get(name);
    if (found !== undefined) return found;
    const offset = this.size;
    const bytes = new TextEncoder().encode(`${name}\0`);
    this.parts.push(bytes);
    this.size += bytes.length;
    this.known.set(name, offset);
    return offset;
  }

  bytes(): Uint8Array {
    return concat(this.parts);
  }
}

function stores(frameBytes: number): RawInstruction[] {
  const list: RawInstruction[] = [];
  for (let at = 8; at <= frameBytes; at += 8) list.push({ opcode: 0x7b, dst: 10, src: 1, off: -at });
  return list;
}

export function craftObject(options: CraftedObject): Uint8Array {
  const { chain, programs, section = 'xdp', frameBytes = 8, lineInfoFile } = options;
  const body = stores(frameBytes);
  const functionSlots = body.length + 1 + EXIT.length;
  // .text: f_i = stores; call f_(i+1) (or r0 = 0 for the last); r0 = 0; exit.
  const text: RawInstruction[] = [];
  for (let i = 0; i < chain; i++) {
    text.push(...body);
    text.push(i + 1 < chain ? { opcode: 0x85, src: 1, imm: functionSlots - (body.length + 1) } : { opcode: 0xb7, dst: 0, imm: 0 });
    text.push(...EXIT);
  }
  // The program section: p_j = stores; call f0 (relocated against .text); r0 = 0; exit.
  const program: RawInstruction[] = [];
  const relocations: { offset: number }[] = [];
  for (let j = 0; j < programs; j++) {
    program.push(...body);
    if (chain > 0) {
      relocations.push({ offset: program.length * 8 });
      program.push({ opcode: 0x85, src: 1, imm: -1 });
    } else {
      program.push({ opcode: 0xb7, dst: 0, imm: 0 });
    }
    program.push(...EXIT);
  }

  const names = new Strings();
  const sectionNames = new Strings();
  const symbols: { name: number; info: number; shndx: number; value: number; size: number }[] = [{ name: 0, info: 0, shndx: 0, value: 0, size: 0 }];
  const TEXT = 1;
  const PROGRAM = 2;
  symbols.push({ name: 0, info: STT_SECTION, shndx: TEXT, value: 0, size: 0 });
  for (let i = 0; i < chain; i++)
    symbols.push({ name: names.add(`f${i}`), info: STT_FUNC, shndx: TEXT, value: i * functionSlots * 8, size: functionSlots * 8 });
  const firstGlobal = symbols.length;
  for (let j = 0; j < programs; j++) {
    symbols.push({ name: names.add(`p${j}`), info: (STB_GLOBAL << 4) | STT_FUNC, shndx: PROGRAM, value: j * functionSlots * 8, size: functionSlots * 8 });
  }
  const symtab = new Uint8Array(symbols.length * 24);
  const symView = new DataView(symtab.buffer);
  symbols.forEach((symbol, index) => {
    const at = index * 24;
    symView.setUint32(at, symbol.name, true);
    symView.setUint8(at + 4, symbol.info);
    symView.setUint16(at + 6, symbol.shndx, true);
    symView.setBigUint64(at + 8, BigInt(symbol.value), true);
    symView.setBigUint64(at + 16, BigInt(symbol.size), true);
  });
  const rel = new Uint8Array(relocations.length * 16);
  const relView = new DataView(rel.buffer);
  relocations.forEach((relocation, index) => {
    relView.setBigUint64(index * 16, BigInt(relocation.offset), true);
    // r_info: symbol 1 (.text's section symbol) in the high half, the type in the low half.
    relView.setBigUint64(index * 16 + 8, (1n << 32n) | BigInt(R_BPF_64_32), true);
  });

  const sections: { name: string; type: number; flags: number; data: Uint8Array; link?: number; info?: number; entsize?: number }[] = [
    { name: '.text', type: SHT_PROGBITS, flags: SHF_ALLOC | SHF_EXECINSTR, data: encodeAll(text) },
    { name: section, type: SHT_PROGBITS, flags: SHF_ALLOC | SHF_EXECINSTR, data: encodeAll(program) },
    { name: `.rel${section}`, type: SHT_REL, flags: 0, data: rel, link: 4, info: PROGRAM, entsize: 16 },
    { name: '.symtab', type: SHT_SYMTAB, flags: 0, data: symtab, link: 5, info: firstGlobal, entsize: 24 },
    { name: '.strtab', type: SHT_STRTAB, flags: 0, data: names.bytes() },
  ];
  if (lineInfoFile !== undefined) {
    const { btf, ext } = lineInfo(section, lineInfoFile, programs, chain, functionSlots);
    sections.push({ name: '.BTF', type: SHT_PROGBITS, flags: 0, data: btf }, { name: '.BTF.ext', type: SHT_PROGBITS, flags: 0, data: ext });
  }
  sections.push({ name: '.shstrtab', type: SHT_STRTAB, flags: 0, data: new Uint8Array() });
  const nameOffsets = sections.map((entry) => sectionNames.add(entry.name));
  sections[sections.length - 1].data = sectionNames.bytes();

  // ELF header (64 bytes), then section data, then the section header table.
  const header = new Uint8Array(64);
  const headerView = new DataView(header.buffer);
  header.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  headerView.setUint16(16, 1, true); // ET_REL
  headerView.setUint16(18, 247, true); // EM_BPF
  headerView.setUint32(20, 1, true);
  headerView.setUint16(52, 64, true);
  headerView.setUint16(58, 64, true);
  headerView.setUint16(60, sections.length + 1, true);
  headerView.setUint16(62, sections.length, true);
  const parts: Uint8Array[] = [header];
  let offset = 64;
  const offsets: number[] = [];
  for (const entry of sections) {
    const padding = (8 - (offset % 8)) % 8;
    parts.push(new Uint8Array(padding));
    offset += padding;
    offsets.push(offset);
    parts.push(entry.data);
    offset += entry.data.length;
  }
  const padding = (8 - (offset % 8)) % 8;
  parts.push(new Uint8Array(padding));
  offset += padding;
  headerView.setBigUint64(40, BigInt(offset), true);
  const table = new Uint8Array((sections.length + 1) * 64);
  const tableView = new DataView(table.buffer);
  sections.forEach((entry, index) => {
    const at = (index + 1) * 64;
    tableView.setUint32(at, nameOffsets[index], true);
    tableView.setUint32(at + 4, entry.type, true);
    tableView.setBigUint64(at + 8, BigInt(entry.flags), true);
    tableView.setBigUint64(at + 24, BigInt(offsets[index]), true);
    tableView.setBigUint64(at + 32, BigInt(entry.data.length), true);
    tableView.setUint32(at + 40, entry.link ?? 0, true);
    tableView.setUint32(at + 44, entry.info ?? 0, true);
    tableView.setBigUint64(at + 48, 8n, true);
    tableView.setBigUint64(at + 56, BigInt(entry.entsize ?? 0), true);
  });
  parts.push(table);
  return concat(parts);
}

/** A .BTF with no types and a .BTF.ext whose line info puts every program's first instruction at `file`:1. */
function lineInfo(section: string, file: string, programs: number, chain: number, functionSlots: number): { btf: Uint8Array; ext: Uint8Array } {
  const strings = new Strings();
  const fileName = strings.add(file);
  const lineText = strings.add('int prog(void *ctx)');
  const blocks = [
    { name: strings.add(section), count: programs },
    { name: strings.add('.text'), count: chain },
  ].filter((block) => block.count > 0);
  const stringBytes = strings.bytes();
  const btf = new Uint8Array(24 + stringBytes.length);
  const btfView = new DataView(btf.buffer);
  btfView.setUint16(0, 0xeb9f, true);
  btfView.setUint8(2, 1);
  btfView.setUint32(4, 24, true);
  btfView.setUint32(8, 0, true);
  btfView.setUint32(12, 0, true);
  btfView.setUint32(16, 0, true);
  btfView.setUint32(20, stringBytes.length, true);
  btf.set(stringBytes, 24);

  // One block per section: every function's first instruction is said to come from `file`:1.
  const lines = new Uint8Array(4 + blocks.reduce((n, block) => n + 8 + block.count * 16, 0));
  const linesView = new DataView(lines.buffer);
  linesView.setUint32(0, 16, true);
  let at = 4;
  for (const block of blocks) {
    linesView.setUint32(at, block.name, true);
    linesView.setUint32(at + 4, block.count, true);
    at += 8;
    for (let j = 0; j < block.count; j++, at += 16) {
      linesView.setUint32(at, j * functionSlots * 8, true);
      linesView.setUint32(at + 4, fileName, true);
      linesView.setUint32(at + 8, lineText, true);
      linesView.setUint32(at + 12, (1 << 10) | 1, true);
    }
  }
  const ext = new Uint8Array(32 + lines.length);
  const extView = new DataView(ext.buffer);
  extView.setUint16(0, 0xeb9f, true);
  extView.setUint8(2, 1);
  extView.setUint32(4, 32, true);
  extView.setUint32(8, 0, true); // func_info_off
  extView.setUint32(12, 0, true); // func_info_len
  extView.setUint32(16, 0, true); // line_info_off
  extView.setUint32(20, lines.length, true);
  ext.set(lines, 32);
  return { btf, ext };
}
