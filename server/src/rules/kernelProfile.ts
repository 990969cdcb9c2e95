/**
 * A kernel profile: the facts about a kernel that change how check_max_stack_depth judges a program.
 * Each fact is tied to the kernel release that introduced it (kernel/bpf/verifier.c), so one program
 * can be judged for many kernels at once ("passes on 6.18, fails on 6.1").
 */

export interface KernelProfile {
  /** "6.18", as the user wrote it or as uname reports it (major.minor). */
  version: string;
  /** Whether programs are JIT-compiled (/proc/sys/net/core/bpf_jit_enable != 0). */
  jit: boolean;
}

export interface KernelVersion {
  major: number;
  minor: number;
}

/** Parses "6.18", "6.18.44-fc-v769" or "v5.15"; returns undefined for anything else. */
export function parseKernelVersion(text: string): KernelVersion | undefined {
  const match = /^v?(\d+)\.(\d+)/.exec(text.trim());
  if (!match) return undefined;
  return { major: Number(match[1]), minor: Number(match[2]) };
}

function atLeast(version: KernelVersion, major: number, minor: number): boolean {
  return version.major > major || (version.major === major && version.minor >= minor);
}

/** The rule switches derived from a profile; the rule engine reads only these. */
export interface KernelRuleSet {
  /** round_up_stack_depth(): 16 with the JIT from 6.9, else round_up(max(d, 1), 32). */
  roundStackDepth(depth: number): number;
  /** 6.5 split check_max_stack_depth per root: async callbacks are checked as their own roots. */
  asyncCallbacksAreRoots: boolean;
  /** 6.13 private stacks for kprobe/tracepoint/raw_tp/perf_event programs on the x86-64/arm64 JIT. */
  privateStack: boolean;
}

/** Program types whose subprograms may run on a private per-CPU stack (bpf_enable_priv_stack). */
export const PRIVATE_STACK_PROGRAM_TYPES: ReadonlySet<string> = new Set([
  'kprobe',
  'tracepoint',
  'perf_event',
  'raw_tracepoint',
]);

/** The smallest rounded frame that moves to the private stack (BPF_PRIV_STACK_MIN_SIZE). */
export const PRIVATE_STACK_MIN_BYTES = 64;

export function ruleSetFor(profile: KernelProfile): KernelRuleSet {
  const version = parseKernelVersion(profile.version) ?? { major: 6, minor: 18 };
  const sixteenByteRounding = profile.jit && atLeast(version, 6, 9);
  return {
    roundStackDepth: sixteenByteRounding
      ? (depth) => roundUp(depth, 16)
      : (depth) => roundUp(Math.max(depth, 1), 32),
    asyncCallbacksAreRoots: atLeast(version, 6, 5),
    privateStack: profile.jit && atLeast(version, 6, 13),
  };
}

export function roundUp(value: number, multiple: number): number {
  return Math.ceil(value / multiple) * multiple;
}

/** A short label for messages and JSON: "6.18" or "6.18 (interpreter)". */
export function profileLabel(profile: KernelProfile): string {
  return profile.jit ? profile.version : `${profile.version} (interpreter)`;
}

/**
 * Parses a list of kernel versions ("6.1,6.18"), as the CLI and the settings take it. Returns the
 * profiles and, for each entry that is not a version, a message.
 */
export function parseKernelProfiles(versions: string[], jit: boolean): { profiles: KernelProfile[]; errors: string[] } {
  const profiles: KernelProfile[] = [];
  const errors: string[] = [];
  for (const entry of versions.flatMap((text) => text.split(',')).map((text) => text.trim()).filter(Boolean)) {
    const version = parseKernelVersion(entry);
    if (!version) {
      errors.push(`"${entry}" is not a kernel version (expected MAJOR.MINOR, like 6.1)`);
      continue;
    }
    const label = `${version.major}.${version.minor}`;
    if (!profiles.some((profile) => profile.version === label)) profiles.push({ version: label, jit });
  }
  return { profiles, errors };
}
