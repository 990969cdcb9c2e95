/**
 * The real-world corpus (test/fixtures/realworld): BPF programs we did not write, each with what
 * the 6.18 verifier said about it (VERIFIER.json, written by measure.mjs). A program is compared
 * when the verifier judged its stack: it was accepted, or rejected by a stack rule. The rest never
 * reached the verifier here (fentry without ftrace, missing test modules) or were rejected for
 * reasons that are not about the stack; they stay in the corpus to prove the analyzers never claim
 * a stack violation there.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repositoryRoot } from './kernel';

export interface RealWorldProgram {
  /** Relative to test/fixtures/realworld, e.g. "linux-selftests/exceptions.bpf.o". */
  object: string;
  name: string;
  section: string;
  status: 'ok' | 'rejected' | 'error';
  /** The verifier's "stack depth" line, e.g. "0+8+0". */
  stackDepth?: string;
  /** The verifier's error line, for a rejection. */
  error?: string;
}

export interface RealWorldCorpus {
  /** The kernel release VERIFIER.json was measured on. */
  kernel: string;
  directory: string;
  programs: RealWorldProgram[];
}

/** The messages of check_max_stack_depth and of do_check's frame limit: the stack rules. */
const STACK_RULE_ERRORS = [/^tail_calls are not allowed when call stack of previous frames is \d+ bytes/, /^combined stack size of \d+ calls is \d+/, /^the call stack of \d+ frames is too deep/];

export function isStackRuleError(message: string | undefined): boolean {
  return message !== undefined && STACK_RULE_ERRORS.some((pattern) => pattern.test(message));
}

/** Whether the verifier judged the program's stack: accepted, or rejected by a stack rule. */
export function isCompared(program: RealWorldProgram): boolean {
  return program.status === 'ok' || (program.status === 'rejected' && isStackRuleError(program.error));
}

export function readRealWorldCorpus(): RealWorldCorpus {
  const directory = join(repositoryRoot(), 'test', 'fixtures', 'realworld');
  const measured = JSON.parse(readFileSync(join(directory, 'VERIFIER.json'), 'utf8')) as {
    kernel: string;
    objects: { object: string; programs: { name: string; section: string; status: RealWorldProgram['status']; stack_depth?: string; error?: string }[] }[];
  };
  const programs = measured.objects.flatMap(({ object, programs }) =>
    programs.map((program) => ({ object, name: program.name, section: program.section, status: program.status, stackDepth: program.stack_depth, error: program.error })),
  );
  return { kernel: measured.kernel, directory, programs };
}

/** How an analyzer's report of one program compares with what the kernel said. */
export interface KernelComparison {
  /** Whether the kernel judged the program's stack (see isCompared). */
  compared: boolean;
  /** Whether the analyzer reported the program at all. */
  reported: boolean;
  lineAgrees: boolean;
  /** Same accept or reject, and for a rejection the same first message; undefined when not reported. */
  verdictAgrees?: boolean;
  /** For a program the kernel rejected for another reason: the stack violation the analyzer claims. */
  falseClaim?: string;
  /** One line for a failure message: both sides' line and verdict. */
  description: string;
}

/** The part of a ProgramReport (object or estimate) the comparison reads. */
interface ReportedProgram {
  stackDepths: string;
  verdicts: { accepted: boolean; violations: { message: string; reportedByKernel?: boolean }[] }[];
}

/** Compares an analyzer's report of `program` (its first verdict, the 6.18 profile) with the kernel's. */
export function compareWithKernel(program: RealWorldProgram, ours: ReportedProgram | undefined, analyzer: string): KernelComparison {
  const verdict = ours?.verdicts[0];
  const violation = verdict?.violations.find((candidate) => candidate.reportedByKernel) ?? verdict?.violations[0];
  const kernelAccepted = program.status === 'ok';
  const description = `${program.object}:${program.name}: kernel ${program.stackDepth} ${kernelAccepted ? 'accepted' : `"${program.error}"`}, ${analyzer} ${ours?.stackDepths} ${
    verdict === undefined ? 'not reported' : verdict.accepted ? 'accepted' : `"${violation?.message}"`
  }`;
  if (!isCompared(program)) {
    const claims = program.status === 'rejected' && !isStackRuleError(program.error) && verdict !== undefined && !verdict.accepted;
    return { compared: false, reported: ours !== undefined, lineAgrees: false, falseClaim: claims ? violation?.message : undefined, description };
  }
  const verdictAgrees = verdict === undefined ? undefined : verdict.accepted === kernelAccepted && (kernelAccepted || program.error?.startsWith(violation?.message ?? '\0') === true);
  return { compared: true, reported: ours !== undefined, lineAgrees: ours?.stackDepths === program.stackDepth, verdictAgrees, description };
}
