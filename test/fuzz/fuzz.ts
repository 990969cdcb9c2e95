/**
 * Seeded fuzzing of the three places hostile input enters: the object analyzer (ELF, BTF, BTF.ext,
 * instructions, program building, the rules), the source estimator (preprocessor, declaration
 * parser, frame estimate), and the language server's message loop. Every input comes from a seed,
 * so a failure prints the seed that replays it.
 *
 * The test suite runs a few thousand inputs (fuzz.test.ts); `npm run fuzz` runs the long mode,
 * `node out/test/fuzz/fuzz.js --long [--inputs N] [--seed S]`, and prints per target the inputs
 * tried, uncaught exceptions, inputs over one second and the peak resident memory.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { withSharedSubprograms } from '../../server/src/cli/sharedSubprograms';
import { formatTextReport } from '../../server/src/ide/textReport';
import { EstimateSession, estimateSource } from '../../server/src/source/estimateSource';
import { analyzeObject } from '../../server/src/object/analyzeObject';
import { parseKernelProfiles } from '../../server/src/rules/kernelProfile';
import { FrameEstimateCache } from '../../server/src/source/frameEstimate';
import { LspSession, sleep } from '../lsp/harness';
import { craftObject } from './craftObject';

const PROFILES = parseKernelProfiles(['6.1', '6.18'], true).profiles;
export const CORPUS_DIR = path.resolve(__dirname, '../../../test/fuzz/corpus');

/** A small deterministic generator (an LCG), so a failure can be replayed from its seed. */
export function random(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const pick = <T>(next: () => number, list: readonly T[]): T => list[Math.floor(next() * list.length)];

/**
 * The committed corpus: the crafted objects of the hostile-input report, each as this generator
 * writes it (fuzz.test.ts fails when a file drifts from it; `--write-corpus` rewrites them). The
 * 3,000-deep chain is generated at run time instead (it is 150 KB).
 */
export const CORPUS: Record<string, Parameters<typeof craftObject>[0]> = {
  'lines-dev-zero.o': { chain: 1, programs: 1, frameBytes: 320, lineInfoFile: '/dev/zero' },
  'lines-fifo.o': { chain: 1, programs: 1, frameBytes: 320, lineInfoFile: 'fifo' },
  'lines-outside.o': { chain: 1, programs: 1, frameBytes: 320, lineInfoFile: '/etc/passwd' },
  'shared-40x40.o': { chain: 40, programs: 40 },
  'chain-12.o': { chain: 12, programs: 2, lineInfoFile: 'prog.c' },
};

/** The objects mutations start from: the committed corpus and shapes generated here. */
export function objectSeeds(): Uint8Array<ArrayBufferLike>[] {
  const seeds = fs.existsSync(CORPUS_DIR)
    ? fs
        .readdirSync(CORPUS_DIR)
        .filter((name) => name.endsWith('.o'))
        .sort()
        .map((name) => new Uint8Array(fs.readFileSync(path.join(CORPUS_DIR, name))))
    : ([] as Uint8Array<ArrayBufferLike>[]);
  seeds.push(craftObject({ chain: 3000, programs: 1, frameBytes: 0 }), craftObject({ chain: 0, programs: 1 }));
  return seeds;
}

const BOUNDARY_WORDS = [0, 1, 0x7fffffff, 0xffffffff, 0x80000000, 0xfffffff8, 8, 0x10000];

/** One mutation of an object: byte flips, a boundary value in an aligned word, a truncation, or a splice. */
export function mutateObject(bytes: Uint8Array, next: () => number): Uint8Array {
  const copy = new Uint8Array(bytes);
  const view = new DataView(copy.buffer);
  const rounds = 1 + Math.floor(next() * 6);
  let result = copy;
  for (let round = 0; round < rounds; round++) {
    const kind = Math.floor(next() * 4);
    if (kind === 0) {
      result[Math.floor(next() * result.length)] = Math.floor(next() * 256);
    } else if (kind === 1 && result.length >= 8) {
      const at = Math.floor(next() * (result.length / 4 - 1)) * 4;
      view.setUint32(at, pick(next, BOUNDARY_WORDS), true);
    } else if (kind === 2) {
      result = result.subarray(0, Math.floor(next() * result.length));
    } else {
      const from = Math.floor(next() * result.length);
      const to = Math.floor(next() * result.length);
      const length = Math.floor(next() * 64);
      result.copyWithin(to, from, from + length);
    }
  }
  return result;
}

/** Runs an object through everything `check` does with it. */
export function checkObjectInput(bytes: Uint8Array): void {
  const analysis = analyzeObject(bytes, 'fuzz.o', PROFILES);
  withSharedSubprograms(analysis.report);
  formatTextReport([analysis.report], { lineText: (location) => analysis.lineTextOf(location.file, location.line) });
}

export const C_SEEDS = [
  `struct pair { int a; long b; };\n__attribute__((section("tc"))) int prog(void *ctx) { struct pair p = {0}; char buf[64]; buf[0] = 1; return p.a + buf[0]; }\n`,
  `#define TWICE(x) x x\n#define F(a, b) ((a) + (b))\nstatic int helper(int *v) { int local[8]; local[0] = *v; return F(local[0], 1); }\n__attribute__((section("xdp"))) int entry(void *ctx) { int v = 2; TWICE(v++;) return helper(&v); }\n`,
  `typedef unsigned long u64;\nunion u { u64 x; char c[24]; };\nenum e { A = 1 << 3, B = sizeof(union u) };\n__attribute__((section("kprobe"))) int k(void *ctx) { union u arr[B]; arr[0].x = A; return arr[0].c[1]; }\n`,
];
const C_FRAGMENTS = [
  '(',
  ')',
  '{',
  '}',
  '[',
  ']',
  ';',
  ',',
  'struct s {',
  'int x;',
  '#define M(a) a a a a\n',
  'M(M(M(1)))',
  '#if 1\n',
  '#endif\n',
  '#include "none.h"\n',
  '__attribute__((packed))',
  'sizeof(struct s)',
  '/*',
  '*/',
  '"',
  "'",
  '\\\n',
  '((((((((',
  '))))))))',
  'char b[1<<20];',
  'typedef int t;',
  't t;',
  '...',
];

/** One mutation of C text: a fragment inserted, a range deleted or repeated, brackets nested deep. */
export function mutateSource(text: string, next: () => number): string {
  let result = text;
  const rounds = 1 + Math.floor(next() * 5);
  for (let round = 0; round < rounds; round++) {
    const at = Math.floor(next() * (result.length + 1));
    const kind = Math.floor(next() * 5);
    if (kind === 0) result = result.slice(0, at) + pick(next, C_FRAGMENTS) + result.slice(at);
    else if (kind === 1) result = result.slice(0, at) + result.slice(at + Math.floor(next() * 40));
    else if (kind === 2) {
      const piece = result.slice(at, at + Math.floor(next() * 30));
      result = result.slice(0, at) + piece.repeat(1 + Math.floor(next() * 50)) + result.slice(at);
    } else if (kind === 3) {
      const depth = 1 + Math.floor(next() * 3000);
      result = `${result.slice(0, at)}${'('.repeat(depth)}1${')'.repeat(depth)}${result.slice(at)}`;
    } else {
      const depth = 1 + Math.floor(next() * 600);
      result = `${result.slice(0, at)}${Array.from({ length: depth }, (_, i) => `struct n${i} { int f;`).join(' ')}${' };'.repeat(depth)}${result.slice(at)}`;
    }
  }
  return result;
}

export async function estimateInput(text: string, directory: string): Promise<void> {
  const file = path.join(directory, 'fuzz.c');
  fs.writeFileSync(file, text);
  const session = new EstimateSession(new FrameEstimateCache());
  try {
    await estimateSource(file, text, PROFILES, { includeDirs: [directory] }, session);
  } finally {
    session.dispose();
  }
}

export interface TargetStatistics {
  target: string;
  inputs: number;
  uncaught: { seed: number; error: string }[];
  /** Inputs over 1 s of wall time, with their CPU time: on a machine shared with other work the two differ. */
  slow: { seed: number; ms: number; cpuMs?: number }[];
  peakRssBytes: number;
}

/** Runs `count` inputs of one target from `seed` on, in this process. */
export async function fuzzTarget(target: 'object' | 'estimate', count: number, seed: number): Promise<TargetStatistics> {
  const statistics: TargetStatistics = { target, inputs: 0, uncaught: [], slow: [], peakRssBytes: 0 };
  const objects = target === 'object' ? objectSeeds() : [];
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'bpf-stack-lens-fuzz-'));
  try {
    for (let i = 0; i < count; i++) {
      const inputSeed = seed + i;
      const next = random(inputSeed);
      const started = performance.now();
      const cpuStarted = process.cpuUsage();
      try {
        if (target === 'object') checkObjectInput(mutateObject(pick(next, objects), next));
        else await estimateInput(mutateSource(pick(next, C_SEEDS), next), directory);
      } catch (error) {
        statistics.uncaught.push({
          seed: inputSeed,
          error: String((error as Error)?.stack ?? error)
            .split('\n')
            .slice(0, 3)
            .join(' | '),
        });
      }
      const ms = performance.now() - started;
      const cpu = process.cpuUsage(cpuStarted);
      if (ms > 1000) statistics.slow.push({ seed: inputSeed, ms: Math.round(ms), cpuMs: Math.round((cpu.user + cpu.system) / 1000) });
      statistics.inputs++;
      if (i % 64 === 0) statistics.peakRssBytes = Math.max(statistics.peakRssBytes, process.memoryUsage().rss);
    }
  } finally {
    fs.rmSync(directory, { recursive: true, force: true });
  }
  statistics.peakRssBytes = Math.max(statistics.peakRssBytes, process.memoryUsage().rss);
  return statistics;
}

