import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BPF_ALU,
  BPF_ALU64,
  BPF_JLE,
  BPF_JMP,
  BPF_JMP32,
  BPF_LD,
  BPF_LDX,
  BPF_MOV,
  BPF_PSEUDO_FUNC,
  BPF_PSEUDO_KFUNC_CALL,
  BPF_ST,
  BPF_STX,
  BPF_TAIL_CALL_HELPER,
  BPF_X,
  type Instruction,
  aluOperation,
  applyLibbpfSourceRegisters,
  callTarget,
  decodeInstructions,
  isConditionalJump,
  isExit,
  isHelperCall,
  isKfuncCall,
  isLoadFromMemory,
  isPseudoCall,
  isPseudoFunc,
  isStoreToMemory,
  isTailCall,
  jumpOperation,
  jumpTarget,
  memoryAccessSize,
  memoryBaseRegister,
} from '../../server/src/object/instruction';
import { concat, encodeAll, encodeLddw, encodeSlot } from './encode';
import { BPF_OBJECTS, OBJECT_PAIRS, codeSections, decodeSection, loadObject, symbolValue } from './testData';

function decodeOne(bytes: Uint8Array, littleEndian = true): Instruction {
  const { instructions, problems } = decodeInstructions(bytes, littleEndian, 'test');
  assert.deepEqual(problems, []);
  assert.equal(instructions.length, 1);
  return instructions[0];
}

test('every instruction of every committed object decodes, and the slots add up', () => {
  let decoded = 0;
  for (const name of BPF_OBJECTS) {
    const elf = loadObject(name);
    for (const section of codeSections(elf)) {
      const { instructions, problems } = decodeInstructions(section.data, elf.littleEndian, section.name);
      assert.deepEqual(problems, [], `${name} ${section.name}`);
      let expectedOffset = 0;
      for (const instruction of instructions) {
        assert.equal(instruction.offset, expectedOffset, `${name} ${section.name}: offsets count slots, lddw takes two`);
        expectedOffset += instruction.width;
      }
      assert.equal(expectedOffset * 8, section.size, `${name} ${section.name}`);
      decoded += instructions.length;
    }
  }
  assert.ok(decoded > 250, `only ${decoded} instructions decoded`);
});

/** The same 8 bytes read in the other byte order. */
function byteSwap64(value: bigint): bigint {
  let swapped = 0n;
  for (let i = 0n; i < 8n; i++) swapped = (swapped << 8n) | ((value >> (8n * i)) & 0xffn);
  return swapped;
}

// types.bpf.c is left out: bit-fields sit at the other end of their unit on big-endian targets, so
// clang rightly emits different shifts and masks for them.
for (const [little, big] of OBJECT_PAIRS.filter(([little]) => !little.startsWith('types'))) {
  test(`${big} decodes to the same instructions as ${little}`, () => {
    const le = loadObject(little);
    const be = loadObject(big);
    for (const section of codeSections(le)) {
      const leCode = decodeSection(le, section.name);
      const beCode = decodeSection(be, section.name).map((i, n) => {
        // A constant that spells bytes in memory (a string built on the stack) is byte-swapped by
        // the compiler so the bytes come out the same; put it back to compare the rest.
        const other = leCode[n];
        if (i.imm64 === undefined || other?.imm64 === undefined || i.imm64 === other.imm64) return i;
        assert.equal(byteSwap64(i.imm64), other.imm64, `${section.name} instruction ${i.offset}`);
        return other;
      });
      assert.deepEqual(beCode, leCode, section.name);
    }
  });
}

test('big-endian objects keep dst in the high nibble of the register byte', () => {
  const raw = { opcode: 0x7b, dst: 10, src: 1, off: -24 }; // *(u64 *)(r10 -24) = r1
  const le = encodeSlot(raw, true);
  const be = encodeSlot(raw, false);
  assert.equal(le[1], 0x1a);
  assert.equal(be[1], 0xa1);
  assert.deepEqual(decodeOne(be, false), decodeOne(le, true));
  assert.deepEqual({ dst: decodeOne(le).dst, src: decodeOne(le).src, off: decodeOne(le).off }, { dst: 10, src: 1, off: -24 });
});

