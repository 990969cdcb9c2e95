/**
 * The source-side estimate against the ground truth: the verdicts of the fixtures' EXPECT lines, and
 * how close every estimated frame comes to the depth the real verifier printed.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { estimateCommand } from '../../server/src/cli/estimateCommand';
import { type EstimateReport, estimateSource } from '../../server/src/source/estimateSource';
import { UsageError } from '../../server/src/common/commandLine';
import { stringLiteralBytes } from '../../server/src/source/constExpr';
import { parseKernelProfiles } from '../../server/src/rules/kernelProfile';
import { type Fixture, type FixtureExpectation, listFixtures } from '../support/fixtures';
import { compareWithMeasured, labExpectations, readMeasuredFiles } from '../support/kernelLab';

/** The header's lines (the running kernel's) and the lab's (every measured kernel). */
function expectationsOf(fixture: Fixture): FixtureExpectation[] {
  return [...fixture.expectations, ...labExpectations(fixture)];
}

// 6.18 from the fixtures' measured lines, 6.1.170 and 5.10.223 from the kernel lab's measured files.
const KERNELS = ['6.18', '6.1.170', '5.10.223'];
const { profiles } = parseKernelProfiles(KERNELS, true);

const reports = new Map<string, Promise<EstimateReport>>();
function estimate(fixture: Fixture): Promise<EstimateReport> {
  let report = reports.get(fixture.source);
  if (!report) {
    report = estimateSource(fixture.source, readFileSync(fixture.source, 'utf8'), profiles);
    reports.set(fixture.source, report);
  }
  return report;
}

function fixtureNamed(name: string): Fixture {
  const fixture = listFixtures().find((candidate) => basename(candidate.source) === name);
  assert.ok(fixture, `fixture ${name}`);
  return fixture;
}

/** "accepted" or the message of the violation the kernel prints. */
function outcome(verdict: EstimateReport['programs'][number]['verdicts'][number]): string {
  if (verdict.accepted) return 'accepted';
  return (verdict.violations.find((violation) => violation.reportedByKernel) ?? verdict.violations[0]).message;
}

/**
 * Where the estimate's verdict is known to differ from a kernel's, by `program@kernel`, with why: a
 * frame the estimate gets wrong, not a rule. Listed so that a fix shows up as a failure to delete the line.
 */
const KNOWN_VERDICT_MISSES = new Map([
  ['xdp_parse_with_dump@6.18', 'clang turns the 14-byte eth, copied out of head, into loads from head (a 200-byte frame); the estimate keeps it (216)'],
]);

async function verdictMismatches(fixture: Fixture): Promise<string[]> {
  const report = await estimate(fixture);
  const mismatches: string[] = [];
  for (const expectation of expectationsOf(fixture)) {
    const kernelIndex = KERNELS.indexOf(expectation.kernel);
    if (kernelIndex === -1) continue;
    const program = report.programs.find((candidate) => candidate.name === expectation.program);
    const expected = expectation.accepted ? 'accepted' : expectation.error;
    const actual = program ? outcome(program.verdicts[kernelIndex]) : 'no such program';
    const key = `${expectation.program}@${expectation.kernel}`;
    const known = KNOWN_VERDICT_MISSES.has(key);
    if (known && actual === expected) mismatches.push(`${key}: agrees now; delete it from KNOWN_VERDICT_MISSES`);
    if (!known && actual !== expected) mismatches.push(`${key}: expected ${expected}, estimated ${actual}`);
  }
  return mismatches;
}

for (const name of [
  'seed_acl_stack_fmt.bpf.c',
  'tailcall_threshold.bpf.c',
  'seed_no_global_data.bpf.c',
  'seed_rodata_fmt.bpf.c',
  'combined_512.bpf.c',
  'call_depth_frames.bpf.c',
  'dead_code.bpf.c',
  'bpf_loop_callback.bpf.c',
  'may_goto.bpf.c',
  'printk_variants.bpf.c',
  'missing_helpers.bpf.c',
  'xdp_parser.bpf.c',
  'hidden_global.bpf.c',
  'naked_parameters.bpf.c',
  'lazy_global.bpf.c',
]) {
  test(`the estimate of ${name} gets the verifiers' verdicts for ${KERNELS.join(', ')}`, async () => {
    assert.deepEqual(await verdictMismatches(fixtureNamed(name)), []);
  });
}

