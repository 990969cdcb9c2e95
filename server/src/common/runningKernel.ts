/**
 * The default kernel profile: the kernel this process runs on. This is I/O at the edge, so it may
 * fail; callers fall back to DEFAULT_KERNEL_PROFILE and say so.
 */
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import type { KernelProfile } from '../rules/kernelProfile';
import { parseKernelVersion } from '../rules/kernelProfile';

/** Used where the running kernel cannot be read (not Linux, no /proc): a current kernel with the JIT. */
export const DEFAULT_KERNEL_PROFILE: KernelProfile = { version: '6.18', jit: true };

export function runningKernelProfile(): { profile: KernelProfile; note?: string } {
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
  return { profile: { version: `${version.major}.${version.minor}`, jit } };
}
