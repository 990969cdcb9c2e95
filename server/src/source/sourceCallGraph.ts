/**
 * The source side's FrameGraph: one per program (a function with a SEC attribute), built from the
 * frame estimates the way libbpf lays the object out — the program's main function first, then every
 * function that is a frame of its own (noinline, global, callbacks), depth-first in first-call order.
 * The rule engine judges it exactly as it judges the object side's graph.
 */
import { programTypeForSection } from '../object/programType';
import type { FrameCall, FrameGraph, FrameNode } from '../rules/frameGraph';
import type { FunctionEstimate } from './frameEstimate';

export interface SourceProgram {
  name: string;
  section: string;
  graph: FrameGraph;
}

export function buildSourceFrameGraphs(file: string, estimates: readonly FunctionEstimate[]): SourceProgram[] {
  const byName = new Map(estimates.map((estimate) => [estimate.name, estimate]));
  const programs: SourceProgram[] = [];
  for (const main of estimates) {
    if (main.section === null || main.section === 'license' || main.section.startsWith('.')) continue;
    programs.push({ name: main.name, section: main.section, graph: buildSourceFrameGraph(file, main, byName) });
  }
  return programs;
}

/** The graph of one program, rooted at `main`. */
export function buildSourceFrameGraph(file: string, main: FunctionEstimate, byName: ReadonlyMap<string, FunctionEstimate>): FrameGraph {
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

  const asyncCallbacks = new Set<string>();
  for (const fn of order) for (const call of fn.calls) if (call.kind === 'callback' && call.async) asyncCallbacks.add(call.callee);

  const subprograms = order.map((fn): FrameNode => {
    const calls: FrameCall[] = [];
    for (const call of fn.calls) {
      const callee = indexOf.get(call.callee);
      if (callee === undefined || byName.get(call.callee)?.inline) continue;
      calls.push({ callee, kind: call.kind, source: { file, line: call.line, column: call.column } });
    }
    const tail = fn.tailCalls[0];
    return {
      name: fn.name,
      stackDepth: fn.frameBytes,
      hasTailCall: fn.tailCalls.length > 0,
      tailCallSource: tail ? { file, line: tail.line, column: tail.column } : undefined,
      isGlobal: fn.isGlobal,
      isAsyncCallback: asyncCallbacks.has(fn.name),
      calls,
      source: { file, line: fn.line, column: 1 },
    };
  });
  return { programType: programTypeForSection(main.section ?? ''), subprograms };
}
