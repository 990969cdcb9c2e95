/**
 * The kernel lab: real Debian kernels booted under QEMU to ask their verifiers about BPF objects.
 * A kernel is fetched by its exact package name (scripts/debian-fetch.sh, private apt state), its
 * vmlinuz cached under .cache/kernels; the objects go into an initramfs with busybox and a static
 * build of test/kernel/verifier-probe.c, which loads every program alone at log level 4 and prints
 * one JSON line per program on the serial console. One boot per kernel judges all the objects.
 *
 * TCG, not KVM: on these machines -enable-kvm hangs at boot and -cpu host aborts on an MSR.
 * Every failure is one line naming what is missing (qemu, a package, a panic, a timeout).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { readVerifierLog } from './verifierLog';

export interface LabKernel {
  /** major.minor, what `--kernel 6.1` names. */
  label: string;
  /** The exact Debian package holding the image; names change with point releases, so they are pinned. */
  package: string;
}

/**
 * The default lab, by exact package name (see kernel-lab notes): one kernel per behaviour the
 * profiles tell apart. From 7.x the image is in linux-binary-* (linux-image-* is a meta package).
 */
export const LAB_KERNELS: readonly LabKernel[] = [
  { label: '5.10', package: 'linux-image-5.10.0-32-amd64' },
  { label: '6.1', package: 'linux-image-6.1.0-47-amd64' },
  { label: '6.12', package: 'linux-image-6.12.107+deb13-amd64' },
  { label: '7.2', package: 'linux-binary-7.2.13+deb14-amd64' },
  { label: '7.3', package: 'linux-binary-7.3-amd64' },
];

export class LabError extends Error {
  override name = 'LabError';
}

export interface LabOptions {
  /** The repository (or installed package) root: holds scripts/ and test/kernel/verifier-probe.c. */
  root: string;
  /** Where fetched kernels and built loaders are kept; default ROOT/.cache. */
  cacheDir?: string;
  /** One-line progress messages ("fetching linux-image-...", "booting 6.1.170: 12/70"). */
  progress?: (message: string) => void;
  signal?: AbortSignal;
}

export interface FetchedKernel {
  kernel: LabKernel;
  vmlinuz: string;
  /** The upstream release the package carries: "6.1.170", "7.3-rc7". */
  release: string;
  /** The Debian package version: "6.1.170-3". */
  packageVersion: string;
  /** Whether it came from .cache/kernels without fetching. */
  cached: boolean;
}

/** "6.1.170-3" → "6.1.170"; "7.3~rc7-1~exp1" → "7.3-rc7". */
export function upstreamRelease(packageVersion: string): string {
  const withoutEpoch = packageVersion.replace(/^\d+:/, '');
  const dash = withoutEpoch.lastIndexOf('-');
  return (dash > 0 ? withoutEpoch.slice(0, dash) : withoutEpoch).replace(/~/g, '-');
}

/** The lab kernel a `--kernel` value names: its label ("6.1"), release ("6.1.170") or package. */
export function findLabKernel(name: string, releases: ReadonlyMap<string, string> = new Map()): LabKernel | undefined {
  return LAB_KERNELS.find((kernel) => kernel.label === name || kernel.package === name || releases.get(kernel.package) === name);
}

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], options: { cwd?: string; signal?: AbortSignal; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const abort = (): void => {
      child.kill('SIGTERM');
    };
    options.signal?.addEventListener('abort', abort, { once: true });
    child.on('error', (error: NodeJS.ErrnoException) => {
      options.signal?.removeEventListener('abort', abort);
      reject(error.code === 'ENOENT' ? new LabError(`${command} is not installed`) : error);
    });
    child.on('close', (code) => {
      options.signal?.removeEventListener('abort', abort);
      if (options.signal?.aborted) reject(new LabError('cancelled'));
      else resolvePromise({ code, stdout, stderr });
    });
  });
}

function cacheOf(options: LabOptions): string {
  return options.cacheDir ?? join(options.root, '.cache');
}

/** Writes through a temporary name, so a concurrent or interrupted run never sees half a file. */
export function writeAtomically(path: string, data: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const partial = `${path}.${process.pid}.tmp`;
  writeFileSync(partial, data);
  renameSync(partial, path);
}

/** Where fetched kernels are kept: CACHE/kernels/PACKAGE/. */
export function kernelCacheFolder(kernel: LabKernel, options: LabOptions): string {
  return join(cacheOf(options), 'kernels', kernel.package);
}