/**
 * Helpers a kernel lacks, judged on the estimate as on the object: for the lab's 5.10.223 (which
 * lacks bpf_trace_vprintk, bpf_snprintf, bpf_ktime_get_coarse_ns and bpf_xdp_load_bytes) and
 * 6.1.170 (which has them), the verdict and error line of every program of the fixtures that call
 * them, through the comparison the object side is held to; on 5.10.223, where do_check stops at the
 * helper, also the line it prints (the depth each frame had reached there). 6.18's verdicts are the
 * fixtures' own lines, above.
 */
const HELPER_FIXTURES = ['printk_variants.bpf.c', 'missing_helpers.bpf.c', 'xdp_parser.bpf.c'];
const HELPER_KERNELS = ['5.10.223', '6.1.170'];

/** Stack-depth lines the estimate gets wrong where do_check stops, by `object program`, with why. */
const KNOWN_STOPPED_LINE_MISSES = new Map([
  [
    'missing_helpers.bpf.o helper_in_global',
    "clang stores value[0] at fp-8, above value[1]: the verifier had touched 8 bytes of global_stamp's frame, the estimate's layout 16",
  ],
]);

test("the estimate gets the lab kernels' verdicts for helpers newer than them, and the line a stopped do_check prints", async () => {
  const files = readMeasuredFiles().filter((file) => HELPER_KERNELS.includes(file.release));
  assert.deepEqual(files.map((file) => file.release).sort(), [...HELPER_KERNELS].sort());
  const { profiles: labProfiles } = parseKernelProfiles(HELPER_KERNELS, true);
  const estimates = new Map<string, EstimateReport>();
  for (const name of HELPER_FIXTURES) {
    const fixture = fixtureNamed(name);
    estimates.set(fixture.object, await estimateSource(fixture.source, readFileSync(fixture.source, 'utf8'), labProfiles));
  }
  const summary: string[] = [];
  for (const file of files) {
    const objects = Object.fromEntries(Object.entries(file.objects).filter(([object]) => HELPER_FIXTURES.includes(object.replace(/\.o$/, '.c'))));
    assert.equal(Object.keys(objects).length, HELPER_FIXTURES.length, `${file.release} measured every helper fixture`);
    const kernel = HELPER_KERNELS.indexOf(file.release);
    const agreement = compareWithMeasured({ ...file, objects }, (object) =>
      (estimates.get(object)?.programs ?? []).map((program) => ({ ...program, verdicts: [program.verdicts[kernel]] })),
    );
    summary.push(`${file.release}: ${agreement.verdictsAgree}/${agreement.judged} verdicts, ${agreement.linesAgree}/${agreement.judged} lines`);
    assert.equal(agreement.verdictsAgree, agreement.judged, `${file.release}:\n${agreement.differences.join('\n')}`);
    if (file.release !== '5.10.223') continue;
    const lineMisses = agreement.differences.filter((line) => !KNOWN_STOPPED_LINE_MISSES.has(line.slice(0, line.indexOf(':'))));
    assert.deepEqual(lineMisses, [], file.release);
    assert.equal(agreement.judged - agreement.linesAgree, KNOWN_STOPPED_LINE_MISSES.size, 'a known miss that agrees now: delete it');
  }
  console.log(`estimate vs the lab on ${HELPER_FIXTURES.join(', ')}: ${summary.join('; ')}`);
});

/**
 * 7.3's per-subprogram lines from the source alone: names, linkage and numbers, word for word as
 * 7.3-rc7 printed them. naked_parameters.bpf.c: a __naked function with a parameter makes every name
 * of the object "<unknown>"; hidden_global.bpf.c: a __hidden function is printed "static".
 */
test("the estimate prints 7.3's subprogram lines as 7.3-rc7 did, names and linkage included", async () => {
  const names = ['naked_parameters.bpf.c', 'hidden_global.bpf.c'];
  const [file] = readMeasuredFiles().filter((measured) => measured.release === '7.3-rc7');
  assert.ok(file, 'the lab measured 7.3-rc7');
  const { profiles: labProfiles } = parseKernelProfiles(['7.3-rc7'], true);
  const estimates = new Map<string, EstimateReport>();
  for (const name of names) {
    const fixture = fixtureNamed(name);
    estimates.set(fixture.object, await estimateSource(fixture.source, readFileSync(fixture.source, 'utf8'), labProfiles));
  }
  const objects = Object.fromEntries(Object.entries(file.objects).filter(([object]) => names.includes(object.replace(/\.o$/, '.c'))));
  assert.equal(Object.keys(objects).length, names.length);
  const agreement = compareWithMeasured({ ...file, objects }, (object) => estimates.get(object)?.programs ?? []);
  assert.equal(agreement.judged, 4);
  assert.equal(agreement.linesAgree, agreement.judged, agreement.differences.join('\n'));
});

