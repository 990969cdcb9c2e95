/**
 * The running kernel, probed rather than guessed: tiny programs loaded into its verifier once, the
 * answers kept as ProbedKernelFacts under the user's cache directory, keyed by the kernel's GNU
 * build-id (two builds that both call themselves 6.18.44 were seen to differ in private stacks).
 *
 *   private stack, per program type x expected attach type x sleepable:
 *       main writes fp-248 and calls a static subprog writing fp-264: accepted = private stack,
 *       "combined stack size of 2 calls is 528" = shared
 *   rounding:   main 264 -> sub 240 (socket filter): 272+240 = 512 passes with 16-byte rounding,
 *               288+256 = 544 fails with 32
 *   frames:     a 9-frame static chain: accepted = 16-frame limit, "9 frames is too deep" = 8
 *   tail calls: main calls a subprog that tail-calls: accepted, or "tail_calls are not allowed in
 *               programs with bpf-to-bpf calls"
 *   async roots: main 264 arms a timer whose callback writes fp-480: accepted = the callback is a
 *               root of its own, "combined stack size of 2 calls" = it adds to main's chain
 *
 * and read, not loaded: __BPF_FUNC_MAX_ID of enum bpf_func_id in the kernel's own BTF
 * (/sys/kernel/btf/vmlinux), the first helper id it does not have.
 *
 * EPERM (a sandbox gate in front of tracing loads, or no privilege) and loads that fail for any other
 * reason leave the fact unknown, never "rejected": the release's rule then stands and the verdict
 * says what it assumed.
 *
 * This is I/O at the edge: it spawns a C compiler once (the loader's binary is cached by source hash)
 * and the loader; nothing here throws.
 */
