/**
 * The source side's speed, for the language server's use: the header index over the running
 * kernel's vmlinux.h cold (fresh cache directory) and warm (disk cache, a fresh process), and the
 * latency of re-estimating a 3,000-line BPF C file (~100 functions, includes vmlinux.h) after a
 * one-line edit, with the process's RSS afterwards. Each figure is printed with its target and with
 * a reference measured in the same run: `clang-19 -fsyntax-only` on the same file.
 *
 * `sourceBench()` returns the report lines (bench/run.ts prints them); `node out/bench/source.js`
 * runs it alone. Nothing asserts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { EstimateSession, estimateSource } from '../server/src/source/estimateSource';
import { parseKernelProfiles } from '../server/src/rules/kernelProfile';
import { FrameEstimateCache } from '../server/src/source/frameEstimate';
import { HeaderIndex } from '../server/src/source/headerIndex';
import { wideFunction } from '../test/source/helpers';

const root = resolve(__dirname, '..', '..');
const work = join(root, '.cache', 'bench');
const vmlinuxDir = join(work, 'vmlinux');
const vmlinuxHeader = join(vmlinuxDir, 'vmlinux.h');
const sourceFile = join(work, 'source_3000.bpf.c');

const TARGET_WARM_START_MS = 300;
const TARGET_EDIT_P95_MS = 25;
const TARGET_RSS_MB = 200;
const EDITS = 60;

/** vmlinux.h of the running kernel, cached; undefined when bpftool or kernel BTF is missing. */
function ensureVmlinuxHeader(): string | undefined {
  if (existsSync(vmlinuxHeader)) return vmlinuxHeader;
  mkdirSync(vmlinuxDir, { recursive: true });
  const dump = spawnSync('bpftool', ['btf', 'dump', 'file', '/sys/kernel/btf/vmlinux', 'format', 'c'], { maxBuffer: 1 << 30, encoding: 'utf8' });
  if (dump.status !== 0 || !dump.stdout) return undefined;
  writeFileSync(vmlinuxHeader, dump.stdout);
  return vmlinuxHeader;
}

