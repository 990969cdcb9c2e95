/**
 * Sizes and alignments of C types for the BPF target, following clang's record layout for it
 * (clang/lib/AST/RecordLayoutBuilder.cpp, the Itanium/System V path; BPF's data layout string is
 * "e-m:e-p:64:64-i64:64-i128:128-n32:64-S128"): LP64, little-endian, natural alignment, __int128
 * aligned to 16, long double the same as double.
 *
 * Bit-fields follow the System V rule clang implements: a bit-field goes at the current bit offset
 * unless it would straddle a boundary of its declared type's alignment, in which case it moves to the
 * next such boundary. An unnamed bit-field takes space and obeys that rule but does not raise the
 * record's alignment; a zero-width one rounds the offset up to its type's alignment and nothing
 * else. Packing removes the straddle rule and alignment; an aligned attribute on a member raises its
 * alignment even inside a packed record.
 */
import { roundUp } from '../common/numbers';
import type { CType, FieldDef, RecordDef, ScalarName, TypeEnvironment } from './types';

export interface TypeLayout {
  size: number;
  align: number;
  /** False for a struct or union that was declared but never defined, or a type that could not be read. */
  complete: boolean;
}

export interface FieldLayout {
  name?: string;
  /** Byte offset of the field (of its first byte, for a bit-field). */
  offset: number;
  /** For bit-fields: offset in bits from the start of the record, and width. */
  bitOffset?: number;
  bits?: number;
  size: number;
}

export interface RecordLayout extends TypeLayout {
  fields: FieldLayout[];
}

const SCALARS: Record<ScalarName, [size: number, align: number]> = {
  char: [1, 1],
  'signed char': [1, 1],
  'unsigned char': [1, 1],
  short: [2, 2],
  'unsigned short': [2, 2],
  int: [4, 4],
  'unsigned int': [4, 4],
  long: [8, 8],
  'unsigned long': [8, 8],
  'long long': [8, 8],
  'unsigned long long': [8, 8],
  __int128: [16, 16],
  'unsigned __int128': [16, 16],
  _Bool: [1, 1],
  float: [4, 4],
  double: [8, 8],
  'long double': [8, 8],
  _Float16: [2, 2],
  __builtin_va_list: [8, 8],
};

export const POINTER_SIZE = 8;

/** `__attribute__((aligned))` without a number: clang's default for the BPF target is 16. */
export const DEFAULT_ATTRIBUTE_ALIGNMENT = 16;

const INCOMPLETE: TypeLayout = { size: 0, align: 1, complete: false };

/**
 * Measures types against one environment and remembers every record it has measured: layouts of
 * the same record are asked for again and again (every pointer-free struct member, every report).
 */
export class LayoutEngine {
  private readonly recordLayouts = new WeakMap<RecordDef, RecordLayout>();
  private readonly inProgress = new Set<RecordDef>();

  constructor(readonly environment: TypeEnvironment) {}

  layoutOf(type: CType): TypeLayout {
    switch (type.k) {
      case 'scalar': {
        const [size, align] = SCALARS[type.name];
        return { size, align, complete: true };
      }
      case 'pointer':
        return { size: POINTER_SIZE, align: POINTER_SIZE, complete: true };
      case 'void':
      case 'function':
        // GNU C: sizeof(void) and sizeof of a function are 1.
        return { size: 1, align: 1, complete: true };
      case 'array': {
        const element = this.layoutOf(type.of);
        return { size: element.size * (type.n ?? 0), align: element.align, complete: element.complete && type.n !== undefined };
      }
      case 'struct':
      case 'union': {
        const def = type.def ?? (type.tag !== undefined ? this.environment.record(type.tag) : undefined);
        if (!def || def.kind !== type.k) return INCOMPLETE;
        return this.recordLayout(def);
      }
      case 'enum': {
        const def = type.def ?? (type.tag !== undefined ? this.environment.enumeration(type.tag) : undefined);
        // An enum used before its definition is an int, as far as clang lets it be used at all.
        const size = def?.size ?? 4;
        return { size, align: size, complete: def !== undefined };
      }
      case 'typedef': {
        const def = this.environment.typedef(type.name);
        if (!def) return INCOMPLETE;
        const underlying = this.layoutOf(def.type);
        return def.align !== undefined ? { ...underlying, align: def.align } : underlying;
      }
      case 'unknown':
        return INCOMPLETE;
    }
  }

  recordLayout(def: RecordDef): RecordLayout {
    const cached = this.recordLayouts.get(def);
    if (cached) return cached;
    if (this.inProgress.has(def)) return { ...INCOMPLETE, fields: [] };
    this.inProgress.add(def);
    const layout = def.kind === 'union' ? this.layoutUnion(def) : this.layoutStruct(def);
    this.inProgress.delete(def);
    this.recordLayouts.set(def, layout);
    return layout;
  }

  private memberAlignment(def: RecordDef, field: FieldDef, natural: number): number {
    let align = def.packed || field.packed ? 1 : natural;
    if (field.align !== undefined) align = Math.max(align, field.align);
    return align;
  }