import { type SpawnSyncReturns, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import * as path from 'node:path';
import { readBtf } from '../object/btf';
import { type ProbedKernelFacts, privateStackKey } from '../rules/kernelProfile';
import { defaultCacheDir } from '../source/headerIndex';
import { PROBE_LOADER_SOURCE } from './probeLoader';

/** Bumped when the probes or their reading change, so old cached profiles are not trusted. */
const PROBE_FORMAT = 4;

export interface ProbeOutcome {
  facts?: ProbedKernelFacts;
  /** Why the kernel could not be probed (no bpf(), no compiler, not Linux). */
  reason?: string;
  /** Probe results as the loader printed them, for the test and for `--verbose` users. */
  raw?: Record<string, string>;
  fromCache?: boolean;
}

// ---- /sys/kernel/notes --------------------------------------------------------------------------

/**
 * The GNU build-id from a sequence of ELF notes, as /sys/kernel/notes holds them:
 *   u32 namesz, u32 descsz, u32 type, name (padded to 4), desc (padded to 4); type 3 = NT_GNU_BUILD_ID.
 */
export function gnuBuildId(notes: Uint8Array): string | undefined {
  const view = new DataView(notes.buffer, notes.byteOffset, notes.byteLength);
  let at = 0;
  while (at + 12 <= notes.byteLength) {
    const nameSize = view.getUint32(at, true);
    const descSize = view.getUint32(at + 4, true);
    const type = view.getUint32(at + 8, true);
    const nameAt = at + 12;
    const descAt = nameAt + align4(nameSize);
    if (descAt + descSize > notes.byteLength) return undefined;
    const name = new TextDecoder().decode(notes.subarray(nameAt, nameAt + Math.max(0, nameSize - 1)));
    if (type === 3 && name === 'GNU') return Buffer.from(notes.subarray(descAt, descAt + descSize)).toString('hex');
    at = descAt + align4(descSize);
  }
  return undefined;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

export function runningKernelBuildId(): string | undefined {
  try {
    return gnuBuildId(new Uint8Array(readFileSync('/sys/kernel/notes')));
  } catch {
    return undefined;
  }
}

// ---- the probe programs -------------------------------------------------------------------------

/** One BPF instruction, little-endian: opcode, dst | src << 4, off, imm. */
function insn(opcode: number, dst: number, src: number, off: number, imm: number): string {
  const bytes = Buffer.alloc(8);
  bytes.writeUInt8(opcode, 0);
  bytes.writeUInt8((src << 4) | dst, 1);
  bytes.writeInt16LE(off, 2);
  bytes.writeInt32LE(imm, 4);
  return bytes.toString('hex');
}
const movR0Zero = insn(0xb7, 0, 0, 0, 0);
const movR1Zero = insn(0xb7, 1, 0, 0, 0);
const exit = insn(0x95, 0, 0, 0, 0);
const storeR1At = (offset: number) => insn(0x7b, 10, 1, offset, 0);
/** A bpf2bpf call (BPF_PSEUDO_CALL) to the instruction at pc + imm + 1. */
const pseudoCall = (imm: number) => insn(0x85, 0, 1, 0, imm);

/** main writes fp-mainDepth, calls sub, which writes fp-subDepth: 9 instructions. */
function mainCallsSub(mainDepth: number, subDepth: number): string {
  return [movR1Zero, storeR1At(-mainDepth), pseudoCall(2), movR0Zero, exit, movR1Zero, storeR1At(-subDepth), movR0Zero, exit].join('');
}

/** f0 -> f1 -> ... -> f(frames-1), static calls only. */
function staticChain(frames: number): string {
  const code: string[] = [];
  for (let index = 0; index + 1 < frames; index++) code.push(pseudoCall(2), movR0Zero, exit);
  code.push(movR0Zero, exit);
  return code.join('');
}

/** A BTF blob (header, types as 32-bit words, strings) and func_info records {insn_off, type_id}. */
function btfBlob(strings: string, words: number[], funcInfo: [number, number][]): { btf: string; funcInfo: string } {
  const stringBytes = Buffer.from(strings);
  const types = Buffer.alloc(words.length * 4);
  words.forEach((word, index) => types.writeUInt32LE(word >>> 0, index * 4));
  const header = Buffer.alloc(24);
  header.writeUInt16LE(0xeb9f, 0);
  header.writeUInt8(1, 2);
  header.writeUInt32LE(24, 4);
  header.writeUInt32LE(0, 8);
  header.writeUInt32LE(types.length, 12);
  header.writeUInt32LE(types.length, 16);
  header.writeUInt32LE(stringBytes.length, 20);
  const records = Buffer.alloc(funcInfo.length * 8);
  funcInfo.forEach(([insnOffset, typeId], index) => {
    records.writeUInt32LE(insnOffset, index * 8);
    records.writeUInt32LE(typeId, index * 8 + 4);
  });
  return { btf: [header, types, stringBytes].map((part) => part.toString('hex')).join(''), funcInfo: records.toString('hex') };
}

/**
 * The program BTF a tail call in a subprogram needs (check_abnormal_return: "tail_call is not allowed
 * in subprogs without BTF"): int, a prototype "int (void)", and FUNCs main and sub at 0 and `subAt`.
 */
function twoFunctionBtf(subAt: number): { btf: string; funcInfo: string } {
  const words = [
    1,
    0x01000000,
    4,
    0x01000020, // [1] INT "int": 4 bytes, signed, 32 bits
    0,
    0x0d000000,
    1, // [2] FUNC_PROTO returning int, no parameters
    5,
    0x0c000000,
    2, // [3] FUNC "main" (static)
    10,
    0x0c000000,
    2, // [4] FUNC "sub" (static)
  ];
  return btfBlob('\0int\0main\0sub\0', words, [
    [0, 3],
    [subAt, 4],
  ]);
}

/**
 * The timer probe's BTF: [1] int (the map's key), [2] struct bpf_timer (16 bytes), [3] struct val
 * { struct bpf_timer t; } (the map's value, as the loader expects), [4] int (void), [5] main, [6] cb.
 */
function timerBtf(callbackAt: number): { btf: string; funcInfo: string } {
  const words = [
    1,
    0x01000000,
    4,
    0x01000020, // [1] INT "int"
    5,
    0x04000000,
    16, // [2] STRUCT "bpf_timer", 16 bytes, no members described
    15,
    0x04000001,
    16,
    19,
    2,
    0, // [3] STRUCT "val" { "t": type 2 at bit 0 }
    0,
    0x0d000000,
    1, // [4] FUNC_PROTO int (void)
    21,
    0x0c000000,
    4, // [5] FUNC "main"
    26,
    0x0c000000,
    4, // [6] FUNC "cb"
  ];
  return btfBlob('\0int\0bpf_timer\0val\0t\0main\0cb\0', words, [
    [0, 5],
    [callbackAt, 6],
  ]);
}

/**
 * main (264 bytes) arms a timer whose callback writes fp-480. As roots of their own they load; added
 * to main's chain (kernels before the 6.5 fix) they are 272 + 480 = 752 bytes, over 512.
 */
function timerCallbackProgram(): string {
  const loadTimerMap = (dst: number) => insn(0x18, dst, 1, 0, -2) + insn(0, 0, 0, 0, 0);
  return [
    movR1Zero,
    insn(0x63, 10, 1, -4, 0), // *(u32 *)(r10 - 4) = r1: the key
    storeR1At(-264),
    insn(0xbf, 2, 10, 0, 0), // r2 = r10
    insn(0x07, 2, 0, 0, -4), // r2 += -4
    loadTimerMap(1),
    insn(0x85, 0, 0, 0, 1), // bpf_map_lookup_elem
    insn(0x15, 0, 0, 10, 0), // if r0 == 0 goto exit
    insn(0xbf, 6, 0, 0, 0), // r6 = r0
    insn(0xbf, 1, 6, 0, 0), // r1 = r6
    loadTimerMap(2),
    insn(0xb7, 3, 0, 0, 0), // r3 = 0
    insn(0x85, 0, 0, 0, 169), // bpf_timer_init
    insn(0xbf, 1, 6, 0, 0), // r1 = r6
    insn(0x18, 2, 4, 0, 4) + insn(0, 0, 0, 0, 0), // r2 = cb (BPF_PSEUDO_FUNC, instruction 21)
    insn(0x85, 0, 0, 0, 170), // bpf_timer_set_callback
    movR0Zero,
    exit,
    movR1Zero, // cb:
    storeR1At(-480),
    movR0Zero,
    exit,
  ].join('');
}

/** main calls sub, sub tail-calls through a prog array (the loader puts its fd where imm is -1). */
function callThenTailCall(): string {
  const loadMap = insn(0x18, 2, 1, 0, -1) + insn(0, 0, 0, 0, 0);
  return [pseudoCall(2), movR0Zero, exit, loadMap, insn(0xb7, 3, 0, 0, 0), insn(0x85, 0, 0, 0, 12), movR0Zero, exit].join('');
}

const PROG_TYPE = { socket_filter: 1, kprobe: 2, tracepoint: 5, perf_event: 7, raw_tracepoint: 17, raw_tracepoint_writable: 24, tracing: 26, lsm: 29 } as const;
const ATTACH_TYPE: Record<string, number> = {
  none: 0,
  trace_raw_tp: 23,
  trace_fentry: 24,
  trace_fexit: 25,
  modify_return: 26,
  lsm_mac: 27,
  trace_iter: 28,
  trace_kprobe_multi: 42,
  trace_uprobe_multi: 48,
  trace_kprobe_session: 56,
  trace_uprobe_session: 57,
};
const BPF_F_SLEEPABLE = 1 << 4;

interface PrivateStackProbe {
  type: keyof typeof PROG_TYPE;
  expectedAttachType: string;
  sleepable: boolean;
  /** The vmlinux BTF type the kernel needs as attach target (tracing and lsm). */
  target?: string;
}

/** The program kinds whose private-stack choice is probed: every kind a SEC name maps to that any kernel gives one. */
const PRIVATE_STACK_PROBES: PrivateStackProbe[] = [
  { type: 'kprobe', expectedAttachType: 'none', sleepable: false },
  { type: 'kprobe', expectedAttachType: 'none', sleepable: true },
  { type: 'kprobe', expectedAttachType: 'trace_kprobe_multi', sleepable: false },
  { type: 'kprobe', expectedAttachType: 'trace_kprobe_session', sleepable: false },
  { type: 'kprobe', expectedAttachType: 'trace_uprobe_multi', sleepable: false },
  { type: 'kprobe', expectedAttachType: 'trace_uprobe_session', sleepable: false },
  { type: 'tracepoint', expectedAttachType: 'none', sleepable: false },
  { type: 'perf_event', expectedAttachType: 'none', sleepable: false },
  { type: 'raw_tracepoint', expectedAttachType: 'none', sleepable: false },
  { type: 'raw_tracepoint_writable', expectedAttachType: 'none', sleepable: false },
  { type: 'tracing', expectedAttachType: 'trace_raw_tp', sleepable: false, target: 'btf_trace_sched_switch' },
  { type: 'tracing', expectedAttachType: 'trace_fentry', sleepable: false, target: 'bpf_fentry_test1' },
  { type: 'tracing', expectedAttachType: 'trace_fexit', sleepable: false, target: 'bpf_fentry_test1' },
  { type: 'tracing', expectedAttachType: 'modify_return', sleepable: false, target: 'bpf_modify_return_test' },
  { type: 'tracing', expectedAttachType: 'trace_iter', sleepable: false, target: 'bpf_iter_task' },
  { type: 'lsm', expectedAttachType: 'lsm_mac', sleepable: false, target: 'bpf_lsm_file_open' },
];

/** What the running kernel's own BTF says, read once per probe. */
interface VmlinuxFacts {
  /** The attach targets' BTF ids, by name (a typedef for tp_btf, functions otherwise). */
  targets: Map<string, number>;
  /** __BPF_FUNC_MAX_ID of enum bpf_func_id: one more than the highest helper id the kernel has. */
  bpfFuncMaxId?: number;
}

function readVmlinuxFacts(): VmlinuxFacts {
  const names = new Set(PRIVATE_STACK_PROBES.flatMap((probe) => (probe.target ? [probe.target] : [])));
  const facts: VmlinuxFacts = { targets: new Map() };
  try {
    const bytes = readFileSync('/sys/kernel/btf/vmlinux');
    const { btf } = readBtf(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), true);
    for (const type of btf?.types ?? []) {
      if (names.has(type.name) && (type.kind === 'func' || type.kind === 'typedef') && !facts.targets.has(type.name)) facts.targets.set(type.name, type.id);
      if (type.kind === 'enum' && type.name === 'bpf_func_id') {
        const limit = type.enumValues?.find((value) => value.name === '__BPF_FUNC_MAX_ID')?.value;
        if (limit !== undefined) facts.bpfFuncMaxId = Number(limit);
      }
    }
  } catch {
    // No vmlinux BTF: the tracing probes are left out and their facts stay unknown.
  }
  return facts;
}

interface ProbeLine {
  name: string;
  line: string;
}

function probeLines(targets: Map<string, number>): ProbeLine[] {
  const lines: ProbeLine[] = [];
  const add = (name: string, type: number, attach: number, flags: number, btfId: number, code: string, btf?: { btf: string; funcInfo: string }) =>
    lines.push({ name, line: `${name} ${type} ${attach} ${flags} ${btfId} ${code}${btf ? ` ${btf.btf} ${btf.funcInfo}` : ''}` });
  for (const probe of PRIVATE_STACK_PROBES) {
    const btfId = probe.target ? targets.get(probe.target) : 0;
    if (btfId === undefined) continue;
    const key = privateStackKey({ type: probe.type, expectedAttachType: probe.expectedAttachType, sleepable: probe.sleepable });
    add(`private:${key}`, PROG_TYPE[probe.type], ATTACH_TYPE[probe.expectedAttachType], probe.sleepable ? BPF_F_SLEEPABLE : 0, btfId, mainCallsSub(248, 264));
  }
  add('rounding', PROG_TYPE.socket_filter, 0, 0, 0, mainCallsSub(264, 240));
  add('frames', PROG_TYPE.socket_filter, 0, 0, 0, staticChain(9));
  add('tailcalls', PROG_TYPE.socket_filter, 0, 0, 0, callThenTailCall(), twoFunctionBtf(3));
  add('asyncroots', PROG_TYPE.socket_filter, 0, 0, 0, timerCallbackProgram(), timerBtf(21));
  return lines;
}

/** Reads the loader's answers into facts; anything but a clear accept or the expected error is unknown. */
export function factsFromAnswers(answers: Record<string, string>, buildId: string, kernelRelease: string, bpfFuncMaxId?: number): ProbedKernelFacts {
  const verdict = (name: string, rejectedWith: RegExp): boolean | undefined => {
    const answer = answers[name];
    if (answer === 'ok') return true;
    if (answer?.startsWith('rejected ') && rejectedWith.test(answer)) return false;
    return undefined;
  };
  const privateStack: Record<string, boolean> = {};
  for (const [name] of Object.entries(answers)) {
    if (!name.startsWith('private:')) continue;
    const result = verdict(name, /combined stack size of 2 calls is 528/);
    if (result !== undefined) privateStack[name.slice('private:'.length)] = result;
  }
  const rounding = verdict('rounding', /combined stack size of 2 calls is 544/);
  const frames = verdict('frames', /call stack of 9 frames is too deep/);
  const tailCalls = verdict('tailcalls', /tail_calls are not allowed in (non-JITed )?programs with bpf-to-bpf calls/);
  const asyncRoots = verdict('asyncroots', /combined stack size of 2 calls is/);
  return {
    buildId,
    release: kernelRelease,
    privateStack,
    ...(rounding === undefined ? {} : { sixteenByteRounding: rounding }),
    ...(frames === undefined ? {} : { maxCallFrames: frames ? 16 : 8 }),
    ...(tailCalls === undefined ? {} : { tailCallsWithCalls: tailCalls }),
    ...(asyncRoots === undefined ? {} : { asyncCallbacksAreRoots: asyncRoots }),
    ...(bpfFuncMaxId === undefined ? {} : { bpfFuncMaxId }),
  };
}

function parseAnswers(stdout: string): Record<string, string> {
  const answers: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const space = line.indexOf(' ');
    if (space > 0) answers[line.slice(0, space)] = line.slice(space + 1);
  }
  return answers;
}

