import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatInstruction, formatListing } from '../../server/src/object/disassemble';
import { type ElfFile, STT_FUNC } from '../../server/src/object/elf';
import { helperName } from '../../server/src/object/helperNames';
import { BPF_DW, type Instruction, decodeInstructions, sizeField } from '../../server/src/object/instruction';
import { encodeLddw, encodeSlot } from './encode';
import { BPF_OBJECTS, assertGolden, codeSections, dataPath, decodeSection, loadObject, runTool, toolMissing } from './testData';
import { skipOrFail } from '../support/unavailable';

function one(raw: Parameters<typeof encodeSlot>[0]): Instruction {
  return decodeInstructions(encodeSlot(raw), true, 'test').instructions[0];
}

function lddw(dst: number, src: number, imm64: bigint): Instruction {
  return decodeInstructions(encodeLddw(dst, src, imm64), true, 'test').instructions[0];
}

test('the examples bpftool prints', () => {
  const cases: [Instruction, string][] = [
    [one({ opcode: 0xbf, dst: 1, src: 10 }), 'r1 = r10'],
    [one({ opcode: 0x07, dst: 1, imm: -56 }), 'r1 += -56'],
    [one({ opcode: 0x7b, dst: 10, src: 1, off: -24 }), '*(u64 *)(r10 -24) = r1'],
    [one({ opcode: 0x61, dst: 4, src: 9, off: 16 }), 'r4 = *(u32 *)(r9 +16)'],
    [lddw(1, 0, 0x2578303d72646461n), 'r1 = 0x2578303d72646461'],
    [one({ opcode: 0x85, imm: 6 }), 'call bpf_trace_printk#6'],
    [one({ opcode: 0x85, src: 1, imm: 12 }), 'call pc+12'],
    [one({ opcode: 0x55, dst: 1, off: 3 }), 'if r1 != 0x0 goto pc+3'],
    [one({ opcode: 0x95 }), 'exit'],
    [one({ opcode: 0x73, dst: 10, src: 1, off: -12 }), '*(u8 *)(r10 -12) = r1'],
  ];
  for (const [instruction, text] of cases) assert.equal(formatInstruction(instruction), text);
  assert.equal(formatInstruction(one({ opcode: 0x85, src: 1, imm: 12 }), { callTarget: 'my_func' }), 'call my_func');
});

