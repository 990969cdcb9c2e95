/**
 * Reads the .BTF section of a BPF object: the types of every function, variable and map, and the
 * string table that .BTF.ext line info points into (file names and source lines). Layout as in
 * include/uapi/linux/btf.h and Documentation/bpf/btf.rst.
 *
 * Type ids are positions: id 0 is void, and the n-th type record in the section is id n. Nothing
 * here throws; a damaged section gives back the types read before the damage, plus a problem.
 */
import type { Problem } from '../common/problem';

export type BtfKind =
  | 'void'
  | 'int'
  | 'ptr'
  | 'array'
  | 'struct'
  | 'union'
  | 'enum'
  | 'fwd'
  | 'typedef'
  | 'volatile'
  | 'const'
  | 'restrict'
  | 'func'
  | 'func_proto'
  | 'var'
  | 'datasec'
  | 'float'
  | 'decl_tag'
  | 'type_tag'
  | 'enum64';

/** Kinds in the order of their numbers in btf.h (BTF_KIND_INT = 1 ... BTF_KIND_ENUM64 = 19). */
const KINDS: readonly BtfKind[] = [
  'void',
  'int',
  'ptr',
  'array',
  'struct',
  'union',
  'enum',
  'fwd',
  'typedef',
  'volatile',
  'const',
  'restrict',
  'func',
  'func_proto',
  'var',
  'datasec',
  'float',
  'decl_tag',
  'type_tag',
  'enum64',
];

/** BTF_FUNC_STATIC, BTF_FUNC_GLOBAL, BTF_FUNC_EXTERN: the linkage in a FUNC's vlen. */
export const BTF_FUNC_STATIC = 0;
export const BTF_FUNC_GLOBAL = 1;
export const BTF_FUNC_EXTERN = 2;

/** BTF_VAR_STATIC, BTF_VAR_GLOBAL_ALLOCATED, BTF_VAR_GLOBAL_EXTERN. */
export const BTF_VAR_STATIC = 0;
export const BTF_VAR_GLOBAL_ALLOCATED = 1;
export const BTF_VAR_GLOBAL_EXTERN = 2;

export interface BtfMember {
  name: string;
  type: number;
  /** Offset of the member from the start of the struct, in bits. */
  bitOffset: number;
  /** Bit-field width; 0 for an ordinary member. */
  bitSize: number;
}

export interface BtfParam {
  name: string;
  type: number;
}

export interface BtfEnumValue {
  name: string;
  value: bigint;
}

export interface BtfVarSecInfo {
  /** The VAR (or FUNC, for extern kfuncs in .ksyms) this entry places. */
  type: number;
  offset: number;
  size: number;
}

export interface BtfType {
  id: number;
  kind: BtfKind;
  /** Empty for anonymous types. */
  name: string;
  /** The number of members, params, values or entries; a FUNC keeps its linkage here. */
  vlen: number;
  /** btf_type.info bit 31: bit-field offsets in members, a union forward declaration, a signed enum. */
  kindFlag: boolean;
  /**
   * Byte size, for int, struct, union, enum, enum64, float and datasec. A DATASEC's size (and its
   * variables' offsets) are 0 in an object file: libbpf fills them in from the ELF section at load.
   */
  size?: number;
  /** The referenced type: pointee, typedef target, function prototype, return type, variable type. */
  type?: number;
  /** FUNC: 0 static, 1 global, 2 extern. VAR: 0 static, 1 global, 2 extern. */
  linkage?: number;
  members?: BtfMember[];
  params?: BtfParam[];
  enumValues?: BtfEnumValue[];
  /** ARRAY */
  elemType?: number;
  indexType?: number;
  nelems?: number;
  /** INT: the encoding bits (signed 1, char 2, bool 4), the bit offset and the number of bits. */
  intEncoding?: number;
  intBitOffset?: number;
  intBits?: number;
  /** DATASEC */
  varSecInfos?: BtfVarSecInfo[];
  /** DECL_TAG: -1 for the whole declaration, else the member or parameter index. */
  componentIndex?: number;
}

export interface Btf {
  /** Index = type id; types[0] is void. */
  types: BtfType[];
  /** The string at `offset` in the string section; empty when out of range. */
  strings(offset: number): string;
  /** The size of a value of this type in bytes; undefined for void, functions and forward declarations. */
  resolveSize(id: number): number | undefined;
  /** The type as C would spell it: "int", "struct task_struct *", "char[16]". */
  typeName(id: number): string;
}

export const BTF_MAGIC = 0xeb9f;
const HEADER_MIN_SIZE = 24;
const TYPE_HEADER_SIZE = 12;
/** Chains of typedefs and qualifiers are short; anything longer is a cycle in a damaged section. */
const MAX_RESOLVE_DEPTH = 32;

