/**
 * Reads the parts of an ELF64 relocatable object that BPF analysis needs: section headers and
 * contents, the symbol table, and relocations grouped by the section they patch. BPF objects are
 * always ELF64 (EM_BPF), little-endian from `-target bpfel`/`bpf` and big-endian from `-target bpfeb`.
 *
 * Nothing here throws on bad input. A malformed file gives back whatever could be read together
 * with problems that say where the file went wrong, so the editor can show a message instead of a
 * stack trace.
 */
import type { Problem } from '../common/problem';
import { LazyMap } from '../common/lazyMap';

export const EM_BPF = 247;

export const SHT_NULL = 0;
export const SHT_PROGBITS = 1;
export const SHT_SYMTAB = 2;
export const SHT_STRTAB = 3;
export const SHT_RELA = 4;
export const SHT_NOBITS = 8;
export const SHT_REL = 9;

export const SHF_WRITE = 0x1;
export const SHF_ALLOC = 0x2;
export const SHF_EXECINSTR = 0x4;

export const STT_NOTYPE = 0;
export const STT_OBJECT = 1;
export const STT_FUNC = 2;
export const STT_SECTION = 3;
export const STT_FILE = 4;

export const STB_LOCAL = 0;
export const STB_GLOBAL = 1;
export const STB_WEAK = 2;

/** Symbol visibility (st_other & 3). */
export const STV_INTERNAL = 1;
export const STV_HIDDEN = 2;

/** Section index of an undefined symbol, such as an `extern ... __ksym` kfunc. */
export const SHN_UNDEF = 0;
/** Section index of an absolute symbol (the STT_FILE entry, for one). */
export const SHN_ABS = 0xfff1;
/** Escape value: the real index lives elsewhere (e_shstrndx in section 0's sh_link). */
const SHN_XINDEX = 0xffff;

/** The BPF relocation types LLVM emits (llvm/include/llvm/BinaryFormat/ELFRelocs/BPF.def). */
export const R_BPF_NONE = 0;
export const R_BPF_64_64 = 1;
export const R_BPF_64_ABS64 = 2;
export const R_BPF_64_ABS32 = 3;
export const R_BPF_64_NODYLD32 = 4;
export const R_BPF_64_32 = 10;

export interface ElfSection {
  index: number;
  name: string;
  type: number;
  flags: number;
  /** Byte offset of the section's contents in the file. */
  offset: number;
  size: number;
  link: number;
  info: number;
  entsize: number;
  /** The section's bytes; empty for SHT_NOBITS and for a section whose contents lie outside the file. */
  data: Uint8Array;
}

export interface ElfSymbol {
  index: number;
  name: string;
  /** For a relocatable object: the byte offset within the symbol's section. */
  value: number;
  size: number;
  /** STT_* */
  type: number;
  /** STB_* */
  bind: number;
  visibility: number;
  /** The section the symbol is defined in; SHN_UNDEF (0) for externs such as kfuncs. */
  sectionIndex: number;
}

export interface ElfRelocation {
  /** Byte offset in the target section. */
  offset: number;
  symbolIndex: number;
  /** R_BPF_* */
  type: number;
  /** Only for SHT_RELA; BPF objects from LLVM use SHT_REL and keep the addend in the instruction. */
  addend?: number;
}

export interface ElfFile {
  littleEndian: boolean;
  machine: number;
  sections: ElfSection[];
  symbols: ElfSymbol[];
  /** Keyed by the index of the section the relocations apply to. */
  relocations: Map<number, ElfRelocation[]>;
  sectionByName(name: string): ElfSection | undefined;
}

const ELF_HEADER_SIZE = 64;
const SECTION_HEADER_SIZE = 64;
const SYMBOL_SIZE = 24;
const REL_SIZE = 16;
const RELA_SIZE = 24;

const MACHINE_NAMES: ReadonlyMap<number, string> = new Map([
  [0, 'none'],
  [3, 'x86 (i386)'],
  [8, 'MIPS'],
  [20, 'PowerPC'],
  [21, 'PowerPC64'],
  [22, 'S/390'],
  [40, 'ARM'],
  [62, 'x86-64'],
  [183, 'AArch64'],
  [243, 'RISC-V'],
  [258, 'LoongArch'],
]);

