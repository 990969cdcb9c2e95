/**
 * `bpf-stack-lens verify [--kernel V[,V...]] [--format text|json] OBJ...`
 * Loads every program of each object into real verifiers and shows what each said beside what
 * `check` predicts for that kernel: the running kernel ("host", the default; needs bpf()) and, opt-in
 * by --kernel, lab kernels booted under QEMU (5.10, 6.1, 6.12, 7.2, 7.3, or their exact releases).
 * The numbers of each stack-depth line are mapped to their subprograms' source lines (BTF line info).
 * Progress goes to stderr; Ctrl-C cancels. Exit 0 when every kernel accepts every program, 1 when
 * one rejects one, 2 for bad usage or a kernel that gave no answer (one line saying why). The core
 * is ide/verify.ts, which the editor's "Verify on real kernels…" runs too.
 */
import { type CommandIo, readInput } from '../common/commandIo';
import { type FlagSpec, UsageError, parseArgs } from '../common/commandLine';
import { HOST_TARGET, type VerifyRun, type VerifyTarget, formatVerifyText, verifyOnKernels, verifyTargetsOf } from '../ide/verify';
import { packageRoot } from '../source/packageRoot';

export type { VerifyEntry } from '../ide/verify';
import { writeJsonReport } from './jsonOutput';

export const VERIFY_FLAGS: Record<string, FlagSpec> = {
  '--kernel': { value: true, repeat: true },
  '--format': { value: true },
};

function targetsOf(values: string[] | undefined): VerifyTarget[] {
  const names = (values ?? [HOST_TARGET])
    .flatMap((value) => value.split(','))
    .map((value) => value.trim())
    .filter(Boolean);
  if (names.length === 0) throw new UsageError('--kernel needs at least one kernel');
  const parsed = verifyTargetsOf(names);
  if ('error' in parsed) throw new UsageError(parsed.error);
  return parsed.targets;
}

export async function verifyCommand(argv: string[], io: CommandIo): Promise<number> {
  const args = parseArgs(argv, VERIFY_FLAGS);
  const format = args.flags.get('--format')?.[0] ?? 'text';
  if (!['text', 'json'].includes(format)) throw new UsageError(`--format must be text or json, not "${format}"`);
  if (args.positionals.length === 0) throw new UsageError('verify needs at least one object file');
  const targets = targetsOf(args.flags.get('--kernel'));
  // Only readable objects go to the kernels; the others are reported once and make the exit 2.
  const objects = args.positionals.filter((path) => readInput(path, io) !== undefined);
  if (objects.length === 0) return 2;
  const controller = new AbortController();
  const cancel = (): void => controller.abort();
  process.once('SIGINT', cancel);
  let run: VerifyRun;
  try {
    run = await verifyOnKernels(objects, targets, {
      root: packageRoot(),
      signal: controller.signal,
      progress: (message) => io.stderr(`bpf-stack-lens verify: ${message}\n`),
      note: (note) => io.stderr(`bpf-stack-lens: ${note}\n`),
      failed: (reason) => io.stderr(`bpf-stack-lens verify: ${reason}\n`),
    });
  } finally {
    process.removeListener('SIGINT', cancel);
  }
  if (run.cancelled) {
    io.stderr('bpf-stack-lens verify: cancelled\n');
    return 2;
  }
  const { entries } = run;
  if (format === 'json') {
    if (!writeJsonReport(io, { results: entries })) return 2;
  } else if (entries.length > 0) io.stdout(formatVerifyText(entries));
  if (run.failures.length > 0 || objects.length < args.positionals.length || entries.some((entry) => entry.real.verdict === 'error')) return 2;
  return entries.some((entry) => entry.real.verdict === 'rejected') ? 1 : 0;
}
