import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BTF_FUNC_EXTERN, BTF_FUNC_GLOBAL, BTF_FUNC_STATIC, type Btf, type BtfType, readBtf } from '../../server/src/object/btf';
import { readElf } from '../../server/src/object/elf';
import { OBJECT_PAIRS, dataPath, loadObject, readData, readDataText, runTool, toolMissing } from './testData';
import { skipOrFail } from '../support/unavailable';

function btfOf(name: string): Btf {
  const elf = loadObject(name);
  const { btf, problems } = readBtf(elf.sectionByName('.BTF')?.data, elf.littleEndian);
  assert.deepEqual(problems, [], name);
  assert.ok(btf);
  return btf;
}

function named(btf: Btf, kind: BtfType['kind'], name: string): BtfType {
  const found = btf.types.find((t) => t.kind === kind && t.name === name);
  assert.ok(found, `no ${kind} ${name}`);
  return found;
}

/**
 * Our reading of a BTF section printed as `bpftool btf dump file` prints it (bpftool's btf.c,
 * dump_btf_raw), so bpftool can act as the oracle for every field of every type.
 */
function dumpLikeBpftool(btf: Btf): string {
  const name = (t: { name: string }) => `'${t.name || '(anon)'}'`;
  const linkage = ['static', 'global', 'extern'];
  const lines: string[] = [];
  for (const t of btf.types.slice(1)) {
    const head = `[${t.id}] ${t.kind.toUpperCase()} ${name(t)}`;
    switch (t.kind) {
      case 'int': {
        const encoding = t.intEncoding === 1 ? 'SIGNED' : t.intEncoding === 2 ? 'CHAR' : t.intEncoding === 4 ? 'BOOL' : '(none)';
        lines.push(`${head} size=${t.size} bits_offset=${t.intBitOffset} nr_bits=${t.intBits} encoding=${encoding}`);
        break;
      }
      case 'ptr':
      case 'typedef':
      case 'volatile':
      case 'const':
      case 'restrict':
      case 'type_tag':
        lines.push(`${head} type_id=${t.type}`);
        break;
      case 'array':
        lines.push(`${head} type_id=${t.elemType} index_type_id=${t.indexType} nr_elems=${t.nelems}`);
        break;
      case 'struct':
      case 'union':
        lines.push(`${head} size=${t.size} vlen=${t.vlen}`);
        for (const m of t.members ?? []) {
          lines.push(`\t${name(m)} type_id=${m.type} bits_offset=${m.bitOffset}${m.bitSize ? ` bitfield_size=${m.bitSize}` : ''}`);
        }
        break;
      case 'enum':
      case 'enum64':
        lines.push(`${head} encoding=${t.kindFlag ? 'SIGNED' : 'UNSIGNED'} size=${t.size} vlen=${t.vlen}`);
        for (const v of t.enumValues ?? []) {
          const suffix = t.kind === 'enum64' ? (t.kindFlag ? 'LL' : 'ULL') : '';
          lines.push(`\t${name(v)} val=${v.value}${suffix}`);
        }
        break;
      case 'fwd':
        lines.push(`${head} fwd_kind=${t.kindFlag ? 'union' : 'struct'}`);
        break;
      case 'func':
        lines.push(`${head} type_id=${t.type} linkage=${linkage[t.linkage ?? 0]}`);
        break;
      case 'func_proto':
        lines.push(`${head} ret_type_id=${t.type} vlen=${t.vlen}`);
        for (const p of t.params ?? []) lines.push(`\t${name(p)} type_id=${p.type}`);
        break;
      case 'var':
        lines.push(`${head} type_id=${t.type}, linkage=${linkage[t.linkage ?? 0]}`);
        break;
      case 'datasec':
        lines.push(`${head} size=${t.size} vlen=${t.vlen}`);
        for (const v of t.varSecInfos ?? []) {
          const target = btf.types[v.type];
          lines.push(`\ttype_id=${v.type} offset=${v.offset} size=${v.size} (${target.kind.toUpperCase()} ${name(target)})`);
        }
        break;
      case 'float':
        lines.push(`${head} size=${t.size}`);
        break;
      case 'decl_tag':
        lines.push(`${head} type_id=${t.type} component_idx=${t.componentIndex}`);
        break;
      case 'void':
        break;
    }
  }
  return lines.join('\n') + '\n';
}