const utf8 = new TextDecoder('utf-8', { fatal: false });

function hex(n: number): string {
  // readU64 turns values past 2^53 into Infinity; only a corrupt header has them.
  return Number.isFinite(n) ? '0x' + n.toString(16) : 'an offset past 2^53';
}

/** Reads the NUL-terminated string at `offset` in a string table; undefined when out of range. */
export function readCString(table: Uint8Array, offset: number): string | undefined {
  if (offset < 0 || offset >= table.length) return undefined;
  let end = offset;
  while (end < table.length && table[end] !== 0) end++;
  return utf8.decode(table.subarray(offset, end));
}

/**
 * ELF64 stores offsets and sizes as u64. Real objects never come near 2^53, so a larger value
 * means a corrupt header; it comes back as Infinity, which then fails every bounds check.
 */
function readU64(view: DataView, at: number, littleEndian: boolean): number {
  // Two 32-bit halves: BigInt reads allocate, and objects hold hundreds of thousands of these.
  const low = view.getUint32(littleEndian ? at : at + 4, littleEndian);
  const high = view.getUint32(littleEndian ? at + 4 : at, littleEndian);
  return high < 0x200000 ? high * 0x100000000 + low : Infinity;
}

function readI64(view: DataView, at: number, littleEndian: boolean): number {
  return Number(view.getBigInt64(at, littleEndian));
}

/**
 * The parts of the 64-byte ELF64 header that BPF objects need:
 *
 *   0             4       5      16       18        40        58          60        62         64
 *   +-------------+-------+------+--...---+---...---+---...---+-----------+---------+----------+
 *   | 7f 45 4c 46 | class | data | e_type | machine | e_shoff | shentsize | e_shnum | shstrndx |
 *   +-------------+-------+------+--...---+---...---+---...---+-----------+---------+----------+
 *                   2 = ELF64  1 = little-endian, 2 = big-endian; e_shoff is a u64, the rest u16
 */