  private layoutStruct(def: RecordDef): RecordLayout {
    let bitOffset = 0;
    let recordAlign = 1;
    let complete = true;
    const fields: FieldLayout[] = [];
    for (const field of def.fields) {
      const type = this.layoutOf(field.type);
      // A flexible array member is the only incomplete member C allows; it has size 0 and aligns.
      const isFlexibleArray = field.type.k === 'array' && field.type.n === undefined;
      if (!type.complete && !isFlexibleArray) complete = false;
      if (field.bits !== undefined) {
        const typeBits = type.size * 8;
        const typeAlignBits = type.align * 8;
        if (field.bits === 0) {
          bitOffset = roundUp(bitOffset, typeAlignBits);
          fields.push({ name: field.name, offset: bitOffset / 8, bitOffset, bits: 0, size: 0 });
          continue;
        }
        const packed = def.packed || field.packed;
        if (field.align !== undefined) {
          bitOffset = roundUp(bitOffset, field.align * 8);
        } else if (!packed && (bitOffset % typeAlignBits) + field.bits > typeBits) {
          bitOffset = roundUp(bitOffset, typeAlignBits);
        }
        fields.push({
          name: field.name,
          offset: Math.floor(bitOffset / 8),
          bitOffset,
          bits: field.bits,
          size: Math.ceil(field.bits / 8),
        });
        bitOffset += field.bits;
        if (field.name !== undefined) recordAlign = Math.max(recordAlign, this.memberAlignment(def, field, type.align));
        else if (field.align !== undefined) recordAlign = Math.max(recordAlign, field.align);
        continue;
      }
      const align = this.memberAlignment(def, field, type.align);
      const offset = roundUp(Math.ceil(bitOffset / 8), align);
      fields.push({ name: field.name, offset, size: type.size });
      bitOffset = (offset + type.size) * 8;
      recordAlign = Math.max(recordAlign, align);
    }
    if (def.align !== undefined) recordAlign = Math.max(recordAlign, def.align);
    return { size: roundUp(Math.ceil(bitOffset / 8), recordAlign), align: recordAlign, complete, fields };
  }

  private layoutUnion(def: RecordDef): RecordLayout {
    let size = 0;
    let recordAlign = 1;
    let complete = true;
    const fields: FieldLayout[] = [];
    for (const field of def.fields) {
      const type = this.layoutOf(field.type);
      if (!type.complete && !(field.type.k === 'array' && field.type.n === undefined)) complete = false;
      if (field.bits !== undefined) {
        fields.push({ name: field.name, offset: 0, bitOffset: 0, bits: field.bits, size: Math.ceil(field.bits / 8) });
        size = Math.max(size, Math.ceil(field.bits / 8));
        if (field.name !== undefined && field.bits > 0) {
          recordAlign = Math.max(recordAlign, this.memberAlignment(def, field, type.align));
        }
        continue;
      }
      const align = this.memberAlignment(def, field, type.align);
      fields.push({ name: field.name, offset: 0, size: type.size });
      size = Math.max(size, type.size);
      recordAlign = Math.max(recordAlign, align);
    }
    if (def.align !== undefined) recordAlign = Math.max(recordAlign, def.align);
    return { size: roundUp(size, recordAlign), align: recordAlign, complete, fields };
  }

  /**
   * Byte offset of a member path such as `a.b[3].c` inside a type, for offsetof; anonymous members
   * are searched through, as C allows naming their fields directly.
   */
  offsetOf(type: CType, path: (string | number)[]): number | undefined {
    let offset = 0;
    let current: CType = type;
    for (const step of path) {
      current = this.resolve(current);
      if (typeof step === 'number') {
        if (current.k !== 'array') return undefined;
        offset += step * this.layoutOf(current.of).size;
        current = current.of;
        continue;
      }
      const found = this.findField(current, step);
      if (!found) return undefined;
      offset += found.offset;
      current = found.type;
    }
    return offset;
  }

  /** A member by name, looking inside anonymous struct/union members. */
  findField(type: CType, name: string): { offset: number; type: CType } | undefined {
    const resolved = this.resolve(type);
    if (resolved.k !== 'struct' && resolved.k !== 'union') return undefined;
    const def = resolved.def ?? (resolved.tag !== undefined ? this.environment.record(resolved.tag) : undefined);
    if (!def) return undefined;
    const layout = this.recordLayout(def);
    for (let i = 0; i < def.fields.length; i++) {
      const field = def.fields[i];
      // layout.fields is parallel to def.fields: one entry per declared member.
      const fieldOffset = layout.fields[i]?.offset ?? 0;
      if (field.name === name) return { offset: fieldOffset, type: field.type };
      if (field.name === undefined && field.bits === undefined) {
        const inner = this.findField(field.type, name);
        if (inner) return { offset: fieldOffset + inner.offset, type: inner.type };
      }
    }
    return undefined;
  }

  /** Follows typedefs to the type they name. */
  resolve(type: CType): CType {
    let current = type;
    for (let depth = 0; current.k === 'typedef' && depth < 100; depth++) {
      const def = this.environment.typedef(current.name);
      if (!def) return current;
      current = def.type;
    }
    return current;
  }
}