for (const [little, big] of OBJECT_PAIRS) {
  const source = little.replace(/\.o$/, '');
  test(`${little} and ${big}: BTF reads as bpftool dumped it (committed ${source}.btf.txt)`, () => {
    const golden = readDataText(`${source}.btf.txt`);
    assert.equal(dumpLikeBpftool(btfOf(little)), golden);
    assert.equal(dumpLikeBpftool(btfOf(big)), golden);
  });
}

test('every committed object: BTF reads as the installed bpftool reads it', (t) => {
  const missing = toolMissing('bpftool');
  if (missing) return skipOrFail(t, missing);
  for (const name of OBJECT_PAIRS.flat()) {
    const dump = runTool('bpftool', ['btf', 'dump', 'file', dataPath(name)]);
    assert.ok(dump !== undefined);
    assert.equal(dumpLikeBpftool(btfOf(name)), dump, name);
  }
});

test('FUNC linkage tells static, global and extern functions apart', () => {
  const btf = btfOf('calls.bpf.o');
  assert.equal(named(btf, 'func', 'fill_scratch').linkage, BTF_FUNC_STATIC);
  assert.equal(named(btf, 'func', 'loop_step').linkage, BTF_FUNC_STATIC);
  assert.equal(named(btf, 'func', 'same_section_callee').linkage, BTF_FUNC_STATIC);
  assert.equal(named(btf, 'func', 'count_event').linkage, BTF_FUNC_GLOBAL);
  assert.equal(named(btf, 'func', 'classify').linkage, BTF_FUNC_GLOBAL);
  assert.equal(named(btf, 'func', 'bpf_rcu_read_lock').linkage, BTF_FUNC_EXTERN);

  const proto = btf.types[named(btf, 'func', 'loop_step').type!];
  assert.equal(proto.kind, 'func_proto');
  assert.deepEqual(
    proto.params?.map((p) => [p.name, btf.typeName(p.type)]),
    [
      ['index', '__u32'],
      ['ctx', 'void *'],
    ],
  );
  assert.equal(btf.typeName(proto.type!), 'int');
});

test('sizes resolve through typedefs, qualifiers and arrays', () => {
  const btf = btfOf('types.bpf.o');
  const meta = named(btf, 'struct', 'packet_meta');
  assert.equal(btf.resolveSize(meta.id), 72);
  const member = (name: string) => meta.members!.find((m) => m.name === name)!;
  assert.deepEqual([member('version').bitOffset, member('version').bitSize], [0, 4]);
  assert.deepEqual([member('header_words').bitOffset, member('header_words').bitSize], [4, 4]);
  assert.equal(btf.resolveSize(member('labels').type), 24);
  assert.equal(btf.resolveSize(member('u').type), 4);
  assert.equal(btf.resolveSize(member('flags').type), 8);
  assert.equal(btf.resolveSize(member('name').type), 8);
  assert.equal(btf.resolveSize(named(btf, 'typedef', '__u32').id), 4);
  assert.equal(btf.resolveSize(named(btf, 'var', 'weight').id), 4);
  assert.equal(btf.resolveSize(named(btf, 'func', 'weigh').id), undefined);
  assert.equal(btf.resolveSize(named(btf, 'fwd', 'opaque').id), undefined);
  assert.equal(btf.resolveSize(0), undefined);
  assert.equal(btf.resolveSize(10_000), undefined);
  const calls = btfOf('calls.bpf.o');
  assert.equal(calls.resolveSize(named(calls, 'struct', '__sk_buff').id), 192);
  assert.equal(calls.resolveSize(named(calls, 'var', 'counters').id), 32);
});

