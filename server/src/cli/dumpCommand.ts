/**
 * `bpf-stack-lens dump OBJ [--prog NAME]`: each program as the verifier sees it — main function, then
 * subprograms in the order libbpf appends them, numbered as `bpftool prog dump xlated` numbers them —
 * with the source lines interleaved and every stack access marked with its bytes and fp offset. This
 * is the evidence the seed's author gathered by hand, from the object alone.
 */
import { basename } from 'node:path';
import { type ObjectAnalysis, analyzeObject } from '../object/analyzeObject';
import { formatInstruction } from '../object/disassemble';
import { helperName } from '../object/helperNames';
import { isPseudoCall, isPseudoFunc } from '../object/instruction';
import type { BpfProgram } from '../object/program';
import type { StackAccess } from '../object/stackDepth';
import { type FlagSpec, UsageError, parseArgs } from '../common/commandLine';
import { type CommandIo, readInput } from '../common/commandIo';

export const DUMP_FLAGS: Record<string, FlagSpec> = { '--prog': { value: true } };

export function dumpCommand(argv: string[], io: CommandIo): number {
  const args = parseArgs(argv, DUMP_FLAGS);
  if (args.positionals.length !== 1) throw new UsageError('dump takes exactly one object file');
  const [path] = args.positionals;
  const bytes = readInput(path, io);
  if (!bytes) return 2;
  const analysis = analyzeObject(bytes, path, [], { recordStackAccesses: true });
  if (!analysis.readable) {
    io.stderr(`bpf-stack-lens: ${path}: ${analysis.report.problems.map((p) => p.message).join('; ')}\n`);
    return 2;
  }
  const wanted = args.flags.get('--prog')?.[0];
  const programs = wanted ? analysis.programs.filter((program) => program.name === wanted) : analysis.programs;
  if (wanted && programs.length === 0) {
    const names = analysis.programs.map((program) => program.name).join(', ') || 'none';
    io.stderr(`bpf-stack-lens: ${path}: no program named ${wanted} (programs: ${names})\n`);
    return 2;
  }
  for (const problem of analysis.report.problems) io.stderr(`bpf-stack-lens: warning: ${problem.message}\n`);
  io.stdout(programs.map((program) => dumpProgram(program, analysis)).join('\n'));
  return 0;
}

export function dumpProgram(program: BpfProgram, analysis: ObjectAnalysis): string {
  const report = analysis.report.programs.find((p) => p.name === program.name && p.section === program.section);
  const out: string[] = [`; program ${program.name}  SEC("${program.section}")  stack depth ${report?.stackDepths ?? '?'}`];
  // Where each subprogram starts once appended, so calls can be shown as bpftool shows them.
  const starts: number[] = [];
  let next = 0;
  for (const sub of program.subprograms) {
    starts.push(next);
    next += sub.fn.instructions.reduce((slots, insn) => slots + insn.width, 0);
  }

  program.subprograms.forEach((sub, index) => {
    const depth = analysis.depths.get(program)?.[index];
    const linkage = index === 0 ? 'main' : sub.fn.isGlobal ? 'global' : 'static';
    out.push('');
    out.push(`; #${index} ${sub.fn.name} (${linkage}) stack depth ${depth ? depth.checkedDepth + depth.hiddenBytes : '?'}`);
    const accessesAt = new Map<number, StackAccess[]>();
    for (const access of depth?.accesses ?? []) accessesAt.set(access.at, [...(accessesAt.get(access.at) ?? []), access]);
    const callees = new Map(sub.calls.map((call) => [call.at, call.callee]));
    let previousLine: string | undefined;
    let slot = starts[index];
    sub.fn.instructions.forEach((insn, at) => {
      const line = analysis.lineOf(sub.fn, at);
      const lineKey = line ? `${line.file}:${line.line}` : undefined;
      if (line && lineKey !== previousLine) out.push(`; ${line.lineText.trim()}  [${basename(line.file)}:${line.line}]`);
      previousLine = lineKey;
      const callee = callees.get(at);
      const calleeName = callee === undefined ? undefined : program.subprograms[callee].fn.name;
      let text = formatInstruction(insn, { callTarget: calleeName, helper: helperName });
      if (callee !== undefined && (isPseudoCall(insn) || isPseudoFunc(insn))) text += `  ; #${callee} at ${starts[callee]}`;
      const marks = (accessesAt.get(at) ?? []).map(describeAccess);
      const opcode = insn.opcode.toString(16).padStart(2, '0');
      out.push(`${String(slot).padStart(5)}: (${opcode}) ${text}${marks.length ? `    ; ${marks.join('; ')}` : ''}`);
      slot += insn.width;
    });
  });
  return `${out.join('\n')}\n`;
}

function describeAccess(access: StackAccess): string {
  // A pointer known only from below (fp-48 plus an index) says so: the verifier counts its lowest byte.
  const range = access.fromBelow ? `fp${access.offset} or above` : `fp${access.offset}`;
  if (access.kind === 'pointer-to-call') return `passes stack pointer ${range}`;
  const verb = access.kind === 'store' ? 'writes' : 'reads';
  const text = access.value === undefined ? '' : asciiOf(access.value, access.bytes);
  return `${verb} ${access.bytes} B at ${range}${text}`;
}

/** The bytes a store puts on the stack, as text when they are printable (a format string being built). */
function asciiOf(value: bigint, bytes: number): string {
  let text = '';
  for (let i = 0; i < bytes; i++) {
    const byte = Number((BigInt.asUintN(64, value) >> BigInt(8 * i)) & 0xffn);
    if (byte === 0) text += '\\0';
    else if (byte === 10) text += '\\n';
    else if (byte >= 0x20 && byte < 0x7f) text += String.fromCharCode(byte);
    else return '';
  }
  return ` "${text}"`;
}