export function readElf(input: Uint8Array): { elf?: ElfFile; problems: Problem[] } {
  const problems: Problem[] = [];
  // A plain view even when the caller passes a Buffer: Buffer's subarray, taken for every section
  // and symbol name, costs several times what the typed array's own does.
  const bytes = Object.getPrototypeOf(input) === Uint8Array.prototype ? input : new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  if (bytes.length === 0) {
    return { problems: [{ message: 'empty file (0 bytes): not an ELF object', offset: 0 }] };
  }
  const magic = Array.from(bytes.subarray(0, 4));
  const elfMagic = [0x7f, 0x45, 0x4c, 0x46];
  if (magic.length < 4 && magic.every((b, i) => b === elfMagic[i])) {
    return { problems: [{ message: `truncated ELF header: the file has ${bytes.length} bytes, the header needs ${ELF_HEADER_SIZE}`, offset: 0 }] };
  }
  if (magic.length < 4 || magic[0] !== 0x7f || magic[1] !== 0x45 || magic[2] !== 0x4c || magic[3] !== 0x46) {
    const shown = magic.map((b) => b.toString(16).padStart(2, '0')).join(' ');
    return { problems: [{ message: `not an ELF file (magic ${shown}, expected 7f 45 4c 46)`, offset: 0 }] };
  }
  if (bytes.length < 6) {
    return { problems: [{ message: `truncated ELF header: the file has ${bytes.length} bytes, the header needs ${ELF_HEADER_SIZE}`, offset: 0 }] };
  }
  const elfClass = bytes[4];
  if (elfClass === 1) {
    return { problems: [{ message: 'ELF class is 32-bit (ELFCLASS32); BPF objects are ELF64', offset: 4 }] };
  }
  if (elfClass !== 2) {
    return { problems: [{ message: `unknown ELF class ${elfClass} (expected 2, ELF64)`, offset: 4 }] };
  }
  const dataEncoding = bytes[5];
  if (dataEncoding !== 1 && dataEncoding !== 2) {
    return { problems: [{ message: `unknown ELF data encoding ${dataEncoding} (expected 1, little-endian, or 2, big-endian)`, offset: 5 }] };
  }
  const littleEndian = dataEncoding === 1;
  if (bytes.length < ELF_HEADER_SIZE) {
    return { problems: [{ message: `truncated ELF header: the file has ${bytes.length} bytes, the header needs ${ELF_HEADER_SIZE}`, offset: 0 }] };
  }

  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const machine = view.getUint16(18, littleEndian);
  if (machine !== EM_BPF) {
    const name = MACHINE_NAMES.get(machine) ?? 'unknown';
    // Decoding another architecture's code as BPF would only produce nonsense further on.
    return { problems: [{ message: `ELF machine is ${name} (${machine}), not BPF (${EM_BPF})`, offset: 18 }] };
  }

  const sectionTableOffset = readU64(view, 40, littleEndian);
  const sectionEntrySize = view.getUint16(58, littleEndian);
  let sectionCount = view.getUint16(60, littleEndian);
  let namesSectionIndex = view.getUint16(62, littleEndian);

  const empty: ElfFile = makeElfFile(littleEndian, machine, [], [], new Map());
  if (sectionTableOffset === 0) {
    problems.push({ message: 'the object has no section header table (e_shoff is 0)', offset: 40 });
    return { elf: empty, problems };
  }
  if (sectionEntrySize !== SECTION_HEADER_SIZE) {
    problems.push({ message: `ELF section header size is ${sectionEntrySize} bytes, expected ${SECTION_HEADER_SIZE}`, offset: 58 });
    return { elf: empty, problems };
  }
  if (sectionTableOffset >= bytes.length) {
    problems.push({ message: `section header table at ${hex(sectionTableOffset)} lies beyond the end of the file (${hex(bytes.length)} bytes)`, offset: 40 });
    return { elf: empty, problems };
  }
  // With 0xff00 or more sections the real count and string-table index live in section 0.
  if (sectionCount === 0 || namesSectionIndex === SHN_XINDEX) {
    if (sectionTableOffset + SECTION_HEADER_SIZE <= bytes.length) {
      if (sectionCount === 0) sectionCount = Math.min(readU64(view, sectionTableOffset + 32, littleEndian), Number.MAX_SAFE_INTEGER);
      if (namesSectionIndex === SHN_XINDEX) namesSectionIndex = view.getUint32(sectionTableOffset + 40, littleEndian);
    }
  }

  const tableEnd = sectionTableOffset + sectionCount * SECTION_HEADER_SIZE;
  let sectionTableTruncated = false;
  if (tableEnd > bytes.length) {
    sectionTableTruncated = true;
    problems.push({
      message: `truncated section header table: ${sectionCount} entries at ${hex(sectionTableOffset)} need ${hex(tableEnd)} bytes, the file has ${hex(bytes.length)}`,
      offset: sectionTableOffset,
    });
    sectionCount = Math.floor((bytes.length - sectionTableOffset) / SECTION_HEADER_SIZE);
  }

  interface RawSection extends Omit<ElfSection, 'name'> {
    nameOffset: number;
  }
  const raw: RawSection[] = [];
  for (let index = 0; index < sectionCount; index++) {
    const at = sectionTableOffset + index * SECTION_HEADER_SIZE;
    const type = view.getUint32(at + 4, littleEndian);
    const offset = readU64(view, at + 24, littleEndian);
    const size = readU64(view, at + 32, littleEndian);
    raw.push({
      index,
      nameOffset: view.getUint32(at, littleEndian),
      type,
      // Only the low 32 flag bits are defined, and Number keeps them exactly.
      flags: readU64(view, at + 8, littleEndian),
      offset,
      size,
      link: view.getUint32(at + 40, littleEndian),
      info: view.getUint32(at + 44, littleEndian),
      entsize: readU64(view, at + 56, littleEndian),
      data: new Uint8Array(0),
    });
  }

  // Section names come from the section-header string table, which is itself a section.
  let names: Uint8Array | undefined;
  const namesHeader = raw[namesSectionIndex];
  if (namesSectionIndex === 0 || namesHeader === undefined) {
    if (!sectionTableTruncated) {
      problems.push({ message: `section name string table index ${namesSectionIndex} is not a section (the object has ${raw.length})`, offset: 62 });
    }
  } else if (namesHeader.offset + namesHeader.size > bytes.length) {
    problems.push({ message: `section name string table at ${hex(namesHeader.offset)} runs past the end of the file`, offset: namesHeader.offset });
  } else {
    names = bytes.subarray(namesHeader.offset, namesHeader.offset + namesHeader.size);
  }

  const sections: ElfSection[] = raw.map(({ nameOffset, ...section }) => {
    const name = names ? (readCString(names, nameOffset) ?? `<section ${section.index}>`) : `<section ${section.index}>`;
    let data: Uint8Array = new Uint8Array(0);
    if (section.type !== SHT_NOBITS && section.type !== SHT_NULL && section.size > 0) {
      if (section.offset + section.size > bytes.length) {
        problems.push({
          message: `section ${name}: contents at ${hex(section.offset)} + ${hex(section.size)} bytes run past the end of the file (${hex(bytes.length)} bytes)`,
          offset: sectionTableOffset + section.index * SECTION_HEADER_SIZE + 24,
        });
      } else {
        data = bytes.subarray(section.offset, section.offset + section.size);
      }
    }
    return { ...section, name, data };
  });

  const symbols = readSymbols(sections, littleEndian, problems, sectionTableTruncated);
  const relocations = readRelocations(sections, symbols.length, littleEndian, problems);
  return { elf: makeElfFile(littleEndian, machine, sections, symbols, relocations), problems };
}