test('every class and cpu v4 form, spelled as kernel/bpf/disasm.c spells it', () => {
  const cases: [Instruction, string][] = [
    [one({ opcode: 0xb4, dst: 0, imm: 1 }), 'w0 = 1'],
    [one({ opcode: 0x0c, dst: 4, src: 6 }), 'w4 += w6'],
    [one({ opcode: 0x87, dst: 3 }), 'r3 = -r3'],
    [one({ opcode: 0x84, dst: 3 }), 'w3 = -w3'],
    [one({ opcode: 0xc7, dst: 1, imm: 32 }), 'r1 s>>= 32'],
    [one({ opcode: 0x3f, dst: 5, src: 4, off: 1 }), 'r5 s/= r4'],
    [one({ opcode: 0x97, dst: 5, imm: 7, off: 1 }), 'r5 s%= 7'],
    [one({ opcode: 0x37, dst: 5, imm: 7 }), 'r5 /= 7'],
    [one({ opcode: 0xbf, dst: 4, src: 2, off: 16 }), 'r4 = (s16)r2'],
    [one({ opcode: 0xbc, dst: 4, src: 2, off: 8 }), 'w4 = (s8)w2'],
    [one({ opcode: 0xd7, dst: 1, imm: 64 }), 'r1 = bswap64 r1'],
    [one({ opcode: 0xdc, dst: 1, imm: 16 }), 'r1 = be16 r1'],
    [one({ opcode: 0xd4, dst: 1, imm: 32 }), 'r1 = le32 r1'],
    [one({ opcode: 0xbf, dst: 1, src: 2, off: 1, imm: 1 << 16 }), 'r1 = addr_space_cast(r2, 1, 0)'],
    [one({ opcode: 0x89, dst: 4, src: 1, off: 2 }), 'r4 = *(s16 *)(r1 +2)'],
    [one({ opcode: 0x91, dst: 6, src: 1 }), 'r6 = *(s8 *)(r1 +0)'],
    [one({ opcode: 0x62, dst: 10, off: -8, imm: -1 }), '*(u32 *)(r10 -8) = -1'],
    [one({ opcode: 0x6b, dst: 6, src: 2, off: 2 }), '*(u16 *)(r6 +2) = r2'],
    [one({ opcode: 0xdb, dst: 0, src: 1, imm: 0x00 }), 'lock *(u64 *)(r0 +0) += r1'],
    [one({ opcode: 0xc3, dst: 0, src: 1, off: 4, imm: 0xa0 }), 'lock *(u32 *)(r0 +4) ^= r1'],
    [one({ opcode: 0xdb, dst: 7, src: 3, imm: 0x41 }), 'r3 = atomic64_fetch_or((u64 *)(r7 +0), r3)'],
    [one({ opcode: 0xc3, dst: 7, src: 3, imm: 0x51 }), 'r3 = atomic_fetch_and((u32 *)(r7 +0), r3)'],
    [one({ opcode: 0xdb, dst: 7, src: 1, imm: 0xe1 }), 'r1 = atomic64_xchg((u64 *)(r7 +0), r1)'],
    [one({ opcode: 0xdb, dst: 7, src: 8, imm: 0xf1 }), 'r0 = atomic64_cmpxchg((u64 *)(r7 +0), r0, r8)'],
    [one({ opcode: 0xdb, dst: 0, src: 1, off: 8, imm: 0x100 }), 'r0 = load_acquire((u64 *)(r1 +8))'],
    [one({ opcode: 0xd3, dst: 2, src: 3, imm: 0x110 }), 'store_release((u8 *)(r2 +0), r3)'],
    [one({ opcode: 0x30, imm: 12 }), 'r0 = *(u8 *)skb[12]'],
    [one({ opcode: 0x48, src: 3, imm: 2 }), 'r0 = *(u16 *)skb[r3 + 2]'],
    [one({ opcode: 0x05, off: -9 }), 'goto pc-9'],
    [one({ opcode: 0x06, imm: 70000 }), 'gotol pc+70000'],
    [one({ opcode: 0xe5, off: 20 }), 'may_goto pc+20'],
    [one({ opcode: 0x1d, dst: 0, src: 1 }), 'if r0 == r1 goto pc+0'],
    [one({ opcode: 0xa6, dst: 2, imm: -1, off: 4 }), 'if w2 < 0xffffffff goto pc+4'],
    [one({ opcode: 0x6d, dst: 2, src: 3, off: -1 }), 'if r2 s> r3 goto pc-1'],
    [one({ opcode: 0x45, dst: 2, imm: 8, off: 1 }), 'if r2 & 0x8 goto pc+1'],
    [one({ opcode: 0x85, src: 2, imm: 1234 }), 'call kernel-function#1234'],
    [one({ opcode: 0x85, imm: 9999 }), 'call unknown#9999'],
    [one({ opcode: 0x85, imm: 181 }), 'call bpf_loop#181'],
    [lddw(2, 4, 5n), 'r2 = subprog[+5]'],
    [lddw(1, 1, 7n), 'r1 = map[id:7]'],
    [lddw(1, 2, (16n << 32n) | 7n), 'r1 = map[id:7][0]+16'],
    [lddw(1, 3, 99n), 'r1 = 0x63'],
    [lddw(1, 5, 2n), 'r1 = map[idx:2]'],
    [lddw(1, 6, (8n << 32n) | 2n), 'r1 = map[idx:2]+8'],
    [lddw(1, 0, 0xffffffffffffffffn), 'r1 = 0xffffffffffffffff'],
    [one({ opcode: 0xf7, dst: 1 }), '<invalid opcode 0xf7>'],
  ];
  for (const [instruction, text] of cases) assert.equal(formatInstruction(instruction), text);
  assert.equal(formatInstruction(lddw(2, 4, 5n), { callTarget: 'loop_step' }), 'r2 = loop_step');
  assert.equal(formatInstruction(lddw(1, 0, 0n), { loadTarget: 'map[counters]' }), 'r1 = map[counters]');
  assert.equal(formatInstruction(one({ opcode: 0x85, src: 2, imm: -1 }), { callTarget: 'bpf_rcu_read_lock' }), 'call bpf_rcu_read_lock');
  assert.equal(formatInstruction(one({ opcode: 0x85, imm: 6 }), { helper: () => 'printk' }), 'call printk#6');
});

/** Names calls and callback loads the way a reader of an object wants them: by symbol. */
function namesFromRelocations(elf: ElfFile, sectionIndex: number) {
  const bySlot = new Map((elf.relocations.get(sectionIndex) ?? []).map((r) => [r.offset / 8, elf.symbols[r.symbolIndex]]));
  const functionsAt = (section: number, slot: number) =>
    elf.symbols.find((s) => s.type === STT_FUNC && s.sectionIndex === section && s.value / 8 === slot)?.name;
  return (i: Instruction) => {
    const symbol = bySlot.get(i.offset);
    if (i.opcode === 0x85 && i.src === 1) {
      if (!symbol) return { callTarget: functionsAt(sectionIndex, i.offset + i.imm + 1) };
      if (symbol.type === STT_FUNC || symbol.sectionIndex === 0) return { callTarget: symbol.name };
      return { callTarget: functionsAt(symbol.sectionIndex, symbol.value / 8 + i.imm + 1) };
    }
    return undefined;
  };
}

function listing(name: string): string {
  const elf = loadObject(name);
  return codeSections(elf)
    .map((section) => {
      const instructions = decodeSection(elf, section.name);
      return `${section.name}:\n${formatListing(instructions, namesFromRelocations(elf, section.index))}\n`;
    })
    .join('\n');
}

