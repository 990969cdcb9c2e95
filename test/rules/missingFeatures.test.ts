/**
 * kernel-lacks-feature: what bpf_check refuses before check_max_stack_depth when a kernel predates
 * something the program uses, in the order of its passes, and the "stack depth" line it prints when
 * it stops. The lab's measured files hold the same rule to real kernels (test/lab/measured.test.ts);
 * these tests pin the order and the stopped line on graphs built by hand.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FrameGraph, FrameNode } from '../../server/src/rules/frameGraph';
import { helperIntroducedIn, ruleSetFor } from '../../server/src/rules/kernelProfile';
import { judgeStack } from '../../server/src/rules/stackRules';
import { addStackDepthLines, verdictReport } from '../../server/src/rules/report';
import type { SubprogramReport } from '../../server/src/rules/report';

const K510 = { version: '5.10.223', jit: true };
const K515 = { version: '5.15', jit: true };
const K61 = { version: '6.1.170', jit: true };
const K618 = { version: '6.18', jit: true };

function node(name: string, stackDepth: number, extra: Partial<FrameNode> = {}): FrameNode {
  return { name, stackDepth, byteDepth: stackDepth, hasTailCall: false, isGlobal: false, isAsyncCallback: false, calls: [], ...extra };
}

function reported(graph: FrameGraph, profile: { version: string; jit: boolean }) {
  const verdict = judgeStack(graph, profile);
  return { verdict, violation: verdict.violations.find((violation) => violation.reportedByKernel) };
}

/** The line the kernel prints for `graph`, through the report as both front ends build it. */
function printedLine(graph: FrameGraph, profile: { version: string; jit: boolean }): string | undefined {
  const verdict = verdictReport(judgeStack(graph, profile));
  const subprograms: SubprogramReport[] = graph.subprograms.map((sub) => ({
    name: sub.name,
    stackDepth: sub.stackDepth,
    checkedDepth: sub.stackDepth,
    byteDepth: sub.byteDepth,
    hiddenReasons: [],
    hiddenBytes: [],
    verified: true,
    hasTailCall: sub.hasTailCall,
    isGlobal: sub.isGlobal,
    isAsyncCallback: sub.isAsyncCallback,
    tailCalls: [],
    calls: sub.calls.map((call) => ({ callee: graph.subprograms[call.callee].name, kind: call.kind })),
  }));
  addStackDepthLines(subprograms, [verdict], [profile], false);
  return verdict.stackDepthLine;
}

/** main takes `cb` by address and calls `helper` (bpf_loop style); cb calls the static `step`. */
function everythingOld(section: string): FrameGraph {
  return {
    programType: 'kprobe',
    section,
    hasFuncInfo: true,
    subprograms: [
      node('main', 64, {
        calls: [{ callee: 1, kind: 'callback', at: 4 }],
        helperCalls: [{ helper: 181, name: 'bpf_loop', at: 6 }],
        mayGoto: { at: 8 },
      }),
      node('cb', 32, { calls: [{ callee: 2, kind: 'call', at: 1 }] }),
      node('step', 16),
    ],
  };
}

test("bpf_check's order: func_info before the sleepable check before the opcode before do_check's helper", () => {
  const sleepable = everythingOld('uprobe.s');
  assert.equal(reported(sleepable, K510).violation?.message, "number of funcs in func_info doesn't match number of subprogs");
  assert.equal(reported(sleepable, K515).violation?.message, 'Only fentry/fexit/fmod_ret and lsm programs can be sleepable');
  const plain = everythingOld('uprobe');
  assert.equal(reported(plain, K515).violation?.message, 'unknown opcode e5');
  plain.subprograms[0].mayGoto = undefined;
  assert.equal(reported(plain, K515).violation?.message, 'invalid func unknown#181');
  assert.equal(reported(plain, K618).verdict.accepted, true);
  assert.equal(reported(everythingOld('uprobe.s'), K618).verdict.accepted, true);
});

