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