for (const name of ['calls.bpf.o', 'cpuv4.bpf.o', 'types.bpf.o']) {
  test(`${name}: the listing matches its golden file`, () => {
    assertGolden(listing(name), name.replace(/\.o$/, '.xlated.txt'));
  });
}

/**
 * Rewrites one line of llvm-objdump's BPF disassembly into the kernel's spelling, so LLVM can act as
 * an independent oracle for decoding and printing: hex immediates become decimal where the kernel
 * prints %d, memory operands lose their spaces, jump distances gain "pc", atomics get their kernel
 * names. Calls need the decoded src_reg, which llvm-objdump does not print.
 */
function llvmToKernel(text: string, decoded: Instruction): string {
  const decimal = (sign: string, hex: string) => `${sign === '-' ? '-' : '+'}${parseInt(hex, 16)}`;
  let out = text.replace(/\s<[^>]+>$/, '');
  const lddw = /^(r\d+) = (-?)0x([0-9a-f]+) ll$/.exec(out);
  if (lddw) {
    const value = BigInt.asUintN(64, BigInt(`0x${lddw[3]}`) * (lddw[2] ? -1n : 1n));
    return `${lddw[1]} = 0x${value.toString(16)}`;
  }
  const call = /^call (-?)0x([0-9a-f]+)$/.exec(out);
  if (call) {
    const imm = parseInt(call[2], 16) * (call[1] ? -1 : 1);
    if (decoded.src === 1) return `call pc${imm < 0 ? imm : `+${imm}`}`;
    return `call ${helperName(imm) ?? 'unknown'}#${imm}`;
  }
  const width = sizeField(decoded) === BPF_DW ? '64' : '';
  out = out
    .replace(/\((r\d+) ([+-]) 0x([0-9a-f]+)\)/g, (_, reg, sign, hex) => `(${reg} ${decimal(sign, hex)})`)
    .replace(/(goto|may_goto|gotol) ([+-])0x([0-9a-f]+)$/, (_, word, sign, hex) => `${word} pc${decimal(sign, hex)}`)
    .replace(/^([rw]\d+) ((?:s?[-+*/%|&^]|<<|s?>>)?=) (-?)0x([0-9a-f]+)$/, (_, reg, op, sign, hex) => `${reg} ${op} ${sign}${parseInt(hex, 16)}`)
    .replace(/ (-)0x([0-9a-f]+) goto/, (_, _sign, hex) => ` 0x${(-parseInt(hex, 16) >>> 0).toString(16)} goto`)
    .replace(/= atomic_fetch_/, `= atomic${width}_fetch_`)
    .replace(
      /^[rw](\d+) = xchg(?:32)?_(?:64|32)\((r\d+) ([+-]) 0x([0-9a-f]+), [rw](\d+)\)$/,
      (_, dst, base, sign, hex, src) => `r${dst} = atomic${width}_xchg((${width ? 'u64' : 'u32'} *)(${base} ${decimal(sign, hex)}), r${src})`,
    )
    .replace(
      /^[rw]0 = cmpxchg(?:32)?_(?:64|32)\((r\d+) ([+-]) 0x([0-9a-f]+), [rw]0, [rw](\d+)\)$/,
      (_, base, sign, hex, src) => `r0 = atomic${width}_cmpxchg((${width ? 'u64' : 'u32'} *)(${base} ${decimal(sign, hex)}), r0, r${src})`,
    );
  return out;
}

test('every instruction of every committed object prints as llvm-objdump-19 reads it', (t) => {
  const missing = toolMissing('llvm-objdump-19');
  if (missing) return skipOrFail(t, missing);
  let compared = 0;
  for (const name of BPF_OBJECTS) {
    const elf = loadObject(name);
    const dump = runTool('llvm-objdump-19', ['-d', '--no-show-raw-insn', dataPath(name)]);
    assert.ok(dump);
    let section = '';
    const expected = new Map<string, Map<number, string>>();
    for (const line of dump.split('\n')) {
      const header = /^Disassembly of section (.+):$/.exec(line);
      if (header) {
        section = header[1];
        expected.set(section, new Map());
      }
      const insn = /^\s*(\d+):\t(.*)$/.exec(line);
      if (insn) expected.get(section)!.set(Number(insn[1]), insn[2].trim());
    }
    for (const code of codeSections(elf)) {
      const fromLlvm = expected.get(code.name);
      assert.ok(fromLlvm, `${name}: llvm-objdump has no section ${code.name}`);
      const instructions = decodeSection(elf, code.name);
      assert.deepEqual(
        [...fromLlvm.keys()],
        instructions.map((i) => i.offset),
        `${name} ${code.name}: instruction offsets`,
      );
      for (const instruction of instructions) {
        const llvmText: string = fromLlvm.get(instruction.offset)!;
        assert.equal(
          formatInstruction(instruction),
          llvmToKernel(llvmText, instruction),
          `${name} ${code.name} ${instruction.offset}: llvm says "${llvmText}"`,
        );
        compared++;
      }
    }
  }
  assert.ok(compared > 250);
});