/** Random LSP messages, some well-formed and some not, for the message-loop target. */
export function randomMessage(next: () => number, fileUri: string): { method: string; params: unknown; request: boolean } {
  const values: unknown[] = [
    null,
    0,
    2,
    -1,
    1e308,
    '',
    'x',
    fileUri,
    [],
    {},
    [1, 2],
    { uri: 5 },
    { uri: fileUri },
    { path: 2 },
    { path: '/dev/zero' },
    '\u0000',
    'a'.repeat(5000),
  ];
  const methods: [string, boolean][] = [
    ['bpfStackLens/checkObject', true],
    ['bpfStackLens/stackReport', true],
    ['bpfStackLens/fileStatus', true],
    ['textDocument/hover', true],
    ['textDocument/codeLens', true],
    ['textDocument/codeAction', true],
    ['textDocument/didOpen', false],
    ['textDocument/didChange', false],
    ['textDocument/didClose', false],
    ['workspace/didChangeWatchedFiles', false],
    ['workspace/didChangeConfiguration', false],
    ['bpfStackLens/noSuchMethod', true],
  ];
  const [method, request] = pick(next, methods);
  const params: Record<string, unknown> = {};
  for (const key of ['uri', 'path', 'textDocument', 'position', 'range', 'context', 'contentChanges', 'changes', 'settings']) {
    if (next() < 0.4) params[key] = pick(next, values);
  }
  if (next() < 0.5) params.textDocument = { uri: fileUri, languageId: 'c', version: Math.floor(next() * 10), text: pick(next, C_SEEDS) };
  if (next() < 0.3) params.position = { line: Math.floor(next() * 1e6) - 5, character: pick(next, [0, -1, 1e9, 'x']) };
  return { method, params: next() < 0.1 ? pick(next, values) : params, request };
}

