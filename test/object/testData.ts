/**
 * Shared by the object decode tests: the committed inputs under test/object/data, and the LLVM and
 * bpftool binaries some tests use as oracles when this machine has them.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import assert from 'node:assert/strict';
import { type ElfFile, type ElfSection, SHF_EXECINSTR, readElf } from '../../server/src/object/elf';
import { type Instruction, decodeInstructions } from '../../server/src/object/instruction';

/** Compiled to out/test/object/, the sources and inputs stay in test/object/. */
export const DATA_DIR = path.resolve(__dirname, '../../../test/object/data');

export function dataPath(name: string): string {
  return path.join(DATA_DIR, name);
}

export function readData(name: string): Uint8Array {
  return new Uint8Array(readFileSync(dataPath(name)));
}

export function readDataText(name: string): string {
  return readFileSync(dataPath(name), 'utf8');
}

/** The objects built from the same source for both byte orders, little-endian first. */
export const OBJECT_PAIRS: readonly [string, string][] = [
  ['calls.bpf.o', 'calls.bpfeb.o'],
  ['cpuv4.bpf.o', 'cpuv4.bpfeb.o'],
  ['types.bpf.o', 'types.bpfeb.o'],
];
export const BPF_OBJECTS: readonly string[] = OBJECT_PAIRS.flat();

/** Reads one committed object and insists it is clean: every test below builds on that. */
export function loadObject(name: string): ElfFile {
  const { elf, problems } = readElf(readData(name));
  assert.deepEqual(problems, [], `${name}: ${problems.map((p) => p.message).join('; ')}`);
  assert.ok(elf, `${name}: no ELF`);
  return elf;
}

export function codeSections(elf: ElfFile): ElfSection[] {
  return elf.sections.filter((s) => (s.flags & SHF_EXECINSTR) !== 0 && s.size > 0);
}

export function decodeSection(elf: ElfFile, name: string): Instruction[] {
  const section = elf.sectionByName(name);
  assert.ok(section, `no section ${name}`);
  const { instructions, problems } = decodeInstructions(section.data, elf.littleEndian, section.name);
  assert.deepEqual(problems, []);
  return instructions;
}

export function symbolValue(elf: ElfFile, name: string): number {
  const symbol = elf.symbols.find((s) => s.name === name);
  assert.ok(symbol, `no symbol ${name}`);
  return symbol.value;
}

/** Runs an oracle tool; undefined when the tool is not installed (the caller skips with a message). */
export function runTool(tool: string, args: string[]): string | undefined {
  const result = spawnSync(tool, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.error) return undefined;
  assert.equal(result.status, 0, `${tool} ${args.join(' ')} failed: ${result.stderr}`);
  return result.stdout;
}

export function toolMissing(tool: string): string | false {
  const result = spawnSync(tool, ['--version'], { encoding: 'utf8' });
  return result.error ? `${tool} is not installed` : false;
}

/**
 * Compares text with a committed golden file; UPDATE_GOLDEN=1 rewrites the file instead. Goldens
 * are only refreshed on purpose, after the oracle tests pass against the same objects.
 */
export function assertGolden(actual: string, goldenName: string): void {
  const file = dataPath(goldenName);
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(file)) {
    writeFileSync(file, actual);
    if (process.env.UPDATE_GOLDEN !== '1') assert.fail(`${goldenName} did not exist; written now, check it and rerun`);
    return;
  }
  assert.equal(actual, readFileSync(file, 'utf8'), `${goldenName} differs (UPDATE_GOLDEN=1 rewrites it)`);
}