/** The kernel as an earlier fetch left it in the cache, or undefined when using it means fetching it. */
export function cachedKernel(kernel: LabKernel, options: LabOptions): FetchedKernel | undefined {
  const folder = kernelCacheFolder(kernel, options);
  const vmlinuz = join(folder, 'vmlinuz');
  const versionFile = join(folder, 'package-version');
  if (!existsSync(vmlinuz) || !existsSync(versionFile)) return undefined;
  const packageVersion = readFileSync(versionFile, 'utf8').trim();
  return { kernel, vmlinuz, release: upstreamRelease(packageVersion), packageVersion, cached: true };
}

/**
 * The kernel's vmlinuz, from .cache/kernels/PACKAGE/ or fetched and extracted there. Throws a
 * LabError naming the package when the archive no longer has it.
 */
export async function fetchKernel(kernel: LabKernel, options: LabOptions): Promise<FetchedKernel> {
  const cached = cachedKernel(kernel, options);
  if (cached) return cached;
  const folder = kernelCacheFolder(kernel, options);
  const vmlinuz = join(folder, 'vmlinuz');
  const versionFile = join(folder, 'package-version');
  options.progress?.(`fetching ${kernel.package}`);
  const fetch = await run('bash', [join(options.root, 'scripts', 'debian-fetch.sh'), kernel.package], { cwd: options.root, signal: options.signal });
  if (fetch.code !== 0) {
    const said = fetch.stderr.trim().split('\n').filter(Boolean).pop() ?? `exit ${fetch.code}`;
    throw new LabError(`cannot fetch kernel package ${kernel.package}: ${said.replace(/^debian-fetch: /, '')}`);
  }
  const deb = fetch.stdout.trim().split('\n').pop() ?? '';
  const match = /_([^_]+)_(?:amd64|all)\.deb$/.exec(basename(deb));
  if (!match) throw new LabError(`debian-fetch.sh printed no .deb for ${kernel.package}: ${fetch.stdout.trim()}`);
  const packageVersion = decodeURIComponent(match[1]);
  // linux-image-* has boot/vmlinuz-*; linux-binary-* (7.x) has usr/lib/modules/<release>/vmlinuz.
  const pattern = kernel.package.startsWith('linux-binary-') ? 'usr/lib/modules/*/vmlinuz' : 'boot/vmlinuz-*';
  mkdirSync(folder, { recursive: true });
  const partial = `${vmlinuz}.${process.pid}.tmp`;
  const raw = await run(
    'bash',
    ['-c', 'set -o pipefail; dpkg-deb --fsys-tarfile "$1" | tar -x -O --wildcards --no-anchored "$2" > "$3"', 'extract', deb, pattern, partial],
    { signal: options.signal },
  );
  if (raw.code !== 0 || !existsSync(partial) || statSync(partial).size < 1024 * 1024) {
    rmSync(partial, { force: true });
    throw new LabError(`could not extract ${pattern} from ${basename(deb)}: ${raw.stderr.trim()}`);
  }
  renameSync(partial, vmlinuz);
  writeAtomically(versionFile, `${packageVersion}\n`);
  return { kernel, vmlinuz, release: upstreamRelease(packageVersion), packageVersion, cached: false };
}

/** The static loader for the VMs, built once per source version into CACHE/lab/. */
export async function buildLoader(options: LabOptions): Promise<string> {
  const source = join(options.root, 'test', 'kernel', 'verifier-probe.c');
  if (!existsSync(source)) throw new LabError(`the loader's source is missing: ${source}`);
  const command = ['-O2', '-static', '-o'];
  const libraries = ['-lbpf', '-lelf', '-lz'];
  const hash = createHash('sha256').update(readFileSync(source, 'utf8')).update(command.concat(libraries).join(' ')).digest('hex').slice(0, 16);
  const binary = join(cacheOf(options), 'lab', `loader-${hash}`);
  if (existsSync(binary)) return binary;
  mkdirSync(dirname(binary), { recursive: true });
  const partial = `${binary}.${process.pid}.tmp`;
  const build = await run('cc', [...command, partial, source, ...libraries], { signal: options.signal });
  if (build.code !== 0) {
    rmSync(partial, { force: true });
    const said = build.stderr.trim().split('\n').slice(-2).join(' ');
    throw new LabError(`the static loader does not build (needs libbpf-dev, libelf-dev, zlib1g-dev): ${said}`);
  }
  renameSync(partial, binary);
  return binary;
}

