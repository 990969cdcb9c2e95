/**
 * The default kernel profile: the kernel this process runs on, with the facts its verifier showed
 * to the probe programs (probe/kernelProbe.ts) where bpf() is allowed. This is I/O at the edge, so
 * it may fail; callers fall back to DEFAULT_KERNEL_PROFILE and say so.
 */
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { type ProbeOutcome, cachedRunningKernelFacts, probeRunningKernelSync } from './kernelProbe';
import type { KernelProfile } from '../rules/kernelProfile';
import { parseKernelVersion } from '../rules/kernelProfile';

/** Used where the running kernel cannot be read (not Linux, no /proc): a current kernel with the JIT. */
export const DEFAULT_KERNEL_PROFILE: KernelProfile = { version: '6.18', jit: true };

export interface RunningKernelOptions {
  /**
   * "now" probes a kernel not yet in the cache (blocking, under a second; the CLI); "cached" only
   * reads the cache (a caller that probes in the background, like the language server).
   */
  probe?: 'now' | 'cached';
}

export function runningKernelProfile(options: RunningKernelOptions = {}): { profile: KernelProfile; note?: string } {
  if (process.platform !== 'linux') {
    return { profile: DEFAULT_KERNEL_PROFILE, note: `not running on Linux; judging for kernel ${DEFAULT_KERNEL_PROFILE.version}` };
  }
  const version = parseKernelVersion(release());
  if (!version) return { profile: DEFAULT_KERNEL_PROFILE, note: `cannot read the kernel version from "${release()}"` };
  let jit = true;
  try {
    jit = readFileSync('/proc/sys/net/core/bpf_jit_enable', 'utf8').trim() !== '0';
  } catch {
    // Kernels built with CONFIG_BPF_JIT_ALWAYS_ON still have the file; without it, assume the JIT.
  }
  // The major.minor label keeps the running kernel comparable with --kernel 6.18 and fixtures' kernel= lines.
  const profile: KernelProfile = { version: `${version.major}.${version.minor}`, jit };
  const outcome: ProbeOutcome =
    options.probe === 'cached' ? { facts: cachedRunningKernelFacts(), reason: 'the running kernel has not been probed yet' } : probeRunningKernelSync();
  if (outcome.facts) profile.probed = outcome.facts;
  else profile.unprobed = [`the running kernel (${release()}) was not probed (${outcome.reason}): its rules come from its version`];
  return { profile };
}
