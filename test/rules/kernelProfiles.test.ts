/**
 * The kernel profiles against what real kernels did (Debian 5.10.223, 6.1.170, 6.12.107, 7.2.13,
 * 7.3-rc7 in the kernel lab, and this machine's 6.18.44 build): each measured fact pinned on its own,
 * with the same 248 + 264 and frame-chain shapes the lab loaded.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { programAttachForSection } from '../../server/src/rules/programType';
import type { FrameGraph, FrameNode } from '../../server/src/rules/frameGraph';
import { type KernelProfile, parseKernelProfiles, privateStackKey, ruleSetFor } from '../../server/src/rules/kernelProfile';
import { type SubprogramReport, type VerdictReport, addStackDepthLines, verdictReport } from '../../server/src/rules/report';
import { TAIL_CALL_WITH_CALLS_MESSAGE, judgeStack } from '../../server/src/rules/stackRules';

function node(name: string, stackDepth: number, extra: Partial<FrameNode> = {}): FrameNode {
  return { name, stackDepth, hasTailCall: false, isGlobal: false, isAsyncCallback: false, calls: [], ...extra };
}

/** The lab's private-stack probe: main writes fp-248 and calls a static subprog that writes fp-264. */
function privateStackProbe(section: string, tailCall = false): FrameGraph {
  return {
    programType: programAttachForSection(section).type,
    section,
    subprograms: [node('main', 248, { calls: [{ callee: 1, kind: 'call' }] }), node('sub', 264, { hasTailCall: tailCall })],
  };
}

function chain(length: number, global: boolean): FrameGraph {
  return {
    programType: 'sched_cls',
    section: 'tc',
    subprograms: Array.from({ length }, (_, index) =>
      node(`f${index}`, 8, { isGlobal: global && index > 0, calls: index + 1 < length ? [{ callee: index + 1, kind: 'call' }] : [] }),
    ),
  };
}

const kernel = (version: string, jit = true): KernelProfile => ({ version, jit });
const COMBINED_528 = 'combined stack size of 2 calls is 528. Too large';

test('--kernel takes exact releases and major.minor alike', () => {
  const { profiles, errors, warnings } = parseKernelProfiles(['6.1.170,6.12.107', '7.2.13', '5.10.223', '7.3', '7.3-rc7'], true);
  assert.deepEqual(
    profiles.map((profile) => profile.version),
    ['6.1.170', '6.12.107', '7.2.13', '5.10.223', '7.3'],
  );
  assert.deepEqual(errors, []);
  assert.deepEqual(warnings, []);
});

test("SEC names map to libbpf's program type, expected attach type and sleepability", () => {
  assert.deepEqual(programAttachForSection('kprobe.multi/do_*'), { type: 'kprobe', expectedAttachType: 'trace_kprobe_multi', sleepable: false });
  assert.deepEqual(programAttachForSection('kretprobe.multi/x'), { type: 'kprobe', expectedAttachType: 'trace_kprobe_multi', sleepable: false });
  assert.deepEqual(programAttachForSection('kprobe.session/x'), { type: 'kprobe', expectedAttachType: 'trace_kprobe_session', sleepable: false });
  assert.deepEqual(programAttachForSection('uprobe.s/bin:f'), { type: 'kprobe', expectedAttachType: 'none', sleepable: true });
  assert.deepEqual(programAttachForSection('tp_btf/sched_switch'), { type: 'tracing', expectedAttachType: 'trace_raw_tp', sleepable: false });
  assert.deepEqual(programAttachForSection('iter/task'), { type: 'tracing', expectedAttachType: 'trace_iter', sleepable: false });
  assert.deepEqual(programAttachForSection('raw_tp.w/x'), { type: 'raw_tracepoint_writable', expectedAttachType: 'none', sleepable: false });
  assert.deepEqual(programAttachForSection('syscall'), { type: 'syscall', expectedAttachType: 'none', sleepable: true });
  assert.equal(programAttachForSection('?lsm.s/file_open').sleepable, true);
});

test('Debian 7.2/7.3 and upstream 6.18: 248+264 runs on the private stack for every tracing kind but raw_tp.w, iter, lsm and the rest', () => {
  const privateKinds = [
    'kprobe/f',
    'kretprobe/f',
    'uprobe/b:f',
    'uprobe.s/b:f',
    'usdt/b:p:n',
    'ksyscall/openat',
    'kprobe.multi/f',
    'kretprobe.multi/f',
    'tracepoint/a/b',
    'raw_tp/x',
    'perf_event',
    'tp_btf/sched_switch',
    'fentry/f',
    'fexit/f',
    'fmod_ret/f',
  ];
  const sharedKinds = ['raw_tp.w/x', 'iter/task', 'lsm/file_open', 'struct_ops/x', 'syscall', 'tc', 'xdp', 'socket', 'cgroup_skb/ingress'];
  for (const version of ['7.2.13', '7.3', '6.18']) {
    for (const section of privateKinds) assert.equal(judgeStack(privateStackProbe(section), kernel(version)).accepted, true, `${section} on ${version}`);
    for (const section of sharedKinds) {
      assert.equal(judgeStack(privateStackProbe(section), kernel(version)).violations[0]?.message, COMBINED_528, `${section} on ${version}`);
    }
  }
});

