import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  EM_BPF,
  type ElfFile,
  R_BPF_64_32,
  R_BPF_64_64,
  SHF_EXECINSTR,
  SHN_UNDEF,
  SHT_PROGBITS,
  STB_GLOBAL,
  STB_LOCAL,
  STT_FUNC,
  STT_OBJECT,
  STT_SECTION,
  readElf,
} from '../../server/src/object/elf';
import { BPF_OBJECTS, OBJECT_PAIRS, dataPath, loadObject, readData, runTool, toolMissing } from './testData';
import { skipOrFail } from '../support/unavailable';

function symbol(elf: ElfFile, name: string) {
  const found = elf.symbols.find((s) => s.name === name && s.type !== STT_SECTION);
  assert.ok(found, `no symbol ${name}`);
  return found;
}

test('calls.bpf.o: sections, symbols and relocations as the compiler wrote them', () => {
  const elf = loadObject('calls.bpf.o');
  assert.equal(elf.littleEndian, true);
  assert.equal(elf.machine, EM_BPF);

  const text = elf.sectionByName('.text');
  assert.ok(text);
  assert.equal(text.type, SHT_PROGBITS);
  assert.ok(text.flags & SHF_EXECINSTR);
  assert.equal(text.size, 60 * 8);
  assert.equal(text.data.length, text.size);
  assert.equal(elf.sectionByName('tc')?.size, 29 * 8);
  assert.ok(elf.sectionByName('.BTF'));
  assert.ok(elf.sectionByName('.BTF.ext'));
  assert.equal(elf.sectionByName('no such section'), undefined);

  const fillScratch = symbol(elf, 'fill_scratch');
  assert.deepEqual(
    { type: fillScratch.type, bind: fillScratch.bind, value: fillScratch.value, size: fillScratch.size, section: elf.sections[fillScratch.sectionIndex].name },
    { type: STT_FUNC, bind: STB_LOCAL, value: 0x90, size: 168, section: '.text' },
  );
  assert.equal(symbol(elf, 'count_event').bind, STB_GLOBAL);
  assert.equal(symbol(elf, 'classify').value, 0);
  assert.equal(elf.sections[symbol(elf, 'classify').sectionIndex].name, 'tc');
  assert.equal(symbol(elf, 'counters').type, STT_OBJECT);
  assert.equal(symbol(elf, 'bpf_rcu_read_lock').sectionIndex, SHN_UNDEF);
  // Section symbols carry the section's name, which is how relocations against them read.
  assert.ok(elf.symbols.some((s) => s.type === STT_SECTION && s.name === '.text'));

  const tc = elf.sectionByName('tc');
  assert.ok(tc);
  const tcRelocations = elf.relocations.get(tc.index)?.map((r) => ({ offset: r.offset, type: r.type, symbol: elf.symbols[r.symbolIndex].name }));
  assert.deepEqual(tcRelocations, [
    { offset: 12 * 8, type: R_BPF_64_64, symbol: 'jump_table' },
    { offset: 17 * 8, type: R_BPF_64_32, symbol: 'count_event' },
  ]);
  const onWrite = elf.sectionByName('tp/syscalls/sys_enter_write');
  assert.ok(onWrite);
  assert.deepEqual(
    elf.relocations.get(onWrite.index)?.map((r) => `${r.offset / 8}:${elf.symbols[r.symbolIndex].name}`),
    ['0:bpf_rcu_read_lock', '2:.text', '7:bpf_rcu_read_unlock', '9:.text', '12:count_event'],
  );
  // LLVM writes SHT_REL for BPF: the addend stays in the instruction.
  assert.ok([...elf.relocations.values()].flat().every((r) => r.addend === undefined));
});

for (const [little, big] of OBJECT_PAIRS) {
  test(`${big}: big-endian reads to the same sections, symbols and relocations as ${little}`, () => {
    const le = loadObject(little);
    const be = loadObject(big);
    assert.equal(be.littleEndian, false);
    assert.equal(be.machine, EM_BPF);
    const shape = (elf: ElfFile) => ({
      sections: elf.sections.map(({ name, type, flags, size, link, info, entsize }) => ({ name, type, flags, size, link, info, entsize })),
      symbols: elf.symbols,
      relocations: [...elf.relocations],
    });
    const lShape = shape(le);
    const bShape = shape(be);
    // The string tables can differ in content order but not in what they name.
    assert.deepEqual(bShape.sections, lShape.sections);
    assert.deepEqual(
      bShape.symbols.map(({ index, ...rest }) => ({ index, ...rest })),
      lShape.symbols.map(({ index, ...rest }) => ({ index, ...rest })),
    );
    assert.deepEqual(bShape.relocations, lShape.relocations);
  });
}

interface ReadelfJson {
  Sections: {
    Section: {
      Index: number;
      Name: { Name: string };
      Type: { Value: number };
      Flags: { Value: number };
      Offset: number;
      Size: number;
      Link: number;
      Info: number;
      EntrySize: number;
    };
  }[];
  Symbols: {
    Symbol: { Name: { Name: string }; Value: number; Size: number; Binding: { Value: number }; Type: { Value: number }; Section: { Value: number } };
  }[];
  Relocations: { SectionIndex: number; Relocs: { Relocation: { Offset: number; Type: { Value: number }; Symbol: { Name: string; Value: number } } }[] }[];
}

