import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type Btf, readBtf } from '../../server/src/object/btf';
import { type BtfExt, readBtfExt } from '../../server/src/object/btfExt';
import { type ElfFile, STT_FUNC } from '../../server/src/object/elf';
import { BPF_OBJECTS, OBJECT_PAIRS, codeSections, dataPath, decodeSection, loadObject, readDataText, runTool, toolMissing } from './testData';
import { skipOrFail } from '../support/unavailable';

function extOf(name: string): { elf: ElfFile; btf: Btf; ext: BtfExt } {
  const elf = loadObject(name);
  const { btf } = readBtf(elf.sectionByName('.BTF')?.data, elf.littleEndian);
  assert.ok(btf);
  const { ext, problems } = readBtfExt(elf.sectionByName('.BTF.ext')?.data, elf.littleEndian, btf);
  assert.deepEqual(problems, [], name);
  assert.ok(ext);
  return { elf, btf, ext };
}

test('func info names the function that starts at each offset, counted in instructions', () => {
  for (const name of BPF_OBJECTS) {
    const { elf, btf, ext } = extOf(name);
    for (const section of codeSections(elf)) {
      const fromBtf = (ext.funcInfo.get(section.name) ?? []).map((f) => [f.insnOffset, btf.types[f.typeId].name]);
      const fromSymbols = elf.symbols
        .filter((s) => s.type === STT_FUNC && s.sectionIndex === section.index)
        .sort((a, b) => a.value - b.value)
        .map((s) => [s.value / 8, s.name]);
      assert.deepEqual(fromBtf, fromSymbols, `${name} ${section.name}`);
      for (const info of ext.funcInfo.get(section.name) ?? []) assert.equal(btf.types[info.typeId].kind, 'func');
    }
  }
  const { ext } = extOf('calls.bpf.o');
  assert.deepEqual(
    ext.funcInfo.get('tc')?.map((f) => f.insnOffset),
    [0, 19],
  );
  assert.deepEqual(
    ext.funcInfo.get('.text')?.map((f) => f.insnOffset),
    [0, 18, 39],
  );
});

test('line info points at the right line of the source, with its text', () => {
  for (const name of BPF_OBJECTS) {
    const { elf, ext } = extOf(name);
    const sourceName = name.replace(/\.bpf(eb)?\.o$/, '.bpf.c');
    const sourceLines = readDataText(sourceName).split('\n');
    let checked = 0;
    for (const section of codeSections(elf)) {
      const starts = new Set(decodeSection(elf, section.name).map((i) => i.offset));
      for (const info of ext.lineInfo.get(section.name) ?? []) {
        assert.ok(starts.has(info.insnOffset), `${name} ${section.name}: line info at ${info.insnOffset} is not the start of an instruction`);
        assert.ok(info.file.endsWith(sourceName), info.file);
        assert.equal(info.lineText, sourceLines[info.line - 1], `${name} ${section.name} ${info.insnOffset}: line ${info.line}`);
        assert.ok(info.column >= 0 && info.column <= info.lineText.length + 1, `column ${info.column} on "${info.lineText}"`);
        checked++;
      }
    }
    assert.ok(checked > 5, `${name}: only ${checked} line infos`);
  }

  // The store loop in fill_scratch, and the printk whose format is built on the stack.
  const { ext } = extOf('calls.bpf.o');
  const lineAt = (section: string, offset: number) =>
    ext.lineInfo
      .get(section)!
      .filter((l) => l.insnOffset <= offset)
      .at(-1)!;
  assert.match(lineAt('.text', 27).lineText, /scratch\[i\] = seed \+ i;/);
  assert.match(lineAt('tc', 5).lineText, /bpf_printk\("mark %d", verdict\);/);
  assert.equal(lineAt('tc', 5).column, 2);
});

test('big-endian .BTF.ext reads the same as little-endian', () => {
  for (const [little, big] of OBJECT_PAIRS) {
    // Compare what the records say; the line tables hold views of different bytes.
    const decoded = (name: string) => {
      const { ext } = extOf(name);
      return { funcInfo: ext!.funcInfo, lineInfo: new Map(ext!.lineInfo), coreRelocations: ext!.coreRelocations };
    };
    assert.deepEqual(decoded(big), decoded(little), big);
  }
});

