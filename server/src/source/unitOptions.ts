/**
 * One function turns a compile database entry, include paths and definitions into the options a C
 * file is estimated (and compiled from the buffer) with. The CLI's -I/-D flags and the editor's
 * settings are only two ways of filling its input, so the two can never disagree about a file.
 */
import * as path from 'node:path';
import { readFileFromDisk } from './headerIndex';
import { type CompileCommandEntry, type CompileFlags, applyDefinitions, compileFlagsFor, findCompileCommands, readCompileCommands } from './compileCommands';
import { createPreprocessorState, definitionsFromText, type Macro } from './preprocessor';

/** A compile database as read: undefined entries when the file is not one. */
export interface CompileDatabase {
  path: string;
  entries: CompileCommandEntry[] | undefined;
}

export interface UnitOptionsInput {
  database?: CompileDatabase;
  /** Extra -I directories, absolute: the CLI's -I, or bpfStackLens.includePaths resolved against the workspace. */
  includePaths: readonly string[];
  /** Extra definitions after the database's, as `NAME`, `NAME=VALUE` or `!NAME` (-U): the CLI's -D, or bpfStackLens.defines. */
  defines: readonly string[];
  /** bpfStackLens.printkModel: a default for BPF_NO_GLOBAL_DATA that the file's own settings override. */
  printkModel?: 'auto' | 'rodata' | 'stack';
  /** The text of a file as the editor has it, so unsaved -include files count; undefined reads the disk. */
  openText?: (file: string) => string | undefined;
}

export interface UnitOptions {
  /** The database's include directories first, then the extra ones, as clang searches them. */
  includeDirs: string[];
  /** Every definition in clang's order of precedence, later ones having won. */
  defines: [string, string][];
  /** The database entry's preprocessor flags, when one names the file. */
  flags?: CompileFlags;
}

/** The database to use (the given path, else compile_commands.json in a root or its build/), read. */
export function loadCompileDatabase(given: string, roots: readonly string[]): CompileDatabase | undefined {
  const databasePath = findCompileCommands(given, roots);
  return databasePath ? { path: databasePath, entries: readCompileCommands(databasePath) } : undefined;
}

/**
 * Include paths and definitions for `file`: the macros of the database entry's -include files
 * first (clang reads them before the file), then its -D/-U in order, then the extra definitions,
 * then the printk model's default.
 */
export function unitOptionsFor(file: string, input: UnitOptionsInput): UnitOptions {
  const { database } = input;
  const flags = database?.entries ? compileFlagsFor(database.entries, file, path.dirname(database.path)) : undefined;
  const defines = new Map<string, string>();
  for (const forced of flags?.forcedIncludes ?? [])
    for (const [name, value] of forcedIncludeDefines(forced, input.openText?.(forced))) defines.set(name, value);
  applyDefinitions(flags?.defines ?? [], defines);
  applyDefinitions(input.defines, defines);
  // The printk model is only a default for files that do not decide it themselves.
  if (input.printkModel === 'stack') defines.set('BPF_NO_GLOBAL_DATA', defines.get('BPF_NO_GLOBAL_DATA') ?? '1');
  if (input.printkModel === 'rodata') defines.delete('BPF_NO_GLOBAL_DATA');
  return { includeDirs: [...(flags?.includeDirs ?? []), ...input.includePaths], defines: [...defines], flags };
}

/**
 * The macros a forced include (-include FILE) defines, as -D definitions. Its types are not seen:
 * the estimate takes the file's text as it is, and forced includes are almost always configuration
 * headers of macros.
 */
function forcedIncludeDefines(file: string, openText: string | undefined): [string, string][] {
  const text = openText ?? readFileFromDisk(file);
  if (text === undefined) return [];
  const state = createPreprocessorState();
  const predefined = new Set(state.macros.keys());
  definitionsFromText(text, state, []);
  return [...state.macros.values()].filter((macro) => !predefined.has(macro.name)).map(defineOf);
}

/** A macro as the name and value of a -D: `F(a,...)` and its body for function-like ones, whose spelling starts with the parameter list. */
function defineOf(macro: Macro): [string, string] {
  if (!macro.params) return [macro.name, macro.spelling.trim()];
  const close = macro.spelling.indexOf(')') + 1;
  return [`${macro.name}${macro.spelling.slice(0, close)}`, macro.spelling.slice(close).trim()];
}
