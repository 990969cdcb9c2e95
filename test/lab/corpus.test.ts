/**
 * The object analyzer on the real-world corpus, held to every lab kernel: each program of the corpus
 * (test/support/realworld.ts) is loaded in each lab kernel under QEMU (test/support/labCorpus.ts),
 * and `check --kernel <exact release>` must give that kernel's verdict, error line and stack-depth
 * line (in the kernel's own format, 7.3's per-subprogram lines included) for every program whose
 * stack the kernel judged: the comparison test/realworld.object.test.ts makes with the running
 * kernel. Programs a VM cannot load (no attach target, a section libbpf does not know, the time
 * limit) and programs rejected for something else than the stack are counted and listed by reason,
 * never as agreement; and the analyzer may not claim a stack violation for any of them.
 *
 * Which objects: a deterministic sample (corpusSample, one object in SAMPLE_EVERY, chosen by
 * package and path) by default and in CI, which keeps CI within its time; BSL_LAB_CORPUS=all runs
 * every object. `bash scripts/kernel-lab.sh measure --corpus` runs every object and rewrites
 * test/lab/corpus-counts.json, whose numbers are this test's floors. The kernels' answers are cached
 * (see labCorpus.ts): only the first run on a machine boots.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { LAB_KERNELS } from '../../server/src/lab/kernelLab';
import { repositoryRoot } from '../support/kernel';
import {
  type CountsFile,
  PROGRAM_TIMEOUT_SECONDS,
  SAMPLE_EVERY,
  corpusSample,
  countsFilePath,
  countsOf,
  reasonsNotCompared,
  runCorpusInLab,
} from '../support/labCorpus';
import { BELOW_FRAME as SHARED_BELOW_FRAME, FASTCALL as SHARED_FASTCALL, VAR_OFF as SHARED_VAR_OFF } from '../support/knownDifferences';
import { missingLabTool } from '../support/kernelLab';
import { buildRealWorldCorpus, compareObjectAnalyzer } from '../support/realworld';
import { skipOrFail } from '../support/unavailable';

const MODE = process.env.BSL_LAB_CORPUS === 'all' ? 'all' : 'sample';

const SELFTESTS = 'tools/testing/selftests/bpf/progs/';

/** Known differences: for each reason, the programs (source file in its package : program). */
type Known = [reason: string, programs: string[]][];

const BELOW_FRAME: Known[number] = [SHARED_BELOW_FRAME.reason, SHARED_BELOW_FRAME.programs];
const UNSEEN_SLOT: Known[number] = [
  'check counts an 8-byte slot the verifier does not (not yet analysed; also on the running kernel)',
  [`${SELFTESTS}test_core_reloc_existence.c:test_core_existence`],
];
const VAR_LEN_SLOT: Known[number] = [
  'before 6.12 the verifier does not count the stack a helper may write through a maybe-null pointer of variable length; check counts 8 (not yet analysed)',
  [`${SELFTESTS}verifier_helper_access_var_len.c:ptr_to_mem_or_null_10`],
];
const FOR_EACH_MAIN: Known[number] = [
  'a bpf_for_each_map_elem callback: check counts 8 bytes more in main (not yet analysed; also on the running kernel)',
  ['map_for_each_pass', 'map_for_each_fail'].map((name) => `${SELFTESTS}test_map_ops.c:${name}`),
];
const VAR_OFF_ONE: Known[number] = [SHARED_VAR_OFF.reason, [`${SELFTESTS}verifier_var_off.c:stack_write_followed_by_read`]];
const VAR_OFF: Known[number] = [SHARED_VAR_OFF.reason, SHARED_VAR_OFF.programs];
const FASTCALL: Known[number] = [SHARED_FASTCALL.reason, SHARED_FASTCALL.programs];
const FROM_6_12: Known = [
  FASTCALL,
  VAR_OFF,
  UNSEEN_SLOT,
  FOR_EACH_MAIN,
  [
    'check reports a subprogram the verifier does not print (not yet analysed; also on the running kernel)',
    [`${SELFTESTS}test_map_lookup_percpu_elem.c:sysenter_getuid`],
  ],
  BELOW_FRAME,
];

/**
 * Programs whose line or verdict is known to differ from a lab kernel's, with why, by exact
 * release (measured by `bash scripts/kernel-lab.sh measure --corpus`). The test fails when one more
 * appears, and when one of those listed (among the objects the run loaded) starts to agree.
 */
const KNOWN_DIFFERENCES: Record<string, Known> = {
  '5.10.223': [
    UNSEEN_SLOT,
    VAR_LEN_SLOT,
    VAR_OFF_ONE,
    [
      'a helper 5.10 lacks, called where the function also tests other CO-RE or .kconfig values: libbpf makes the branch dead and 5.10 accepts; check refuses and says it assumes the call is reached (deciding it needs the branch conditions, not yet modelled)',
      [`${SELFTESTS}mptcp_sock.c:_sockops`],
    ],
    [
      'the depth do_check had reached when it stopped at a missing helper: check walks the instructions in order, the verifier explores some branches later',
      [`${SELFTESTS}test_cls_redirect.c:cls_redirect`, `${SELFTESTS}test_cls_redirect_subprogs.c:cls_redirect`],
    ],
    ['bpftune: check counts an 8-byte slot 5.10 does not (not yet analysed)', ['src/probe.bpf.c:entry__setup_net']],
    BELOW_FRAME,
  ],
  '6.1.170': [UNSEEN_SLOT, VAR_LEN_SLOT, VAR_OFF_ONE, FOR_EACH_MAIN, BELOW_FRAME],
  '6.12.107': FROM_6_12,
  '7.2.13': FROM_6_12,
  '7.3-rc7': FROM_6_12,
};

