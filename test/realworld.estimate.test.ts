/**
 * The source estimator on programs we did not write: every program of the real-world corpus whose
 * stack the 6.18 verifier judged is estimated from its C source (no compiler) and compared with the
 * verifier's "stack depth" line and verdict (VERIFIER.json). The estimator guesses what clang does
 * (inlining, slot sharing, spills), so unlike `check` it cannot be exact everywhere: this test holds
 * the tallies at least where they are now, so that a change that loses programs fails, and lists
 * every program whose verdict still differs from the kernel's, with why.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';

import { EstimateSession, estimateSource } from '../server/src/cli/estimateCommand';
import { FrameEstimateCache } from '../server/src/source/frameEstimate';
import { repositoryRoot } from './support/kernel';
import { type RealWorldProgram, compareWithKernel, readRealWorldCorpus } from './support/realworld';
import { skipUnlessCI } from './support/unavailable';

const corpus = readRealWorldCorpus();
const PROFILE = { version: '6.18', jit: true };

/** Where build.sh puts the vmlinux.h the corpus sources include. */
const VMLINUX_DIRECTORY = join(repositoryRoot(), '.cache', 'realworld');

/**
 * At least this many of the compared programs must be reported, have the kernel's exact line, and
 * get the kernel's verdict. Raise them when the estimator gets better.
 */
const FLOORS = { reported: 474, exact: 383, verdicts: 469 };

/**
 * Programs whose verdict differs from the kernel's, with why. The test fails when one more
 * appears, and when one of them starts to agree (so the list only says what is still true).
 */
const KNOWN_VERDICT_DIFFERENCES = new Map<string, string>([
  // Both reject, with another sum: clang's expansion of the zeroing of timer_cb's `volatile char
  // buf[256] = {}` (8-byte stores around the byte read back) takes 8 bytes more than buf itself.
  ['linux-selftests/async_stack_depth.bpf.o:pseudo_call_check', 'timer_cb is 264 B, not 256: the volatile memset lowering adds a slot'],
  ['linux-selftests/async_stack_depth.bpf.o:async_call_root_check', 'timer_cb is 264 B, not 256: the volatile memset lowering adds a slot'],
  // `struct foo *f[200]`: every element is stored and read back within one iteration of a loop clang
  // unrolls, so it keeps them in registers and the 1600-byte array never reaches the stack.
  ['linux-selftests/linked_list.bpf.o:map_list_push_pop_multiple', 'clang promotes the 200-pointer array to registers'],
  ['linux-selftests/linked_list.bpf.o:inner_map_list_push_pop_multiple', 'clang promotes the 200-pointer array to registers'],
  ['linux-selftests/linked_list.bpf.o:global_list_push_pop_multiple', 'clang promotes the 200-pointer array to registers'],
]);

function keyOf(program: RealWorldProgram): string {
  return `${program.object}:${program.name}`;
}

/** vmlinux.h beside the corpus, generated from the running kernel's BTF when absent; why not, when it cannot be. */
function ensureVmlinuxHeader(): string | undefined {
  const header = join(VMLINUX_DIRECTORY, 'vmlinux.h');
  if (existsSync(header)) return undefined;
  const btf = '/sys/kernel/btf/vmlinux';
  if (!existsSync(btf)) return `${header} is absent and ${btf} does not exist to generate it (run test/fixtures/realworld/build.sh on a machine with BTF)`;
  try {
    const text = execFileSync('bpftool', ['btf', 'dump', 'file', btf, 'format', 'c'], { maxBuffer: 1 << 30, encoding: 'utf8' });
    mkdirSync(VMLINUX_DIRECTORY, { recursive: true });
    writeFileSync(header, text);
    return undefined;
  } catch (error) {
    return `${header} is absent and bpftool could not generate it: ${(error as Error).message}`;
  }
}

const skipReason = ensureVmlinuxHeader();

test(`estimate agrees with the ${corpus.kernel} verifier on the real-world corpus at least as often as before`, { skip: skipUnlessCI(skipReason) }, async (t) => {
  const byObject = new Map<string, RealWorldProgram[]>();
  for (const program of corpus.programs) byObject.set(program.object, [...(byObject.get(program.object) ?? []), program]);
  // One cache, never written to disk: the test measures the estimator, not a previous run.
  const cache = new FrameEstimateCache();
  const verdictDifferences: string[] = [];
  const nowAgreeing: string[] = [];
  let compared = 0;
  let reported = 0;
  let exact = 0;
  let verdicts = 0;
  for (const [object, programs] of byObject) {
    const source = join(corpus.directory, object.replace(/\.o$/, '.c'));
    const session = new EstimateSession(cache);
    const report = await estimateSource(
      source,
      readFileSync(source, 'utf8'),
      [PROFILE],
      // What build.sh gives clang: the source's folder, vmlinux.h, and the x86 target for PT_REGS.
      { includeDirs: [dirname(source), VMLINUX_DIRECTORY], defines: { __TARGET_ARCH_x86: '1' } },
      session,
    );
    session.dispose();
    for (const program of programs) {
      const comparison = compareWithKernel(program, report.programs.find((candidate) => candidate.name === program.name), 'estimate');
      if (!comparison.compared) {
        // Rejected for something else, or never verified: the estimate must not claim a stack violation the kernel never reported.
        if (comparison.falseClaim) verdictDifferences.push(`${keyOf(program)}: kernel rejects it for "${program.error}", estimate claims "${comparison.falseClaim}"`);
        continue;
      }
      compared++;
      if (comparison.reported) reported++;
      if (comparison.lineAgrees) exact++;
      // A program not reported has no verdict to disagree with: it counts as neither.
      if (comparison.verdictAgrees === undefined) continue;
      const known = KNOWN_VERDICT_DIFFERENCES.has(keyOf(program));
      if (comparison.verdictAgrees) {
        verdicts++;
        if (known) nowAgreeing.push(keyOf(program));
      } else if (!known) {
        verdictDifferences.push(comparison.description);
      }
    }
  }
  t.diagnostic(`real-world corpus vs the ${corpus.kernel} verifier: reported ${reported}/${compared}, stack depth line exact ${exact}/${compared}, verdict ${verdicts}/${compared}`);
  assert.deepEqual(verdictDifferences, [], 'programs where the estimate and the kernel disagree on the verdict');
  assert.deepEqual(nowAgreeing, [], 'listed as known verdict differences but now agreeing: take them off the list');
  assert.ok(reported >= FLOORS.reported, `reported ${reported}, floor ${FLOORS.reported}`);
  assert.ok(exact >= FLOORS.exact, `exact ${exact}, floor ${FLOORS.exact}`);
  assert.ok(verdicts >= FLOORS.verdicts, `verdicts ${verdicts}, floor ${FLOORS.verdicts}`);
});
