/**
 * A kernel profile: the facts about a kernel that change how check_max_stack_depth judges a program.
 * Each fact is tied to the kernel release that introduced it (kernel/bpf/verifier.c) and, where a
 * distribution backported or changed it, to the releases measured on real kernels, so one program
 * can be judged for many kernels at once ("passes on 6.18, fails on 6.1"). A profile of the running
 * kernel can carry probed facts instead (see common/kernelProbe.ts): what its verifier did with tiny
 * probe programs beats what its version suggests.
 */
import { roundUp } from '../common/numbers';

export interface KernelProfile {
  /** "6.18" or "6.1.170", as the user wrote it (normalised) or as uname reports it. */
  version: string;
  /** Whether programs are JIT-compiled (/proc/sys/net/core/bpf_jit_enable != 0). */
  jit: boolean;
  /** What probe loads showed about this very kernel; absent for kernels judged by release. */
  probed?: ProbedKernelFacts;
  /** Facts about the running kernel that could not be probed and so are assumed from its version. */
  unprobed?: string[];
}

/**
 * What the running kernel's verifier did with the probe programs. A missing entry means the probe
 * could not tell (EPERM from a sandbox gate, no attach target), and the release's rule stands.
 */
export interface ProbedKernelFacts {
  /** GNU build-id of the kernel (from /sys/kernel/notes): two builds with one version can differ. */
  buildId: string;
  /** uname -r at probe time, for messages. */
  release: string;
  /** Private stack per program kind (privateStackKey): true = private, false = shared. */
  privateStack: Record<string, boolean>;
  sixteenByteRounding?: boolean;
  asyncCallbacksAreRoots?: boolean;
  maxCallFrames?: number;
  /** Whether bpf-to-bpf calls and tail calls may be mixed in one program. */
  tailCallsWithCalls?: boolean;
  /** __BPF_FUNC_MAX_ID of the kernel's own BTF (/sys/kernel/btf/vmlinux): helper ids from here on do not exist. */
  bpfFuncMaxId?: number;
}

export interface KernelVersion {
  major: number;
  minor: number;
  /** The stable release's patch level, when given ("6.1.170" → 170). */
  patch?: number;
}

/** Parses "6.18", "6.1.170", "6.18.44-fc-v769" or "v5.15"; returns undefined for anything else. */
export function parseKernelVersion(text: string): KernelVersion | undefined {
  const match = /^v?(\d+)\.(\d+)(?:\.(\d+))?(?![\d.])/.exec(text.trim());
  if (!match) return undefined;
  return { major: Number(match[1]), minor: Number(match[2]), ...(match[3] === undefined ? {} : { patch: Number(match[3]) }) };
}

function atLeast(version: KernelVersion, major: number, minor: number): boolean {
  return version.major > major || (version.major === major && version.minor >= minor);
}

/** The oldest kernel the rules model: 4.16 brought bpf-to-bpf calls, and with them every rule here. */
export const OLDEST_MODELED: KernelVersion = { major: 4, minor: 16 };
/** The newest kernel whose verifier was measured (Debian 7.3-rc7 in the kernel lab). */
export const NEWEST_MEASURED: KernelVersion = { major: 7, minor: 3 };

/** Where a kernel refuses a recursive call: see KernelRuleSet.recursion. */
export type RecursionCheck = 'check_cfg' | 'stack-walk' | 'call-graph';

/** How the verifier's statistics print the stack: see stackDepthLine in report.ts. */
export type StackLineFormat = 'bytes' | 'slots' | 'slots-max' | 'max-only';