/**
 * Sends `count` random messages to a real server over stdio; after every 50, and at the end, a plain
 * checkObject request must still be answered. A message the server rejects is fine; a server that
 * exits or stops answering is an uncaught failure.
 */
export async function fuzzMessageLoop(count: number, seed: number): Promise<TargetStatistics> {
  const statistics: TargetStatistics = { target: 'message loop', inputs: 0, uncaught: [], slow: [], peakRssBytes: 0 };
  const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'bpf-stack-lens-fuzz-lsp-'));
  const objectPath = path.join(workspace, 'probe.o');
  fs.writeFileSync(objectPath, craftObject({ chain: 2, programs: 1 }));
  const fileUri = `file://${path.join(workspace, 'fuzz.c')}`;
  const session = new LspSession({ kernels: ['6.18'] });
  session.connection.onRequest('window/showMessageRequest', () => null);
  try {
    await session.initialize(workspace, { kernels: ['6.18'] });
    const answers = async (seedNow: number) => {
      const started = performance.now();
      const reply = await Promise.race([session.connection.sendRequest('bpfStackLens/checkObject', { path: objectPath }), sleep(10_000).then(() => undefined)]);
      if (typeof reply !== 'string' || session.exited)
        statistics.uncaught.push({ seed: seedNow, error: session.exited ? 'the server exited' : 'the server stopped answering' });
      const ms = performance.now() - started;
      if (ms > 1000) statistics.slow.push({ seed: seedNow, ms: Math.round(ms) });
    };
    for (let i = 0; i < count && !session.exited; i++) {
      const next = random(seed + i);
      const message = randomMessage(next, fileUri);
      if (message.request) await session.connection.sendRequest(message.method, message.params).catch(() => undefined);
      else await session.connection.sendNotification(message.method, message.params);
      statistics.inputs++;
      if (i % 50 === 49) await answers(seed + i);
    }
    await answers(seed + count);
  } finally {
    await session.close();
    fs.rmSync(workspace, { recursive: true, force: true });
  }
  return statistics;
}

