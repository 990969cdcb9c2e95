/**
 * `bpf-stack-lens types [-I DIR]... [-D NAME[=VAL]]... FILE`: every named struct and union the file
 * (with its includes) defines, laid out for the BPF target, as JSON
 * `[ { "name", "kind": "struct|union", "size", "align" } ]`. Problems go to stderr.
 */
import { existsSync } from 'node:fs';
import { typesReport } from '../source/typesReport';
import { type FlagSpec, UsageError, parseArgs } from '../common/commandLine';
import type { CommandIo } from '../common/commandIo';
import { writeJsonReport } from './jsonOutput';

export const TYPES_FLAGS: Record<string, FlagSpec> = {
  '-I': { value: true, repeat: true },
  '-D': { value: true, repeat: true },
};

export function typesCommand(argv: string[], io: CommandIo): number {
  const args = parseArgs(argv, TYPES_FLAGS);
  if (args.positionals.length !== 1) throw new UsageError('types takes exactly one C file');
  const [file] = args.positionals;
  if (!existsSync(file)) {
    io.stderr(`bpf-stack-lens: ${file}: no such file\n`);
    return 2;
  }
  const report = typesReport(file, { includeDirs: args.flags.get('-I') ?? [], defines: args.flags.get('-D') ?? [] });
  for (const problem of report.problems) io.stderr(`bpf-stack-lens: warning: ${problem.message}\n`);
  return writeJsonReport(io, report.types) ? 0 : 2;
}
