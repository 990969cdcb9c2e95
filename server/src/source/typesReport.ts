/**
 * The `types` command as a pure function: every named struct and union a C file defines, itself
 * or through its headers, with the size and alignment clang gives it for the BPF target.
 */
import { analyzeTranslationUnit } from './translationUnit';
import type { TranslationUnitOptions } from './translationUnit';
import { readFileFromDisk } from './headerIndex';
import type { Problem } from '../common/problem';

export interface TypeReportEntry {
  name: string;
  kind: 'struct' | 'union';
  size: number;
  align: number;
}

export interface TypesReport {
  types: TypeReportEntry[];
  problems: Problem[];
}

export interface TypesReportOptions extends TranslationUnitOptions {
  includeDirs?: readonly string[];
  defines?: Record<string, string> | readonly string[];
}

/** Lays out every named record of `file` in definition order. Never throws; I/O failures are problems. */
export function typesReport(file: string, options: TypesReportOptions = {}): TypesReport {
  const text = (options.readFile ?? readFileFromDisk)(file);
  if (text === undefined) return { types: [], problems: [{ message: `cannot read ${file}` }] };
  const unit = analyzeTranslationUnit(file, text, options);
  const types: TypeReportEntry[] = [];
  for (const [name, def] of unit.environment.records) {
    const layout = unit.layout.recordLayout(def);
    types.push({ name, kind: def.kind, size: layout.size, align: layout.align });
  }
  return { types, problems: unit.problems };
}
