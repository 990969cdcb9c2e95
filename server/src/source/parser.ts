/**
 * Loads tree-sitter and the C grammar once, and keeps one C document parsed as it changes.
 *
 * web-tree-sitter is WebAssembly: Parser.init() instantiates the runtime and Language.load() the
 * grammar, both asynchronous and both expensive, so they happen once per process and every parser
 * shares them. Trees live in wasm memory and must be freed with tree.delete(); CDocument owns its
 * current tree and frees the previous one whenever it reparses.
 */
import * as fs from 'node:fs';
import { Language, Parser, Query } from 'web-tree-sitter';
import type { Edit, Point, Tree } from 'web-tree-sitter';
import { packageFile } from './packageRoot';

export type { Node, Point, Tree } from 'web-tree-sitter';

/**
 * The largest text parsed: a BPF source is a few thousand lines, and even a kernel's vmlinux.h is
 * under 8 MB. A 50 MB document took the main thread 90 s and 4 GB before tree-sitter's memory ran out.
 */
export const MAX_PARSED_CHARACTERS = 8 * 1024 * 1024;

/**
 * How long one parse may take: well above what any real text needs (tree-sitter parses megabytes
 * a second, and a first parse in a fresh process, before the wasm is compiled fully, a 90 KB file
 * in half a second), and far below what error recovery spends on pathological input (15 KB of
 * unbalanced brackets and declarations took 26 s). The estimate counts the main file's
 * preprocessing against it too, so that a parse stopped by it leaves the whole estimate of a small
 * file under a second.
 */
export function parseBudgetMs(characters: number): number {
  return 900 + characters / 1024;
}

/**
 * Time spent on a piece of work since the clock was made: the smaller of the wall time and the
 * process's CPU time, so that a machine busy with other processes (five test runs on two cores)
 * does not make a parse look slow and refuse it, while on an idle machine the wall time counts.
 * The CPU time (a system call) is read only once the wall time is past `threshold`.
 */
export function workClock(): { elapsedMs(threshold?: number): number } {
  const wallStart = performance.now();
  const cpuStart = process.cpuUsage();
  return {
    elapsedMs(threshold = 0) {
      const wall = performance.now() - wallStart;
      if (wall <= threshold) return wall;
      const cpu = process.cpuUsage(cpuStart);
      return Math.min(wall, (cpu.user + cpu.system) / 1000);
    },
  };
}

/** Why a text got no tree: too big to parse, or its parse ran out of time. */
export class ParseRefused extends Error {}

let languagePromise: Promise<Language> | undefined;

/** The runtime's wasm, wherever this installation keeps it (node_modules in development, beside a bundle in the vsix). */
function locateRuntimeWasm(): string {
  const candidates = [
    packageFile('node_modules', 'web-tree-sitter', 'web-tree-sitter.wasm'),
    packageFile('dist', 'web-tree-sitter.wasm'),
    packageFile('grammars', 'web-tree-sitter.wasm'),
  ];
  for (const candidate of candidates) if (fs.existsSync(candidate)) return candidate;
  return require.resolve('web-tree-sitter/web-tree-sitter.wasm');
}

/**
 * The C grammar: grammars/ once the build copied it there (and in the .vsix), else straight from the
 * tree-sitter-c package (a checkout where only tsc has run).
 */
function locateGrammarWasm(): string {
  const copied = packageFile('grammars', 'tree-sitter-c.wasm');
  return fs.existsSync(copied) ? copied : require.resolve('tree-sitter-c/tree-sitter-c.wasm');
}

/** The C grammar, loaded once per process. */
export function loadCLanguage(): Promise<Language> {
  languagePromise ??= (async () => {
    const runtimeWasm = locateRuntimeWasm();
    await Parser.init({ locateFile: () => runtimeWasm });
    return Language.load(locateGrammarWasm());
  })();
  return languagePromise;
}

/** A fresh parser for C. Each document should have its own: a parser keeps state between parses. */
export async function createCParser(): Promise<Parser> {
  const language = await loadCLanguage();
  return new Parser().setLanguage(language);
}

const compiledQueries = new Map<string, Query>();

/**
 * A query from server/src/source/queries/NAME.scm, compiled on first use and kept for the life of
 * the process: compiling a query costs far more than running it.
 */
export async function loadQuery(name: string): Promise<Query> {
  const cached = compiledQueries.get(name);
  if (cached) return cached;
  const language = await loadCLanguage();
  const source = fs.readFileSync(packageFile('server', 'src', 'source', 'queries', `${name}.scm`), 'utf8');
  const query = new Query(language, source);
  compiledQueries.set(name, query);
  return query;
}

/** The row and column that `index` (a string index) falls on, as tree-sitter counts them. */
export function pointAt(text: string, index: number): Point {
  let row = 0;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < index; i = text.indexOf('\n', i + 1)) {
    row++;
    lineStart = i + 1;
  }
  return { row, column: index - lineStart };
}

