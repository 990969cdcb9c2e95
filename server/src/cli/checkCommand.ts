/**
 * `bpf-stack-lens check [--kernel V[,V...]] [--no-jit] [--format text|json|sarif] OBJ...`
 * Exit 0 when no program breaks a stack rule, 1 when one does, 2 for bad usage or unreadable input.
 */
import { dirname } from 'node:path';
import { type QuotePolicy, quoteSourceLine, shownLine } from '../common/safeRead';
import { type ObjectReport, analyzeObject } from '../object/analyzeObject';
import type { KernelProfile } from '../rules/kernelProfile';
import { type FlagSpec, UsageError, parseArgs } from '../common/commandLine';
import { type CommandIo, readInput } from '../common/commandIo';
import { profilesFromFlags } from './kernelFlags';
import { writeJsonReport } from './jsonOutput';
import { toSarif } from './sarif';
import { withSharedSubprograms } from './sharedSubprograms';
import { formatTextReport } from '../ide/textReport';

export const CHECK_FLAGS: Record<string, FlagSpec> = {
  '--kernel': { value: true, repeat: true },
  '--no-jit': { value: false },
  '--format': { value: true },
  '--quote-root': { value: true, repeat: true },
};

export function checkCommand(argv: string[], io: CommandIo): number {
  const args = parseArgs(argv, CHECK_FLAGS);
  const format = args.flags.get('--format')?.[0] ?? 'text';
  if (!['text', 'json', 'sarif'].includes(format)) throw new UsageError(`--format must be text, json or sarif, not "${format}"`);
  if (args.positionals.length === 0) throw new UsageError('check needs at least one object file');
  const profiles: KernelProfile[] = profilesFromFlags(args, io);

  const reports: ObjectReport[] = [];
  const compiledLines: ((file: string, line: number) => string | undefined)[] = [];
  let unreadable = false;
  for (const path of args.positionals) {
    const bytes = readInput(path, io);
    if (!bytes) {
      unreadable = true;
      continue;
    }
    const analysis = analyzeObject(bytes, path, profiles);
    if (!analysis.readable) {
      io.stderr(`bpf-stack-lens: ${path}: ${analysis.report.problems.map((p) => p.message).join('; ')}\n`);
      unreadable = true;
      continue;
    }
    compiledLines.push(analysis.lineTextOf);
    reports.push(analysis.report);
  }

  if (format === 'json' || format === 'sarif') {
    const written = writeJsonReport(io, format === 'json' ? { objects: reports.map(withSharedSubprograms) } : toSarif(reports, io.version));
    if (!written) return 2;
  } else {
    // Line info may name any file; lines are quoted only from the working directory, the objects'
    // directories and any --quote-root, so an object cannot make the report print /etc/shadow.
    const policy: QuotePolicy = { roots: [process.cwd(), ...args.positionals.map((path) => dirname(path)), ...(args.flags.get('--quote-root') ?? [])] };
    io.stdout(formatTextReport(reports, { lineText: (location) => sourceLine(location.file, location.line, compiledLines, policy) }));
  }

  if (unreadable) return 2;
  const violated = reports.some((report) => report.programs.some((program) => program.verdicts.some((verdict) => !verdict.accepted)));
  return violated ? 1 : 0;
}

const fileLines = new Map<string, string[] | { withheld: string }>();

/**
 * The line as it is on disk now; BTF's copy (the line as it was compiled, part of the object itself)
 * when the file is gone or may not be quoted; a note saying why when there is neither.
 */
function sourceLine(file: string, line: number, fromBtf: ((file: string, line: number) => string | undefined)[], policy: QuotePolicy): string | undefined {
  const onDisk = quoteSourceLine(file, line, policy, fileLines);
  if (onDisk && 'text' in onDisk) return onDisk.text;
  let compiled: string | undefined;
  for (const lookup of fromBtf) compiled ??= lookup(file, line);
  return shownLine(onDisk, compiled);
}