function makeElfFile(littleEndian: boolean, machine: number, sections: ElfSection[], symbols: ElfSymbol[], relocations: Map<number, ElfRelocation[]>): ElfFile {
  const byName = new Map<string, ElfSection>();
  for (const section of sections) {
    // The first section of a name wins, as in libbpf's lookups.
    if (!byName.has(section.name)) byName.set(section.name, section);
  }
  return {
    littleEndian,
    machine,
    sections,
    symbols,
    relocations,
    sectionByName: (name) => byName.get(name),
  };
}

/**
 * One Elf64_Sym, 24 bytes:
 *
 *   0          4         5          6          8            16          24
 *   +----------+---------+----------+----------+------------+-----------+
 *   | st_name  | st_info | st_other | st_shndx | st_value   | st_size   |
 *   +----------+---------+----------+----------+------------+-----------+
 *               bind << 4 | type     visibility in the low 2 bits of st_other
 */
function readSymbols(sections: ElfSection[], littleEndian: boolean, problems: Problem[], sectionTableTruncated: boolean): ElfSymbol[] {
  const table = sections.find((s) => s.type === SHT_SYMTAB);
  if (!table) {
    // A truncated section table has already been reported; the symbol table is just one casualty.
    if (!sectionTableTruncated) problems.push({ message: 'symbol table missing: the object is stripped' });
    return [];
  }
  if (table.data.length === 0 && table.size > 0) return []; // Its bounds problem is already reported.
  const strings = sections[table.link]?.data ?? new Uint8Array(0);
  if (table.data.length % SYMBOL_SIZE !== 0) {
    problems.push({
      message: `section ${table.name}: size ${table.data.length} is not a multiple of the ${SYMBOL_SIZE}-byte symbol entry`,
      offset: table.offset,
    });
  }
  const view = new DataView(table.data.buffer, table.data.byteOffset, table.data.byteLength);
  const symbols: ElfSymbol[] = [];
  const count = Math.floor(table.data.length / SYMBOL_SIZE);
  for (let index = 0; index < count; index++) {
    const at = index * SYMBOL_SIZE;
    const info = view.getUint8(at + 4);
    const sectionIndex = view.getUint16(at + 6, littleEndian);
    const type = info & 0xf;
    let name = readCString(strings, view.getUint32(at, littleEndian)) ?? '';
    // Section symbols have no name of their own; relocations against them name the section.
    if (type === STT_SECTION && name === '') name = sections[sectionIndex]?.name ?? '';
    symbols.push({
      index,
      name,
      value: readU64(view, at + 8, littleEndian),
      size: readU64(view, at + 16, littleEndian),
      type,
      bind: info >> 4,
      visibility: view.getUint8(at + 5) & 0x3,
      sectionIndex,
    });
  }
  return symbols;
}