test('CO-RE relocations: kind, type and access string', () => {
  const { btf, ext } = extOf('types.bpf.o');
  const relocations = ext.coreRelocations.get('xdp');
  assert.deepEqual(
    relocations?.map((r) => [r.insnOffset, r.kind, btf.typeName(r.typeId), r.accessString]),
    [
      [7, 'field_exists', 'struct xdp_md', '0:5'],
      [9, 'field_byte_offset', 'struct xdp_md', '0:4'],
    ],
  );
  assert.equal(extOf('calls.bpf.o').ext.coreRelocations.size, 0);
});

test('CO-RE relocations agree with llvm-objdump-19 -r', (t) => {
  const missing = toolMissing('llvm-objdump-19');
  if (missing) return skipOrFail(t, missing);
  const llvmKinds: Record<string, string> = {
    byte_off: 'field_byte_offset',
    byte_sz: 'field_byte_size',
    field_exists: 'field_exists',
    signed: 'field_signed',
    lshift_u64: 'field_lshift_u64',
    rshift_u64: 'field_rshift_u64',
    local_type_id: 'type_id_local',
    target_type_id: 'type_id_target',
    type_exists: 'type_exists',
    type_size: 'type_size',
    enumval_exists: 'enumval_exists',
    enumval_value: 'enumval_value',
    type_matches: 'type_matches',
  };
  for (const name of BPF_OBJECTS) {
    const { ext } = extOf(name);
    const dump = runTool('llvm-objdump-19', ['-d', '-r', dataPath(name)]);
    assert.ok(dump);
    const expected: [string, number, string, number, string][] = [];
    let section = '';
    for (const line of dump.split('\n')) {
      section = /^Disassembly of section (.+):$/.exec(line)?.[1] ?? section;
      const core = /^\s+([0-9a-f]+):\s+CO-RE <(\w+)> \[(\d+)\] .* \(([\d:]+)\)$/.exec(line);
      if (core) expected.push([section, parseInt(core[1], 16) / 8, llvmKinds[core[2]], Number(core[3]), core[4]]);
    }
    const actual = [...ext.coreRelocations].flatMap(([sectionName, list]) => list.map((r) => [sectionName, r.insnOffset, r.kind, r.typeId, r.accessString]));
    assert.deepEqual(actual, expected, name);
  }
});

test('damaged or missing .BTF.ext: one clear problem each, no exception', () => {
  const { elf, btf } = extOf('calls.bpf.o');
  const section = elf.sectionByName('.BTF.ext')!.data;
  const copy = (patch: (view: DataView) => void) => {
    const bytes = new Uint8Array(section);
    patch(new DataView(bytes.buffer));
    return bytes;
  };
  const view = new DataView(section.buffer, section.byteOffset, section.byteLength);
  const headerLength = view.getUint32(4, true);
  const lineInfoStart = headerLength + view.getUint32(16, true);
  const funcInfoStart = headerLength + view.getUint32(8, true);
  const cases: [string, Uint8Array | undefined, Btf | undefined, RegExp, boolean][] = [
    ['no section', undefined, btf, /^no \.BTF\.ext section: build with -g for line and function info$/, false],
    ['truncated header', section.subarray(0, 12), btf, /^\.BTF\.ext: truncated header \(12 bytes, need 24\)$/, false],
    ['bad magic', copy((v) => v.setUint16(0, 0xbeef, true)), btf, /^\.BTF\.ext: bad magic 0xbeef/, false],
    ['bad record size', copy((v) => v.setUint32(lineInfoStart, 6, true)), btf, /^\.BTF\.ext: line info record size 6 is invalid/, true],
    ['line info past the end', copy((v) => v.setUint32(20, 0x100000, true)), btf, /^\.BTF\.ext: line info at 0x[0-9a-f]+ \+ 0x100000 runs past the end/, true],
    // The first func info record's insn_off follows the record size and {sec_name_off, num_info}.
    [
      'byte offset not a multiple of 8',
      copy((v) => v.setUint32(funcInfoStart + 12, 0x4c, true)),
      btf,
      /insn_off 0x4c at byte 0x[0-9a-f]+ is not a multiple of 8$/,
      true,
    ],
    ['no BTF for the strings', section, undefined, /^\.BTF\.ext: no usable \.BTF, so file names, source lines and access strings are missing$/, true],
  ];
  for (const [name, bytes, withBtf, problem, hasExt] of cases) {
    const { ext, problems } = readBtfExt(bytes, true, withBtf);
    assert.equal(problems.length, 1, `${name}: ${problems.map((p) => p.message).join('; ')}`);
    assert.match(problems[0].message, problem, name);
    assert.equal(ext !== undefined, hasExt, name);
  }
});