test('the seed: struct copies, the on-stack printk format, and the frames in libbpf order', async () => {
  const report = await estimate(fixtureNamed('seed_acl_stack_fmt.bpf.c'));
  const overlay = report.functions.find((fn) => fn.name === 'acl_overlay');
  assert.ok(overlay);
  assert.equal(overlay.section, 'tc');
  assert.equal(overlay.inline, false);
  assert.equal(overlay.frameBytes, 200);
  assert.deepEqual(
    overlay.items.map((item) => [item.what, item.name, item.bytes]),
    [
      ['local', 'tun', 48],
      ['local', 'flow', 48],
      ['local', 'inner', 56],
      ['printk-format', '____fmt', 48],
    ],
  );
  const nextStage = report.functions.find((fn) => fn.name === 'acl_next_stage');
  assert.equal(nextStage?.section, null, 'the map attribute before it is not its section');
  const program = report.programs.find((candidate) => candidate.name === 'acl_overlay');
  assert.deepEqual(
    program?.subprograms.map((sub) => sub.name),
    ['acl_overlay', 'acl_check', 'acl_next_stage'],
  );
  assert.equal(program?.stackDepths, '200+16+0');
  assert.equal(program?.type, 'sched_cls');
  assert.deepEqual(
    program?.subprograms.map((sub) => sub.hasTailCall),
    [false, false, true],
  );
});

test('printk arguments, inlined helpers and volatile scalars are items of the frame', async () => {
  const printk = await estimate(fixtureNamed('printk_variants.bpf.c'));
  const four = printk.functions.find((fn) => fn.name === 'printk_4_args');
  assert.ok(four?.items.some((item) => item.what === 'printk-args' && item.name === '___param' && item.bytes === 32));
  assert.ok(!four?.items.some((item) => item.what === 'printk-format'), 'the format of bpf_printk is static, in .rodata');

  const inline = await estimate(fixtureNamed('inline_and_volatile.bpf.c'));
  const once = inline.functions.find((fn) => fn.name === 'inline_once');
  assert.deepEqual(
    once?.items.map((item) => [item.what, item.name, item.bytes]),
    [
      ['local', 'frame', 128],
      ['inlined', 'read_header', 96],
    ],
  );
  assert.equal(inline.functions.find((fn) => fn.name === 'read_header')?.inline, true);
  const scalars = inline.functions.find((fn) => fn.name === 'volatile_scalars');
  assert.equal(scalars?.items.length, 5);
  assert.ok(!inline.programs.some((program) => program.subprograms.some((sub) => sub.name === 'read_header')));
});

test('callbacks: bpf_loop is a callback edge, a timer callback is an async root', async () => {
  const loop = await estimate(fixtureNamed('bpf_loop_callback.bpf.c'));
  const big = loop.programs.find((program) => program.name === 'loop_big_callback');
  assert.deepEqual(
    big?.subprograms[0].calls.map((call) => [call.callee, call.kind]),
    [['big_step', 'callback']],
  );
  const timers = await estimate(fixtureNamed('timer_callback.bpf.c'));
  const arm = timers.programs.find((program) => program.name === 'arm_timer_big');
  assert.equal(arm?.subprograms[1]?.isAsyncCallback, true);
});

test('string literal sizes count escapes as one byte', () => {
  assert.equal(stringLiteralBytes('"a\\n"'), 2);
  assert.equal(stringLiteralBytes('"\\x41\\0\\101z"'), 4);
  assert.equal(stringLiteralBytes('"\\u00e9x"'), 3, 'a universal character name is stored as UTF-8');
});