test('lddw is one instruction of width 2 carrying the full 64-bit immediate', () => {
  const tc = decodeSection(loadObject('calls.bpf.o'), 'tc');
  const [format] = tc.filter((i) => i.width === 2 && i.imm64 !== 0n);
  // bpf_printk("mark %d") with BPF_NO_GLOBAL_DATA builds its format on the stack from this constant.
  assert.equal(format.offset, 3);
  assert.equal(format.imm64, 0x6425206b72616dn);
  assert.equal(tc[tc.indexOf(format) + 1].offset, 5);

  const negative = decodeOne(encodeLddw(1, 0, 0xffffffff80000000n));
  assert.equal(negative.imm64, 0xffffffff80000000n);
  assert.equal(negative.imm, -0x80000000);
  assert.equal(negative.width, 2);
});

test('pseudo calls reach their callee: same section, .text, and relocated against .text', () => {
  const elf = loadObject('calls.bpf.o');
  const tc = decodeSection(elf, 'tc');
  const text = decodeSection(elf, '.text');
  const onWrite = decodeSection(elf, 'tp/syscalls/sys_enter_write');
  const at = (list: Instruction[], offset: number) => list.find((i) => i.offset === offset)!;

  // A static callee in the program's own section needs no relocation.
  assert.ok(isPseudoCall(at(tc, 1)));
  assert.equal(callTarget(at(tc, 1)), symbolValue(elf, 'same_section_callee') / 8);
  // Within .text, count_event calls fill_scratch directly.
  assert.equal(callTarget(at(text, 14)), symbolValue(elf, 'fill_scratch') / 8);
  // From another section, the call is relocated against the .text section symbol: sym_off/8 + imm + 1.
  const relocated = at(onWrite, 9);
  assert.ok(isPseudoCall(relocated));
  assert.equal(0 + relocated.imm + 1, symbolValue(elf, 'fill_scratch') / 8);
  // A global callee is relocated against its own symbol and carries imm -1.
  assert.equal(at(tc, 17).imm, -1);

  assert.ok(isHelperCall(at(tc, 10)));
  assert.equal(at(tc, 10).imm, 6);
  assert.ok(isTailCall(at(tc, 15)));
  assert.equal(at(tc, 15).imm, BPF_TAIL_CALL_HELPER);
  assert.ok(isExit(at(tc, 18)));
});

test('kfunc calls and callback addresses become what libbpf loads', () => {
  const elf = loadObject('calls.bpf.o');
  const section = elf.sectionByName('tp/syscalls/sys_enter_write')!;
  const raw = decodeSection(elf, section.name);
  // As LLVM writes them: the kfunc call looks like a bpf2bpf call, the callback like a constant.
  assert.ok(isPseudoCall(raw[0]));
  assert.ok(!isKfuncCall(raw[0]));
  assert.ok(!isPseudoFunc(raw[2]));

  const loaded = applyLibbpfSourceRegisters(raw, section.index, elf);
  assert.ok(isKfuncCall(loaded[0]));
  assert.equal(loaded[0].src, BPF_PSEUDO_KFUNC_CALL);
  assert.ok(isPseudoFunc(loaded[2]));
  assert.equal(loaded[2].src, BPF_PSEUDO_FUNC);
  // The callback's address: .text + imm bytes, which is loop_step.
  assert.equal(loaded[2].imm, symbolValue(elf, 'loop_step'));
  assert.ok(isKfuncCall(loaded.find((i) => i.offset === 7)!));
  // Calls to functions the object defines stay bpf2bpf calls.
  assert.ok(isPseudoCall(loaded.find((i) => i.offset === 9)!));
  assert.ok(isPseudoCall(loaded.find((i) => i.offset === 12)!));
  assert.equal(raw[0].src, 1, 'the input array is left alone');

  // A map load stays a plain lddw.
  const tc = elf.sectionByName('tc')!;
  const tcLoaded = applyLibbpfSourceRegisters(decodeSection(elf, 'tc'), tc.index, elf);
  assert.equal(tcLoaded.find((i) => i.offset === 12)!.src, 0);
});

