/**
 * The decoders never throw on bad input. These tests feed them truncated and corrupted copies of
 * real objects and only ask that every stage returns.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readBtf } from '../../server/src/object/btf';
import { readBtfExt } from '../../server/src/object/btfExt';
import { formatInstruction } from '../../server/src/object/disassemble';
import { SHF_EXECINSTR, readElf } from '../../server/src/object/elf';
import { applyLibbpfSourceRegisters, decodeInstructions } from '../../server/src/object/instruction';
import { analyzeObject } from '../../server/src/object/analyzeObject';
import { parseKernelProfiles } from '../../server/src/rules/kernelProfile';
import { withSharedSubprograms } from '../../server/src/cli/sharedSubprograms';
import { formatTextReport } from '../../server/src/ide/textReport';
import { craftObject } from '../fuzz/craftObject';
import { readData } from './testData';

/** Runs every decoder on the bytes; returns how many problems they reported in all. */
function decodeEverything(bytes: Uint8Array): number {
  const { elf, problems } = readElf(bytes);
  let count = problems.length;
  if (!elf) return count;
  for (const section of elf.sections) {
    if ((section.flags & SHF_EXECINSTR) === 0) continue;
    const decoded = decodeInstructions(section.data, elf.littleEndian, section.name);
    count += decoded.problems.length;
    for (const instruction of applyLibbpfSourceRegisters(decoded.instructions, section.index, elf)) formatInstruction(instruction);
  }
  const btf = readBtf(elf.sectionByName('.BTF')?.data, elf.littleEndian);
  count += btf.problems.length;
  for (const type of btf.btf?.types ?? []) {
    btf.btf?.typeName(type.id);
    btf.btf?.resolveSize(type.id);
  }
  count += readBtfExt(elf.sectionByName('.BTF.ext')?.data, elf.littleEndian, btf.btf).problems.length;
  return count;
}

/** A small deterministic generator, so a failure can be replayed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

for (const name of ['calls.bpf.o', 'calls.bpfeb.o', 'types.bpf.o']) {
  test(`${name}: every truncation decodes without an exception`, () => {
    const bytes = readData(name);
    assert.equal(decodeEverything(bytes), 0);
    for (let length = 0; length < bytes.length; length += 61) decodeEverything(bytes.subarray(0, length));
  });

  test(`${name}: random corruption decodes without an exception`, () => {
    const bytes = readData(name);
    const next = random(0x5eed + bytes.length);
    let reported = 0;
    for (let round = 0; round < 300; round++) {
      const copy = new Uint8Array(bytes);
      const flips = 1 + Math.floor(next() * 16);
      for (let i = 0; i < flips; i++) copy[Math.floor(next() * copy.length)] = Math.floor(next() * 256);
      reported += decodeEverything(copy);
    }
    assert.ok(reported > 0, 'corruption should be noticed at least sometimes');
  });
}

test('a static call chain 3,000 functions deep is built without exhausting the stack, and refused as the kernel refuses it', () => {
  const bytes = craftObject({ chain: 3000, programs: 1 });
  const analysis = analyzeObject(bytes, 'deep.o', parseKernelProfiles(['6.18'], true).profiles);
  const [program] = analysis.report.programs;
  // The verifier takes 256 subprograms, main included; the program is built that far.
  assert.equal(program.subprograms.length, 256);
  assert.equal(analysis.programs[0].moreSubprograms, true);
  // Libbpf's order: the chain appended depth-first, f0 first.
  assert.deepEqual(
    program.subprograms.slice(0, 3).map((sub) => sub.name),
    ['p0', 'f0', 'f1'],
  );
  const [verdict] = program.verdicts;
  assert.equal(verdict.accepted, false);
  assert.equal(verdict.violations.find((violation) => violation.reportedByKernel)?.message, 'too many subprograms');
  // Never verified, so the verifier's line is 256 zeros (as 6.18 prints it).
  assert.equal(verdict.stackDepthLine, `stack depth ${Array(256).fill(0).join('+')}`);
  assert.ok(
    verdict.violations.some((violation) => violation.rule === 'call-depth' && /call stack of 9 frames is too deep/.test(violation.message)),
    JSON.stringify(verdict.violations[0]?.message),
  );
  // A chain that fits is judged on its depth alone.
  const fits = analyzeObject(craftObject({ chain: 255, programs: 1 }), 'fits.o', parseKernelProfiles(['6.18'], true).profiles).report.programs[0];
  assert.equal(fits.subprograms.length, 256);
  assert.equal(fits.verdicts[0].violations.find((violation) => violation.reportedByKernel)?.rule, 'call-depth');
});

test('a thousand programs sharing one chain share their subprogram reports, and the JSON writes each once', () => {
  const bytes = craftObject({ chain: 40, programs: 600 });
  const report = analyzeObject(bytes, 'shared.o', parseKernelProfiles(['6.18'], true).profiles).report;
  assert.equal(report.programs.length, 600);
  // f5 is not where any program is rejected, so every program holds the same object for it.
  assert.equal(report.programs[0].subprograms[6], report.programs[599].subprograms[6]);
  const shared = withSharedSubprograms(report);
  assert.ok(shared.sharedSubprograms && shared.sharedSubprograms.length < 600 * 3, String(shared.sharedSubprograms?.length));
  const first = shared.programs[0];
  assert.equal(first.subprogramsShared, true);
  assert.deepEqual(
    first.subprograms.map((sub) => sub.name),
    ['p0'],
  );
  assert.deepEqual(
    first.subprogramRefs!.map((ref) => shared.sharedSubprograms![ref].name),
    report.programs[0].subprograms.map((sub) => sub.name),
  );
  assert.ok(shared.problems.some((problem) => /sharedSubprograms/.test(problem.message)));
  // The text report says the shared frames once: its size follows the object, not programs × frames.
  const text = formatTextReport([report], { lineText: () => undefined });
  assert.equal(text.match(/then the same 40 frames as program p0/g)?.length, 599);
  assert.ok(text.split('\n').length < 600 * 12, `${text.split('\n').length} lines`);
  // Below the threshold the report is unchanged.
  const small = analyzeObject(craftObject({ chain: 3, programs: 2 }), 'small.o', parseKernelProfiles(['6.18'], true).profiles).report;
  assert.equal(withSharedSubprograms(small), small);
});