// ---- the loader binary and the cache ------------------------------------------------------------

function probeCacheDir(): string {
  return path.join(defaultCacheDir(), 'kernel-probe');
}

function cachedFactsPath(buildId: string): string {
  return path.join(probeCacheDir(), `${buildId}-v${PROBE_FORMAT}.json`);
}

/**
 * A C compiler by absolute path from the standard system directories only: never through a PATH
 * entry, which may be "." or empty and so name a file in the user's workspace.
 */
function systemCompiler(): string | undefined {
  for (const directory of ['/usr/bin', '/usr/local/bin', '/bin']) {
    for (const name of ['cc', 'gcc', 'clang']) {
      const candidate = path.join(directory, name);
      if (existsSync(candidate)) return candidate;
    }
  }
  return undefined;
}

function loaderPath(): string {
  const hash = createHash('sha256').update(PROBE_LOADER_SOURCE).digest('hex').slice(0, 16);
  return path.join(probeCacheDir(), `probe-loader-${hash}`);
}

/** The loader's binary, built on first use; or why it cannot be. */
function ensureLoaderSync(): { path?: string; reason?: string } {
  const binary = loaderPath();
  if (existsSync(binary)) return { path: binary };
  const compiler = systemCompiler();
  if (!compiler) return { reason: 'no C compiler in /usr/bin to build the probe loader' };
  try {
    mkdirSync(probeCacheDir(), { recursive: true });
    const source = `${binary}.${process.pid}.c`;
    const partial = `${binary}.${process.pid}.tmp`;
    writeFileSync(source, PROBE_LOADER_SOURCE);
    const build = spawnSync(compiler, ['-O2', '-o', partial, source], { encoding: 'utf8', timeout: 60_000 });
    rmSync(source, { force: true });
    if (build.status !== 0) return { reason: `the probe loader did not build: ${(build.stderr || build.error?.message || '').trim().split('\n')[0]}` };
    // Built beside the final name and renamed: a concurrent run sees nothing or a whole binary.
    renameSync(partial, binary);
    return { path: binary };
  } catch (error) {
    return { reason: `the probe loader did not build: ${String(error)}` };
  }
}