const utf8 = new TextDecoder('utf-8', { fatal: false });

function hex(n: number): string {
  return '0x' + n.toString(16);
}

/**
 * The header, then the type and string sections at offsets counted from the header's end:
 *
 *   0       2         3       4         8          12         16         20         24
 *   +-------+---------+-------+---------+----------+----------+----------+----------+
 *   | magic | version | flags | hdr_len | type_off | type_len | str_off  | str_len  |
 *   +-------+---------+-------+---------+----------+----------+----------+----------+
 *   magic 0xeB9F in the object's byte order.
 */
export function readBtf(
  section: Uint8Array | undefined,
  littleEndian: boolean,
  /** ElfSection.offset, so problem offsets point into the file; 0 leaves them section-relative. */
  sectionFileOffset = 0,
): { btf?: Btf; problems: Problem[] } {
  const result = readBtfSection(section, littleEndian);
  return { ...result, problems: inFile(result.problems, sectionFileOffset) };
}

/** Problems inside a section carry section-relative offsets until the section's place in the file is added. */
function inFile(problems: Problem[], sectionFileOffset: number): Problem[] {
  if (sectionFileOffset === 0) return problems;
  return problems.map((p) => (p.offset === undefined ? p : { ...p, offset: p.offset + sectionFileOffset }));
}

function readBtfSection(section: Uint8Array | undefined, littleEndian: boolean): { btf?: Btf; problems: Problem[] } {
  const problems: Problem[] = [];
  if (section === undefined) {
    return { problems: [{ message: 'no .BTF section: build with -g' }] };
  }
  if (section.length < HEADER_MIN_SIZE) {
    return { problems: [{ message: `.BTF: truncated header (${section.length} bytes, need ${HEADER_MIN_SIZE})`, offset: 0 }] };
  }
  let view = new DataView(section.buffer, section.byteOffset, section.byteLength);
  const magic = view.getUint16(0, littleEndian);
  if (magic !== BTF_MAGIC) {
    // The magic is written in the producer's byte order, so a swapped magic is still a valid BTF
    // section; believe it rather than the ELF header.
    if (view.getUint16(0, !littleEndian) === BTF_MAGIC) {
      littleEndian = !littleEndian;
    } else {
      return { problems: [{ message: `.BTF: bad magic ${hex(magic)} (expected 0xeb9f)`, offset: 0 }] };
    }
  }
  const version = view.getUint8(2);
  if (version !== 1) {
    return { problems: [{ message: `.BTF: unsupported version ${version} (only version 1 exists)`, offset: 2 }] };
  }
  const headerLength = view.getUint32(4, littleEndian);
  const typeStart = headerLength + view.getUint32(8, littleEndian);
  const typeLength = view.getUint32(12, littleEndian);
  const stringStart = headerLength + view.getUint32(16, littleEndian);
  const stringLength = view.getUint32(20, littleEndian);
  if (headerLength < HEADER_MIN_SIZE || headerLength > section.length) {
    return { problems: [{ message: `.BTF: header length ${headerLength} is outside the section (${section.length} bytes)`, offset: 4 }] };
  }

  let stringTable: Uint8Array = new Uint8Array(0);
  if (stringStart + stringLength > section.length) {
    problems.push({
      message: `.BTF: string section at ${hex(stringStart)} + ${hex(stringLength)} runs past the end of the section (${hex(section.length)} bytes)`,
      offset: 16,
    });
  } else {
    stringTable = section.subarray(stringStart, stringStart + stringLength);
  }
  const stringCache = new Map<number, string>();
  const strings = (offset: number): string => {
    let value = stringCache.get(offset);
    if (value === undefined) {
      value = '';
      if (offset >= 0 && offset < stringTable.length) {
        let end = offset;
        while (end < stringTable.length && stringTable[end] !== 0) end++;
        value = utf8.decode(stringTable.subarray(offset, end));
      }
      stringCache.set(offset, value);
    }
    return value;
  };

  const types: BtfType[] = [{ id: 0, kind: 'void', name: '', vlen: 0, kindFlag: false }];
  let typeEnd = typeStart + typeLength;
  const typeSectionCut = typeEnd > section.length;
  if (typeSectionCut) {
    problems.push({
      message: `.BTF: type section at ${hex(typeStart)} + ${hex(typeLength)} runs past the end of the section (${hex(section.length)} bytes)`,
      offset: 8,
    });
    // Reading on into the string section would only turn strings into nonsense types.
    typeEnd = stringStart >= typeStart && stringStart < section.length ? stringStart : section.length;
  }
  view = new DataView(section.buffer, section.byteOffset, section.byteLength);
  let badStringReported = false;
  const name = (offset: number, at: number): string => {
    if (offset >= stringTable.length && stringTable.length > 0 && !badStringReported) {
      badStringReported = true;
      problems.push({
        message: `.BTF: name offset ${hex(offset)} at byte ${hex(at)} is past the string section (${hex(stringTable.length)} bytes)`,
        offset: at,
      });
    }
    return strings(offset);
  };

  let at = typeStart;
  while (at < typeEnd) {
    const id = types.length;
    const type = readType(view, at, typeEnd, littleEndian, id, name);
    if ('problem' in type) {
      // A record cut off where the section ends is the overrun already reported, not news.
      if (typeSectionCut && type.problem.startsWith('truncated')) break;
      problems.push({ message: `.BTF: type ${id} at byte ${hex(at)}: ${type.problem}; the types after it are not read`, offset: at });
      break;
    }
    types.push(type.type);
    at = type.next;
  }

  return { btf: makeBtf(types, strings), problems };
}

