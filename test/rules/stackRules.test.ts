/**
 * The rule engine against the numbers measured on a 6.18 kernel (JIT, 16-byte rounding) and the rules
 * of older kernels as kernel/bpf/verifier.c states them. The object fixtures hold the same engine to
 * the real verifier; these tests pin each rule and each kernel difference on its own.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FrameGraph, FrameNode } from '../../server/src/rules/frameGraph';
import { parseKernelProfiles, ruleSetFor } from '../../server/src/rules/kernelProfile';
import { judgeStack } from '../../server/src/rules/stackRules';

const K618 = { version: '6.18', jit: true };
const K61 = { version: '6.1', jit: true };
const K66 = { version: '6.6', jit: true };
const K612 = { version: '6.12', jit: true };

function node(name: string, stackDepth: number, extra: Partial<FrameNode> = {}): FrameNode {
  return { name, stackDepth, hasTailCall: false, isGlobal: false, isAsyncCallback: false, calls: [], ...extra };
}

/** main -> f1 -> f2 ...; the last one makes the tail call. */
function tailChain(...depths: number[]): FrameGraph {
  const subprograms = depths.map((depth, index) =>
    node(index === 0 ? 'main' : `f${index}`, depth, {
      calls: index + 1 < depths.length ? [{ callee: index + 1, kind: 'call' }] : [],
      hasTailCall: index === depths.length - 1,
    }),
  );
  return { programType: 'sched_cls', subprograms };
}

function plainChain(...depths: number[]): FrameGraph {
  const graph = tailChain(...depths);
  graph.subprograms.forEach((n) => (n.hasTailCall = false));
  return graph;
}

test('rounding: 16 bytes with the JIT from 6.9, 32 with max(d, 1) before or without it', () => {
  assert.equal(ruleSetFor(K618).roundStackDepth(0), 0);
  assert.equal(ruleSetFor(K618).roundStackDepth(232), 240);
  assert.equal(ruleSetFor(K61).roundStackDepth(0), 32);
  assert.equal(ruleSetFor(K66).roundStackDepth(232), 256);
  assert.equal(ruleSetFor({ version: '6.18', jit: false }).roundStackDepth(8), 32);
});

test('6.18: a tail call under a 224/232/240-byte main passes, 248/256/272 are rejected', () => {
  for (const depth of [224, 232, 240]) assert.equal(judgeStack(tailChain(depth, 8), K618).accepted, true, `main ${depth}`);
  for (const [depth, rounded] of [
    [248, 256],
    [256, 256],
    [272, 272],
  ]) {
    const verdict = judgeStack(tailChain(depth, 8), K618);
    assert.equal(verdict.accepted, false, `main ${depth}`);
    assert.equal(verdict.violations[0].rule, 'tail-call-depth');
    assert.equal(verdict.violations[0].message, `tail_calls are not allowed when call stack of previous frames is ${rounded} bytes. Too large`);
    assert.deepEqual(verdict.violations[0].chain, ['main', 'f1']);
    assert.equal(verdict.violations[0].reportedByKernel, true);
  }
});

test("the tail-calling function's own frame is not counted; 200 -> 24 -> tail passes on 6.18, not on 6.1", () => {
  assert.equal(judgeStack(tailChain(200, 24, 8), K618).accepted, true);
  assert.equal(judgeStack(tailChain(16, 480), K618).accepted, true);
  const old = judgeStack(tailChain(200, 24, 8), K61);
  assert.equal(old.accepted, false);
  assert.equal(old.violations[0].message, 'tail_calls are not allowed when call stack of previous frames is 256 bytes. Too large');
  assert.equal(judgeStack(tailChain(200, 24, 8), K618).tailCalls[0].callersDepth, 240);
});

test('120 -> 120 -> tail is rejected at 256 on 6.18', () => {
  const verdict = judgeStack(tailChain(120, 120, 8), K618);
  assert.equal(verdict.violations[0].depth, 256);
  assert.deepEqual(verdict.violations[0].chain, ['main', 'f1', 'f2']);
});

test('a tail call in the main program is never checked', () => {
  const graph = tailChain(504);
  assert.equal(judgeStack(graph, K618).accepted, true);
  assert.equal(judgeStack(graph, K61).accepted, true);
});

test('combined stack: exactly 512 passes, more is rejected with the number of calls', () => {
  assert.equal(judgeStack(plainChain(256, 256), K618).accepted, true);
  assert.equal(judgeStack(plainChain(160, 160, 192), K618).accepted, true);
  const verdict = judgeStack(plainChain(160, 160, 200), K618);
  assert.equal(verdict.violations[0].message, 'combined stack size of 3 calls is 528. Too large');
  assert.equal(verdict.maxCombinedDepth, 528);
});

test('siblings do not add up; every call is walked, dead or not', () => {
  const graph: FrameGraph = {
    programType: 'xdp',
    subprograms: [
      node('main', 256, {
        calls: [
          { callee: 1, kind: 'call' },
          { callee: 2, kind: 'call' },
        ],
      }),
      node('a', 256),
      node('b', 256),
    ],
  };
  assert.equal(judgeStack(graph, K618).accepted, true);
  graph.subprograms[1].calls.push({ callee: 2, kind: 'call' });
  assert.equal(judgeStack(graph, K618).violations[0].message, 'combined stack size of 3 calls is 768. Too large');
});