function formatStatistics(statistics: TargetStatistics): string {
  const mb = (statistics.peakRssBytes / 1024 / 1024).toFixed(0);
  const slowest = statistics.slow
    .sort((a, b) => b.ms - a.ms)
    .slice(0, 5)
    .map((slow) => `seed ${slow.seed}: ${slow.ms} ms${slow.cpuMs !== undefined ? ` (${slow.cpuMs} ms CPU)` : ''}`)
    .join(', ');
  const overCpu = statistics.slow.filter((slow) => slow.cpuMs !== undefined && slow.cpuMs > 1000).length;
  const cpuNote = statistics.slow.some((slow) => slow.cpuMs !== undefined) ? ` (${overCpu} over 1 s of CPU)` : '';
  const failures = statistics.uncaught
    .slice(0, 5)
    .map((failure) => `seed ${failure.seed}: ${failure.error}`)
    .join('\n    ');
  return `${statistics.target}: ${statistics.inputs} inputs, ${statistics.uncaught.length} uncaught exceptions, ${statistics.slow.length} over 1 s${cpuNote}${slowest ? ` (${slowest})` : ''}, peak RSS ${mb} MB${failures ? `\n    ${failures}` : ''}`;
}

async function main(argv: string[]): Promise<number> {
  const flag = (name: string, fallback: number) => {
    const at = argv.indexOf(name);
    return at >= 0 ? Number(argv[at + 1]) : fallback;
  };
  if (argv.includes('--write-corpus')) {
    fs.mkdirSync(CORPUS_DIR, { recursive: true });
    for (const [name, shape] of Object.entries(CORPUS)) fs.writeFileSync(path.join(CORPUS_DIR, name), craftObject(shape));
    return 0;
  }
  const long = argv.includes('--long');
  const seed = flag('--seed', 0x5eed);
  const objectInputs = flag('--inputs', long ? 200_000 : 2000);
  const estimateInputs = Math.max(1, Math.floor(objectInputs / (long ? 40 : 20)));
  let failed = false;
  for (const [target, count] of [
    ['object', objectInputs],
    ['estimate', estimateInputs],
  ] as const) {
    const statistics = await fuzzTarget(target, count, seed);
    process.stdout.write(`${formatStatistics(statistics)}\n`);
    failed ||= statistics.uncaught.length > 0;
  }
  const loop = await fuzzMessageLoop(long ? 20_000 : 500, seed);
  // The server's memory is its own process's; this process only sends.
  process.stdout.write(`${formatStatistics({ ...loop, peakRssBytes: 0 }).replace(', peak RSS 0 MB', '')}\n`);
  failed ||= loop.uncaught.length > 0;
  return failed ? 1 : 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    // The fuzzer's own failure (the server would not start, say), told apart from a finding.
    (error: unknown) => {
      process.stderr.write(`fuzz: the fuzzer failed: ${error instanceof Error ? error.stack : String(error)}\n`);
      process.exit(2);
    },
  );
}