/** A release's known differences as program → why. */
function knownFor(release: string): Map<string, string> {
  return new Map((KNOWN_DIFFERENCES[release] ?? []).flatMap(([reason, programs]) => programs.map((program) => [program, reason] as const)));
}

test(
  `check --kernel <release> agrees with every lab kernel on the real-world corpus (${MODE === 'all' ? 'every object' : 'the CI sample'})`,
  { timeout: 3 * 3600 * 1000 },
  async (t) => {
    const missing = missingLabTool();
    if (missing) return skipOrFail(t, missing);
    const { corpus, reason } = await buildRealWorldCorpus();
    if (!corpus) return skipOrFail(t, reason ?? 'the corpus did not build');
    const root = repositoryRoot();
    const counts = JSON.parse(readFileSync(countsFilePath(root), 'utf8')) as CountsFile;
    const sources = new Map(corpus.objects.map((object) => [object.object, object.relativeSource]));
    assert.deepEqual(
      [counts.sampleEvery, counts.programTimeoutSeconds],
      [SAMPLE_EVERY, PROGRAM_TIMEOUT_SECONDS],
      'test/lab/corpus-counts.json was measured with another sample or time limit: run bash scripts/kernel-lab.sh measure --corpus',
    );
    const objects = MODE === 'all' ? corpus.objects : corpusSample(corpus.objects, SAMPLE_EVERY);
    t.diagnostic(
      `${objects.length} of the corpus's ${corpus.objects.length} objects (${MODE === 'all' ? 'all' : `the sample: one in ${SAMPLE_EVERY}`}), in ${LAB_KERNELS.length} kernels`,
    );
    const run = await runCorpusInLab(LAB_KERNELS, objects, { root, progress: (line) => process.stderr.write(`lab corpus: ${line}\n`) });
    t.diagnostic(
      `kernels that ran (${run.wallSeconds.toFixed(0)} s): ` +
        run.kernels
          .map(
            (kernel) =>
              `${kernel.fetched.release} (${kernel.cachedObjects} objects cached, ${kernel.bootedObjects} booted in ${kernel.boots} boots, ${kernel.bootSeconds.toFixed(0)} s)`,
          )
          .join('; '),
    );
    for (const kernel of run.kernels) {
      const release = kernel.fetched.release;
      await t.test(release, () => {
        const agreement = compareObjectAnalyzer(kernel.run);
        const measured = countsOf(kernel.run, agreement, objects.length);
        t.diagnostic(
          `${release}: ${measured.programs} programs, ${measured.judged} judged: verdicts ${measured.verdictsAgree}/${measured.judged}, lines ${measured.linesAgree}/${measured.judged}, ` +
            `${measured.falseAccepts} false accepts, ${agreement.falseClaims.length} false stack claims; not compared: ${measured.rejectedOtherwise} rejected otherwise, ${measured.noVerdict} without a verdict (${measured.timedOut} timed out)`,
        );
        for (const line of reasonsNotCompared(kernel.run, (object) => `${sources.get(object)}`)) t.diagnostic(`  ${release} not compared: ${line}`);
        const keyOf = (object: string, program: string) => `${sources.get(object)}:${program}`;
        const known = knownFor(release);
        const differences = [...agreement.disagreements, ...agreement.falseClaims];
        const differing = new Set(differences.map(({ result }) => keyOf(result.object, result.program)));
        const loaded = new Set(kernel.run.results.map((result) => keyOf(result.object, result.program)));
        for (const [key, why] of known) if (differing.has(key)) t.diagnostic(`  ${release} known difference: ${key}: ${why}`);
        const unknown = differences.filter(({ result }) => !known.has(keyOf(result.object, result.program)));
        assert.deepEqual(
          unknown.map(({ description }) => description),
          [],
          `${release}: programs where check and the kernel disagree, or check claims a stack violation the kernel never reported`,
        );
        assert.deepEqual(
          [...known.keys()].filter((key) => loaded.has(key) && !differing.has(key)),
          [],
          `${release}: listed as known differences but now agreeing: take them off the list`,
        );
        // A false accept is a failure unless it is a listed difference (whose reason says so).
        const falseAccepts = agreement.falseAccepts.filter(({ result }) => !known.has(keyOf(result.object, result.program)));
        assert.deepEqual(
          falseAccepts.map(({ description }) => description),
          [],
          `${release}: programs the kernel rejects by a stack rule and check accepts`,
        );
        const floor = counts[MODE][release];
        assert.ok(floor, `${release}: no counts measured for it in test/lab/corpus-counts.json: run bash scripts/kernel-lab.sh measure --corpus`);
        for (const field of ['judged', 'verdictsAgree', 'linesAgree'] as const) {
          assert.ok(measured[field] >= floor[field], `${release}: ${field} ${measured[field]}, measured before ${floor[field]} (test/lab/corpus-counts.json)`);
        }
      });
    }
    if (run.failures.length > 0) {
      skipOrFail(t, `not every lab kernel ran: ${run.failures.map((failure) => `${failure.kernel.package}: ${failure.reason}`).join('; ')}`);
    }
  },
);