/** A BPF C file of at least `targetLines` lines: static helpers, noinline subprograms and programs over vmlinux.h types. */
export function generateSourceProgram(targetLines = 3000, functions = 100): string {
  const lines = ['#include "vmlinux.h"', '#include <bpf/bpf_helpers.h>', '', 'const volatile __u32 debug_level = 0;', ''];
  const types = [
    'struct iphdr',
    'struct ipv6hdr',
    'struct tcphdr',
    'struct udphdr',
    'struct ethhdr',
    'struct sock_common',
    'struct in6_addr',
    'struct bpf_sock_tuple',
  ];
  const bodyLines = Math.max(8, Math.floor(targetLines / functions) - 12);
  for (let f = 0; f < functions; f++) {
    const kind = f % 5;
    const type = types[f % types.length];
    const isProgram = kind === 4;
    if (isProgram) lines.push('SEC("tc")', `int prog_${f}(struct __sk_buff *skb)`);
    else if (kind === 3) lines.push(`static __noinline int sub_${f}(struct __sk_buff *skb, __u64 seed)`);
    else lines.push(`static __always_inline int step_${f}(struct __sk_buff *skb, __u64 seed)`);
    lines.push('{', `\t${type} hdr_${f};`, `\tchar buf_${f}[${32 + (f % 8) * 8}];`, '\t__u64 acc = 0;', '');
    lines.push(`\tif (bpf_skb_load_bytes(skb, 0, &hdr_${f}, sizeof(hdr_${f})))`, '\t\treturn 0;');
    const budget = lines.length + bodyLines;
    for (let l = 0; lines.length < budget; l++) {
      if (l % 6 === 0)
        lines.push(
          `\tif (debug_level > ${l % 3}) {`,
          `\t\tchar dump_${l}[64];`,
          `\t\tbpf_probe_read_kernel(dump_${l}, sizeof(dump_${l}), &hdr_${f});`,
          `\t\tacc += dump_${l}[${l % 64}];`,
          '\t}',
        );
      else lines.push(`\tacc += ((__u8 *)&hdr_${f})[${l % 8}] * ${l + 1} + buf_${f}[${l % 32}];`);
    }
    if (isProgram) {
      for (let c = Math.max(0, f - 4); c < f; c++) lines.push(c % 5 === 3 ? `\tacc += sub_${c}(skb, acc);` : `\tacc += step_${c}(skb, acc);`);
    }
    lines.push(`\tbpf_probe_read_kernel(buf_${f}, sizeof(buf_${f}), 0);`, '\treturn acc & 1;', '}', '');
  }
  lines.push('char LICENSE[] SEC("license") = "GPL";', '');
  return lines.join('\n');
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function elapsedMs(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/** Runs this file as a child that estimates `file` once with a header index in `cacheDir`; the parent times the whole process. */
function timeChild(cacheDir: string, file: string): { wallMs: number; inChild: { loadMs: number; estimateMs: number; diskHits: number; misses: number } } {
  const start = process.hrtime.bigint();
  const result = spawnSync(process.execPath, [__filename, '--child', cacheDir, file], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const wallMs = elapsedMs(start);
  if (result.status !== 0) throw new Error(`bench child failed: ${result.stderr}`);
  return { wallMs, inChild: JSON.parse(result.stdout.trim().split('\n').pop() ?? '{}') };
}

/** In the child: load the modules, build the header index from `cacheDir`, estimate the file once. */
async function childMain(cacheDir: string, file: string): Promise<void> {
  // Node's start and the modules' loading, up to here.
  const loadMs = process.uptime() * 1000;
  const index = new HeaderIndex({ cacheDir });
  const { profiles } = parseKernelProfiles(['6.18'], true);
  const estimateStart = process.hrtime.bigint();
  await estimateSource(file, readFileSync(file, 'utf8'), profiles, { index, includeDirs: [vmlinuxDir] });
  const estimateMs = elapsedMs(estimateStart);
  process.stdout.write(`${JSON.stringify({ loadMs, estimateMs, diskHits: index.statistics.diskHits, misses: index.statistics.misses })}\n`);
}

function ratio(value: number, reference: number): string {
  return reference > 0 ? `${(value / reference).toFixed(2)}x clang` : 'n/a';
}

function verdict(value: number, target: number): string {
  return value <= target ? 'meets' : 'MISSES';
}

export async function sourceBench(): Promise<string[]> {
  const out: string[] = ['source side (vmlinux.h of the running kernel, 3,000-line file):'];
  mkdirSync(work, { recursive: true });
  if (!ensureVmlinuxHeader()) {
    out.push('  skipped: cannot dump /sys/kernel/btf/vmlinux with bpftool');
    return out;
  }
  const text = generateSourceProgram();
  writeFileSync(sourceFile, text);
  const lineCount = text.split('\n').length;
  const functionCount = (text.match(/^(?:static |int )[^\n]*\(struct __sk_buff/gm) ?? []).length;

  // Reference: clang parsing and type-checking the same file.
  let clangMs = 0;
  const clangTimes: number[] = [];
  for (let run = 0; run < 3; run++) {
    const start = process.hrtime.bigint();
    const result = spawnSync('clang-19', ['-fsyntax-only', '-target', 'bpf', '-I', vmlinuxDir, '-I/usr/include/x86_64-linux-gnu', sourceFile], {
      encoding: 'utf8',
    });
    const elapsed = elapsedMs(start);
    if (result.error || result.status !== 0) break;
    clangTimes.push(elapsed);
  }
  if (clangTimes.length > 0) clangMs = median(clangTimes);
  out.push(
    `  reference: clang-19 -fsyntax-only on the ${lineCount}-line file (${functionCount} functions): ${clangTimes.length ? `${clangMs.toFixed(0)} ms (median of ${clangTimes.length})` : 'clang-19 unavailable or failed'}`,
  );

  // Header index cold (fresh cache dir) and warm (disk cache, fresh process), each a whole node process.
  const cacheDir = mkdtempSync(join(work, 'index-'));
  try {
    const cold = timeChild(cacheDir, sourceFile);
    out.push(
      `  header index cold (fresh cache dir, new process, first estimate): ${cold.wallMs.toFixed(0)} ms wall ` +
        `(node + modules ${cold.inChild.loadMs.toFixed(0)} ms, estimate ${cold.inChild.estimateMs.toFixed(0)} ms, ${cold.inChild.misses} headers parsed); ${ratio(cold.wallMs, clangMs)}`,
    );
    const warmRuns = [0, 1, 2].map(() => timeChild(cacheDir, sourceFile));
    const warm = warmRuns.sort((a, b) => a.wallMs - b.wallMs)[1];
    out.push(
      `  warm start (disk cache, new process, first estimate): ${warm.wallMs.toFixed(0)} ms wall, median of 3 ` +
        `(node + modules ${warm.inChild.loadMs.toFixed(0)} ms, estimate ${warm.inChild.estimateMs.toFixed(0)} ms, ${warm.inChild.diskHits} disk hits); ` +
        `target <= ${TARGET_WARM_START_MS} ms: ${verdict(warm.wallMs, TARGET_WARM_START_MS)}; ${ratio(warm.wallMs, clangMs)}`,
    );

    // Edits in one process: one line changed each time, re-estimated through one session.
    const index = new HeaderIndex({ cacheDir });
    const { profiles } = parseKernelProfiles(['6.18', '6.1'], true);
    const session = new EstimateSession();
    const options = { index, includeDirs: [vmlinuxDir] };
    const firstStart = process.hrtime.bigint();
    await estimateSource(sourceFile, text, profiles, options, session);
    const firstMs = elapsedMs(firstStart);
    const lines = text.split('\n');
    const editable = lines.map((line, at) => (/^\tchar buf_\d+\[\d+\];$/.test(line) ? at : -1)).filter((at) => at >= 0);
    const times: number[] = [];
    for (let edit = 0; edit < EDITS; edit++) {
      const at = editable[(edit * 37) % editable.length];
      lines[at] = lines[at].replace(/\[(\d+)\]/, (_, size: string) => `[${(Number(size) % 200) + 8}]`);
      const edited = lines.join('\n');
      const start = process.hrtime.bigint();
      await estimateSource(sourceFile, edited, profiles, options, session);
      times.push(elapsedMs(start));
    }
    session.dispose();
    const p50 = percentile(times, 50);
    const p95 = percentile(times, 95);
    out.push(`  first estimate in the edit process (warm index): ${firstMs.toFixed(0)} ms`);
    out.push(
      `  edit -> estimate over ${EDITS} one-line edits: p50 ${p50.toFixed(1)} ms, p95 ${p95.toFixed(1)} ms; ` +
        `target p95 <= ${TARGET_EDIT_P95_MS} ms: ${verdict(p95, TARGET_EDIT_P95_MS)}; p95 ${ratio(p95, clangMs)}`,
    );
    const rssMb = process.memoryUsage().rss / (1024 * 1024);
    out.push(`  RSS after the edits: ${rssMb.toFixed(0)} MB; target <= ${TARGET_RSS_MB} MB: ${verdict(rssMb, TARGET_RSS_MB)}`);
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
  out.push(await wideFunctionBench());
  return out;
}

/** 20,000 locals live together in one function (hostile input; StackColoring tried every pair: 10-22 s). */
async function wideFunctionBench(): Promise<string> {
  const file = join(work, 'wide.c');
  writeFileSync(file, wideFunction(20000));
  const { profiles } = parseKernelProfiles(['6.18'], true);
  const session = new EstimateSession(new FrameEstimateCache());
  const start = process.hrtime.bigint();
  const report = await estimateSource(file, readFileSync(file, 'utf8'), profiles, { index: new HeaderIndex({ cacheDir: null }) }, session);
  const elapsed = elapsedMs(start);
  session.dispose();
  const frame = report.functions.find((fn) => fn.name === 'wide')?.frameBytes;
  return `  20,000 locals in one function: ${elapsed.toFixed(0)} ms, frame ${frame} B${report.partial ? ' (partial: the time budget ran out)' : ''}`;
}

if (require.main === module) {
  const childAt = process.argv.indexOf('--child');
  if (childAt !== -1) {
    childMain(process.argv[childAt + 1], process.argv[childAt + 2]).catch((error) => {
      process.stderr.write(`${(error as Error).stack}\n`);
      process.exit(1);
    });
  } else {
    sourceBench().then(
      (lines) => process.stdout.write(`${lines.join('\n')}\n`),
      (error) => {
        process.stderr.write(`${(error as Error).stack}\n`);
        process.exit(1);
      },
    );
  }
}