test('each refusal names what the kernel lacks and the release that brought it', () => {
  const graph = everythingOld('uprobe.s');
  assert.deepEqual(reported(graph, K510).violation?.missingFeature, {
    feature: 'callback-address',
    what: 'the callback cb passed by address (BPF_PSEUDO_FUNC)',
    since: '5.13',
  });
  assert.equal(reported(graph, K515).violation?.missingFeature?.since, '6.0');
  graph.subprograms[0].mayGoto = undefined;
  graph.section = 'uprobe';
  assert.deepEqual(reported(graph, K515).violation?.missingFeature, { feature: 'helper', what: 'bpf_loop (helper 181)', since: '5.17' });
});

test('before 5.13 a function only taken by address is no subprogram: the stopped line leaves it out', () => {
  // main, cb (taken by address) and step (called from cb): 5.10 counts main and step.
  assert.equal(printedLine(everythingOld('uprobe'), K510), 'stack depth 0+0');
  assert.equal(printedLine(everythingOld('uprobe'), K61), 'stack depth 0+0+0');
});

test('without func_info the callback is refused at its ld_imm64, in instruction order with may_goto', () => {
  const graph = everythingOld('uprobe');
  graph.hasFuncInfo = false;
  assert.equal(reported(graph, K510).violation?.message, 'unrecognized bpf_ld_imm64 insn');
  graph.subprograms[0].mayGoto = { at: 2 };
  assert.equal(reported(graph, K510).violation?.message, 'unknown opcode e5');
});

test('a stopped do_check prints the depth reached: callers up to their call, the stopping function up to the helper', () => {
  const graph: FrameGraph = {
    programType: 'sched_cls',
    section: 'tc',
    subprograms: [
      node('main', 120, {
        depthSteps: [
          { at: 2, byteDepth: 20 },
          { at: 9, byteDepth: 120 },
        ],
        calls: [
          { callee: 1, kind: 'call', at: 5 },
          { callee: 2, kind: 'call', at: 12 },
        ],
      }),
      node('parse', 44, {
        depthSteps: [
          { at: 1, byteDepth: 12 },
          { at: 7, byteDepth: 44 },
        ],
        helperCalls: [
          { helper: 4, at: 0 },
          { helper: 189, name: 'bpf_xdp_load_bytes', at: 5 },
        ],
      }),
      node('later', 8),
    ],
  };
  const { violation } = reported(graph, K510);
  assert.equal(violation?.message, 'invalid func unknown#189');
  assert.deepEqual(
    violation?.frames.map((frame) => frame.name),
    ['main', 'parse'],
  );
  assert.equal(printedLine(graph, K510), 'stack depth 20+12+0');
  // A static callee finished before the stop prints its whole depth.
  graph.subprograms[1].helperCalls = [];
  graph.subprograms[2].helperCalls = [{ helper: 200, at: 0 }];
  graph.subprograms[2].depthSteps = [{ at: 1, byteDepth: 8 }];
  assert.equal(printedLine(graph, K510), 'stack depth 120+44+0');
  // Without the steps (the source side) the whole frame is as close as it gets.
  graph.subprograms[2].depthSteps = undefined;
  assert.equal(printedLine(graph, K510), 'stack depth 120+44+8');
  // Dead calls are not followed by do_check.
  graph.subprograms[0].calls[1].deadCode = true;
  assert.equal(reported(graph, K510).verdict.accepted, true);
});

test('global functions are verified before main: a stop in one leaves main at 0, earlier globals whole', () => {
  const graph: FrameGraph = {
    programType: 'sched_cls',
    section: 'tc',
    subprograms: [
      node('main', 64, {
        depthSteps: [{ at: 0, byteDepth: 64 }],
        calls: [
          { callee: 1, kind: 'call', at: 3 },
          { callee: 2, kind: 'call', at: 4 },
        ],
      }),
      node('first_global', 40, { isGlobal: true }),
      node('second_global', 24, { isGlobal: true, depthSteps: [{ at: 0, byteDepth: 8 }], helperCalls: [{ helper: 177, at: 2 }] }),
    ],
  };
  assert.equal(printedLine(graph, K510), 'stack depth 0+40+8');
});