test('cpu v4 instructions from clang: sign-extending loads and moves, bswap, sdiv, atomics, may_goto', () => {
  const code = decodeSection(loadObject('cpuv4.bpf.o'), 'socket');
  const at = (offset: number) => code.find((i) => i.offset === offset)!;

  assert.equal(at(0).opcode, 0x89); // r4 = *(s16 *)(r1 +2)
  assert.ok(isLoadFromMemory(at(0)));
  assert.equal(memoryAccessSize(at(0)), 2);
  assert.equal(memoryBaseRegister(at(0)), 1);
  assert.equal(at(3).opcode, 0x91); // r6 = *(s8 *)(r1 +0)
  assert.equal(memoryAccessSize(at(3)), 1);

  assert.deepEqual([at(7).opcode, at(7).imm], [0xdb, 0x00]); // lock add
  assert.ok(isStoreToMemory(at(7)));
  assert.equal(memoryBaseRegister(at(7)), 7);
  assert.equal(at(9).imm, 0x41); // fetch or
  assert.equal(at(11).imm, 0xe1); // xchg
  assert.equal(at(14).imm, 0xf1); // cmpxchg
  assert.ok([9, 11, 14].every((o) => isStoreToMemory(at(o)) && memoryAccessSize(at(o)) === 8));

  assert.deepEqual([at(17).opcode, at(17).src, jumpTarget(at(17))], [0xe5, 0, 38]); // may_goto
  assert.deepEqual([at(19).opcode, at(19).imm], [0xd7, 32]); // bswap32
  assert.deepEqual([at(25).opcode, at(25).off], [0xbf, 32]); // r4 = (s32)r4
  assert.deepEqual([at(28).opcode, at(28).off], [0x3f, 1]); // r5 s/= r4
});

test('hand-built instructions of every class decode field by field', () => {
  const cases: [string, Parameters<typeof encodeSlot>[0], Partial<Instruction>][] = [
    ['ld abs', { opcode: 0x30, imm: 12 }, { class: BPF_LD, imm: 12 }],
    ['ldx', { opcode: 0x61, dst: 4, src: 9, off: 16 }, { class: BPF_LDX, dst: 4, src: 9, off: 16 }],
    ['st', { opcode: 0x72, dst: 10, off: -12, imm: -1 }, { class: BPF_ST, dst: 10, off: -12, imm: -1 }],
    ['stx', { opcode: 0x7b, dst: 10, src: 1, off: -24 }, { class: BPF_STX, off: -24 }],
    ['alu', { opcode: 0xb4, dst: 0, imm: 7 }, { class: BPF_ALU, imm: 7 }],
    ['jmp', { opcode: 0x55, dst: 1, off: 3 }, { class: BPF_JMP, off: 3 }],
    ['jmp32', { opcode: 0x16, dst: 1, off: -2, imm: 5 }, { class: BPF_JMP32, off: -2 }],
    ['alu64', { opcode: 0x07, dst: 1, imm: -56 }, { class: BPF_ALU64, imm: -56 }],
    ['smod', { opcode: 0x9f, dst: 1, src: 2, off: 1 }, { off: 1 }],
    ['movsx8 32-bit', { opcode: 0xbc, dst: 1, src: 2, off: 8 }, { class: BPF_ALU, off: 8 }],
    ['bswap16', { opcode: 0xd7, dst: 3, imm: 16 }, { imm: 16 }],
    ['be32', { opcode: 0xdc, dst: 3, imm: 32 }, { class: BPF_ALU, imm: 32 }],
    ['gotol', { opcode: 0x06, imm: 70000 }, { class: BPF_JMP32, imm: 70000 }],
    ['may_goto', { opcode: 0xe5, off: 4 }, { off: 4 }],
    ['load-acquire', { opcode: 0xdb, dst: 0, src: 1, off: 8, imm: 0x100 }, { imm: 0x100 }],
    ['store-release', { opcode: 0xd3, dst: 2, src: 3, imm: 0x110 }, { imm: 0x110 }],
    ['32-bit fetch add', { opcode: 0xc3, dst: 10, src: 1, off: -4, imm: 0x01 }, { imm: 1 }],
  ];
  for (const [name, raw, expected] of cases) {
    const decoded = decodeOne(encodeSlot(raw));
    assert.deepEqual({ ...decoded, ...expected }, decoded, name);
    assert.deepEqual(decodeOne(encodeSlot(raw, false), false), decoded, `${name}, big-endian`);
  }
});