test('the estimate command: JSON shape, exit status, usage errors', async () => {
  let out = '';
  const io = { stdout: (text: string) => (out += text), stderr: () => undefined, version: 'test' };
  const fixture = fixtureNamed('seed_acl_stack_fmt.bpf.c');
  const status = await estimateCommand(['--kernel', '6.18,6.1', '--format', 'json', fixture.source], io);
  assert.equal(status, 1);
  const json = JSON.parse(out);
  assert.equal(json.file, fixture.source);
  assert.deepEqual(Object.keys(json.functions[0]), ['name', 'line', 'section', 'inline', 'frameBytes', 'items', 'hiddenBytes', 'hiddenReasons']);
  assert.deepEqual(
    json.programs[0].verdicts.map((verdict: { accepted: boolean }) => verdict.accepted),
    [true, false],
  );
  await assert.rejects(async () => estimateCommand(['--format', 'sarif', fixture.source], io), UsageError);
  await assert.rejects(async () => estimateCommand([], io), UsageError);
  assert.equal(await estimateCommand(['--kernel', '6.18', '/nonexistent/x.bpf.c'], io), 2);
});

/**
 * Not an assertion: how often the estimate of a frame lands in the same 16-byte bucket as the depth
 * the verifier printed (the measured kernel=6.18 depths lines, compared with the estimate's printed
 * line: subprograms removed as dead are not in it), and how many verdicts agree over every EXPECT line.
 */
test('report: bucket agreement of estimated frames with the verifier, over every fixture', async () => {
  const allKernels = [...new Set(listFixtures().flatMap((fixture) => expectationsOf(fixture).map((expectation) => expectation.kernel)))];
  const all = parseKernelProfiles(allKernels, true).profiles;
  let frames = 0;
  let sameBucket = 0;
  let exact = 0;
  let skippedPrograms = 0;
  let verdicts = 0;
  let verdictsAgree = 0;
  const misses: string[] = [];
  const functionsSeen = new Map<string, boolean>();
  for (const fixture of listFixtures()) {
    const report = await estimateSource(fixture.source, readFileSync(fixture.source, 'utf8'), all);
    for (const expectation of expectationsOf(fixture)) {
      const program = report.programs.find((candidate) => candidate.name === expectation.program);
      const verdict = program?.verdicts[allKernels.indexOf(expectation.kernel)];
      const expected = expectation.accepted ? 'accepted' : expectation.error;
      const actual = verdict ? outcome(verdict) : 'no such program';
      verdicts++;
      if (actual === expected) verdictsAgree++;
      else misses.push(`${basename(fixture.source)}: verdict ${expectation.program}@${expectation.kernel}: expected ${expected}, estimated ${actual}`);
      if (expectation.kernel !== '6.18' || !expectation.depths) continue;
      const measured = expectation.depths.split('+').map(Number);
      const printedSubs = program?.subprograms.filter((sub) => sub.verified || !program.verdicts[allKernels.indexOf('6.18')]?.accepted) ?? [];
      const printed = program ? program.stackDepths.split('+').map(Number) : [];
      if (!program || printed.length !== measured.length) {
        skippedPrograms++;
        misses.push(`${basename(fixture.source)}: ${expectation.program} has frames ${program?.stackDepths ?? '-'}, verifier ${expectation.depths}`);
        continue;
      }
      printed.forEach((depth, index) => {
        frames++;
        const agree = Math.ceil(depth / 16) === Math.ceil(measured[index] / 16);
        if (agree) sameBucket++;
        if (depth === measured[index]) exact++;
        else misses.push(`${basename(fixture.source)}: ${expectation.program}/${printedSubs[index]?.name} estimated ${depth}, verifier ${measured[index]}`);
        const key = `${basename(fixture.source)}:${printedSubs[index]?.name}`;
        functionsSeen.set(key, (functionsSeen.get(key) ?? true) && agree);
      });
    }
  }
  const functionsAgree = [...functionsSeen.values()].filter(Boolean).length;
  console.log(
    `frame estimate vs verifier (6.18 depths): ${sameBucket}/${frames} frames in the same 16-byte bucket, ${exact}/${frames} exact; ` +
      `${functionsAgree}/${functionsSeen.size} distinct functions always in the same bucket; ${skippedPrograms} programs with a different frame count; ` +
      `verdicts for ${allKernels.join(', ')}: ${verdictsAgree}/${verdicts} agree`,
  );
  for (const miss of misses) console.log(`  ${miss}`);
  assert.ok(frames > 0);
});