/** The rule switches derived from a profile; the rule engine reads only these. */
export interface KernelRuleSet {
  /** round_up_stack_depth(): 16 with the JIT from 6.9, else round_up(max(d, 1), 32). */
  roundStackDepth(depth: number): number;
  /** 6.5 split check_max_stack_depth per root (backported to 6.1.y): async callbacks are their own roots. */
  asyncCallbacksAreRoots: boolean;
  /** Whether a program of this kind, with no tail call, may run subprograms on a private stack. */
  privateStackFor(attach: ProgramKind): boolean;
  /** MAX_CALL_FRAMES: 8, 16 from 7.2. */
  maxCallFrames: number;
  /** Before 7.2 every frame counts; from 7.2 a global subprogram starts a new frame count. */
  globalCallsCountFrames: boolean;
  /** allow_tail_call_in_subprogs(): the x86-64 JIT from 5.10; never for the interpreter. */
  tailCallsWithCalls: boolean;
  stackLineFormat: StackLineFormat;
  /** What may_goto adds to the printed depth: 16 for the timed counter (6.15), 8 before. */
  mayGotoSlotBytes: number;
  /**
   * __BPF_FUNC_MAX_ID: check_helper_call refuses a helper id from this one on ("invalid func
   * unknown#N") as do_check meets the call.
   */
  helperIdLimit: number;
  /** ld_imm64 with BPF_PSEUDO_FUNC (a function's address, for callbacks) and its subprograms: 5.13. */
  callbackAddresses: boolean;
  /**
   * BTF with a DATASEC of no variables loads: from 5.12 (Yonghong Song's "bpf: permit size-0
   * datasec"); 5.10.223 refuses it ("vlen == 0"), measured in the lab, and 6.1.170 loads it.
   */
  loadsEmptyDatasec: boolean;
  /** Global functions validated only when live code calls them: from 6.8 (see stackRules.ts withoutUnvalidated). */
  lazyGlobalValidation: boolean;
  /** The may_goto instruction (BPF_JMP | BPF_JCOND): 6.9. */
  mayGoto: boolean;
  /**
   * Who refuses a recursive call: check_cfg as a back edge before 6.7 (measured on 5.10.223 and
   * 6.1.170; upstream let calls back in with "bpf: fix control-flow graph checking in privileged
   * mode", 6.7); the stack walk, which goes round it until too deep or too big, up to 7.1 (6.12.107,
   * 6.18); from 7.2 a check of the call graph before do_check, "recursive call from A() to B()".
   */
  recursion: RecursionCheck;
  /** check_attach_btf_id's refusal of a sleepable program of this kind, word for word; undefined if allowed. */
  sleepableRefusal(kind: ProgramKind): MissingFeatureRule | undefined;
  /** For a sleepable kind whose acceptance on this release was taken from upstream, not measured: what is assumed. */
  sleepableAssumption(kind: ProgramKind): string | undefined;
  /** Warnings about the version itself (outside what the rules model). */
  notes: string[];
  /** Facts assumed rather than measured or probed for this kernel. */
  assumes: string[];
}

/** The part of a program's identity that decides its private-stack eligibility. */
export interface ProgramKind {
  type: string;
  expectedAttachType: string;
  sleepable: boolean;
}

/** The key probed private-stack results are stored under: "kprobe/trace_kprobe_multi/sleepable". */
export function privateStackKey(kind: ProgramKind): string {
  return `${kind.type}/${kind.expectedAttachType}${kind.sleepable ? '/sleepable' : ''}`;
}

/**
 * bpf_enable_priv_stack() upstream from 6.13 (measured on Debian 7.2 and 7.3): kprobe, tracepoint,
 * perf_event and raw_tracepoint programs, and tracing programs that pass the recursion check (every
 * tracing attach type but iter). raw_tp.w, lsm, struct_ops, syscall and networking types never.
 */
export function upstreamPrivateStack(kind: ProgramKind): boolean {
  if (['kprobe', 'tracepoint', 'perf_event', 'raw_tracepoint'].includes(kind.type)) return true;
  return kind.type === 'tracing' && kind.expectedAttachType !== 'trace_iter';
}

/** A refusal because the kernel predates a feature: the verifier's words and the first release with it. */
export interface MissingFeatureRule {
  message: string;
  since: string;
}

/*
 * __BPF_FUNC_MAX_ID of each upstream release from 4.16, by [major, minor, limit]. Helpers are
 * appended to enum bpf_func_id (include/uapi/linux/bpf.h, __BPF_FUNC_MAPPER), so a release knows
 * exactly the ids below its limit. The release of each helper is the one bcc's
 * docs/kernel-versions.md gives with the upstream commit that added it; where two of its dates
 * contradict the order of the ids (120 get_ns_current_pid_tgid listed 5.7 before 121 xdp_output
 * at 5.6; 123 and 124 listed 5.6 after 122 at 5.7; 135 csum_level listed 5.7 after the 5.8 ring
 * buffer helpers at 130), the order of the ids decides. No helper was added after 6.2: new kernel
 * functions are kfuncs. The lab measured the limit on its kernels (MEASURED_HELPER_ID_LIMITS).
 */
const UPSTREAM_HELPER_ID_LIMITS: readonly (readonly [number, number, number])[] = [
  [4, 16, 60],
  [4, 17, 65],
  [4, 18, 81],
  [4, 19, 84],
  [4, 20, 91],
  [5, 0, 93],
  [5, 1, 99],
  [5, 2, 109],
  [5, 3, 111],
  [5, 4, 111],
  [5, 5, 119],
  [5, 6, 122],
  [5, 7, 125],
  [5, 8, 136],
  [5, 9, 142],
  [5, 10, 156],
  [5, 11, 163],
  [5, 12, 164],
  [5, 13, 166],
  [5, 14, 169],
  [5, 15, 176],
  [5, 16, 180],
  [5, 17, 186],
  [5, 18, 194],
  [5, 19, 204],
  [6, 0, 208],
  [6, 1, 210],
  [6, 2, 212],
];