test('a tail call anywhere turns the private stack off', () => {
  const verdict = judgeStack(privateStackProbe('kprobe/f', true), kernel('7.2.13'));
  assert.equal(verdict.accepted, false);
  assert.deepEqual(verdict.privateStackSubprograms, []);
});

test('6.12.107 has the bookkeeping but no private stack; none without the JIT', () => {
  assert.equal(judgeStack(privateStackProbe('kprobe/f'), kernel('6.12.107')).violations[0].message, COMBINED_528);
  assert.equal(judgeStack(privateStackProbe('tp_btf/x'), kernel('6.18', false)).accepted, false);
});

test("this machine's 6.18.44 build, as probed: only kprobe.multi and kprobe.session kprobes get the private stack", () => {
  const probed: KernelProfile = {
    version: '6.18',
    jit: true,
    probed: {
      buildId: 'test',
      release: '6.18.44-fc',
      privateStack: {
        [privateStackKey(programAttachForSection('kprobe/f'))]: false,
        [privateStackKey(programAttachForSection('kprobe.multi/f'))]: true,
        [privateStackKey(programAttachForSection('kprobe.session/f'))]: true,
        [privateStackKey(programAttachForSection('tp_btf/x'))]: true,
      },
    },
  };
  assert.equal(judgeStack(privateStackProbe('kprobe/f'), probed).violations[0].message, COMBINED_528);
  assert.equal(judgeStack(privateStackProbe('ksyscall/f'), probed).accepted, false);
  assert.equal(judgeStack(privateStackProbe('kprobe.multi/f'), probed).accepted, true);
  assert.equal(judgeStack(privateStackProbe('kretprobe.multi/f'), probed).accepted, true);
  assert.equal(judgeStack(privateStackProbe('kprobe.session/f'), probed).accepted, true);
  assert.equal(judgeStack(privateStackProbe('tp_btf/x'), probed).accepted, true);
  // fentry could not be probed (EPERM): the release's rule stands, and the verdict says so.
  const fentry = judgeStack(privateStackProbe('fentry/f'), probed);
  assert.equal(fentry.accepted, true);
  assert.match(fentry.assumes.join('\n'), /tracing programs \(expected attach type trace_fentry\): assumed from the release/);
  assert.deepEqual(judgeStack(privateStackProbe('kprobe/f'), probed).assumes, []);
});

test('rounding: 32 bytes on 6.1.170, 16 with the JIT from 6.9', () => {
  const graph: FrameGraph = {
    programType: 'sched_cls',
    section: 'tc',
    subprograms: [node('main', 256, { calls: [{ callee: 1, kind: 'call' }] }), node('sub', 264)],
  };
  assert.equal(judgeStack(graph, kernel('6.1.170')).violations[0].message, 'combined stack size of 2 calls is 544. Too large');
  assert.equal(ruleSetFor(kernel('6.9')).roundStackDepth(264), 272);
  assert.equal(ruleSetFor(kernel('6.8')).roundStackDepth(264), 288);
});

test('6.1.170 checks timer callbacks as roots of their own: main 260 + callback 480 loads', () => {
  const graph: FrameGraph = {
    programType: 'sched_cls',
    section: 'tc',
    subprograms: [node('main', 260, { calls: [{ callee: 1, kind: 'callback' }] }), node('timer_cb', 480, { isAsyncCallback: true })],
  };
  assert.equal(judgeStack(graph, kernel('6.1.170')).accepted, true);
  assert.equal(judgeStack(graph, kernel('6.1')).accepted, true);
  assert.equal(judgeStack(graph, kernel('6.2')).accepted, false);
  const early = judgeStack(graph, kernel('6.1.20'));
  assert.equal(early.accepted, false);
  assert.match(early.assumes[0], /measured on 6\.1\.170 only/);
});

