/**
 * check_cfg's depth-first walk over a loaded program's instructions, as kernels before 6.7 run it
 * for a privileged load, and the first back edge it refuses ("back-edge from insn 16 to 4"): a
 * jump back is a loop, which a privileged load may have, but a call back into a function the walk is
 * still inside (a recursion) is refused, and so is falling through into an instruction the walk is
 * still inside (a loop entered in its middle, verifier_loops1.c's loop_start_in_the_middle). 6.7
 * allowed every back edge ("bpf: fix control-flow graph checking in privileged mode") and left
 * recursion to the stack walk.
 *
 * The walk starts at instruction 0 and, at each instruction, takes its fall-through edge before its
 * jump or call edge (kernel/bpf/verifier.c, visit_insn and push_insn). The numbers are those of the
 * loaded program: libbpf appends each subprogram's code after the main function's, in the order of
 * BpfProgram.subprograms.
 */
import { BPF_CALL, BPF_EXIT, BPF_JA, BPF_JMP, BPF_JMP32, BPF_X, LDDW_OPCODE, type Instruction, opcodeClass, packedOpcode, readPacked } from './instruction';
import type { BpfProgram } from './program';

/** The edge check_cfg refuses, by instruction numbers of the loaded program and by subprogram. */
export interface RefusedBackEdge {
  /** Where the edge leaves ("back-edge from insn 16 ..."): a call, or the instruction falling through. */
  fromInsn: number;
  /** Where it goes back to ("... to 4"): the callee's first instruction, or the next one. */
  toInsn: number;
  /** Whether it is a bpf-to-bpf call (a recursion); else a fall-through into a loop. */
  call: boolean;
  /** The subprogram it leaves, and the instruction's index among its instructions (ObjectCall.at). */
  caller: number;
  at: number;
  /** The subprogram it goes back into (the caller itself for a fall-through). */
  callee: number;
}

const DISCOVERED = 1;
const EXPLORED = 2;

/** The first back edge check_cfg before 6.7 refuses, if any. */
export function firstRefusedBackEdge(program: BpfProgram): RefusedBackEdge | undefined {
  // Where each subprogram starts in the loaded program, and which instruction each slot holds.
  const starts: number[] = [];
  let total = 0;
  for (const sub of program.subprograms) {
    const { code, first, end } = sub.fn.packed;
    starts.push(total);
    if (end > first) total += code.offsets[end - 1] + (code.lddwHighs.has(end - 1) ? 2 : 1) - code.offsets[first];
  }
  const owner = new Int32Array(total).fill(-1);
  const indexAt = new Int32Array(total).fill(-1);
  program.subprograms.forEach((sub, subprogram) => {
    const { code, first, end } = sub.fn.packed;
    for (let index = first; index < end; index++) {
      const slot = starts[subprogram] + code.offsets[index] - code.offsets[first];
      owner[slot] = subprogram;
      indexAt[slot] = index - first;
    }
  });
  const calleeAt = program.subprograms.map((sub) => new Map(sub.calls.map((call) => [call.at, call])));

  const instruction = {} as Instruction;
  /**
   * The edges out of instruction `t`, in the order the kernel takes them: `mayGoBack` where it lets
   * a back edge be (jumps, and a callback's address), `call` for a bpf-to-bpf call's.
   */
  const edgesOf = (t: number): { to: number; mayGoBack?: boolean; call?: boolean }[] => {
    const subprogram = owner[t];
    if (subprogram < 0) return [{ to: t + 1 }];
    const { code, first } = program.subprograms[subprogram].fn.packed;
    const index = first + indexAt[t];
    const opcode = packedOpcode(code, index);
    const call = calleeAt[subprogram].get(indexAt[t]);
    const cls = opcodeClass(opcode);
    if (cls !== BPF_JMP && cls !== BPF_JMP32) {
      if (opcode === LDDW_OPCODE && code.lddwHighs.has(index)) {
        // A callback's address: the kernel walks into it from here, and lets it come back.
        return call?.kind === 'callback' ? [{ to: t + 2 }, { to: starts[call.callee], mayGoBack: true }] : [{ to: t + 2 }];
      }
      return [{ to: t + 1 }];
    }
    const operation = opcode & 0xf0;
    if (operation === BPF_EXIT) return [];
    if (operation === BPF_CALL) {
      return call?.kind === 'call' ? [{ to: t + 1 }, { to: starts[call.callee], call: true }] : [{ to: t + 1 }];
    }
    readPacked(code, index, instruction);
    if (operation === BPF_JA) {
      if (cls === BPF_JMP && (opcode & BPF_X) !== 0) return [];
      return [{ to: t + (cls === BPF_JMP32 ? instruction.imm : instruction.off) + 1, mayGoBack: true }];
    }
    return [
      { to: t + 1, mayGoBack: true },
      { to: t + instruction.off + 1, mayGoBack: true },
    ];
  };

  const state = new Uint8Array(total);
  const nextEdge = new Uint8Array(total);
  const stack: number[] = [];
  if (total === 0) return undefined;
  state[0] = DISCOVERED;
  stack.push(0);
  while (stack.length > 0) {
    const t = stack[stack.length - 1];
    const edges = edgesOf(t);
    const edge = edges[nextEdge[t]];
    if (edge === undefined) {
      state[t] = EXPLORED;
      stack.pop();
      continue;
    }
    nextEdge[t]++;
    const { to } = edge;
    if (to < 0 || to >= total) continue;
    if (state[to] === 0) {
      state[to] = DISCOVERED;
      stack.push(to);
    } else if (state[to] === DISCOVERED && !edge.mayGoBack) {
      return { fromInsn: t, toInsn: to, call: edge.call === true, caller: owner[t], at: indexAt[t], callee: owner[to] };
    }
  }
  return undefined;
}