/**
 * One C document and its current syntax tree. Edits are applied to the old tree before reparsing,
 * so tree-sitter reuses every subtree the edit did not touch: a keystroke in a large file reparses
 * in a couple of milliseconds instead of the full parse's hundreds.
 */
export class CDocument {
  private currentTree: Tree | null = null;
  private currentText = '';

  private constructor(private readonly parser: Parser) {}

  static async create(text = ''): Promise<CDocument> {
    const document = new CDocument(await createCParser());
    document.parse(text);
    return document;
  }

  get text(): string {
    return this.currentText;
  }

  /** The tree of the current text. It stays valid until the next parse, edit or dispose. */
  get tree(): Tree {
    if (!this.currentTree) throw new Error('CDocument used after dispose');
    return this.currentTree;
  }

  /** Parses `text` from scratch, dropping the old tree. */
  parse(text: string, budgetMs?: number): Tree {
    const tree = this.boundedParse(text, null, budgetMs);
    this.replaceTree(tree);
    this.currentText = text;
    return this.tree;
  }

  /**
   * Replaces text[startIndex, oldEndIndex) with `insertedText` and reparses incrementally.
   * Indices are string indices into the current text, as an editor's change events give them.
   */
  edit(startIndex: number, oldEndIndex: number, insertedText: string, budgetMs?: number): Tree {
    const oldText = this.currentText;
    const start = Math.max(0, Math.min(startIndex, oldText.length));
    const oldEnd = Math.max(start, Math.min(oldEndIndex, oldText.length));
    const newText = oldText.slice(0, start) + insertedText + oldText.slice(oldEnd);
    const newEnd = start + insertedText.length;
    const edit: Edit = {
      startIndex: start,
      oldEndIndex: oldEnd,
      newEndIndex: newEnd,
      startPosition: pointAt(oldText, start),
      oldEndPosition: pointAt(oldText, oldEnd),
      newEndPosition: pointAt(newText, newEnd),
    } as Edit;
    if (!this.currentTree) return this.parse(newText, budgetMs);
    this.currentTree.edit(edit);
    let tree: Tree;
    try {
      tree = this.boundedParse(newText, this.currentTree, budgetMs);
    } catch (error) {
      // The old tree is edited already and no longer matches the old text: start afresh next time.
      this.currentTree.delete();
      this.currentTree = null;
      this.currentText = '';
      throw error;
    }
    this.replaceTree(tree);
    this.currentText = newText;
    return this.tree;
  }

  /**
   * Brings the document to `newText`, whatever changed: the changed span is found by comparing
   * common prefix and suffix, then reparsed incrementally. Used when the text handed in is derived
   * (preprocessed) rather than edited directly.
   */
  update(newText: string, budgetMs = parseBudgetMs(newText.length)): Tree {
    const oldText = this.currentText;
    if (newText === oldText && this.currentTree) return this.currentTree;
    let prefix = 0;
    const shorter = Math.min(oldText.length, newText.length);
    while (prefix < shorter && oldText.charCodeAt(prefix) === newText.charCodeAt(prefix)) prefix++;
    let suffix = 0;
    while (suffix < shorter - prefix && oldText.charCodeAt(oldText.length - 1 - suffix) === newText.charCodeAt(newText.length - 1 - suffix)) {
      suffix++;
    }
    return this.edit(prefix, oldText.length - suffix, newText.slice(prefix, newText.length - suffix), budgetMs);
  }

  /** A parse of `text` within the size cap and the time budget (parseBudgetMs by default); throws ParseRefused past either. */
  private boundedParse(text: string, oldTree: Tree | null, budgetMs = parseBudgetMs(text.length)): Tree {
    if (text.length > MAX_PARSED_CHARACTERS) {
      throw new ParseRefused(`${text.length} characters, more than the ${MAX_PARSED_CHARACTERS} parsed`);
    }
    const clock = workClock();
    // The parser asks every few hundred steps whether to stop; a stopped parse gives no tree.
    const tree = this.parser.parse(text, oldTree, { progressCallback: () => clock.elapsedMs(budgetMs) > budgetMs });
    if (!tree) {
      // A stopped parse resumes where it stopped on the next call; start the next one afresh.
      this.parser.reset();
      throw new ParseRefused(`parsing took longer than ${Math.round(budgetMs)} ms and was stopped`);
    }
    return tree;
  }

  /** Frees the tree and the parser. */
  dispose(): void {
    this.currentTree?.delete();
    this.currentTree = null;
    this.parser.delete();
  }

  private replaceTree(tree: Tree | null): void {
    if (!tree) throw new Error('tree-sitter returned no tree (no language set?)');
    // Freeing before assigning is safe: tree-sitter copies what it reuses from the old tree.
    this.currentTree?.delete();
    this.currentTree = tree;
  }
}