function readCache(buildId: string): ProbedKernelFacts | undefined {
  try {
    const facts = JSON.parse(readFileSync(cachedFactsPath(buildId), 'utf8')) as ProbedKernelFacts;
    return facts.buildId === buildId && typeof facts.privateStack === 'object' ? facts : undefined;
  } catch {
    return undefined;
  }
}

function writeCache(facts: ProbedKernelFacts): void {
  try {
    mkdirSync(probeCacheDir(), { recursive: true });
    const file = cachedFactsPath(facts.buildId);
    writeFileSync(`${file}.${process.pid}`, `${JSON.stringify(facts, null, 2)}\n`);
    renameSync(`${file}.${process.pid}`, file);
  } catch {
    // An unwritable cache only means probing again next time.
  }
}

function outcomeOf(run: Pick<SpawnSyncReturns<string>, 'status' | 'stdout' | 'stderr' | 'error'>, buildId: string, vmlinux: VmlinuxFacts): ProbeOutcome {
  if (run.error || run.status !== 0) return { reason: `the probe loader failed: ${run.error?.message ?? run.stderr.trim()}` };
  const answers = parseAnswers(run.stdout);
  // bpf() itself refused (no privilege): even the socket-filter probes got EPERM or EACCES.
  if (['rounding', 'frames', 'tailcalls'].every((name) => /^errno (1|13)$/.test(answers[name] ?? ''))) {
    return { reason: 'bpf() is not allowed for this user (EPERM); run as root or with CAP_BPF to probe the kernel', raw: answers };
  }
  const facts = factsFromAnswers(answers, buildId, release(), vmlinux.bpfFuncMaxId);
  writeCache(facts);
  return { facts, raw: answers };
}

