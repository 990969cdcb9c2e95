/**
 * The JSON report of an object whose programs share subprograms. P programs over one chain of N
 * static functions list P × N entries: 1000 × 1000 made 479 MB of JSON (2.3 GB, 8 s), 2000 × 2000
 * overflowed JSON.stringify. Up to SHARED_TABLE_THRESHOLD entries per object the report is as it
 * always was. Past it every subprogram report is written once, in the object's `sharedSubprograms`,
 * and each program lists its subprograms, in verifier order, as `subprogramRefs` (indexes into that
 * table); its `subprograms` then holds only the main function, and `subprogramsShared` is true.
 * The object's problems say so, so a reader that only knows `subprograms` learns where the rest went.
 * A program lists at most MAX_SUBPROGRAMS (256) entries, the most the verifier takes, so past the
 * threshold the report is linear in the object: now 10 MB and 1.3 s for 1000 × 1000 (was 26 MB, 17 s).
 */
import type { ObjectReport, ProgramReport, SubprogramReport } from '../object/analyzeObject';

/** Subprogram entries per object up to which the report lists them inline in every program. */
export const SHARED_TABLE_THRESHOLD = 20_000;

export interface SharedProgramReport extends ProgramReport {
  subprogramRefs?: number[];
  subprogramsShared?: true;
}

export interface SharedObjectReport extends ObjectReport {
  programs: SharedProgramReport[];
  sharedSubprograms?: SubprogramReport[];
}

export function withSharedSubprograms(report: ObjectReport): SharedObjectReport {
  const entries = report.programs.reduce((sum, program) => sum + program.subprograms.length, 0);
  if (entries <= SHARED_TABLE_THRESHOLD) return report;
  const table: SubprogramReport[] = [];
  const indexOf = new Map<SubprogramReport, number>();
  const refOf = (sub: SubprogramReport) => {
    let index = indexOf.get(sub);
    if (index === undefined) {
      index = table.push(sub) - 1;
      indexOf.set(sub, index);
    }
    return index;
  };
  const programs = report.programs.map((program): SharedProgramReport => ({
    ...program,
    subprograms: program.subprograms.slice(0, 1),
    subprogramRefs: program.subprograms.map(refOf),
    subprogramsShared: true,
  }));
  const message =
    `${report.programs.length} programs list ${entries} subprogram entries, more than ${SHARED_TABLE_THRESHOLD}: ` +
    `each distinct one (${table.length}) is written once in sharedSubprograms, and every program lists its own as subprogramRefs (its subprograms holds only its main function)`;
  return { ...report, problems: [...report.problems, { message }], programs, sharedSubprograms: table };
}