const BUSYBOX_CANDIDATES = ['/bin/busybox', '/usr/bin/busybox'];

/*
 * The VM's /init. Debian's virtio and disk drivers are modules, so everything lives in the
 * initramfs. There is no /dev/console node in it (making one needs root), so the console is opened
 * from devtmpfs; printk is turned down so kernel messages do not interleave with the results.
 * poweroff does not wait for the serial port to send what its driver still holds (a page): the last
 * result line and "@bsl-done" were cut off under load. 8 KiB of empty lines after them are what is
 * lost instead.
 */
const INIT_SCRIPT = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp
/bin/busybox mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
echo 1 > /proc/sys/kernel/printk
echo "@bsl-kernel $(/bin/busybox cat /proc/version)"
cd /objects
/loader --json $(/bin/busybox cat /loader-options) $(/bin/busybox ls) 2>/dev/null
/bin/busybox yes '' | /bin/busybox head -n 8192
/bin/busybox sync
/bin/busybox poweroff -f
`;

/** A program of an object the loader is to load as another section's program type and attach type. */
export interface SectionOverride {
  object: string;
  program: string;
  section: string;
}

/**
 * A cpio initramfs with busybox, the loader, its options and the objects (renamed N.o; `names` maps
 * them back).
 */
async function buildInitramfs(
  loader: string,
  objects: readonly string[],
  options: BootOptions,
): Promise<{ path: string; scratch: string; names: Map<string, string> }> {
  const busybox = BUSYBOX_CANDIDATES.find((candidate) => existsSync(candidate));
  if (!busybox) throw new LabError('busybox is not installed (apt-get install busybox-static)');
  // The VM has no libraries: a dynamically linked busybox (Debian's busybox package) cannot run there.
  const busyboxCheck = await run('file', ['-L', busybox]).catch(() => undefined);
  if (busyboxCheck?.code === 0 && /dynamically linked/.test(busyboxCheck.stdout)) {
    throw new LabError(`${busybox} is dynamically linked; the VM needs a static one (apt-get install busybox-static)`);
  }
  const scratch = mkdtempSync(join(tmpdir(), 'bpf-stack-lens-lab-'));
  const tree = join(scratch, 'root');
  mkdirSync(join(tree, 'bin'), { recursive: true });
  mkdirSync(join(tree, 'objects'), { recursive: true });
  copyFileSync(busybox, join(tree, 'bin', 'busybox'));
  copyFileSync(loader, join(tree, 'loader'));
  chmodSync(join(tree, 'bin', 'busybox'), 0o755);
  chmodSync(join(tree, 'loader'), 0o755);
  writeFileSync(join(tree, 'init'), INIT_SCRIPT, { mode: 0o755 });
  const names = new Map<string, string>();
  const inVm = new Map<string, string>();
  objects.forEach((object, index) => {
    const name = `${String(index).padStart(4, '0')}.o`;
    names.set(name, object);
    inVm.set(object, name);
    copyFileSync(object, join(tree, 'objects', name));
  });
  const loaderOptions: string[] = [];
  if (options.programTimeoutSeconds !== undefined) loaderOptions.push('--timeout', String(options.programTimeoutSeconds));
  const overrides = (options.sections ?? []).flatMap((override) => {
    const name = inVm.get(resolve(override.object));
    return name === undefined ? [] : [`${name}\t${override.program}\t${override.section}\n`];
  });
  if (overrides.length > 0) {
    writeFileSync(join(tree, 'sections.tsv'), overrides.join(''));
    loaderOptions.push('--sections', '/sections.tsv');
  }
  writeFileSync(join(tree, 'loader-options'), `${loaderOptions.join(' ')}\n`);
  const path = join(scratch, 'initrd.cpio');
  const pack = await run('bash', ['-c', 'cd "$1" && find . | cpio -o -H newc --quiet > "$2"', 'pack', tree, path], { signal: options.signal });
  if (pack.code !== 0) {
    rmSync(scratch, { recursive: true, force: true });
    throw new LabError(`cannot pack the initramfs (apt-get install cpio): ${pack.stderr.trim()}`);
  }
  return { path, scratch, names };
}

export type LabStatus = 'ok' | 'rejected' | 'error';

/** What one lab kernel's verifier said about one program. */
export interface LabVerdict {
  /** The object as the caller named it. */
  object: string;
  program: string;
  /** The program's ELF section, as libbpf named it. */
  section: string;
  /** ok = accepted; rejected = the verifier refused it (with a log); error = no verdict reached. */
  status: LabStatus;
  errno: number;
  /** The verifier's error line, for a rejected program. */
  error?: string;
  /** The `stack depth ...` line exactly as this kernel prints it. */
  stackDepthLine?: string;
  /** 7.3's per-subprogram `subprog N (...)` lines. */
  subprogramLines: string[];
  /** For status "error": the load was cut off after this many seconds (BootOptions.programTimeoutSeconds). */
  timedOut?: number;
  /**
   * What libbpf warned about while loading the program, one message a line ("libbpf: prog 'p':
   * failed to find kernel BTF type ID of 'f': -3"): why a load got no verdict, or that the kernel
   * refused the object's BTF and the program was loaded without it. Its copy of the verifier log is
   * left out (that is `log`).
   */
  loaderMessages: string[];
  log: string;
}

export interface LabBoot {
  fetched: FetchedKernel;
  /** /proc/version inside the VM. */
  procVersion: string;
  /**
   * __BPF_FUNC_MAX_ID of the kernel's enum bpf_func_id, read from its BTF by the loader: one more
   * than the highest helper id it knows. Absent when the kernel has no BTF.
   */
  bpfFuncMaxId?: number;
  verdicts: LabVerdict[];
  /** Wall time of the boot, fetching excluded. */
  bootSeconds: number;
}

export interface BootOptions extends LabOptions {
  /** Seconds before the VM is killed; default 90 + 3 per object (TCG on a loaded machine). */
  timeoutSeconds?: number;
  /**
   * Seconds without a line of the loader's (or, before it starts, of the boot) on the console before
   * the VM is taken as hung and killed; default none, only timeoutSeconds. With programTimeoutSeconds
   * this ends a VM stuck in one program long before a whole boot's allowance would. Kernel messages
   * (a soft-lockup warning repeats) do not count as life.
   */
  idleTimeoutSeconds?: number;
  /** Seconds after which the loader gives up on one program (status "error", `timedOut`); default none. */
  programTimeoutSeconds?: number;
  /** Programs to load as another section's type (objects written for another loader than libbpf). */
  sections?: readonly SectionOverride[];
  /** A progress line every this many programs; default 10, 0 for none. */
  progressEvery?: number;
  /** The QEMU to run: a path or a name on PATH; default DEFAULT_QEMU. */
  qemu?: string;
}

export const DEFAULT_QEMU = 'qemu-system-x86_64';

/**
 * Throws a LabError when `qemu` does not run, before a kernel is fetched for nothing: a missing
 * QEMU is the most common reason a lab kernel cannot answer.
 */
export async function checkQemu(qemu: string = DEFAULT_QEMU, signal?: AbortSignal): Promise<void> {
  const missing = `${qemu} is not installed (apt-get install qemu-system-x86)`;
  const version = await run(qemu, ['--version'], { signal }).catch((error: unknown) => {
    if (error instanceof LabError) throw error.message === 'cancelled' ? error : new LabError(missing);
    throw new LabError(`${qemu} does not run: ${error instanceof Error ? error.message : String(error)}`);
  });
  if (version.code !== 0) throw new LabError(`${qemu} does not run: ${version.stderr.trim().split('\n').pop() || `exit ${version.code}`}`);
}

/** Boots one lab kernel on all `objects` and returns every program's verdict. */
export async function bootKernel(fetched: FetchedKernel, objects: readonly string[], options: BootOptions): Promise<LabBoot> {
  const loader = await buildLoader(options);
  const absolute = objects.map((object) => resolve(object));
  const initramfs = await buildInitramfs(loader, absolute, options);
  const started = Date.now();
  try {
    const qemu = options.qemu || DEFAULT_QEMU;
    // no_timer_check: on a loaded host TCG's timer can miss the IO-APIC check at boot, and the kernel
    // panics ("IO-APIC + timer doesn't work!"; seen with 7.3 at a load of 15 on two cores).
    const args = [
      '-accel',
      'tcg',
      '-cpu',
      'max',
      '-m',
      '1G',
      '-smp',
      '1',
      '-nographic',
      '-nic',
      'none',
      '-no-reboot',
      '-kernel',
      fetched.vmlinuz,
      '-initrd',
      initramfs.path,
      '-append',
      'console=ttyS0 quiet panic=-1 no_timer_check',
    ];
    const timeout = options.timeoutSeconds ?? 90 + 3 * objects.length;
    const callerName = (name: string): string => initramfs.names.get(basename(name)) ?? name;
    const console = await runVm(qemu, args, timeout, fetched, callerName, options);
    const verdicts = console.results.map((result) => labVerdict(result, objects, (name) => absolute.indexOf(initramfs.names.get(basename(name)) ?? name)));
    const boot: LabBoot = { fetched, procVersion: console.procVersion, verdicts, bootSeconds: (Date.now() - started) / 1000 };
    if (console.bpfFuncMaxId !== undefined) boot.bpfFuncMaxId = console.bpfFuncMaxId;
    return boot;
  } finally {
    rmSync(initramfs.scratch, { recursive: true, force: true });
  }
}

/** One of the loader's JSON lines as a verdict; `indexOf` finds the caller's object for its name. */
function labVerdict(result: Record<string, unknown>, objects: readonly string[], indexOf: (name: string) => number): LabVerdict {
  const name = String(result.object);
  const log = typeof result.log === 'string' ? result.log : '';
  const facts = readVerifierLog(log);
  // The loader calls a log with a last line that is not statistics a rejection; it does not know
  // 7.2's "insns processed" line, so a program bpf_check refused before do_check (a log of statistics
  // alone, as 7.2 and 7.3 print for struct_ops they cannot attach) is "error" here, as on older kernels.
  const refusedBeforeCheck = result.status === 'rejected' && facts.lastMessage === undefined;
  const status: LabStatus = (result.status === 'ok' || result.status === 'rejected') && !refusedBeforeCheck ? result.status : 'error';
  const verdict: LabVerdict = {
    object: objects[indexOf(name)] ?? name,
    program: String(result.program ?? ''),
    section: String(result.section ?? ''),
    status,
    errno: Number(result.errno ?? 0),
    subprogramLines: facts.subprogramLines,
    loaderMessages: loaderMessagesOf(result),
    log,
  };
  if (facts.stackDepthLine !== undefined) verdict.stackDepthLine = facts.stackDepthLine;
  if (status === 'rejected' && facts.lastMessage !== undefined) verdict.error = facts.lastMessage;
  if (typeof result.timeout === 'number') verdict.timedOut = result.timeout;
  return verdict;
}

/* libbpf's routine words for a load that failed, which the verdict already says. */
const ROUTINE_LOADER_MESSAGE = /BPF program load failed|failed to load: -\d+$|failed to load (object|BPF skeleton)/;
const BTF_LOG_BEGIN = /-- BEGIN BTF LOAD LOG -+$/;
const BTF_LOG_END = /-- END BTF LOAD LOG -+$/;

/**
 * What of libbpf's messages (LabVerdict.loaderMessages) is news, one line each: a refused BTF, a
 * missing attach target; not "BPF program load failed: Permission denied", "failed to load: -13" or
 * "failed to load object '...'". The kernel's BTF log, which libbpf copies whole when the kernel
 * refuses the object's BTF (every type: about eighty lines for a small object), is its last line:
 * the type the kernel refused, and why.
 */
export function loaderNews(messages: readonly string[]): string[] {
  const news: string[] = [];
  // Inside the kernel's BTF log: its last line so far.
  let btfLogLast: string | undefined;
  const endBtfLog = () => news.push(`the kernel's BTF log ends: ${btfLogLast || '(empty)'}`);
  for (const message of messages.map((line) => line.trim())) {
    if (btfLogLast !== undefined) {
      if (!BTF_LOG_END.test(message)) btfLogLast = message;
      else {
        endBtfLog();
        btfLogLast = undefined;
      }
    } else if (BTF_LOG_BEGIN.test(message)) btfLogLast = '';
    else if (!ROUTINE_LOADER_MESSAGE.test(message)) news.push(message);
  }
  if (btfLogLast !== undefined) endBtfLog();
  return news;
}

