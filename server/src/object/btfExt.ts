/**
 * Reads .BTF.ext: which BTF FUNC starts at which instruction (func info), which source line each
 * instruction came from (line info), and the CO-RE relocations. Layout as in libbpf's
 * libbpf_internal.h (struct btf_ext_header, bpf_func_info, bpf_line_info, bpf_core_relo).
 *
 * In an object file every insn_off is a byte offset within the named section; the kernel's
 * bpf_func_info and bpf_line_info count instructions, and libbpf divides by 8 while loading. The
 * division happens here, once, so every offset handed out counts instruction slots, like
 * Instruction.offset.
 */
import type { Problem } from '../common/problem';
import { LazyMap } from '../common/lazyMap';
import { partitionPoint } from '../common/numbers';
import { BTF_MAGIC, type Btf } from './btf';

export interface FuncInfo {
  /** In instructions (converted from bytes once, here). */
  insnOffset: number;
  /** The BTF FUNC describing the function that starts there. */
  typeId: number;
}

export interface LineInfo {
  /** In instructions. */
  insnOffset: number;
  file: string;
  /** The text of the source line, as the compiler recorded it (leading whitespace kept). */
  lineText: string;
  /** 1-based; 0 when the compiler had no line. */
  line: number;
  /** 1-based; 0 when the compiler recorded no column (clang does that for a function's opening line). */
  column: number;
}

/** The kinds of bpf_core_relo_kind, in order (BPF_CORE_FIELD_BYTE_OFFSET = 0 ...). */
const CORE_RELOCATION_KINDS = [
  'field_byte_offset',
  'field_byte_size',
  'field_exists',
  'field_signed',
  'field_lshift_u64',
  'field_rshift_u64',
  'type_id_local',
  'type_id_target',
  'type_exists',
  'type_size',
  'enumval_exists',
  'enumval_value',
  'type_matches',
] as const;

export type CoreRelocationKind = (typeof CORE_RELOCATION_KINDS)[number] | `unknown_${number}`;

export interface CoreRelocation {
  /** In instructions. */
  insnOffset: number;
  /** The local BTF type the access starts from. */
  typeId: number;
  /** The access path, "0:1:2" (type-based and enum relocations use "0" or the enumerator index). */
  accessString: string;
  kind: CoreRelocationKind;
}

/**
 * One section's line info, read record by record on demand, straight from .BTF.ext: a program asks
 * for a handful of lines (function starts, calls, tail calls) out of one per instruction, so
 * nothing is decoded or copied ahead. Records lie in runs (one per section entry of the block,
 * nearly always a single run) of fixed-size records whose insn_off ascends.
 */
export class LineTable {
  /** The index of the first record of each run, and of the end: the runs' boundaries. */
  private readonly runFirsts: number[] = [0];

  constructor(
    private readonly view: DataView,
    private readonly littleEndian: boolean,
    private readonly recordSize: number,
    /** Byte position in .BTF.ext of each run's first record, and its record count. */
    private readonly runs: { at: number; count: number }[],
    private readonly string: (offset: number) => string,
  ) {
    for (const run of runs) this.runFirsts.push(this.runFirsts[this.runFirsts.length - 1] + run.count);
  }

  get length(): number {
    return this.runFirsts[this.runFirsts.length - 1];
  }

  /** Byte position of record `index` in .BTF.ext. */
  private positionOf(index: number): number {
    // Nearly always one run: a section's records in one piece.
    if (this.runs.length === 1) return this.runs[0].at + index * this.recordSize;
    let run = 0;
    while (index >= this.runFirsts[run + 1]) run++;
    return this.runs[run].at + (index - this.runFirsts[run]) * this.recordSize;
  }

  /** The insn_off of record `index`, in instructions (an object counts bytes; libbpf divides by 8). */
  insnOffsetAt(index: number): number {
    return this.view.getUint32(this.positionOf(index), this.littleEndian) >>> 3;
  }

