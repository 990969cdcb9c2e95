/**
 * Shared by the source-side tests: where fixtures are, whether clang-19 is here to prove an
 * expectation, and a throwaway cache directory per test run.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { packageRoot } from '../../server/src/source/packageRoot';

export const DATA_DIR = path.join(packageRoot(), 'test', 'source', 'data');

export function dataFile(name: string): string {
  return path.join(DATA_DIR, name);
}

let clangAvailable: boolean | undefined;

/** Whether clang-19 can compile for the BPF target here. */
export function hasClang(): boolean {
  clangAvailable ??= spawnSync('clang-19', ['--version'], { encoding: 'utf8' }).status === 0;
  return clangAvailable;
}

/** Runs clang-19 -target bpf with `args`; returns its status and diagnostics. */
export function runClang(args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync('clang-19', ['-target', 'bpf', ...args], { encoding: 'utf8', input, maxBuffer: 256 * 1024 * 1024 });
  return { status: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? '' };
}

export function temporaryDirectory(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `bsl-${prefix}-`));
}

/** `// expect: struct NAME size=N align=M` lines of a fixture. */
export function layoutExpectations(text: string): { kind: 'struct' | 'union'; name: string; size: number; align: number }[] {
  const expectations = [];
  for (const match of text.matchAll(/\/\/ expect: (struct|union) (\w+) size=(\d+) align=(\d+)/g)) {
    expectations.push({ kind: match[1] as 'struct' | 'union', name: match[2], size: Number(match[3]), align: Number(match[4]) });
  }
  return expectations;
}

/**
 * One program with `count` locals that all live to the end of its body: `volatile char bN[8]`, so
 * every one is a stack object of its own slot and none can share (a frame of count × 8 bytes). Hostile
 * input for the estimator's per-local work (StackColoring tried every pair: 20,000 took 10-22 s).
 */
export function wideFunction(count: number): string {
  const locals = Array.from({ length: count }, (_, index) => `\tvolatile char b${index}[8]; b${index}[0] = ${index % 100};`).join('\n');
  return `__attribute__((section("tc"))) int wide(void *ctx)\n{\n${locals}\n\treturn 0;\n}\n`;
}