/** The loader's "libbpf" field as lines (a loader built before it had none); a cut is said. */
function loaderMessagesOf(result: Record<string, unknown>): string[] {
  const lines = typeof result.libbpf === 'string' ? result.libbpf.split('\n').filter((line) => line.trim() !== '') : [];
  if (result.libbpfCut === true) lines.push('(libbpf said more; the loader keeps 8 KiB)');
  return lines;
}

/**
 * The same loader run on this machine's kernel: needs bpf() (root, or CAP_BPF and CAP_PERFMON).
 * Programs bpf() refuses before the verifier runs come back with status "error" and the errno.
 */
export async function verifyOnHost(objects: readonly string[], options: LabOptions): Promise<LabVerdict[]> {
  const loader = await buildLoader(options);
  const absolute = objects.map((object) => resolve(object));
  const result = await run(loader, ['--json', ...absolute], { signal: options.signal });
  const lines = result.stdout.split('\n').filter((line) => line.startsWith('@bsl {'));
  if (!result.stdout.includes('@bsl-done '))
    throw new LabError(`the loader stopped on this machine's kernel: ${result.stderr.trim().split('\n').pop() ?? `exit ${result.code}`}`);
  return lines.map((line) => labVerdict(JSON.parse(line.slice('@bsl '.length)) as Record<string, unknown>, objects, (name) => absolute.indexOf(name)));
}