test('helper ids: each upstream release from its limit, the lab kernels as measured, the running kernel as probed', () => {
  assert.equal(helperIntroducedIn(165), '5.13');
  assert.equal(helperIntroducedIn(177), '5.16');
  assert.equal(helperIntroducedIn(189), '5.18');
  assert.equal(helperIntroducedIn(211), '6.2');
  assert.equal(helperIntroducedIn(212), undefined);
  assert.equal(ruleSetFor({ version: '5.15.160', jit: true }).helperIdLimit, 176);
  assert.equal(ruleSetFor(K510).helperIdLimit, 156);
  assert.equal(ruleSetFor({ version: '9.1', jit: true }).helperIdLimit, 212);
  const probed = { version: '6.1', jit: true, probed: { buildId: 'b', release: '6.1.0', privateStack: {}, bpfFuncMaxId: 200 } };
  assert.equal(ruleSetFor(probed).helperIdLimit, 200);
});

test('sleepable uprobes between the measured 5.10.223 and 6.1.170 say they follow upstream', () => {
  const graph: FrameGraph = { programType: 'kprobe', section: 'uprobe.s', subprograms: [node('main', 8)] };
  assert.ok(judgeStack(graph, K515).assumes.some((text) => /sleepable uprobes are refused on 5\.15/.test(text)));
  assert.ok(!judgeStack(graph, K61).assumes.some((text) => /sleepable/.test(text)));
  assert.ok(!judgeStack({ ...graph, section: 'uprobe' }, K515).assumes.some((text) => /sleepable/.test(text)));
});

test('a helper id no release has is left to the load; a call a load-time value may guard says so', () => {
  const graph: FrameGraph = {
    programType: 'sched_cls',
    section: 'tc',
    subprograms: [node('main', 16, { helperCalls: [{ helper: 999, at: 3 }] })],
  };
  // Selftests call id 999 behind a .kconfig test that makes it dead: the kernel loads them.
  assert.equal(judgeStack(graph, K618).accepted, true);
  graph.subprograms[0].helperCalls = [{ helper: 177, name: 'bpf_trace_vprintk', at: 3, mayBeGuarded: true, source: { file: 'p.bpf.c', line: 9, column: 2 } }];
  const verdict = judgeStack(graph, K510);
  assert.equal(verdict.violations[0]?.message, 'invalid func unknown#177');
  assert.ok(
    verdict.assumes.some((text) => text.startsWith('the call to bpf_trace_vprintk (helper 177) at p.bpf.c:9 is reached')),
    verdict.assumes.join('\n'),
  );
  assert.ok(!judgeStack(graph, K618).assumes.some((text) => text.includes('p.bpf.c:9')));
});

test("a call behind the helper's own existence test is not refused where the helper is missing, and the verdict says why", () => {
  const graph: FrameGraph = {
    programType: 'kprobe',
    section: 'kprobe/do_sys_open',
    subprograms: [
      node('main', 16, {
        helperCalls: [{ helper: 173, name: 'bpf_get_func_ip', at: 4, existenceChecked: true, source: { file: 'ksnoop.bpf.c', line: 12, column: 8 } }],
      }),
    ],
  };
  // 5.10.223 has no bpf_get_func_ip (helper 173, 5.15) and loads bcc's ksnoop: libbpf turns the test false.
  const verdict = judgeStack(graph, K510);
  assert.equal(verdict.accepted, true, verdict.violations.map((v) => v.message).join('\n'));
  assert.ok(
    verdict.assumes.some((text) => text.startsWith('the call to bpf_get_func_ip (helper 173) at ksnoop.bpf.c:12 is not reached')),
    verdict.assumes.join('\n'),
  );
  // The same call without the test is refused.
  graph.subprograms[0].helperCalls = [{ helper: 173, name: 'bpf_get_func_ip', at: 4 }];
  assert.equal(judgeStack(graph, K510).violations[0]?.message, 'invalid func unknown#173');
});