test('lddw pseudo sources 1 to 6 are read, and only 4 is a function address', () => {
  for (let src = 1; src <= 6; src++) {
    const decoded = decodeOne(encodeLddw(2, src, 0x0000000800000003n));
    assert.equal(decoded.width, 2);
    assert.equal(decoded.src, src);
    assert.equal(decoded.imm, 3);
    assert.equal(decoded.imm64, 0x0000000800000003n);
    assert.equal(isPseudoFunc(decoded), src === BPF_PSEUDO_FUNC, `src ${src}`);
  }
});

test('call kinds are told apart by src_reg', () => {
  const call = (src: number) => decodeOne(encodeSlot({ opcode: 0x85, src, imm: 12 }));
  assert.deepEqual([isHelperCall(call(0)), isPseudoCall(call(0)), isKfuncCall(call(0)), isTailCall(call(0))], [true, false, false, true]);
  assert.deepEqual([isHelperCall(call(1)), isPseudoCall(call(1)), isKfuncCall(call(1))], [false, true, false]);
  assert.deepEqual([isHelperCall(call(2)), isPseudoCall(call(2)), isKfuncCall(call(2))], [false, false, true]);
  assert.equal(callTarget(call(1)), 13);
  assert.equal(callTarget(call(0)), undefined);
});

test('jump targets count slots from the next instruction', () => {
  const { instructions } = decodeInstructions(
    concat([
      encodeSlot({ opcode: 0x05, off: 2 }), // 0: goto pc+2
      encodeLddw(1, 0, 1n), // 1-2
      encodeSlot({ opcode: 0x15, dst: 1, off: -4 }), // 3: if r1 == 0 goto pc-4
      encodeSlot({ opcode: 0x06, imm: -5 }), // 4: gotol pc-5
      encodeSlot({ opcode: 0xe5, off: 1 }), // 5: may_goto pc+1
      encodeSlot({ opcode: 0x85, imm: 6 }), // 6: call
      encodeSlot({ opcode: 0x95 }), // 7: exit
      encodeSlot({ opcode: 0x1e, dst: 1, src: 2, off: 0 }), // 8: if w1 == w2 goto pc+0
    ]),
    true,
    'test',
  );
  assert.deepEqual(
    instructions.map((i) => [i.offset, jumpTarget(i), isConditionalJump(i)]),
    [
      [0, 3, false],
      [1, undefined, false],
      [3, 0, true],
      [4, 0, false],
      [5, 7, true],
      [6, undefined, false],
      [7, undefined, false],
      [8, 9, true],
    ],
  );
});

test('memory predicates: what is read, what is written, through which register, how wide', () => {
  const one = (raw: Parameters<typeof encodeSlot>[0]) => decodeOne(encodeSlot(raw));
  const describe = (i: Instruction) => [
    isLoadFromMemory(i),
    isStoreToMemory(i),
    memoryBaseRegister(i),
    isLoadFromMemory(i) || isStoreToMemory(i) ? memoryAccessSize(i) : 0,
  ];
  assert.deepEqual(describe(one({ opcode: 0x79, dst: 1, src: 10, off: -8 })), [true, false, 10, 8]);
  assert.deepEqual(describe(one({ opcode: 0x81, dst: 1, src: 2 })), [true, false, 2, 4]); // ldxsw
  assert.deepEqual(describe(one({ opcode: 0x62, dst: 10, off: -4, imm: 1 })), [false, true, 10, 4]);
  assert.deepEqual(describe(one({ opcode: 0x73, dst: 10, src: 1, off: -12 })), [false, true, 10, 1]);
  assert.deepEqual(describe(one({ opcode: 0x6b, dst: 10, src: 1, off: -2 })), [false, true, 10, 2]);
  assert.deepEqual(describe(one({ opcode: 0xdb, dst: 10, src: 1, off: -8, imm: 0xf1 })), [false, true, 10, 8]);
  // Load-acquire lives in class STX but reads through src.
  assert.deepEqual(describe(one({ opcode: 0xdb, dst: 0, src: 10, off: -8, imm: 0x100 })), [true, false, 10, 8]);
  assert.deepEqual(describe(one({ opcode: 0xd3, dst: 10, src: 2, off: -1, imm: 0x110 })), [false, true, 10, 1]);
  assert.deepEqual(describe(one({ opcode: 0x07, dst: 1, imm: 8 })), [false, false, undefined, 0]);
  assert.deepEqual(describe(one({ opcode: 0x30, imm: 12 })), [false, false, undefined, 0]); // ld abs reads the packet
});