interface ConsoleResults {
  procVersion: string;
  bpfFuncMaxId?: number;
  results: Record<string, unknown>[];
}

/** The loader's `@bsl-facts {...}` line: __BPF_FUNC_MAX_ID, or undefined when the kernel had no BTF. */
export function readKernelFacts(line: string): { bpfFuncMaxId?: number } {
  const facts = JSON.parse(line.slice('@bsl-facts '.length)) as { bpfFuncMaxId?: unknown };
  const maxId = Number(facts.bpfFuncMaxId);
  return Number.isInteger(maxId) && maxId > 0 ? { bpfFuncMaxId: maxId } : {};
}

/**
 * Runs the VM and reads the loader's lines off its console. `callerName` turns the loader's object
 * name (N.o) back into the caller's path, for a failure that names the program it stopped on.
 */
function runVm(
  qemu: string,
  args: string[],
  timeoutSeconds: number,
  fetched: FetchedKernel,
  callerName: (name: string) => string,
  options: BootOptions,
): Promise<ConsoleResults> {
  const name = `${fetched.release} (${fetched.kernel.package})`;
  return new Promise((resolvePromise, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(qemu, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (error) {
      reject(new LabError(`cannot start ${qemu}: ${error instanceof Error ? error.message : String(error)}`));
      return;
    }
    const results: Record<string, unknown>[] = [];
    let procVersion = '';
    let bpfFuncMaxId: number | undefined;
    let pending = '';
    let stderr = '';
    let tail: string[] = [];
    let done = false;
    let failure: LabError | undefined;
    // The program being loaded (from the loader's "@bsl-loading N.o PROG"), named when the VM stops in it.
    let loading: string | undefined;
    const where = (): string => (loading !== undefined ? `, while loading ${loading}` : procVersion === '' ? ', before its loader started' : '');
    const progressEvery = options.progressEvery ?? 10;
    const stop = (error?: LabError): void => {
      if (error && !failure) failure = error;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(
      () => stop(new LabError(`kernel ${name} timed out after ${timeoutSeconds} s under QEMU (${results.length} programs judged${where()})`)),
      timeoutSeconds * 1000,
    );
    let idleTimer: NodeJS.Timeout | undefined;
    const stillAlive = (): void => {
      if (options.idleTimeoutSeconds === undefined) return;
      clearTimeout(idleTimer);
      const idle = options.idleTimeoutSeconds;
      idleTimer = setTimeout(
        () => stop(new LabError(`kernel ${name} hung: nothing from its loader on the console for ${idle} s (${results.length} programs judged${where()})`)),
        idle * 1000,
      );
    };
    stillAlive();
    const abort = (): void => stop(new LabError('cancelled'));
    options.signal?.addEventListener('abort', abort, { once: true });
    const onLine = (raw: string): void => {
      // The console carries \r and terminal resets (ESC c) in front of the first line the VM prints.
      const cleaned = raw.replace(/\r/g, '');
      const marker = cleaned.indexOf('@bsl');
      const line = marker === -1 ? cleaned : cleaned.slice(marker);
      tail = [...tail.slice(-7), line];
      if (line.startsWith('@bsl')) stillAlive();
      if (line.startsWith('@bsl-kernel ')) {
        procVersion = line.slice('@bsl-kernel '.length).trim();
        options.progress?.(`${name} booted`);
      } else if (line.startsWith('@bsl-facts ')) {
        try {
          bpfFuncMaxId = readKernelFacts(line).bpfFuncMaxId;
        } catch {
          stop(new LabError(`kernel ${name}: a garbled facts line on the console: ${line.slice(0, 120)}`));
        }
      } else if (line.startsWith('@bsl-loading ')) {
        const [object, program] = line.slice('@bsl-loading '.length).trim().split(' ');
        loading = `${callerName(object)} ${program ?? ''}`.trim();
      } else if (line.startsWith('@bsl {')) {
        loading = undefined;
        try {
          results.push(JSON.parse(line.slice('@bsl '.length)) as Record<string, unknown>);
        } catch {
          stop(new LabError(`kernel ${name}: a garbled result line on the console: ${line.slice(0, 120)}`));
        }
        if (progressEvery > 0 && results.length % progressEvery === 0) options.progress?.(`${name}: ${results.length} programs judged`);
      } else if (line.startsWith('@bsl-done ')) {
        done = true;
      } else if (/Kernel panic - not syncing/.test(line)) {
        stop(new LabError(`kernel ${name} panicked${where()}: ${line.slice(line.indexOf('Kernel panic')).trim()}`));
      }
    };
    child.stdout?.on('data', (chunk: Buffer) => {
      pending += chunk.toString('latin1');
      let newline = pending.indexOf('\n');
      while (newline !== -1) {
        onLine(pending.slice(0, newline));
        pending = pending.slice(newline + 1);
        newline = pending.indexOf('\n');
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', (error: NodeJS.ErrnoException) => {
      failure ??= new LabError(error.code === 'ENOENT' ? `${qemu} is not installed (apt-get install qemu-system-x86)` : `${qemu}: ${error.message}`);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      clearTimeout(idleTimer);
      options.signal?.removeEventListener('abort', abort);
      if (pending) onLine(pending);
      if (failure) reject(failure);
      else if (!done) {
        const said = stderr.trim().split('\n').pop() || tail.filter(Boolean).pop() || `exit ${code}`;
        reject(new LabError(`kernel ${name} stopped before its loader finished (${results.length} programs judged${where()}): ${said}`));
      } else resolvePromise({ procVersion, results, ...(bpfFuncMaxId === undefined ? {} : { bpfFuncMaxId }) });
    });
  });
}

export interface LabRun {
  boots: LabBoot[];
  /** Kernels that could not be fetched or booted, with the one-line reason. */
  failures: { kernel: LabKernel; reason: string }[];
}

/**
 * Fetches every kernel in turn (the fetches share one private apt state), then boots them on all
 * objects `jobs` VMs at a time (default 2: a TCG VM keeps one core busy, and these machines have
 * two). A kernel's failure does not stop the others; boots and failures keep the order of `kernels`.
 */
export async function runLab(kernels: readonly LabKernel[], objects: readonly string[], options: BootOptions & { jobs?: number }): Promise<LabRun> {
  const outcomes: ({ fetched: FetchedKernel; boot?: LabBoot } | { failure: { kernel: LabKernel; reason: string } })[] = [];
  const failed = (kernel: LabKernel, error: unknown) => {
    if (options.signal?.aborted) throw new LabError('cancelled');
    if (!(error instanceof LabError)) throw error;
    return { failure: { kernel, reason: error.message } };
  };
  for (const kernel of kernels) {
    if (options.signal?.aborted) throw new LabError('cancelled');
    outcomes.push(
      await fetchKernel(kernel, options).then(
        (fetched) => ({ fetched }),
        (error: unknown) => failed(kernel, error),
      ),
    );
  }
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < outcomes.length) {
      const index = next++;
      const outcome = outcomes[index];
      if (!('fetched' in outcome)) continue;
      if (options.signal?.aborted) throw new LabError('cancelled');
      options.progress?.(`booting ${outcome.fetched.release} (${outcome.fetched.kernel.package}) on ${objects.length} objects`);
      try {
        outcome.boot = await bootKernel(outcome.fetched, objects, options);
      } catch (error) {
        outcomes[index] = failed(outcome.fetched.kernel, error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.jobs ?? Math.min(2, availableParallelism())) }, () => worker()));
  return {
    boots: outcomes.flatMap((outcome) => ('boot' in outcome && outcome.boot ? [outcome.boot] : [])),
    failures: outcomes.flatMap((outcome) => ('failure' in outcome ? [outcome.failure] : [])),
  };
}