/**
 * __BPF_FUNC_MAX_ID as the lab's kernels report it in their BTF (test/fixtures/programs/measured,
 * field bpfFuncMaxId; test/lab/measured.test.ts holds this table to those files). Stable updates
 * add no helpers: each equals its upstream release's limit.
 */
export const MEASURED_HELPER_ID_LIMITS: Readonly<Record<string, number>> = {
  '5.10.223': 156,
  '6.1.170': 210,
  '6.12.107': 212,
  '7.2.13': 212,
  '7.3': 212,
};

function upstreamHelperIdLimit(version: KernelVersion): number {
  let limit = UPSTREAM_HELPER_ID_LIMITS[0][2];
  for (const [major, minor, upTo] of UPSTREAM_HELPER_ID_LIMITS) if (atLeast(version, major, minor)) limit = upTo;
  return limit;
}

/** The first upstream release that has helper `id` ("5.16" for bpf_trace_vprintk, 177), or undefined past all of them. */
export function helperIntroducedIn(id: number): string | undefined {
  const release = UPSTREAM_HELPER_ID_LIMITS.find(([, , limit]) => id < limit);
  return release && `${release[0]}.${release[1]}`;
}

/** The release that brought ld_imm64 with BPF_PSEUDO_FUNC, the address of a callback (upstream 4976b718c355). */
export const CALLBACK_ADDRESS_RELEASE = '5.13';
/** The release that brought may_goto (upstream 011832b97b31, "bpf: Introduce may_goto instruction"). */
export const MAY_GOTO_RELEASE = '6.9';
/**
 * Sleepable uprobes (BPF_PROG_TYPE_KPROBE with BPF_F_SLEEPABLE): upstream 6.0, the sleepable uprobe
 * series that followed the 5.19 merge window. The lab measured 5.10.223 refusing and 6.1.170
 * accepting them; the releases between are taken from upstream.
 */
export const SLEEPABLE_UPROBE_RELEASE = '6.0';
/** check_attach_btf_id's words from 5.10 (the first with sleepable programs) until sleepable uprobes. */
export const SLEEPABLE_TRACING_ONLY_MESSAGE = 'Only fentry/fexit/fmod_ret and lsm programs can be sleepable';

/** The smallest rounded frame that moves to the private stack (BPF_PRIV_STACK_MIN_SIZE). */
export const PRIVATE_STACK_MIN_BYTES = 64;

function label(version: KernelVersion): string {
  return `${version.major}.${version.minor}`;
}

/** The version the rules are applied as: out-of-range versions are clamped, with a note. */
function modeledVersion(version: KernelVersion): { version: KernelVersion; notes: string[] } {
  const written = `${label(version)}${version.patch === undefined ? '' : `.${version.patch}`}`;
  if (!atLeast(version, OLDEST_MODELED.major, OLDEST_MODELED.minor)) {
    return {
      version: OLDEST_MODELED,
      notes: [
        `kernel ${written} is older than any the rules model (${label(OLDEST_MODELED)}, the first with bpf-to-bpf calls); judged as ${label(OLDEST_MODELED)}`,
      ],
    };
  }
  if (!atLeast(NEWEST_MEASURED, version.major, version.minor)) {
    return {
      version: NEWEST_MEASURED,
      notes: [`kernel ${written} is newer than any measured (newest: ${label(NEWEST_MEASURED)}); judged with ${label(NEWEST_MEASURED)}'s behaviour`],
    };
  }
  return { version, notes: [] };
}