test('every committed BPF object reads as llvm-readelf-19 reads it', (t) => {
  const missing = toolMissing('llvm-readelf-19');
  if (missing) return skipOrFail(t, missing);
  for (const name of BPF_OBJECTS) {
    const elf = loadObject(name);
    const json = runTool('llvm-readelf-19', ['--elf-output-style=JSON', '-S', '-s', '-r', '--wide', dataPath(name)]);
    assert.ok(json);
    const [oracle] = JSON.parse(json) as ReadelfJson[];
    assert.deepEqual(
      elf.sections.map((s) => [s.index, s.name, s.type, s.flags, s.offset, s.size, s.link, s.info, s.entsize]),
      oracle.Sections.map(({ Section: s }) => [s.Index, s.Name.Name, s.Type.Value, s.Flags.Value, s.Offset, s.Size, s.Link, s.Info, s.EntrySize]),
      name,
    );
    assert.deepEqual(
      elf.symbols.map((s) => [s.name, s.value, s.size, s.bind, s.type, s.sectionIndex]),
      oracle.Symbols.map(({ Symbol: s }) => [s.Name.Name, s.Value, s.Size, s.Binding.Value, s.Type.Value, s.Section.Value]),
      name,
    );
    // llvm-readelf lists relocations by the relocation section; ours are keyed by the section they patch.
    const expected = oracle.Relocations.map(({ SectionIndex, Relocs }) => [
      elf.sections[SectionIndex].info,
      Relocs.map(({ Relocation: r }) => [r.Offset, r.Type.Value, r.Symbol.Value]),
    ]);
    assert.deepEqual(
      [...elf.relocations].map(([target, list]) => [target, list.map((r) => [r.offset, r.type, r.symbolIndex])]),
      expected,
      name,
    );
  }
});

// Each damaged or foreign input yields exactly one problem that says what is wrong, and no exception.
function patched(name: string, patch: (bytes: Uint8Array, view: DataView) => void): Uint8Array {
  const bytes = new Uint8Array(readData(name));
  patch(bytes, new DataView(bytes.buffer));
  return bytes;
}

const calls = readData('calls.bpf.o');
const sectionTableOffset = Number(new DataView(calls.buffer, calls.byteOffset).getBigUint64(40, true));
const badInputs: { name: string; bytes: () => Uint8Array; problem: RegExp; hasElf: boolean }[] = [
  { name: 'an empty file', bytes: () => new Uint8Array(0), problem: /^empty file \(0 bytes\): not an ELF object$/, hasElf: false },
  {
    name: 'a truncated header',
    bytes: () => calls.subarray(0, 40),
    problem: /^truncated ELF header: the file has 40 bytes, the header needs 64$/,
    hasElf: false,
  },
  { name: 'a three-byte prefix of the magic', bytes: () => calls.subarray(0, 3), problem: /^truncated ELF header/, hasElf: false },
  { name: 'a C source file', bytes: () => readData('calls.bpf.c'), problem: /^not an ELF file \(magic 2f 2f 20 41, expected 7f 45 4c 46\)$/, hasElf: false },
  { name: 'an x86-64 object', bytes: () => readData('x86_64.o'), problem: /^ELF machine is x86-64 \(62\), not BPF \(247\)$/, hasElf: false },
  { name: 'a 32-bit object', bytes: () => readData('i386.o'), problem: /^ELF class is 32-bit \(ELFCLASS32\); BPF objects are ELF64$/, hasElf: false },
  { name: 'an unknown byte order', bytes: () => patched('calls.bpf.o', (b) => (b[5] = 3)), problem: /^unknown ELF data encoding 3/, hasElf: false },
  {
    name: 'a truncated section header table',
    bytes: () => calls.subarray(0, sectionTableOffset + 5 * 64 + 10),
    problem: /^truncated section header table: 31 entries at 0x[0-9a-f]+ need 0x[0-9a-f]+ bytes, the file has 0x[0-9a-f]+$/,
    hasElf: true,
  },
  {
    name: 'a section header table past the end',
    bytes: () => patched('calls.bpf.o', (_, v) => v.setBigUint64(40, 0x100000n, true)),
    problem: /^section header table at 0x100000 lies beyond the end of the file/,
    hasElf: true,
  },
  {
    name: 'a section whose contents lie outside the file',
    // Section 2 is .text; its sh_offset is at byte 24 of its header.
    bytes: () => patched('calls.bpf.o', (_, v) => v.setBigUint64(sectionTableOffset + 2 * 64 + 24, 0x7fffff00n, true)),
    problem: /^section \.text: contents at 0x7fffff00 \+ 0x1e0 bytes run past the end of the file/,
    hasElf: true,
  },
  {
    name: 'a wrong section header size',
    bytes: () => patched('calls.bpf.o', (_, v) => v.setUint16(58, 40, true)),
    problem: /^ELF section header size is 40 bytes, expected 64$/,
    hasElf: true,
  },
  { name: 'a stripped object', bytes: () => readData('stripped.bpf.o'), problem: /^symbol table missing: the object is stripped$/, hasElf: true },
];

for (const { name, bytes, problem, hasElf } of badInputs) {
  test(`readElf on ${name}: one clear problem, no exception`, () => {
    const result = readElf(bytes());
    assert.equal(result.problems.length, 1, result.problems.map((p) => p.message).join('\n'));
    assert.match(result.problems[0].message, problem);
    assert.equal(result.elf !== undefined, hasElf);
  });
}

test('an object built without -g reads cleanly; it just has no .BTF', () => {
  const elf = loadObject('nobtf.bpf.o');
  assert.equal(elf.sectionByName('.BTF'), undefined);
  assert.equal(elf.sectionByName('.BTF.ext'), undefined);
  assert.ok(elf.symbols.some((s) => s.name === 'classify'));
});

test('a truncated section table still yields the sections that fit', () => {
  const { elf } = readElf(calls.subarray(0, sectionTableOffset + 5 * 64 + 10));
  assert.ok(elf);
  assert.equal(elf.sections.length, 5);
  // The section name table is section 1, so the names survive.
  assert.equal(elf.sections[2].name, '.text');
});
