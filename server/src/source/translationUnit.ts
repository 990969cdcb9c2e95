/**
 * One C file with everything it includes: preprocessed with clang's BPF predefines, its headers
 * read through the header index, its own declarations parsed into the same type environment, and
 * its text rendered line-aligned for tree-sitter. This is the entry point of the source side.
 */
import * as path from 'node:path';
import { tokenize } from './lexer';
import type { Token } from './lexer';
import { createPreprocessorState, preprocessFile, renderAligned } from './preprocessor';
import type { AlignedText, MacroTable } from './preprocessor';
import { DeclarationParser } from './declarations';
import type { DeclaredName } from './declarations';
import { DEFAULT_SYSTEM_INCLUDE_DIRS, HeaderIndex, readFileFromDisk } from './headerIndex';
import type { IncludeContext, ReadFile } from './headerIndex';
import { LayoutEngine } from './layout';
import { TypeEnvironment } from './types';
import type { Problem } from '../common/problem';

export interface TranslationUnitOptions {
  /** -I directories, searched before the system directories. */
  includeDirs?: readonly string[];
  /** -D definitions: `{ NAME: 'value' }` or `['NAME=value', 'FLAG']`. */
  defines?: Record<string, string> | readonly string[];
  /** Replaces DEFAULT_SYSTEM_INCLUDE_DIRS. */
  systemIncludeDirs?: readonly string[];
  /** How files are read (an editor passes one that prefers open buffers). */
  readFile?: ReadFile;
  /** The header index to use; by default one per process, persisted in the default cache dir. */
  index?: HeaderIndex;
}

export interface IncludedHeader {
  spelled: string;
  /** Where it was found; undefined when it was not. */
  resolved?: string;
  fromFile: string;
  /** Offset of the #include directive in `fromFile`. */
  offset: number;
}

export interface TranslationUnit {
  file: string;
  /** The main file preprocessed, line for line, for tree-sitter. */
  aligned: AlignedText;
  /** The main file's tokens after preprocessing (offsets in the original file). */
  tokens: Token[];
  environment: TypeEnvironment;
  layout: LayoutEngine;
  /** Parses further declarations (local variables) against the file's types. */
  declarations: DeclarationParser;
  /** Functions, variables and typedefs the main file declares at file scope. */
  mainFileNames: DeclaredName[];
  /** The macro table at the end of the file. */
  macros: MacroTable;
  includes: IncludedHeader[];
  /** Parts of the main file skipped by #if, as [start, end) offsets. */
  inactiveRanges: [number, number][];
  /** Offsets are into the main file; problems in headers have the header and line in the message. */
  problems: Problem[];
}

let sharedIndex: HeaderIndex | undefined;

/** The process-wide header index, persisted under defaultCacheDir(). */
export function defaultHeaderIndex(): HeaderIndex {
  sharedIndex ??= new HeaderIndex();
  return sharedIndex;
}

/** Preprocesses and reads the declarations of `text`, the content of `file`. Never throws on bad input. */
export function analyzeTranslationUnit(file: string, text: string, options: TranslationUnitOptions = {}): TranslationUnit {
  const absoluteFile = path.resolve(file);
  const index = options.index ?? defaultHeaderIndex();
  const state = createPreprocessorState(options.defines ? [...(Array.isArray(options.defines) ? options.defines : Object.entries(options.defines).map(([name, value]) => `${name}=${value}`))] : []);
  const environment = new TypeEnvironment();
  const layout = new LayoutEngine(environment);
  const parserProblems: Problem[] = [];
  const declarations = new DeclarationParser(environment, parserProblems, layout);
  const mainFileNames: DeclaredName[] = [];
  const problems: Problem[] = [];
  const context: IncludeContext = {
    state,
    parser: declarations,
    search: {
      includeDirs: (options.includeDirs ?? []).map((directory) => path.resolve(directory)),
      systemIncludeDirs: options.systemIncludeDirs ?? DEFAULT_SYSTEM_INCLUDE_DIRS,
    },
    readFile: options.readFile ?? readFileFromDisk,
    problems,
    includes: [],
  };
  const mainTokens: Token[] = [];
  const handler = index.handlerFor(context, (batch) => {
    for (const token of batch) mainTokens.push(token);
    declarations.feed(batch);
  });
  // Names are collected only while the main file's own declarations are parsed.
  const collectMainFileNames = (declared: DeclaredName) => mainFileNames.push(declared);
  const wrappedHandler = {
    ...handler,
    include: (request: Parameters<typeof handler.include>[0]) => {
      declarations.finish();
      declarations.onDeclaredName = undefined;
      const parserProblemsBefore = parserProblems.length;
      handler.include(request);
      parserProblems.splice(parserProblemsBefore);
      declarations.onDeclaredName = collectMainFileNames;
    },
  };
  declarations.onDeclaredName = collectMainFileNames;
  const result = preprocessFile(absoluteFile, text, state, wrappedHandler, problems, tokenize(text));
  declarations.finish();
  declarations.onDeclaredName = undefined;
  problems.push(...parserProblems);
  problems.sort((a, b) => (a.offset ?? -1) - (b.offset ?? -1));
  return {
    file: absoluteFile,
    aligned: renderAligned(text, mainTokens),
    tokens: mainTokens,
    environment,
    layout,
    declarations,
    mainFileNames,
    macros: state.macros,
    includes: context.includes,
    inactiveRanges: result.inactiveRanges,
    problems,
  };
}