export function ruleSetFor(profile: KernelProfile): KernelRuleSet {
  const parsed = parseKernelVersion(profile.version) ?? { major: 6, minor: 18 };
  const { version, notes } = modeledVersion(parsed);
  const probed = profile.probed;
  const assumes = [...(profile.unprobed ?? [])];

  const sixteenByteRounding = profile.jit && (probed?.sixteenByteRounding ?? atLeast(version, 6, 9));
  // The 6.5 fix is in 6.1.y: measured on 6.1.170. Which 6.1.y first carried it was not measured.
  const is61 = version.major === 6 && version.minor === 1;
  let asyncRoots = probed?.asyncCallbacksAreRoots ?? (atLeast(version, 6, 5) || (is61 && (version.patch === undefined || version.patch >= 170)));
  if (probed?.asyncCallbacksAreRoots === undefined && is61 && version.patch !== undefined && version.patch < 170) {
    asyncRoots = false;
    assumes.push(`async callbacks share the main program's stack check on 6.1.${version.patch} (the backport was measured on 6.1.170 only)`);
  }
  // 6.12.y carries the private-stack bookkeeping but never uses it (measured on 6.12.107).
  const releaseHasPrivateStack = profile.jit && atLeast(version, 6, 13);
  const maxCallFrames = probed?.maxCallFrames ?? (atLeast(version, 7, 2) ? 16 : 8);
  const exactRelease = `${version.major}.${version.minor}${version.patch === undefined ? '' : `.${version.patch}`}`;
  const helperIdLimit = probed?.bpfFuncMaxId ?? MEASURED_HELPER_ID_LIMITS[exactRelease] ?? upstreamHelperIdLimit(version);
  const sleepableUprobes = atLeast(version, 6, 0);
  // Measured on 5.10.223 (refused) and 6.1.170 (allowed); the releases between follow upstream.
  const sleepableUprobesMeasured = !atLeast(version, 5, 11) || atLeast(version, 6, 1);
  return {
    roundStackDepth: sixteenByteRounding ? (depth) => roundUp(depth, 16) : (depth) => roundUp(Math.max(depth, 1), 32),
    asyncCallbacksAreRoots: asyncRoots,
    privateStackFor: (kind) => {
      if (!profile.jit) return false;
      const measured = probed?.privateStack[privateStackKey(kind)];
      if (measured !== undefined) return measured;
      return releaseHasPrivateStack && upstreamPrivateStack(kind);
    },
    maxCallFrames,
    globalCallsCountFrames: maxCallFrames <= 8,
    tailCallsWithCalls: profile.jit && (probed?.tailCallsWithCalls ?? atLeast(version, 5, 10)),
    stackLineFormat: !atLeast(version, 6, 8) ? 'bytes' : !atLeast(version, 7, 2) ? 'slots' : !atLeast(version, 7, 3) ? 'slots-max' : 'max-only',
    // Measured: 6.12.107 prints 72 for a 64-byte frame with may_goto, 6.18 prints 80.
    mayGotoSlotBytes: atLeast(version, 6, 15) ? 16 : 8,
    helperIdLimit,
    callbackAddresses: atLeast(version, 5, 13),
    loadsEmptyDatasec: atLeast(version, 5, 12),
    lazyGlobalValidation: atLeast(version, 6, 8),
    mayGoto: atLeast(version, 6, 9),
    recursion: !atLeast(version, 6, 7) ? 'check_cfg' : !atLeast(version, 7, 2) ? 'stack-walk' : 'call-graph',
    // Before 6.0 only tracing and LSM programs may sleep; uprobes (kprobe type) are the ones libbpf
    // marks sleepable (uprobe.s, uretprobe.s, usdt.s) that this refuses.
    sleepableRefusal: (kind) =>
      kind.sleepable && kind.type === 'kprobe' && !sleepableUprobes ? { message: SLEEPABLE_TRACING_ONLY_MESSAGE, since: SLEEPABLE_UPROBE_RELEASE } : undefined,
    sleepableAssumption: (kind) =>
      kind.sleepable && kind.type === 'kprobe' && !sleepableUprobesMeasured && probed === undefined
        ? `sleepable uprobes ${sleepableUprobes ? 'are allowed' : 'are refused'} on ${label(version)}: upstream has them from ${SLEEPABLE_UPROBE_RELEASE}; not measured`
        : undefined,
    notes,
    assumes,
  };
}

/** lsp/printk.ts still imports roundUp from here; the one copy is common/numbers.ts. */
export { roundUp } from '../common/numbers';

/** A short label for messages and JSON: "6.18" or "6.18 (interpreter)". */
export function profileLabel(profile: KernelProfile): string {
  return profile.jit ? profile.version : `${profile.version} (interpreter)`;
}

/**
 * Parses a list of kernel versions ("6.1,6.18", "6.1.170"), as the CLI and the settings take it.
 * Returns the profiles, for each entry that is not a version a message, and warnings for versions
 * outside what the rules model (they are still judged, as the nearest modeled kernel).
 */
export function parseKernelProfiles(versions: string[], jit: boolean): { profiles: KernelProfile[]; errors: string[]; warnings: string[] } {
  const profiles: KernelProfile[] = [];
  const errors: string[] = [];
  const warnings: string[] = [];
  for (const entry of versions
    .flatMap((text) => text.split(','))
    .map((text) => text.trim())
    .filter(Boolean)) {
    const version = parseKernelVersion(entry);
    if (!version) {
      errors.push(`"${entry}" is not a kernel version (expected MAJOR.MINOR or an exact release, like 6.1 or 6.1.170)`);
      continue;
    }
    const written = version.patch === undefined ? label(version) : `${label(version)}.${version.patch}`;
    if (profiles.some((profile) => profile.version === written)) continue;
    const profile: KernelProfile = { version: written, jit };
    profiles.push(profile);
    warnings.push(...ruleSetFor(profile).notes);
  }
  return { profiles, errors, warnings };
}
