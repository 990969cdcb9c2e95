/**
 * Which recorded flags the background compile of a buffer may pass to clang. A compile_commands.json
 * or a settings file comes with the workspace, and a workspace is not to be trusted with running
 * code: the command line it records is never run as it is. Only flags that choose what the
 * preprocessor sees or how code is generated are kept (-I, -isystem, -iquote, -idirafter, -D, -U,
 * -include, -std, -target, -m*, -O*, -g*, -W*, -f*); flags that load code into the compiler or read
 * more flags from elsewhere are refused and named (-fplugin, -fpass-plugin, -load, -Xclang and the
 * other -X pass-throughs, -mllvm, @response files, -B, --config, -specs, -W[lap],); everything else
 * (the compiler, -c, -o, the source, dependency outputs) is dropped, because the compile supplies
 * its own.
 */
import * as path from 'node:path';
import { compileArgumentsFor } from '../source/compileCommands';
import type { CompileDatabase } from '../source/unitOptions';

export interface SafeFlags {
  /** The flags to pass, paths made absolute from the command's directory. */
  flags: string[];
  /** Flags refused because they would load code or read flags from files, as spelled. */
  refused: string[];
}

/** Flags whose value names a directory or file, attached (`-Ifoo`) or separate (`-I foo`). */
const PATH_FLAGS = ['-isystem', '-iquote', '-idirafter', '-include', '-I'];
/** Flags whose value is a definition or a name, attached or separate. */
const VALUE_FLAGS = ['-D', '-U'];
/** Flags that take their value as the next argument and are kept with it. */
const SEPARATE_VALUE_FLAGS = new Set(['-target']);
/** Pass-throughs whose next argument goes, unread, to the compiler's internals, the assembler, the linker or LLVM. */
const PASS_THROUGH_FLAGS = new Set(['-Xclang', '-Xpreprocessor', '-Xassembler', '-Xlinker', '-Xanalyzer', '-mllvm', '-load', '-specs', '--config', '-B']);
/** -f flags that load a plugin. */
const REFUSED_F = /^-f(plugin|pass-plugin)/;
/** -f flags that keep the compile from producing an object, or write files where the command says (crash reports, module caches, records, traces). */
const DROPPED_F =
  /^-f(syntax-only|no-integrated-as|crash-diagnostics|modules|module|implicit-modules|prebuilt-module|save-optimization-record|optimization-record|proc-stat-report|time-trace|profile|coverage|debug-compilation-dir|build-session)/;

/** The safe subset of a recorded argument vector (`argv[0]`, the compiler, is never kept). */
export function safeCompileFlags(argv: readonly string[], directory: string): SafeFlags {
  const flags: string[] = [];
  const refused: string[] = [];
  for (let index = 1; index < argv.length; index++) {
    const arg = argv[index];
    const pathFlag = PATH_FLAGS.find((flag) => arg.startsWith(flag));
    const valueFlag = VALUE_FLAGS.find((flag) => arg.startsWith(flag));
    if (arg.startsWith('@')) refused.push(arg);
    else if (PASS_THROUGH_FLAGS.has(arg)) refused.push(`${arg} ${argv[++index] ?? ''}`.trim());
    else if (/^(-B|--config|-specs|-load|-Xclang|-W[lap],|-mllvm)/.test(arg) || REFUSED_F.test(arg)) refused.push(arg);
    else if (pathFlag) {
      const value = arg === pathFlag ? argv[++index] : arg.slice(pathFlag.length);
      if (value) flags.push(pathFlag, path.resolve(directory, value));
    } else if (valueFlag) {
      const value = arg === valueFlag ? argv[++index] : arg.slice(valueFlag.length);
      if (value) flags.push(`${valueFlag}${value}`);
    } else if (SEPARATE_VALUE_FLAGS.has(arg)) {
      const value = argv[++index];
      if (value) flags.push(arg, value);
    } else if (/^(--target=|-std=|-m|-O|-g|-W)/.test(arg) || (arg.startsWith('-f') && !DROPPED_F.test(arg))) flags.push(arg);
    else if (arg === '-o' || arg === '-MF' || arg === '-MT' || arg === '-MQ' || arg === '-x' || arg === '-arch') index++;
  }
  return { flags, refused };
}

export interface BufferCompileFlagsInput {
  database?: CompileDatabase;
  /** Flags from the settings (bpfStackLens.bufferCompile.flags), filtered like the database's. */
  settingsFlags: readonly string[];
  /** Extra -I directories, absolute, and -D definitions (`NAME=VALUE`, `!NAME` for -U), as the estimate takes them. */
  includePaths: readonly string[];
  defines: readonly string[];
}

export interface BufferCompileFlags extends SafeFlags {
  /** Whether a compile command is known for the file: a database entry names it, or the settings give flags. */
  known: boolean;
}

/** The flags a buffer of `file` is compiled with: its database entry's safe flags, then the settings' flags, -I and -D. */
export function bufferCompileFlags(file: string, input: BufferCompileFlagsInput): BufferCompileFlags {
  const command = input.database?.entries ? compileArgumentsFor(input.database.entries, file, path.dirname(input.database.path)) : undefined;
  const recorded = command ? safeCompileFlags(command.argv, command.directory) : { flags: [], refused: [] };
  // The settings' flags have no compiler in front; their relative paths count from the file's directory.
  const configured = safeCompileFlags(['', ...input.settingsFlags], path.dirname(file));
  const defines = input.defines.map((definition) => (definition.startsWith('!') ? `-U${definition.slice(1)}` : `-D${definition}`));
  return {
    known: command !== undefined || input.settingsFlags.length > 0,
    flags: [...recorded.flags, ...configured.flags, ...input.includePaths.flatMap((dir) => ['-I', dir]), ...defines],
    refused: [...recorded.refused, ...configured.refused],
  };
}
