/**
 * compile_commands.json: the include paths, definitions and forced includes a build gives one C
 * file, so that the source estimate preprocesses the file the way clang will. Entries may spell the
 * command as an `arguments` array or as one shell-quoted `command` string; both are read, and a
 * malformed database yields no flags rather than an error, because the estimate is still useful
 * without them.
 */
import { isRegularFile, readRegularText } from '../common/safeRead';
import * as path from 'node:path';
import { resolvedPath } from '../common/paths';

/** The flags of one compile command that change what the preprocessor sees. */
export interface CompileFlags {
  /** -I directories, absolute. */
  includeDirs: string[];
  /** -D definitions as `NAME`, `NAME=VALUE` or `F(x)=VALUE`, and -U names as `!NAME`, in order. */
  defines: string[];
  /** -include files, absolute. */
  forcedIncludes: string[];
}

export interface CompileCommandEntry {
  directory?: unknown;
  file?: unknown;
  arguments?: unknown;
  command?: unknown;
}

/** The database to use: the setting when given (relative to the first root), else the usual places under each root. */
export function findCompileCommands(setting: string, roots: readonly string[]): string | undefined {
  if (setting) return path.resolve(roots[0] ?? process.cwd(), setting);
  for (const root of roots) {
    for (const candidate of [path.join(root, 'compile_commands.json'), path.join(root, 'build', 'compile_commands.json')]) {
      if (isRegularFile(candidate)) return candidate;
    }
  }
  return undefined;
}

/** Reads a database; undefined when it is missing or is not a JSON array. */
export function readCompileCommands(databasePath: string): CompileCommandEntry[] | undefined {
  try {
    const text = readRegularText(databasePath);
    if (text === undefined) return undefined;
    const parsed: unknown = JSON.parse(text);
    return Array.isArray(parsed) ? parsed.filter((entry): entry is CompileCommandEntry => typeof entry === 'object' && entry !== null) : undefined;
  } catch {
    return undefined;
  }
}

/** The argument vector and working directory of the entry for `sourcePath` (the last one, as clangd takes it), or undefined when none names it. */
export function compileArgumentsFor(
  entries: readonly CompileCommandEntry[],
  sourcePath: string,
  databaseDirectory: string,
): { argv: string[]; directory: string } | undefined {
  const wanted = resolvedPath(sourcePath);
  for (let index = entries.length - 1; index >= 0; index--) {
    const entry = entries[index];
    if (typeof entry.file !== 'string') continue;
    const directory = typeof entry.directory === 'string' ? path.resolve(databaseDirectory, entry.directory) : databaseDirectory;
    if (resolvedPath(path.resolve(directory, entry.file)) !== wanted) continue;
    const argv = Array.isArray(entry.arguments)
      ? entry.arguments.filter((arg): arg is string => typeof arg === 'string')
      : typeof entry.command === 'string'
        ? splitCommandLine(entry.command)
        : [];
    return { argv, directory };
  }
  return undefined;
}

/** The flags of the entry for `sourcePath`, or undefined when none names it. */
export function compileFlagsFor(entries: readonly CompileCommandEntry[], sourcePath: string, databaseDirectory: string): CompileFlags | undefined {
  const command = compileArgumentsFor(entries, sourcePath, databaseDirectory);
  return command && preprocessorFlags(command.argv, command.directory);
}

/**
 * The -I, -D, -U and -include flags of an argument vector, attached (`-Ifoo`) or separate
 * (`-I foo`); relative paths are taken from the entry's directory. Everything else is ignored.
 */
export function preprocessorFlags(argv: readonly string[], directory: string): CompileFlags {
  const flags: CompileFlags = { includeDirs: [], defines: [], forcedIncludes: [] };
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index];
    const valueOf = (flag: string): string | undefined => {
      if (arg === flag) return argv[++index];
      return arg.startsWith(flag) ? arg.slice(flag.length) : undefined;
    };
    // -include must be tried before -I, whose prefix it does not share, but -isystem/-iquote are include dirs too.
    let value: string | undefined;
    if ((value = valueOf('-include')) !== undefined) flags.forcedIncludes.push(path.resolve(directory, value));
    else if ((value = valueOf('-isystem')) !== undefined || (value = valueOf('-iquote')) !== undefined || (value = valueOf('-I')) !== undefined) {
      flags.includeDirs.push(path.resolve(directory, value));
    } else if ((value = valueOf('-D')) !== undefined) {
      if (value) flags.defines.push(value);
    } else if ((value = valueOf('-U')) !== undefined) {
      if (value) flags.defines.push(`!${value}`);
    }
  }
  return flags;
}

/** Splits a command string the way a POSIX shell would, for quotes and backslashes (no expansions). */
export function splitCommandLine(command: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let index = 0; index < command.length; index++) {
    const char = command[index];
    if (quote === "'") {
      if (char === "'") quote = undefined;
      else word += char;
    } else if (quote === '"') {
      if (char === '"') quote = undefined;
      else if (char === '\\' && index + 1 < command.length && '"\\$`'.includes(command[index + 1])) word += command[++index];
      else word += char;
    } else if (char === "'" || char === '"') {
      quote = char;
      inWord = true;
    } else if (char === '\\' && index + 1 < command.length) {
      word += command[++index];
      inWord = true;
    } else if (/\s/.test(char)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += char;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/**
 * Applies -D definitions (`NAME`, `NAME=VALUE`) and -U removals (`!NAME`) in order, as clang does,
 * onto `into` (which may hold earlier definitions), and returns it.
 */
export function applyDefinitions(definitions: readonly string[], into = new Map<string, string>()): Map<string, string> {
  for (const definition of definitions) {
    if (definition.startsWith('!')) {
      into.delete(definition.slice(1));
      continue;
    }
    const equals = definition.indexOf('=');
    if (equals === -1) into.set(definition, '1');
    else into.set(definition.slice(0, equals), definition.slice(equals + 1));
  }
  return into;
}
