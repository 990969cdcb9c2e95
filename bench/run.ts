/**
 * `npm run bench`: speed of the analyses, as ratios against a reference run in the same invocation.
 *
 * Source side (bench/source.ts): the header index of vmlinux.h cold and warm, and the estimate after
 * a one-line edit of a 3,000-line file, against clang-19 -fsyntax-only on the same file.
 *
 * Object side: a generated BPF object of at least 50,000 instructions, analyzed by
 * `bpf-stack-lens check` as a whole process, against `llvm-objdump-19 -d` on the same file (the
 * target is at most half of llvm-objdump's time). Each command runs several times; medians are
 * reported. Nothing here asserts: it measures and prints.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { sourceBench } from './source';

const root = resolve(__dirname, '..', '..');
const work = join(root, '.cache', 'bench');

function generateLargeProgram(functions: number, programs: number): string {
  const lines = ['#include <linux/bpf.h>', '#include <bpf/bpf_helpers.h>', ''];
  for (let f = 0; f < functions; f++) {
    lines.push(`static __attribute__((noinline)) __u64 work_${f}(__u64 x)`, '{', '\tvolatile __u64 slots[24];');
    for (let s = 0; s < 48; s++) lines.push(`\tslots[${s % 24}] = x * ${s + 3} + ${f};`, `\tx ^= slots[${(s * 7) % 24}];`);
    lines.push('\treturn x;', '}', '');
  }
  const perProgram = Math.ceil(functions / programs);
  for (let p = 0; p < programs; p++) {
    lines.push('SEC("tc")', `int prog_${p}(struct __sk_buff *skb)`, '{', '\t__u64 x = skb->len;');
    for (let f = p * perProgram; f < Math.min(functions, (p + 1) * perProgram); f++) lines.push(`\tx += work_${f}(x);`);
    lines.push('\treturn x & 1;', '}', '');
  }
  lines.push('char LICENSE[] SEC("license") = "GPL";');
  return lines.join('\n');
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function timeCommand(command: string, args: string[], runs: number): number {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    const result = spawnSync(command, args, { stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 30 });
    const elapsed = Number(process.hrtime.bigint() - start) / 1e6;
    if (result.status !== 0 && result.status !== 1) {
      throw new Error(`${command} ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
    }
    times.push(elapsed);
  }
  return median(times);
}

function objectBench(): void {
  mkdirSync(work, { recursive: true });
  const source = join(work, 'large.bpf.c');
  const object = join(work, 'large.bpf.o');
  if (!existsSync(object)) {
    writeFileSync(source, generateLargeProgram(320, 16));
    execFileSync('clang-19', ['-O2', '-g', '-target', 'bpf', '-I/usr/include/x86_64-linux-gnu', '-c', source, '-o', object]);
  }
  const size = execFileSync('llvm-objdump-19', ['-d', object], { maxBuffer: 1 << 30 }).toString().split('\n').filter((line) => /^\s+\d+:/.test(line)).length;
  const runs = 5;
  const objdump = timeCommand('llvm-objdump-19', ['-d', object], runs);
  const cli = timeCommand(process.execPath, [join(root, 'bin', 'bpf-stack-lens.js'), 'check', '--kernel', '6.18,6.1', '--format', 'json', object], runs);
  console.log(`object analysis: ${size} instructions`);
  console.log(`  llvm-objdump-19 -d          ${objdump.toFixed(1)} ms (reference)`);
  console.log(`  bpf-stack-lens check        ${cli.toFixed(1)} ms`);
  console.log(`  ratio check / objdump       ${(cli / objdump).toFixed(2)} (target <= 0.50)`);
}

async function main(): Promise<void> {
  objectBench();
  console.log('');
  for (const line of await sourceBench()) console.log(line);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