test('eight frames pass; a ninth static frame fails in do_check, a ninth through globals in the walk', () => {
  assert.equal(judgeStack(plainChain(8, 8, 8, 8, 8, 8, 8, 8), K618).accepted, true);
  const statics = judgeStack(plainChain(8, 8, 8, 8, 8, 8, 8, 8, 8), K618);
  assert.equal(statics.violations[0].rule, 'call-depth');
  assert.equal(statics.violations[0].phase, 'do_check');
  assert.equal(statics.violations[0].message, 'the call stack of 9 frames is too deep');
  const globals = plainChain(8, 8, 8, 8, 8, 8, 8, 8, 8);
  globals.subprograms.forEach((n, index) => (n.isGlobal = index > 0));
  const walked = judgeStack(globals, K618);
  assert.equal(walked.violations[0].phase, 'check_max_stack_depth');
  assert.equal(walked.violations[0].message, 'the call stack of 8 frames is too deep !');
});

test("do_check's violation is the one printed, even when the walk would find another first", () => {
  const graph = plainChain(400, 8, 8, 8, 8, 8, 8, 8, 200);
  const verdict = judgeStack(graph, K618);
  assert.equal(verdict.violations.find((v) => v.reportedByKernel)?.message, 'the call stack of 9 frames is too deep');
});

test('private stack from 6.13: kprobe frames of 64 bytes or more leave the combined sum', () => {
  const graph = plainChain(256, 400);
  graph.programType = 'kprobe';
  assert.equal(judgeStack(graph, K618).accepted, true);
  assert.deepEqual(judgeStack(graph, K618).privateStackSubprograms, [0, 1]);
  assert.equal(judgeStack(graph, K612).accepted, false);
  // One tail call anywhere turns private stacks off.
  graph.subprograms.push(node('other', 8, { hasTailCall: true }));
  graph.subprograms[0].calls.push({ callee: 2, kind: 'call' });
  assert.equal(judgeStack(graph, K618).violations[0].rule, 'combined-stack');
});

test('async callbacks are roots of their own from 6.5; before, they add to the caller', () => {
  const graph: FrameGraph = {
    programType: 'sched_cls',
    subprograms: [node('main', 384, { calls: [{ callee: 1, kind: 'callback' }] }), node('timer_cb', 256, { isAsyncCallback: true })],
  };
  assert.equal(judgeStack(graph, K618).accepted, true);
  assert.equal(judgeStack(graph, { version: '5.15', jit: true }).accepted, false);
  // A synchronous callback (bpf_loop) does add to its caller's chain.
  graph.subprograms[1].isAsyncCallback = false;
  assert.equal(judgeStack(graph, K618).violations[0].message, 'combined stack size of 2 calls is 640. Too large');
});

test('kernel lists parse; bad entries are named', () => {
  assert.deepEqual(
    parseKernelProfiles(['6.1,6.18', '5.15.0-91-generic'], true).profiles.map((p) => p.version),
    ['6.1', '6.18', '5.15.0'],
  );
  assert.deepEqual(parseKernelProfiles(['six'], true).errors, [
    '"six" is not a kernel version (expected MAJOR.MINOR or an exact release, like 6.1 or 6.1.170)',
  ]);
});

/** A main function calling `leaves` functions of no stack, as the 6.18 measurement of BPF_MAX_SUBPROGS did. */
function fan(leaves: number): FrameGraph {
  const calls = Array.from({ length: leaves }, (_, index) => ({ callee: index + 1, kind: 'call' as const }));
  return { programType: 'xdp', subprograms: [node('main', 0, { calls }), ...calls.map((call) => node(`leaf${call.callee}`, 0))] };
}

test('256 subprograms load; a 257th is "too many subprograms", found by add_subprog before anything else', () => {
  // Measured on 6.18: main calling 255 leaves loads, calling 256 is refused with this message.
  assert.equal(judgeStack(fan(255), K618).accepted, true);
  const refused = judgeStack(fan(256), K618);
  assert.equal(refused.accepted, false);
  assert.deepEqual(
    refused.violations.map((v) => [v.rule, v.phase, v.message, v.reportedByKernel]),
    [['too-many-subprograms', 'add_subprog', 'too many subprograms', true]],
  );
  // A front end that stopped building at the limit says so, and the printed violation stays the
  // refusal, though do_check would also find the chain too deep.
  const built = plainChain(8, 8, 8, 8, 8, 8, 8, 8, 8);
  const verdict = judgeStack({ ...built, moreSubprograms: true }, K618);
  assert.equal(verdict.violations.find((v) => v.reportedByKernel)?.rule, 'too-many-subprograms');
  assert.ok(verdict.violations.some((v) => v.rule === 'call-depth' && !v.reportedByKernel));
});

test('a call graph whose chains multiply is walked up to a bound, and the verdict says where it stopped', () => {
  // 7 layers of 20 functions, each calling all of the next: 20^7 chains. 6.18 refuses it in do_check
  // ("BPF program is too large. Processed 1000001 insn"); the walk must end long before it would.
  const width = 20;
  const layers = 7;
  const nodes = [node('main', 8, { calls: Array.from({ length: width }, (_, w) => ({ callee: 1 + w, kind: 'call' as const })) })];
  for (let layer = 0; layer < layers; layer++) {
    for (let w = 0; w < width; w++) {
      const calls = layer + 1 < layers ? Array.from({ length: width }, (_, v) => ({ callee: 1 + (layer + 1) * width + v, kind: 'call' as const })) : [];
      nodes.push(node(`f${layer}_${w}`, 8, { calls }));
    }
  }
  const verdict = judgeStack({ programType: 'xdp', subprograms: nodes }, K618);
  assert.ok(
    verdict.notes.some((note) => /the walk stopped there/.test(note)),
    verdict.notes.join('\n'),
  );
  assert.equal(
    judgeStack(plainChain(8, 8), K618).notes.some((note) => /walk stopped/.test(note)),
    false,
  );
});
