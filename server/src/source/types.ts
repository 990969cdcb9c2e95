/**
 * The C type model that the header index stores and the layout engine measures. It is plain JSON
 * data so that a parsed header can be written to the disk cache and read back as it is: named
 * records, enums and typedefs are referred to by name and looked up in a TypeEnvironment, while an
 * anonymous record or enum is carried inline where it is used.
 */

/** Arithmetic types, spelled the way the declaration parser normalises them. */
export type ScalarName =
  | 'char' | 'signed char' | 'unsigned char'
  | 'short' | 'unsigned short'
  | 'int' | 'unsigned int'
  | 'long' | 'unsigned long'
  | 'long long' | 'unsigned long long'
  | '__int128' | 'unsigned __int128'
  | '_Bool' | 'float' | 'double' | 'long double' | '_Float16'
  | '__builtin_va_list';

export type CType =
  | { k: 'void' }
  | { k: 'scalar'; name: ScalarName }
  | { k: 'pointer'; to: CType }
  /** `n` is undefined for `T x[]` (a flexible array member, or an incomplete array). */
  | { k: 'array'; of: CType; n?: number }
  | { k: 'function'; returns: CType }
  | { k: 'struct' | 'union'; tag?: string; def?: RecordDef }
  | { k: 'enum'; tag?: string; def?: EnumDef }
  | { k: 'typedef'; name: string }
  /** A type the parser could not work out (typeof of an expression, a syntax error). */
  | { k: 'unknown'; why: string };

export interface FieldDef {
  /** Absent for anonymous struct/union members and unnamed bit-fields. */
  name?: string;
  type: CType;
  /** Width of a bit-field, in bits (0 for `int : 0`). */
  bits?: number;
  /** From `__attribute__((aligned(N)))` or `_Alignas(N)` on the member: raises its alignment. */
  align?: number;
  /** From `__attribute__((packed))` on the member. */
  packed?: true;
}

export interface RecordDef {
  kind: 'struct' | 'union';
  fields: FieldDef[];
  /** `__attribute__((packed))` on the record. */
  packed?: true;
  /** `__attribute__((aligned(N)))` on the record. */
  align?: number;
}

export interface EnumDef {
  /** Chosen from the enumerators' range the way clang chooses the underlying type: 1, 2, 4 or 8. */
  size: number;
}

export interface TypedefDef {
  type: CType;
  /** `__attribute__((aligned(N)))` on a typedef sets the alignment, even lower than natural. */
  align?: number;
}

/**
 * What a header (or a main file) declares, in the order it declared it. This is what the header
 * index persists; merging it into a TypeEnvironment replays the declarations.
 */
export interface Declarations {
  records: [string, RecordDef][];
  enums: [string, EnumDef][];
  typedefs: [string, TypedefDef][];
  /** Enumerators; values beyond ±2^53 are kept as decimal strings so they survive JSON. */
  constants: [string, number | string][];
}

export function emptyDeclarations(): Declarations {
  return { records: [], enums: [], typedefs: [], constants: [] };
}

/**
 * Every name in scope for types: struct/union/enum tags, typedef names and enumerators. A function
 * body's scope is a child whose lookups fall back to the file scope.
 */
export class TypeEnvironment {
  readonly records = new Map<string, RecordDef>();
  readonly enums = new Map<string, EnumDef>();
  readonly typedefs = new Map<string, TypedefDef>();
  readonly constants = new Map<string, bigint>();
  /**
   * Everything declared here is also appended to each of these: the header index's records of the
   * headers being read (a nested header's declarations belong to every header that includes it).
   */
  readonly recorders: Declarations[] = [];

  constructor(readonly parent?: TypeEnvironment) {}

  record(tag: string): RecordDef | undefined {
    return this.records.get(tag) ?? this.parent?.record(tag);
  }

  enumeration(tag: string): EnumDef | undefined {
    return this.enums.get(tag) ?? this.parent?.enumeration(tag);
  }

  typedef(name: string): TypedefDef | undefined {
    return this.typedefs.get(name) ?? this.parent?.typedef(name);
  }

  constant(name: string): bigint | undefined {
    return this.constants.get(name) ?? this.parent?.constant(name);
  }

  isTypedefName(name: string): boolean {
    return this.typedef(name) !== undefined;
  }

  defineRecord(tag: string, def: RecordDef): void {
    this.records.set(tag, def);
    for (const recorder of this.recorders) recorder.records.push([tag, def]);
  }

  defineEnum(tag: string, def: EnumDef): void {
    this.enums.set(tag, def);
    for (const recorder of this.recorders) recorder.enums.push([tag, def]);
  }

  defineTypedef(name: string, def: TypedefDef): void {
    this.typedefs.set(name, def);
    for (const recorder of this.recorders) recorder.typedefs.push([name, def]);
  }

  defineConstant(name: string, value: bigint): void {
    this.constants.set(name, value);
    const safe = value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER);
    if (this.recorders.length === 0) return;
    const stored = safe ? Number(value) : value.toString();
    for (const recorder of this.recorders) recorder.constants.push([name, stored]);
  }

  /** Replays declarations read from the header index, as if the header had just been parsed. */
  merge(declarations: Declarations): void {
    for (const [tag, def] of declarations.records) this.defineRecord(tag, def);
    for (const [tag, def] of declarations.enums) this.defineEnum(tag, def);
    for (const [name, def] of declarations.typedefs) this.defineTypedef(name, def);
    for (const [name, value] of declarations.constants) this.defineConstant(name, BigInt(value));
  }
}

/** The C spelling of a type, for messages and reports ("struct sk_buff *", "__u32[16]"). */
export function typeToString(type: CType): string {
  switch (type.k) {
    case 'void':
      return 'void';
    case 'scalar':
      return type.name;
    case 'pointer':
      return `${typeToString(type.to)} *`;
    case 'array':
      return `${typeToString(type.of)}[${type.n ?? ''}]`;
    case 'function':
      return `${typeToString(type.returns)} (...)`;
    case 'struct':
    case 'union':
    case 'enum':
      return `${type.k} ${type.tag ?? '(anonymous)'}`;
    case 'typedef':
      return type.name;
    case 'unknown':
      return `<unknown: ${type.why}>`;
  }
}