/**
 * Elf64_Rel is { u64 r_offset; u64 r_info } and Elf64_Rela adds { i64 r_addend }. r_info packs the
 * symbol index in its high 32 bits and the relocation type in its low 32 bits.
 */
function readRelocations(sections: ElfSection[], symbolCount: number, littleEndian: boolean, problems: Problem[]): Map<number, ElfRelocation[]> {
  const result = new LazyMap<number, ElfRelocation[]>();
  const pending = new Map<number, { section: ElfSection; entrySize: number }[]>();
  for (const section of sections) {
    if (section.type !== SHT_REL && section.type !== SHT_RELA) continue;
    const entrySize = section.type === SHT_RELA ? RELA_SIZE : REL_SIZE;
    const target = sections[section.info];
    if (!target || section.info === 0) {
      problems.push({ message: `section ${section.name}: relocations apply to section ${section.info}, which does not exist`, offset: section.offset });
      continue;
    }
    if (section.data.length % entrySize !== 0) {
      problems.push({
        message: `section ${section.name}: size ${section.data.length} is not a multiple of the ${entrySize}-byte relocation entry`,
        offset: section.offset,
      });
    }
    validateRelocations(section, target, entrySize, symbolCount, littleEndian, problems);
    pending.set(target.index, [...(pending.get(target.index) ?? []), { section, entrySize }]);
  }
  // Objects built with -g carry a relocation for every line-info record and much of DWARF, which
  // this analysis never reads: entries become objects only when a section's relocations are asked for.
  for (const [targetIndex, tables] of pending) {
    result.setLazy(targetIndex, () => tables.flatMap(({ section, entrySize }) => decodeRelocations(section, entrySize, littleEndian)));
  }
  return result;
}

/** Checks every entry without building objects; only the first bad entry of a section is reported. */
function validateRelocations(
  section: ElfSection,
  target: ElfSection,
  entrySize: number,
  symbolCount: number,
  littleEndian: boolean,
  problems: Problem[],
): void {
  const view = new DataView(section.data.buffer, section.data.byteOffset, section.data.byteLength);
  const count = Math.floor(section.data.length / entrySize);
  for (let i = 0; i < count; i++) {
    const at = i * entrySize;
    const symbolIndex = view.getUint32(littleEndian ? at + 12 : at + 8, littleEndian);
    const offset = readU64(view, at, littleEndian);
    if (symbolCount > 0 && symbolIndex >= symbolCount) {
      problems.push({
        message: `section ${section.name}: relocation ${i} refers to symbol ${symbolIndex}, but the symbol table has ${symbolCount}`,
        offset: section.offset + at,
      });
      return;
    }
    if (offset >= target.size && target.size > 0) {
      problems.push({
        message: `section ${section.name}: relocation ${i} at ${hex(offset)} lies outside ${target.name} (${hex(target.size)} bytes)`,
        offset: section.offset + at,
      });
      return;
    }
  }
}

function decodeRelocations(section: ElfSection, entrySize: number, littleEndian: boolean): ElfRelocation[] {
  const view = new DataView(section.data.buffer, section.data.byteOffset, section.data.byteLength);
  const count = Math.floor(section.data.length / entrySize);
  const list: ElfRelocation[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const at = i * entrySize;
    // r_info: symbol index in the high 32 bits, type in the low 32 bits.
    const relocation: ElfRelocation = {
      offset: readU64(view, at, littleEndian),
      symbolIndex: view.getUint32(littleEndian ? at + 12 : at + 8, littleEndian),
      type: view.getUint32(littleEndian ? at + 8 : at + 12, littleEndian),
    };
    if (section.type === SHT_RELA) relocation.addend = readI64(view, at + 16, littleEndian);
    list[i] = relocation;
  }
  return list;
}