  /** The record at `index`. */
  at(index: number): LineInfo {
    const at = this.positionOf(index);
    const lineColumn = this.view.getUint32(at + 12, this.littleEndian);
    return {
      insnOffset: this.view.getUint32(at, this.littleEndian) >>> 3,
      file: this.string(this.view.getUint32(at + 4, this.littleEndian)),
      lineText: this.string(this.view.getUint32(at + 8, this.littleEndian)),
      // line_col packs the line into the top 22 bits and the column into the low 10.
      line: lineColumn >>> 10,
      column: lineColumn & 0x3ff,
    };
  }

  /** The record in force at an instruction: the last one at or before it. */
  find(insnOffset: number): LineInfo | undefined {
    const found = this.indexAt(insnOffset);
    return found < 0 ? undefined : this.at(found);
  }

  /**
   * Where the record in force at an instruction points (file, line, column), without the line's
   * text: reports name thousands of places and show none of their text.
   */
  locate(insnOffset: number): { file: string; line: number; column: number } | undefined {
    const found = this.indexAt(insnOffset);
    if (found < 0) return undefined;
    const at = this.positionOf(found);
    const lineColumn = this.view.getUint32(at + 12, this.littleEndian);
    return { file: this.string(this.view.getUint32(at + 4, this.littleEndian)), line: lineColumn >>> 10, column: lineColumn & 0x3ff };
  }

  /** The index of the last record at or before an instruction, or -1. */
  private indexAt(insnOffset: number): number {
    return partitionPoint(0, this.length, (index) => this.insnOffsetAt(index) <= insnOffset) - 1;
  }

  all(): LineInfo[] {
    return Array.from({ length: this.length }, (_, index) => this.at(index));
  }
}

export interface BtfExt {
  /** Keyed by section name ("tc", ".text", ...), sorted by insnOffset as the compiler emits them. */
  funcInfo: Map<string, FuncInfo[]>;
  /** Every record of every section, decoded when a section is first asked for. */
  lineInfo: Map<string, LineInfo[]>;
  /** The same records, decoded one by one: what lookups should use. */
  lineTables: Map<string, LineTable>;
  coreRelocations: Map<string, CoreRelocation[]>;
}

const HEADER_MIN_SIZE = 24;
/** The header is this long when it includes core_relo_off and core_relo_len. */
const HEADER_WITH_CORE_SIZE = 32;
const FUNC_INFO_MIN_RECORD = 8;
const LINE_INFO_MIN_RECORD = 16;
const CORE_RELO_MIN_RECORD = 16;
const INSTRUCTION_SLOT_BYTES = 8;

function hex(n: number): string {
  return '0x' + n.toString(16);
}

/**
 * The header; the three info blocks lie at offsets counted from the header's end:
 *
 *   0       2         3       4         8               12              16
 *   +-------+---------+-------+---------+---------------+---------------+
 *   | magic | version | flags | hdr_len | func_info_off | func_info_len |
 *   +-------+---------+-------+---------+---------------+---------------+
 *   16              20              24              28              32
 *   +---------------+---------------+---------------+---------------+
 *   | line_info_off | line_info_len | core_relo_off | core_relo_len |
 *   +---------------+---------------+---------------+---------------+
 *                                    only when hdr_len is 32 or more
 *
 * Each block is a u32 record size, then for every section { u32 sec_name_off, u32 num_info,
 * record[num_info] }. A record may be longer than the fields known here; the size says how far to step.
 */
export function readBtfExt(
  section: Uint8Array | undefined,
  littleEndian: boolean,
  btf: Btf | undefined,
  /** ElfSection.offset, so problem offsets point into the file; 0 leaves them section-relative. */
  sectionFileOffset = 0,
): { ext?: BtfExt; problems: Problem[] } {
  const result = readBtfExtSection(section, littleEndian, btf);
  return { ...result, problems: inFile(result.problems, sectionFileOffset) };
}

/** Problems inside a section carry section-relative offsets until the section's place in the file is added. */
function inFile(problems: Problem[], sectionFileOffset: number): Problem[] {
  if (sectionFileOffset === 0) return problems;
  return problems.map((p) => (p.offset === undefined ? p : { ...p, offset: p.offset + sectionFileOffset }));
}

