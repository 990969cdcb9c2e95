/**
 * The C type model that the header index stores and the layout engine measures. It is plain JSON
 * data so that a parsed header can be written to the disk cache and read back as it is: named
 * records, enums and typedefs are referred to by name and looked up in a TypeEnvironment, while an
 * anonymous record or enum is carried inline where it is used.
 */

/** Arithmetic types, spelled the way the declaration parser normalises them. */
export type ScalarName =
  | 'char'
  | 'signed char'
  | 'unsigned char'
  | 'short'
  | 'unsigned short'
  | 'int'
  | 'unsigned int'
  | 'long'
  | 'unsigned long'
  | 'long long'
  | 'unsigned long long'
  | '__int128'
  | 'unsigned __int128'
  | '_Bool'
  | 'float'
  | 'double'
  | 'long double'
  | '_Float16'
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
 * A record whose body has not been read yet: a header's struct is read only when something looks it
 * up (vmlinux.h defines tens of thousands, a program uses a few dozen). `read()` parses it once and
 * keeps the result; `text()` is what the disk cache stores: its C source (`struct tag { ... }`)
 * until it is read, its definition as JSON after.
 */
export interface DeferredRecord {
  readonly deferred: true;
  read(): RecordDef | undefined;
  text(): string;
}

export function isDeferred(value: unknown): value is DeferredRecord {
  return typeof value === 'object' && value !== null && (value as { deferred?: unknown }).deferred === true;
}

/**
 * A declaration as the disk cache keeps it until it is first looked up: its JSON text for a record,
 * enum or typedef (or a record's C source, see DeferredRecord), a number or decimal string for an
 * enumerator; or a record not read yet.
 */
export type Encoded = string | number | DeferredRecord;

/**
 * What a header (or a main file) declares, in the order it declared it. This is what the header
 * index persists; merging it into a TypeEnvironment replays the declarations. Entries read from the
 * disk cache may still be encoded (see Encoded).
 */
export interface Declarations {
  records: [string, RecordDef | string | DeferredRecord][];
  enums: [string, EnumDef | string][];
  typedefs: [string, TypedefDef | string][];
  /** Enumerators; values beyond ±2^53 are kept as decimal strings so they survive JSON. */
  constants: [string, number | string][];
  /** BPF helpers as bpf_helper_defs.h declares them (see TypeEnvironment.helperId), with their ids. */
  helpers: [string, number][];
}

export function emptyDeclarations(): Declarations {
  return { records: [], enums: [], typedefs: [], constants: [], helpers: [] };
}

/**
 * A map seen through a read-only base: lookups try the own entries first, then the base. Iteration
 * and size are those of one flat Map that had the base's entries set first and the own ones after
 * (a key set again keeps its first place and takes the new value), so a file's own declarations can
 * sit on top of its headers' without copying them. Values may be stored encoded: they are decoded
 * on first lookup, and kept decoded.
 */
export class LayeredMap<K, V> implements ReadonlyMap<K, V> {
  private readonly own = new Map<K, V | Encoded>();
  private added = 0;

  /** `decodedType`: what typeof says of a decoded value; anything else is decoded with `decode`. */
  constructor(
    readonly base: LayeredMap<K, V> | undefined,
    private readonly decodedType: 'object' | 'bigint' | 'number',
    private readonly decode: (encoded: Encoded) => V | undefined,
  ) {}

  get size(): number {
    return (this.base?.size ?? 0) + this.added;
  }

  get(key: K): V | undefined {
    const value = this.own.get(key);
    if (value === undefined) return this.base?.get(key);
    if (typeof value === this.decodedType && !isDeferred(value)) return value as V;
    const decoded = isDeferred(value) ? (value.read() as V | undefined) : this.decode(value as Encoded);
    // A cache file damaged after it was written reads as a declaration that is not there.
    if (decoded === undefined) return undefined;
    this.own.set(key, decoded);
    return decoded;
  }

  has(key: K): boolean {
    return this.own.has(key) || (this.base?.has(key) ?? false);
  }

  set(key: K, value: V | Encoded): void {
    if (!this.own.has(key) && !(this.base?.has(key) ?? false)) this.added++;
    this.own.set(key, value);
  }

  *entries(): IterableIterator<[K, V]> {
    const base = this.base;
    if (base) {
      for (const entry of base) yield this.own.has(entry[0]) ? [entry[0], this.get(entry[0]) as V] : entry;
      for (const key of this.own.keys()) if (!base.has(key)) yield [key, this.get(key) as V];
    } else {
      for (const key of this.own.keys()) yield [key, this.get(key) as V];
    }
  }

  *keys(): IterableIterator<K> {
    for (const [key] of this.entries()) yield key;
  }

  *values(): IterableIterator<V> {
    for (const [, value] of this.entries()) yield value;
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries();
  }

  forEach(callback: (value: V, key: K, map: ReadonlyMap<K, V>) => void): void {
    for (const [key, value] of this.entries()) callback(value, key, this);
  }
}

function decodeJson<V>(encoded: Encoded): V | undefined {
  try {
    return JSON.parse(encoded as string) as V;
  } catch {
    return undefined;
  }
}