test('a trailing half lddw is a problem, not a crash', () => {
  const { instructions, problems } = decodeInstructions(
    concat([encodeSlot({ opcode: 0xb7, dst: 0 }), encodeSlot({ opcode: 0x18, dst: 1, imm: 5 })]),
    true,
    '.text',
  );
  assert.deepEqual(problems, [{ message: 'section .text: lddw at instruction 1 (byte 0x8) is missing its second half', offset: 8 }]);
  assert.equal(instructions.length, 2);
  assert.equal(instructions[1].width, 1);
});

test('leftover bytes, unknown opcodes and a bad lddw second half are each one clear problem', () => {
  const truncated = decodeInstructions(concat([encodeAll([{ opcode: 0x95 }]), new Uint8Array(3)]), true, 'xdp');
  assert.deepEqual(truncated.problems, [{ message: 'section xdp: truncated instruction at byte 0x8 (3 bytes left over, instructions are 8)', offset: 8 }]);
  assert.equal(truncated.instructions.length, 1);

  const unknown = decodeInstructions(encodeAll([{ opcode: 0x95 }, { opcode: 0xf7 }]), true, 'tc');
  assert.deepEqual(unknown.problems, [{ message: 'section tc: unknown opcode 0xf7 at instruction 1 (byte 0x8)', offset: 8 }]);

  const badSecondHalf = decodeInstructions(encodeAll([{ opcode: 0x18, dst: 1 }, { opcode: 0x95 }]), true, 'tc');
  assert.equal(badSecondHalf.problems.length, 1);
  assert.match(badSecondHalf.problems[0].message, /^section tc: lddw at instruction 0 \(byte 0x0\): its second half has opcode 0x95/);

  // Data decoded as code: a handful of opcodes are listed, the rest summed up.
  const garbage = decodeInstructions(encodeAll(Array.from({ length: 40 }, () => ({ opcode: 0xff }))), true, '.rodata');
  assert.equal(garbage.instructions.length, 40);
  assert.equal(garbage.problems.length, 6);
  assert.equal(garbage.problems[5].message, 'section .rodata: 35 more unknown opcodes not listed');

  // Given the section's place in the file, problem offsets point into the file.
  const inFile = decodeInstructions(encodeAll([{ opcode: 0x95 }, { opcode: 0xf7 }]), true, 'tc', 0x220);
  assert.equal(inFile.problems[0].offset, 0x228);

  const empty = decodeInstructions(new Uint8Array(0), true, '.text');
  assert.deepEqual(empty, { instructions: [], problems: [] });
});

test('every opcode byte decodes without throwing', () => {
  for (let opcode = 0; opcode < 256; opcode++) {
    for (const littleEndian of [true, false]) {
      const bytes = concat([encodeSlot({ opcode, dst: 1, src: 2, off: -1, imm: -1 }, littleEndian), encodeSlot({ opcode: 0 }, littleEndian)]);
      const { instructions } = decodeInstructions(bytes, littleEndian, 'fuzz');
      assert.ok(instructions.length >= 1);
    }
  }
});

test('ALU and jump operations are types of their own: 0xb0 is MOV in one class and JLE in the other', () => {
  const jle = jumpOperation({ opcode: BPF_JMP | BPF_JLE | BPF_X });
  assert.equal(jle, BPF_JLE);
  assert.equal(aluOperation({ opcode: BPF_ALU64 | BPF_MOV | BPF_X }), BPF_MOV);
  // The build fails if this comparison ever compiles: a jump's operation is never compared with BPF_MOV.
  // @ts-expect-error JumpOp and AluOp have no overlap
  assert.equal(jle === BPF_MOV, true);
});