function preconditions(): { buildId?: string; reason?: string } {
  if (process.platform !== 'linux') return { reason: 'not running on Linux' };
  const buildId = runningKernelBuildId();
  if (!buildId) return { reason: 'cannot read the kernel build-id from /sys/kernel/notes' };
  return { buildId };
}

/** The probed facts of the running kernel: from the cache, or by probing now (blocking; for the CLI). */
export function probeRunningKernelSync(options: { useCache?: boolean } = {}): ProbeOutcome {
  const { buildId, reason } = preconditions();
  if (!buildId) return { reason };
  if (options.useCache !== false) {
    const cached = readCache(buildId);
    if (cached) return { facts: cached, fromCache: true };
  }
  const loader = ensureLoaderSync();
  if (!loader.path) return { reason: loader.reason };
  const vmlinux = readVmlinuxFacts();
  const input = probeLines(vmlinux.targets)
    .map((probe) => probe.line)
    .join('\n');
  const run = spawnSync(loader.path, [], { input: `${input}\n`, encoding: 'utf8', timeout: 30_000 });
  return outcomeOf(run, buildId, vmlinux);
}

/** The cached facts only: never loads anything (for callers that must not wait). */
export function cachedRunningKernelFacts(): ProbedKernelFacts | undefined {
  const { buildId } = preconditions();
  return buildId ? readCache(buildId) : undefined;
}

/**
 * Probes without blocking the caller's thread for the loads (for the language server): the loader
 * runs as a child process. Building the loader the first time is a short blocking compile.
 */
export function probeRunningKernel(): Promise<ProbeOutcome> {
  const { buildId, reason } = preconditions();
  if (!buildId) return Promise.resolve({ reason });
  const cached = readCache(buildId);
  if (cached) return Promise.resolve({ facts: cached, fromCache: true });
  const loader = ensureLoaderSync();
  if (!loader.path) return Promise.resolve({ reason: loader.reason });
  const loaderBinary = loader.path;
  const vmlinux = readVmlinuxFacts();
  return new Promise((resolve) => {
    const child = spawn(loaderBinary, [], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill(), 30_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ reason: `the probe loader failed: ${error.message}` });
    });
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve(outcomeOf({ status, stdout, stderr, error: undefined }, buildId, vmlinux));
    });
    child.stdin.end(
      `${probeLines(vmlinux.targets)
        .map((probe) => probe.line)
        .join('\n')}\n`,
    );
  });
}