function decodeNumber(encoded: Encoded): number | undefined {
  const value = Number(encoded);
  return Number.isSafeInteger(value) ? value : undefined;
}

function decodeBigInt(encoded: Encoded): bigint | undefined {
  try {
    return typeof encoded === 'object' ? undefined : BigInt(encoded);
  } catch {
    return undefined;
  }
}

const MIN_SAFE_BIGINT = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE_BIGINT = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Every name in scope for types: struct/union/enum tags, typedef names and enumerators. A function
 * body's scope is a child whose lookups fall back to the file scope (`parent`). A file scope may sit
 * on a `base`: the file scope of its headers, shared and never changed again, whose names are in
 * this scope as if they had been declared here first.
 */
export class TypeEnvironment {
  readonly records: LayeredMap<string, RecordDef>;
  readonly enums: LayeredMap<string, EnumDef>;
  readonly typedefs: LayeredMap<string, TypedefDef>;
  readonly constants: LayeredMap<string, bigint>;
  /** Helper ids by the name of the function pointer that calls the helper (defineHelper). */
  readonly helpers: LayeredMap<string, number>;
  /**
   * Everything declared here is also appended to each of these: the header index's records of the
   * headers being read (a nested header's declarations belong to every header that includes it).
   */
  readonly recorders: Declarations[] = [];

  /**
   * Reads a record from its C source (a DeferredRecord's text, as the disk cache stores it): set by
   * the DeclarationParser of this scope, which knows its typedefs and constants.
   */
  recordReader?: (text: string) => RecordDef | undefined;

  constructor(
    readonly parent?: TypeEnvironment,
    readonly base?: TypeEnvironment,
  ) {
    this.records = new LayeredMap(base?.records, 'object', (encoded) => this.decodeRecord(encoded));
    this.enums = new LayeredMap(base?.enums, 'object', decodeJson<EnumDef>);
    this.typedefs = new LayeredMap(base?.typedefs, 'object', decodeJson<TypedefDef>);
    this.constants = new LayeredMap(base?.constants, 'bigint', decodeBigInt);
    this.helpers = new LayeredMap(base?.helpers, 'number', decodeNumber);
  }

  /** A record as the disk cache stores it: JSON, or C source read by recordReader. */
  private decodeRecord(encoded: Encoded): RecordDef | undefined {
    if (typeof encoded !== 'string') return undefined;
    return encoded.startsWith('{') ? decodeJson<RecordDef>(encoded) : this.recordReader?.(encoded);
  }

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

  /**
   * The id of the BPF helper `name` calls: libbpf's bpf_helper_defs.h declares each helper as a
   * function pointer initialised with its id (`static long (* const bpf_snprintf)(...) = (void *) 165;`),
   * and clang emits a call through such a constant as `call 165`. Undefined for anything else.
   */
  helperId(name: string): number | undefined {
    return this.helpers.get(name) ?? this.parent?.helperId(name);
  }

  isTypedefName(name: string): boolean {
    return this.typedefs.has(name) || (this.parent?.isTypedefName(name) ?? false);
  }

  /** `def` may be encoded (JSON or C text from the disk cache) or not read yet. */
  defineRecord(tag: string, def: RecordDef | string | DeferredRecord): void {
    this.records.set(tag, def);
    for (const recorder of this.recorders) recorder.records.push([tag, def]);
  }

  defineEnum(tag: string, def: EnumDef | string): void {
    this.enums.set(tag, def);
    for (const recorder of this.recorders) recorder.enums.push([tag, def]);
  }

  defineTypedef(name: string, def: TypedefDef | string): void {
    this.typedefs.set(name, def);
    for (const recorder of this.recorders) recorder.typedefs.push([name, def]);
  }

  defineConstant(name: string, value: bigint): void {
    this.constants.set(name, value);
    if (this.recorders.length === 0) return;
    const safe = value >= MIN_SAFE_BIGINT && value <= MAX_SAFE_BIGINT;
    const stored = safe ? Number(value) : value.toString();
    for (const recorder of this.recorders) recorder.constants.push([name, stored]);
  }

  /** `id` may be encoded (decimal text from the disk cache). */
  defineHelper(name: string, id: number | string): void {
    this.helpers.set(name, id);
    for (const recorder of this.recorders) recorder.helpers.push([name, typeof id === 'number' ? id : Number(id)]);
  }

  /** An enumerator as Declarations stores it (a number, or a decimal string beyond ±2^53). */
  defineStoredConstant(name: string, stored: number | string): void {
    this.constants.set(name, stored);
    for (const recorder of this.recorders) recorder.constants.push([name, stored]);
  }

  /** Replays declarations read from the header index, as if the header had just been parsed. */
  merge(declarations: Declarations): void {
    for (const [tag, def] of declarations.records) this.defineRecord(tag, def);
    for (const [tag, def] of declarations.enums) this.defineEnum(tag, def);
    for (const [name, def] of declarations.typedefs) this.defineTypedef(name, def);
    for (const [name, value] of declarations.constants) this.defineStoredConstant(name, value);
    for (const [name, id] of declarations.helpers) this.defineHelper(name, id);
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