function readBtfExtSection(section: Uint8Array | undefined, littleEndian: boolean, btf: Btf | undefined): { ext?: BtfExt; problems: Problem[] } {
  const problems: Problem[] = [];
  if (section === undefined) {
    return { problems: [{ message: 'no .BTF.ext section: build with -g for line and function info' }] };
  }
  if (section.length < HEADER_MIN_SIZE) {
    return { problems: [{ message: `.BTF.ext: truncated header (${section.length} bytes, need ${HEADER_MIN_SIZE})`, offset: 0 }] };
  }
  const view = new DataView(section.buffer, section.byteOffset, section.byteLength);
  if (view.getUint16(0, littleEndian) !== BTF_MAGIC) {
    if (view.getUint16(0, !littleEndian) === BTF_MAGIC) {
      littleEndian = !littleEndian;
    } else {
      return { problems: [{ message: `.BTF.ext: bad magic ${hex(view.getUint16(0, littleEndian))} (expected 0xeb9f)`, offset: 0 }] };
    }
  }
  if (view.getUint8(2) !== 1) {
    return { problems: [{ message: `.BTF.ext: unsupported version ${view.getUint8(2)} (only version 1 exists)`, offset: 2 }] };
  }
  const headerLength = view.getUint32(4, littleEndian);
  if (headerLength < HEADER_MIN_SIZE || headerLength > section.length) {
    return { problems: [{ message: `.BTF.ext: header length ${headerLength} is outside the section (${section.length} bytes)`, offset: 4 }] };
  }
  if (btf === undefined) {
    problems.push({ message: '.BTF.ext: no usable .BTF, so file names, source lines and access strings are missing' });
  }
  const string = (offset: number): string => btf?.strings(offset) ?? '';

  const lineInfo = new LazyMap<string, LineInfo[]>();
  const ext: BtfExt = { funcInfo: new Map(), lineInfo, lineTables: new Map(), coreRelocations: new Map() };
  const layoutOf = (name: string, offsetField: number, minRecord: number) =>
    walkBlock(view, littleEndian, headerLength, offsetField, name, minRecord, string, problems);
  const block = (name: string, offsetField: number, minRecord: number) => readBlock(view, littleEndian, layoutOf(name, offsetField, minRecord), name, problems);

  for (const { sectionName, records } of block('func info', 8, FUNC_INFO_MIN_RECORD)) {
    ext.funcInfo.set(
      sectionName,
      Array.from(records.positions, (at, index) => ({ insnOffset: records.insnOffsets[index], typeId: view.getUint32(at + 4, littleEndian) })),
    );
  }
  const lines = layoutOf('line info', 16, LINE_INFO_MIN_RECORD);
  for (const { sectionName, runs } of lines?.sections ?? []) {
    const table = new LineTable(view, littleEndian, lines!.recordSize, runs, string);
    ext.lineTables.set(sectionName, table);
    lineInfo.setLazy(sectionName, () => table.all());
  }
  if (headerLength >= HEADER_WITH_CORE_SIZE) {
    for (const { sectionName, records } of block('CO-RE relocations', 24, CORE_RELO_MIN_RECORD)) {
      ext.coreRelocations.set(
        sectionName,
        Array.from(records.positions, (at, index) => {
          const kindNumber = view.getUint32(at + 12, littleEndian);
          return {
            insnOffset: records.insnOffsets[index],
            typeId: view.getUint32(at + 4, littleEndian),
            accessString: string(view.getUint32(at + 8, littleEndian)),
            kind: CORE_RELOCATION_KINDS[kindNumber] ?? (`unknown_${kindNumber}` as const),
          };
        }),
      );
    }
  }
  return { ext, problems };
}

interface SectionRecords {
  sectionName: string;
  /** Each record's byte position in .BTF.ext and its insn_off, already in instructions. */
  records: { positions: Uint32Array; insnOffsets: Uint32Array };
}