/**
 * One type record: a 12-byte btf_type, then kind-specific data (vlen entries for most kinds).
 *
 *   0          4                                         8
 *   +----------+-----------------------------------------+-------------+
 *   | name_off | info                                    | size / type |
 *   +----------+-----------------------------------------+-------------+
 *               bit 31 kind_flag, bits 24-28 kind, bits 0-15 vlen
 */
function readType(
  view: DataView,
  start: number,
  end: number,
  le: boolean,
  id: number,
  name: (offset: number, at: number) => string,
): { type: BtfType; next: number } | { problem: string } {
  if (start + TYPE_HEADER_SIZE > end) return { problem: 'truncated type header' };
  const info = view.getUint32(start + 4, le);
  const kindNumber = (info >>> 24) & 0x1f;
  const kind = KINDS[kindNumber];
  if (kind === undefined || kindNumber === 0) return { problem: `unknown kind ${kindNumber}` };
  const vlen = info & 0xffff;
  const kindFlag = (info & 0x80000000) !== 0;
  const sizeOrType = view.getUint32(start + 8, le);
  const type: BtfType = { id, kind, name: name(view.getUint32(start, le), start), vlen, kindFlag };
  let at = start + TYPE_HEADER_SIZE;
  const need = (bytes: number): boolean => at + bytes <= end;
  const truncated = { problem: `truncated ${kind} data` };

  switch (kind) {
    case 'int': {
      if (!need(4)) return truncated;
      // The extra u32: encoding in bits 24-27, bit offset in bits 16-23, bit count in bits 0-7.
      const extra = view.getUint32(at, le);
      type.size = sizeOrType;
      type.intEncoding = (extra >>> 24) & 0x0f;
      type.intBitOffset = (extra >>> 16) & 0xff;
      type.intBits = extra & 0xff;
      at += 4;
      break;
    }
    case 'ptr':
    case 'typedef':
    case 'volatile':
    case 'const':
    case 'restrict':
    case 'type_tag':
    case 'fwd':
      if (kind !== 'fwd') type.type = sizeOrType;
      break;
    case 'func':
      type.type = sizeOrType;
      type.linkage = vlen;
      break;
    case 'float':
      type.size = sizeOrType;
      break;
    case 'array':
      if (!need(12)) return truncated;
      type.elemType = view.getUint32(at, le);
      type.indexType = view.getUint32(at + 4, le);
      type.nelems = view.getUint32(at + 8, le);
      at += 12;
      break;
    case 'struct':
    case 'union': {
      if (!need(12 * vlen)) return truncated;
      type.size = sizeOrType;
      type.members = [];
      for (let i = 0; i < vlen; i++, at += 12) {
        const offset = view.getUint32(at + 8, le);
        // With kind_flag set the offset packs a bit-field's width into its top 8 bits.
        type.members.push({
          name: name(view.getUint32(at, le), at),
          type: view.getUint32(at + 4, le),
          bitOffset: kindFlag ? offset & 0xffffff : offset,
          bitSize: kindFlag ? offset >>> 24 : 0,
        });
      }
      break;
    }
    case 'enum': {
      if (!need(8 * vlen)) return truncated;
      type.size = sizeOrType;
      type.enumValues = [];
      for (let i = 0; i < vlen; i++, at += 8) {
        const raw = kindFlag ? view.getInt32(at + 4, le) : view.getUint32(at + 4, le);
        type.enumValues.push({ name: name(view.getUint32(at, le), at), value: BigInt(raw) });
      }
      break;
    }
    case 'enum64': {
      if (!need(12 * vlen)) return truncated;
      type.size = sizeOrType;
      type.enumValues = [];
      for (let i = 0; i < vlen; i++, at += 12) {
        const unsigned = (BigInt(view.getUint32(at + 8, le)) << 32n) | BigInt(view.getUint32(at + 4, le));
        type.enumValues.push({ name: name(view.getUint32(at, le), at), value: kindFlag ? BigInt.asIntN(64, unsigned) : unsigned });
      }
      break;
    }
    case 'func_proto': {
      if (!need(8 * vlen)) return truncated;
      type.type = sizeOrType;
      type.params = [];
      for (let i = 0; i < vlen; i++, at += 8) {
        type.params.push({ name: name(view.getUint32(at, le), at), type: view.getUint32(at + 4, le) });
      }
      break;
    }
    case 'var':
      if (!need(4)) return truncated;
      type.type = sizeOrType;
      type.linkage = view.getUint32(at, le);
      at += 4;
      break;
    case 'datasec': {
      if (!need(12 * vlen)) return truncated;
      type.size = sizeOrType;
      type.varSecInfos = [];
      for (let i = 0; i < vlen; i++, at += 12) {
        type.varSecInfos.push({ type: view.getUint32(at, le), offset: view.getUint32(at + 4, le), size: view.getUint32(at + 8, le) });
      }
      break;
    }
    case 'decl_tag':
      if (!need(4)) return truncated;
      type.type = sizeOrType;
      type.componentIndex = view.getInt32(at, le);
      at += 4;
      break;
    case 'void':
      break;
  }
  return { type, next: at };
}

