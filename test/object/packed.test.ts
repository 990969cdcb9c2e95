/**
 * The packed decoding that the analyzer reads (decodePackedInstructions and friends) against the
 * Instruction objects of decodeInstructions and applyLibbpfSourceRegisters, on every committed
 * object: the same instructions, the same problems, the same src_reg rewrites.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { SHF_EXECINSTR, readElf } from '../../server/src/object/elf';
import {
  type Instruction,
  applyLibbpfSourceRegisters,
  applyLibbpfSourceRegistersPacked,
  decodeInstructions,
  decodePackedInstructions,
  instructionsInto,
  materializeInstructions,
} from '../../server/src/object/instruction';
import { buildPrograms, instructionAt, instructionCount, transientInstructions } from '../../server/src/object/program';
import { DATA_DIR, readData } from './testData';

const OBJECTS = readdirSync(DATA_DIR).filter((name) => name.endsWith('.o'));

test('packed decoding gives the instructions and problems of decodeInstructions', () => {
  let sections = 0;
  for (const name of OBJECTS) {
    const { elf } = readElf(readData(name));
    if (!elf) continue;
    for (const section of elf.sections.filter((s) => (s.flags & SHF_EXECINSTR) !== 0 && s.size > 0)) {
      sections++;
      const objects = decodeInstructions(section.data, elf.littleEndian, section.name, section.offset);
      const packed = decodePackedInstructions(section.data, elf.littleEndian, section.name, section.offset);
      assert.deepEqual(packed.problems, objects.problems, `${name} ${section.name}`);
      assert.deepEqual(materializeInstructions(packed.code, 0, packed.code.count), objects.instructions, `${name} ${section.name}`);

      const rewritten = applyLibbpfSourceRegisters(objects.instructions, section.index, elf);
      applyLibbpfSourceRegistersPacked(packed.code, section.index, elf);
      assert.deepEqual(materializeInstructions(packed.code, 0, packed.code.count), rewritten, `${name} ${section.name}: src_reg rewrites`);

      // Reused objects hold the same fields (imm64 is present but undefined outside lddw).
      const pool: Instruction[] = [];
      const strip = (list: Instruction[]) => list.map((insn) => (insn.imm64 === undefined ? { ...insn, imm64: undefined } : { ...insn }));
      const half = Math.floor(packed.code.count / 2);
      assert.deepEqual(strip(instructionsInto(packed.code, half, packed.code.count, pool)), strip(rewritten.slice(half)));
      assert.deepEqual(strip(instructionsInto(packed.code, 0, half, pool)), strip(rewritten.slice(0, half)));
    }
  }
  assert.ok(sections > 10, `only ${sections} code sections in ${DATA_DIR}`);
});

test("a function's lazily built instructions agree with its packed accessors", () => {
  for (const name of OBJECTS) {
    const { elf } = readElf(readData(name));
    if (!elf) continue;
    for (const fn of buildPrograms(elf).functions) {
      const count = instructionCount(fn);
      const transient = transientInstructions(fn).map((insn) => ({ ...insn }));
      assert.equal(fn.instructions.length, count, `${name} ${fn.name}`);
      assert.equal(fn.instructions, fn.instructions, 'built once');
      fn.instructions.forEach((insn, index) => {
        assert.deepEqual(instructionAt(fn, index), insn, `${name} ${fn.name} #${index}`);
        assert.deepEqual({ ...transient[index], imm64: insn.imm64 }, { ...insn, imm64: insn.imm64 }, `${name} ${fn.name} #${index}`);
      });
      assert.equal(instructionAt(fn, count), undefined);
    }
  }
});
