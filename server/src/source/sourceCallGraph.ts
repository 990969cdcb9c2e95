/**
 * The source side's FrameGraph: one per program (a function with a SEC attribute), built from the
 * frame estimates the way libbpf lays the object out — the program's main function first, then every
 * function that is a frame of its own (noinline, global, callbacks), depth-first in first-call order.
 * The rule engine judges it exactly as it judges the object side's graph.
 *
 * Calls in code only the verifier proves dead (a `const volatile` switch) are in the object, so libbpf
 * appends their callees and check_max_stack_depth walks them; but do_check never enters a static
 * callee that only dead code calls, so its depth stays 0. Global functions are verified on their own
 * and keep their depth, on kernels before 6.8; from 6.8 they are validated only when live code calls
 * them (FrameNode.reachedFromMain).
 */
import { programTypeForSection } from '../rules/programType';
import type { FrameCall, FrameGraph, FrameNode, HelperCall } from '../rules/frameGraph';
import { usesMayGoto } from '../rules/report';
import type { FunctionEstimate } from './frameEstimate';

export interface SourceProgram {
  name: string;
  section: string;
  graph: FrameGraph;
  /** The estimate of each of graph.subprograms, in the same order. */
  functions: FunctionEstimate[];
  /** Per subprogram: whether the verifier enters it (false: only dead code calls it, depth 0). */
  verified: boolean[];
  /**
   * Code the verifier enters calls bpf_throw and the main function names no exception callback
   * (`__exception_cb`): after a successful check the verifier appends its default one (r0 = r1;
   * exit) as a subprogram of depth 0, which the printed line ends with ("+0").
   */
  throwsWithoutCallback: boolean;
}

export function buildSourceFrameGraphs(file: string, estimates: readonly FunctionEstimate[]): SourceProgram[] {
  const byName = new Map(estimates.map((estimate) => [estimate.name, estimate]));
  const programs: SourceProgram[] = [];
  for (const main of estimates) {
    if (main.section === null || main.section === 'license' || main.section.startsWith('.')) continue;
    const built = buildSourceProgram(file, main, byName);
    programs.push({ name: main.name, section: main.section, ...built });
  }
  return programs;
}

/** The graph of one program, rooted at `main`. */
export function buildSourceFrameGraph(file: string, main: FunctionEstimate, byName: ReadonlyMap<string, FunctionEstimate>): FrameGraph {
  return buildSourceProgram(file, main, byName).graph;
}

function buildSourceProgram(
  file: string,
  main: FunctionEstimate,
  byName: ReadonlyMap<string, FunctionEstimate>,
): { graph: FrameGraph; functions: FunctionEstimate[]; verified: boolean[]; throwsWithoutCallback: boolean } {
  const order: FunctionEstimate[] = [];
  const indexOf = new Map<string, number>();
  const visit = (fn: FunctionEstimate) => {
    indexOf.set(fn.name, order.length);
    order.push(fn);
    for (const call of fn.calls) {
      const callee = byName.get(call.callee);
      if (!callee || callee.inline || indexOf.has(callee.name)) continue;
      visit(callee);
    }
  };
  visit(main);

  // Which functions do_check enters: the main one, global ones, and what live code calls from those
  // (kernels before 6.8); from 6.8 only what live code calls from the main one (FrameNode.reachedFromMain).
  const liveFrom = (roots: number[]): Set<number> => {
    const reached = new Set<number>(roots);
    const work = [...roots];
    while (work.length > 0) {
      const fn = order[work.pop()!];
      for (const call of fn.calls) {
        const callee = indexOf.get(call.callee);
        if (call.dead || callee === undefined || reached.has(callee) || byName.get(call.callee)?.inline) continue;
        reached.add(callee);
        work.push(callee);
      }
    }
    return reached;
  };
  const entered = liveFrom([0, ...order.flatMap((fn, index) => (fn.isGlobal && index > 0 ? [index] : []))]);
  const reachedFromMain = liveFrom([0]);

  const asyncCallbacks = new Set<string>();
  for (const fn of order) for (const call of fn.calls) if (call.kind === 'callback' && call.async) asyncCallbacks.add(call.callee);

  const subprograms = order.map((fn, index): FrameNode => {
    // A function from a header is located there, and so are its calls (an inlined callee's are at its call site).
    const where = fn.file ?? file;
    const calls: FrameCall[] = [];
    for (const call of fn.calls) {
      const callee = indexOf.get(call.callee);
      if (callee === undefined || byName.get(call.callee)?.inline) continue;
      calls.push({
        callee,
        kind: call.kind,
        source: { file: where, line: call.line, column: call.column },
        ...(call.position !== undefined ? { at: call.position } : {}),
        ...(call.dead ? { deadCode: true } : {}),
      });
    }
    // `at` is a program point of the body with its inlined callees, not an instruction: it orders
    // the calls and helper calls as do_check meets them, which is all the rules ask of it.
    const helperCalls: HelperCall[] = entered.has(index)
      ? fn.helperCalls.map((call) => ({
          helper: call.helper,
          name: call.name,
          at: call.position,
          source: { file: where, line: call.line, column: call.column },
          ...(fn.readsLoadTimeValues ? { mayBeGuarded: true } : {}),
        }))
      : [];
    const tail = fn.tailCalls[0];
    return {
      name: fn.name,
      stackDepth: entered.has(index) ? fn.frameBytes : 0,
      hasTailCall: fn.tailCalls.length > 0,
      tailCallSource: tail ? { file: where, line: tail.line, column: tail.column } : undefined,
      isGlobal: fn.isGlobal,
      reachedFromMain: reachedFromMain.has(index),
      isAsyncCallback: asyncCallbacks.has(fn.name),
      calls,
      source: { file: where, line: fn.line, column: 1 },
      helperCalls,
      ...(entered.has(index) ? { depthSteps: fn.depthSteps } : {}),
      ...(usesMayGoto(fn.hiddenReasons) ? { mayGoto: {} } : {}),
    };
  });
  return {
    graph: { programType: programTypeForSection(main.section ?? ''), section: main.section ?? undefined, subprograms },
    functions: order,
    verified: order.map((_, index) => entered.has(index)),
    throwsWithoutCallback: main.exceptionCallback === undefined && order.some((fn, index) => entered.has(index) && fn.throws),
  };
}