test('7.2: 16 frames; a 17th static frame fails in do_check; chains through globals are not frame-limited', () => {
  assert.equal(judgeStack(chain(9, false), kernel('7.1')).violations[0].message, 'the call stack of 9 frames is too deep');
  assert.equal(judgeStack(chain(9, true), kernel('7.1')).violations[0].message, 'the call stack of 8 frames is too deep !');
  assert.equal(judgeStack(chain(16, false), kernel('7.2.13')).accepted, true);
  assert.equal(judgeStack(chain(17, false), kernel('7.2.13')).violations[0].message, 'the call stack of 17 frames is too deep');
  assert.equal(judgeStack(chain(9, true), kernel('7.2.13')).accepted, true);
  assert.equal(judgeStack(chain(17, true), kernel('7.3')).accepted, true);
  // The 512-byte sum still applies through globals.
  const heavy = chain(3, true);
  heavy.subprograms.forEach((sub) => (sub.stackDepth = 200));
  assert.equal(judgeStack(heavy, kernel('7.2.13')).violations[0].message, 'combined stack size of 3 calls is 624. Too large');
});

test('before 5.10, and without the JIT, bpf-to-bpf calls and tail calls may not be mixed', () => {
  const graph = privateStackProbe('tc', true);
  graph.subprograms.forEach((sub) => (sub.stackDepth = 8));
  for (const profile of [kernel('5.4'), kernel('4.19'), kernel('6.18', false), kernel('5.10.223', false)]) {
    const verdict = judgeStack(graph, profile);
    assert.equal(verdict.violations[0]?.message, TAIL_CALL_WITH_CALLS_MESSAGE, profile.version);
    assert.equal(verdict.violations[0].phase, 'do_check');
  }
  assert.equal(judgeStack(graph, kernel('5.10.223')).accepted, true);
  // A tail call without bpf-to-bpf calls is fine everywhere.
  assert.equal(judgeStack({ ...graph, subprograms: [node('main', 8, { hasTailCall: true })] }, kernel('5.4')).accepted, true);
});

test('versions outside the model are judged as the nearest one, with a warning', () => {
  const { warnings } = parseKernelProfiles(['3.10,99.0,7.3'], true);
  assert.deepEqual(warnings, [
    'kernel 3.10 is older than any the rules model (4.16, the first with bpf-to-bpf calls); judged as 4.16',
    "kernel 99.0 is newer than any measured (newest: 7.3); judged with 7.3's behaviour",
  ]);
  const verdict = verdictReport(judgeStack(chain(17, true), kernel('99.0')));
  assert.equal(verdict.accepted, true);
  assert.match(verdict.notes[0], /newer than any measured/);
});

function subprogram(name: string, stackDepth: number, byteDepth: number, extra: Partial<SubprogramReport> = {}): SubprogramReport {
  return {
    name,
    stackDepth,
    checkedDepth: stackDepth,
    byteDepth,
    hiddenReasons: [],
    hiddenBytes: [],
    verified: true,
    hasTailCall: false,
    isGlobal: false,
    isAsyncCallback: false,
    tailCalls: [],
    calls: [],
    ...extra,
  };
}

test('each kernel prints its own stack-depth line', () => {
  const subs = [subprogram('main', 240, 237), subprogram('helper', 16, 13), subprogram('g', 8, 8, { isGlobal: true })];
  const graph: FrameGraph = {
    programType: 'sched_cls',
    section: 'tc',
    subprograms: [node('main', 240, { calls: [{ callee: 1, kind: 'call' }] }), node('helper', 16), node('g', 8, { isGlobal: true })],
  };
  const versions = ['5.10.223', '6.1.170', '6.12.107', '7.2.13', '7.3'];
  const profiles = versions.map((version) => kernel(version));
  const verdicts: VerdictReport[] = profiles.map((profile) => verdictReport(judgeStack(graph, profile)));
  addStackDepthLines(subs, verdicts, profiles, true);
  assert.deepEqual(
    verdicts.map((verdict) => verdict.stackDepthLine),
    ['stack depth 237+13+8+0', 'stack depth 237+13+8+0', 'stack depth 240+16+8+0', 'stack depth 240+16+8 max 256', 'stack depth max 256'],
  );
  assert.deepEqual(verdicts[4].subprogramStackLines, [
    { index: 0, name: 'main', kind: 'main', stack: 240 },
    { index: 1, name: 'helper', kind: 'static', stack: 16 },
    { index: 2, name: 'g', kind: 'global', stack: 8 },
  ]);
  assert.equal(verdicts[3].subprogramStackLines, undefined);
});

test('a running kernel that could not be probed: every verdict says what it assumed', () => {
  const unprobed: KernelProfile = {
    version: '6.18',
    jit: true,
    unprobed: ['the running kernel (6.18.44) was not probed (EPERM): its rules come from its version'],
  };
  const verdict = judgeStack(privateStackProbe('kprobe/f'), unprobed);
  assert.equal(verdict.accepted, true);
  assert.deepEqual(verdict.assumes, unprobed.unprobed);
  assert.deepEqual(verdictReport(verdict).assumes, unprobed.unprobed);
});
