/**
 * `npm run bench`: speed of the analyses, as ratios against a reference run in the same invocation.
 *
 * Source side (bench/source.ts): the header index of vmlinux.h cold and warm, and the estimate after
 * a one-line edit of a 3,000-line file, against clang-19 -fsyntax-only on the same file.
 *
 * Object side: generated BPF objects of ~93k and ~500k instructions (the requirement is at least
 * 50,000), each analyzed by `bpf-stack-lens check` as a whole process, against `llvm-objdump-19 -d`
 * on the same file (the target is at most half of llvm-objdump's time).
 *
 * A real program (bench/corpusSource.ts): the largest source with vmlinux.h of the corpus built under
 * .cache/corpus, estimated cold and warm, against clang-19 -fsyntax-only and a full compile of it. Every size is reported with
 * its ratio and its cost per instruction; `node -e 0` is timed too, since it bounds the small size
 * from below. `--object-only` skips the source side. Each command runs several times; medians are
 * reported. Nothing here asserts: it measures and prints.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(__dirname, '..', '..');
const work = join(root, '.cache', 'bench');

/**
 * `functions` noinline functions work_<first>... of ~290 instructions each and `programs` tc
 * programs that call them. Only the chunk with `license` defines LICENSE (chunks are linked).
 */
function generateLargeProgram(functions: number, programs: number, first = 0, license = true): string {
  const lines = ['#include <linux/bpf.h>', '#include <bpf/bpf_helpers.h>', ''];
  for (let f = first; f < first + functions; f++) {
    lines.push(`static __attribute__((noinline)) __u64 work_${f}(__u64 x)`, '{', '\tvolatile __u64 slots[24];');
    for (let s = 0; s < 48; s++) lines.push(`\tslots[${s % 24}] = x * ${s + 3} + ${f};`, `\tx ^= slots[${(s * 7) % 24}];`);
    lines.push('\treturn x;', '}', '');
  }
  const perProgram = Math.ceil(functions / programs);
  const firstProgram = Math.floor(first / perProgram);
  for (let p = 0; p < programs; p++) {
    lines.push('SEC("tc")', `int prog_${firstProgram + p}(struct __sk_buff *skb)`, '{', '\t__u64 x = skb->len;');
    for (let f = first + p * perProgram; f < first + Math.min(functions, (p + 1) * perProgram); f++) lines.push(`\tx += work_${f}(x);`);
    lines.push('\treturn x & 1;', '}', '');
  }
  if (license) lines.push('char LICENSE[] SEC("license") = "GPL";');
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

/**
 * The generated objects, by function count: each `work_N` function is ~290 instructions, so 320
 * functions give ~93k instructions and 1,720 give ~500k. The first keeps its historical file name.
 */
const OBJECT_SIZES: { functions: number; programs: number; file: string }[] = [
  { functions: 320, programs: 16, file: 'large.bpf.o' },
  { functions: 1720, programs: 86, file: 'large-1720.bpf.o' },
];

/**
 * clang's time grows faster than linearly with the functions in one file (1,720 in one file take
 * well over ten minutes), so large objects are compiled in chunks of at most 160 functions and
 * linked with libbpf's static linker (`bpftool gen object`), which merges the tc sections, BTF and
 * BTF.ext as a multi-file BPF build would.
 */
function ensureObject(functions: number, programs: number, file: string): string {
  const object = join(work, file);
  if (existsSync(object)) return object;
  const compile = (source: string, output: string, text: string) => {
    writeFileSync(source, text);
    execFileSync('clang-19', ['-O2', '-g', '-target', 'bpf', '-I/usr/include/x86_64-linux-gnu', '-c', source, '-o', output]);
  };
  if (functions <= 320) {
    compile(object.replace(/\.o$/, '.c'), object, generateLargeProgram(functions, programs));
    return object;
  }
  const chunkFunctions = 160;
  const perProgram = Math.ceil(functions / programs);
  if (chunkFunctions % perProgram !== 0) throw new Error(`chunks of ${chunkFunctions} functions must hold whole programs of ${perProgram}`);
  const chunks: string[] = [];
  for (let first = 0; first < functions; first += chunkFunctions) {
    const count = Math.min(chunkFunctions, functions - first);
    const chunk = object.replace(/\.o$/, `.part${chunks.length}.o`);
    compile(chunk.replace(/\.o$/, '.c'), chunk, generateLargeProgram(count, Math.ceil(count / perProgram), first, first === 0));
    chunks.push(chunk);
  }
  execFileSync('bpftool', ['gen', 'object', object, ...chunks]);
  return object;
}

function objectBench(): string[] {
  mkdirSync(work, { recursive: true });
  const runs = 7;
  const lines: string[] = [];
  // A process that does nothing: the floor under any whole-process figure of ours.
  const nodeFloor = timeCommand(process.execPath, ['-e', '0'], runs);
  lines.push(`object analysis (medians of ${runs}; node -e 0 alone: ${nodeFloor.toFixed(1)} ms)`);
  for (const { functions, programs, file } of OBJECT_SIZES) {
    let object: string;
    try {
      object = ensureObject(functions, programs, file);
    } catch (error) {
      lines.push(
        `  ${file}: not built (${error instanceof Error ? error.message.split('\n')[0] : error}); clang-19 and, above 320 functions, bpftool are needed`,
      );
      continue;
    }
    const size = execFileSync('llvm-objdump-19', ['-d', object], { maxBuffer: 1 << 30 })
      .toString()
      .split('\n')
      .filter((line) => /^\s+\d+:/.test(line)).length;
    const objdump = timeCommand('llvm-objdump-19', ['-d', object], runs);
    const cli = timeCommand(process.execPath, [join(root, 'bin', 'bpf-stack-lens.js'), 'check', '--kernel', '6.18,6.1', '--format', 'json', object], runs);
    const perInsn = (ms: number) => ((ms * 1000) / size).toFixed(2);
    lines.push(`  ${file}: ${size} instructions`);
    lines.push(`    llvm-objdump-19 -d          ${objdump.toFixed(1)} ms (reference, ${perInsn(objdump)} us/insn)`);
    lines.push(
      `    bpf-stack-lens check        ${cli.toFixed(1)} ms (${perInsn(cli)} us/insn; ${perInsn(Math.max(0, cli - nodeFloor))} us/insn above node -e 0)`,
    );
    // Below some size node's own start-up is more than half of llvm-objdump's whole run: say so.
    const floorShare = nodeFloor / objdump;
    const reach =
      floorShare >= 0.5
        ? `; out of reach at this size: node -e 0 alone is ${floorShare.toFixed(2)} of objdump's time`
        : `; ${cli / objdump <= 0.5 ? 'meets' : 'misses'}`;
    lines.push(`    ratio check / objdump       ${(cli / objdump).toFixed(2)} (target <= 0.50${reach})`);
  }
  return lines;
}

async function main(): Promise<void> {
  for (const line of objectBench()) console.log(line);
  if (process.argv.includes('--object-only')) return;
  console.log('');
  // The source side runs in a process of its own: its RSS figure must be the estimator's memory,
  // not what the object half (generated sources, objdump's output) left in this one.
  const source = spawnSync(process.execPath, [join(__dirname, 'source.js')], { stdio: 'inherit' });
  if (source.status !== 0) throw new Error(`bench/source.js exited ${source.status}`);
  console.log('');
  // A real program of the corpus, in a process of its own for the same reason; it fails, and says
  // how to build the corpus, when there is none.
  const corpus = spawnSync(process.execPath, [join(__dirname, 'corpusSource.js')], { stdio: 'inherit' });
  if (corpus.status !== 0) throw new Error(`bench/corpusSource.js exited ${corpus.status}`);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