test('type names read like C', () => {
  const btf = btfOf('types.bpf.o');
  const meta = named(btf, 'struct', 'packet_meta');
  const typeOf = (name: string) => btf.typeName(meta.members!.find((m) => m.name === name)!.type);
  assert.equal(btf.typeName(meta.id), 'struct packet_meta');
  assert.equal(typeOf('version'), 'unsigned int');
  assert.equal(typeOf('direction'), 'enum direction');
  assert.equal(typeOf('flags'), 'enum big_flags');
  assert.equal(typeOf('u'), 'union (anon)');
  assert.equal(typeOf('name'), 'const volatile char *restrict');
  assert.equal(typeOf('labels'), 'char *[3]');
  assert.equal(typeOf('handler'), 'int (*)(struct opaque *, int)');
  assert.equal(typeOf('user_data'), 'int *');
  assert.equal(btf.typeName(0), 'void');
  assert.equal(btf.typeName(10_000), '<bad type 10000>');
  const direction = named(btf, 'enum', 'direction');
  assert.deepEqual(direction.enumValues, [
    { name: 'INGRESS', value: 1n },
    { name: 'EGRESS', value: -2n },
  ]);
  assert.deepEqual(
    named(btf, 'enum64', 'big_flags').enumValues?.map((v) => v.value),
    [1n, 0x100000000n],
  );
});

test('no .BTF section: build with -g', () => {
  const { elf } = readElf(readData('nobtf.bpf.o'));
  assert.ok(elf);
  assert.deepEqual(readBtf(elf.sectionByName('.BTF')?.data, elf.littleEndian), {
    problems: [{ message: 'no .BTF section: build with -g' }],
  });
});

test('damaged BTF: one clear problem each, the types before the damage kept, no exception', () => {
  const elf = loadObject('calls.bpf.o');
  const section = elf.sectionByName('.BTF')!.data;
  const copy = (patch: (view: DataView) => void) => {
    const bytes = new Uint8Array(section);
    patch(new DataView(bytes.buffer));
    return bytes;
  };
  const cases: [string, Uint8Array, RegExp, boolean][] = [
    ['truncated header', section.subarray(0, 10), /^\.BTF: truncated header \(10 bytes, need 24\)$/, false],
    ['bad magic', copy((v) => v.setUint16(0, 0x1234, true)), /^\.BTF: bad magic 0x1234 \(expected 0xeb9f\)$/, false],
    ['unknown version', copy((v) => v.setUint8(2, 2)), /^\.BTF: unsupported version 2/, false],
    ['type section past the end', copy((v) => v.setUint32(12, 0x100000, true)), /^\.BTF: type section at 0x18 \+ 0x100000 runs past the end/, true],
    ['string section past the end', copy((v) => v.setUint32(20, 0x100000, true)), /^\.BTF: string section at 0x[0-9a-f]+ \+ 0x100000 runs past the end/, true],
    // Type 1 starts right after the 24-byte header; its info word is at byte 28.
    ['unknown kind', copy((v) => v.setUint32(28, 25 << 24, true)), /^\.BTF: type 1 at byte 0x18: unknown kind 25; the types after it are not read$/, true],
  ];
  for (const [name, bytes, problem, hasBtf] of cases) {
    const { btf, problems } = readBtf(bytes, true);
    assert.equal(problems.length, 1, `${name}: ${problems.map((p) => p.message).join('; ')}`);
    assert.match(problems[0].message, problem, name);
    assert.equal(btf !== undefined, hasBtf, name);
  }

  // Cut in the middle of the type section: the types before the cut survive.
  const typeLength = new DataView(section.buffer, section.byteOffset).getUint32(12, true);
  const cut = copy((v) => v.setUint32(12, typeLength, true)).subarray(0, 24 + Math.floor(typeLength / 2));
  const { btf, problems } = readBtf(cut, true);
  assert.ok(btf);
  assert.ok(btf.types.length > 10 && btf.types.length < btfOf('calls.bpf.o').types.length, `${btf.types.length} types`);
  // Both the string section and the type section now end past the cut; nothing else is news.
  assert.deepEqual(
    problems.map((p) => p.message.replace(/ at 0x.*/, '')),
    ['.BTF: string section', '.BTF: type section'],
  );
});

test('a BTF section in the other byte order than the ELF header is still read', () => {
  const be = loadObject('calls.bpfeb.o');
  const { btf, problems } = readBtf(be.sectionByName('.BTF')!.data, true);
  assert.deepEqual(problems, []);
  assert.equal(btf?.types.length, btfOf('calls.bpf.o').types.length);
});
