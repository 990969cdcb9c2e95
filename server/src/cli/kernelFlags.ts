/** The kernels a command judges for, from its flags: --kernel V[,V...] and --no-jit. */
import type { CommandIo } from '../common/commandIo';
import { type ParsedArgs, UsageError } from '../common/commandLine';
import { runningKernelProfile } from '../probe/runningKernel';
import { type KernelProfile, parseKernelProfiles } from '../rules/kernelProfile';

/** --kernel V[,V...] and --no-jit; without --kernel, the running kernel. */
export function profilesFromFlags(args: ParsedArgs, io: CommandIo): KernelProfile[] {
  const jit = !args.booleans.has('--no-jit');
  const versions = args.flags.get('--kernel');
  if (!versions) {
    const { profile, note } = runningKernelProfile();
    if (note) io.stderr(`bpf-stack-lens: ${note}\n`);
    return [{ ...profile, jit: jit && profile.jit }];
  }
  const { profiles, errors } = parseKernelProfiles(versions, jit);
  if (errors.length > 0) throw new UsageError(errors.join('; '));
  if (profiles.length === 0) throw new UsageError('--kernel needs at least one version');
  return profiles;
}