function makeBtf(types: BtfType[], strings: (offset: number) => string): Btf {
  const resolveSize = (id: number, depth = 0): number | undefined => {
    const type = types[id];
    if (type === undefined || depth > MAX_RESOLVE_DEPTH) return undefined;
    switch (type.kind) {
      case 'int':
      case 'enum':
      case 'enum64':
      case 'struct':
      case 'union':
      case 'float':
      case 'datasec':
        return type.size;
      case 'ptr':
        // BPF is a 64-bit target.
        return 8;
      case 'array': {
        const element = resolveSize(type.elemType ?? 0, depth + 1);
        return element === undefined ? undefined : element * (type.nelems ?? 0);
      }
      case 'typedef':
      case 'volatile':
      case 'const':
      case 'restrict':
      case 'type_tag':
      case 'var':
      case 'decl_tag':
        return resolveSize(type.type ?? 0, depth + 1);
      default:
        return undefined;
    }
  };

  const join = ({ before, after }: { before: string; after: string }) => before + after;

  // Spelled as a C declaration with the declarator left out: the part before and after the hole
  // where a name would go, so that arrays of pointers and pointers to functions come out right.
  const spell = (id: number, depth: number): { before: string; after: string } => {
    const type = types[id];
    if (type === undefined) return { before: `<bad type ${id}>`, after: '' };
    if (depth > MAX_RESOLVE_DEPTH) return { before: '...', after: '' };
    const named = (keyword: string) => ({ before: `${keyword} ${type.name || '(anon)'}`, after: '' });
    switch (type.kind) {
      case 'void':
        return { before: 'void', after: '' };
      case 'int':
      case 'float':
      case 'typedef':
        return { before: type.name, after: '' };
      case 'struct':
        return named('struct');
      case 'union':
        return named('union');
      case 'enum':
      case 'enum64':
        return named('enum');
      case 'fwd':
        return named(type.kindFlag ? 'union' : 'struct');
      case 'const':
      case 'volatile':
      case 'restrict': {
        const inner = spell(type.type ?? 0, depth + 1);
        // A qualified pointer puts the qualifier after its star: "char *const".
        if (inner.before.endsWith('*')) return { before: `${inner.before}${type.kind}`, after: inner.after };
        return { before: `${type.kind} ${inner.before}`, after: inner.after };
      }
      case 'type_tag':
      case 'decl_tag':
      case 'var':
        return spell(type.type ?? 0, depth + 1);
      case 'ptr': {
        const target = types[type.type ?? 0];
        const inner = spell(type.type ?? 0, depth + 1);
        // A pointer to an array or a function needs parentheses around the declarator.
        if (target?.kind === 'array' || target?.kind === 'func_proto') return { before: `${inner.before} (*`, after: `)${inner.after}` };
        return { before: `${inner.before} *`, after: inner.after };
      }
      case 'array': {
        const inner = spell(type.elemType ?? 0, depth + 1);
        return { before: inner.before, after: `[${type.nelems ?? 0}]${inner.after}` };
      }
      case 'func_proto': {
        const result = spell(type.type ?? 0, depth + 1);
        const params = (type.params ?? []).map((p) => (p.type === 0 ? '...' : join(spell(p.type, depth + 1))));
        return { before: result.before, after: `(${params.length ? params.join(', ') : 'void'})${result.after}` };
      }
      case 'func':
        return { before: type.name, after: '' };
      case 'datasec':
        return { before: `SEC("${type.name}")`, after: '' };
    }
  };

  return {
    types,
    strings,
    resolveSize: (id) => resolveSize(id),
    typeName: (id) => join(spell(id, 0)),
  };
}