/** A block's layout: its record size and, per section, where its runs of records lie. */
interface BlockLayout {
  recordSize: number;
  sections: { sectionName: string; runs: { at: number; count: number }[] }[];
}

/**
 * Checks one block's framing (record size, section headers, counts that fit) without visiting its
 * records: line info has a record per instruction, and LineTable reads only those asked for.
 */
function walkBlock(
  view: DataView,
  le: boolean,
  headerLength: number,
  offsetField: number,
  blockName: string,
  minRecordSize: number,
  string: (offset: number) => string,
  problems: Problem[],
): BlockLayout | undefined {
  const start = headerLength + view.getUint32(offsetField, le);
  const length = view.getUint32(offsetField + 4, le);
  if (length === 0) return undefined;
  const end = start + length;
  if (end > view.byteLength) {
    problems.push({
      message: `.BTF.ext: ${blockName} at ${hex(start)} + ${hex(length)} runs past the end of the section (${hex(view.byteLength)} bytes)`,
      offset: offsetField,
    });
    return undefined;
  }
  if (length < 4) {
    problems.push({ message: `.BTF.ext: ${blockName} at ${hex(start)} is too short to hold its record size`, offset: start });
    return undefined;
  }
  const recordSize = view.getUint32(start, le);
  if (recordSize < minRecordSize || recordSize % 4 !== 0) {
    problems.push({ message: `.BTF.ext: ${blockName} record size ${recordSize} is invalid (at least ${minRecordSize}, a multiple of 4)`, offset: start });
    return undefined;
  }
  const layout: BlockLayout = { recordSize, sections: [] };
  let at = start + 4;
  while (at < end) {
    if (at + 8 > end) {
      problems.push({ message: `.BTF.ext: ${blockName}: truncated section header at byte ${hex(at)}`, offset: at });
      break;
    }
    const sectionName = string(view.getUint32(at, le));
    const count = view.getUint32(at + 4, le);
    at += 8;
    if (at + count * recordSize > end) {
      problems.push({
        message: `.BTF.ext: ${blockName} for section ${sectionName || '?'}: ${count} records of ${recordSize} bytes run past the end of the block`,
        offset: at,
      });
      break;
    }
    // Several entries for one section are unusual but legal; keep them all.
    const existing = layout.sections.find((section) => section.sectionName === sectionName);
    if (existing) existing.runs.push({ at, count });
    else layout.sections.push({ sectionName, runs: [{ at, count }] });
    at += count * recordSize;
  }
  return layout;
}

/**
 * Reads the records of a block whose records are few (func info, CO-RE relocations): every record's
 * insn_off, converted to instructions and checked to be a multiple of 8; the caller reads the
 * remaining fields at each position.
 */
function readBlock(view: DataView, le: boolean, layout: BlockLayout | undefined, blockName: string, problems: Problem[]): SectionRecords[] {
  if (!layout) return [];
  let misalignedReported = false;
  return layout.sections.map(({ sectionName, runs }) => {
    const count = runs.reduce((sum, run) => sum + run.count, 0);
    const positions = new Uint32Array(count);
    const insnOffsets = new Uint32Array(count);
    let i = 0;
    for (const run of runs) {
      for (let r = 0, at = run.at; r < run.count; r++, i++, at += layout.recordSize) {
        const byteOffset = view.getUint32(at, le);
        // (byteOffset & 7) and (byteOffset >>> 3) are % 8 and floor(/ 8) for a u32, without the float arithmetic.
        if ((byteOffset & (INSTRUCTION_SLOT_BYTES - 1)) !== 0 && !misalignedReported) {
          misalignedReported = true;
          problems.push({
            message: `.BTF.ext: ${blockName} for section ${sectionName}: insn_off ${hex(byteOffset)} at byte ${hex(at)} is not a multiple of 8`,
            offset: at,
          });
        }
        positions[i] = at;
        insnOffsets[i] = byteOffset >>> 3;
      }
    }
    return { sectionName, records: { positions, insnOffsets } };
  });
}
