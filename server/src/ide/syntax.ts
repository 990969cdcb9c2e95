/**
 * What the editor features need from the C syntax tree: function definitions with the span of their
 * names, the function around a position, and where file-scope code can be inserted above a function
 * without separating it from its SEC("...") line or its leading comment. Queries live in
 * server/src/lsp/queries/*.scm and are compiled once per process.
 */
import * as fs from 'node:fs';
import { Query } from 'web-tree-sitter';
import { loadCLanguage, type Node, type Tree } from '../source/parser';
import { packageFile } from '../source/packageRoot';

/** The compiled queries of the LSP features. */
export interface LspQueries {
  functions: Query;
  printk: Query;
}

/**
 * A document as the features read it: text, tree and compiled queries that belong together. Its
 * nodes must be used before the next await, because the next edit frees the tree.
 */
export interface SyntaxView {
  uri: string;
  /** The file's resolved path, when the document is a file. */
  path?: string;
  text: string;
  tree: Tree;
  queries: LspQueries;
}

let queriesPromise: Promise<LspQueries> | undefined;

/**
 * The queries from server/src/lsp/queries/*.scm, compiled once. Features get them already compiled so
 * that they can walk a tree without awaiting: a tree is freed on the next edit, so no await may come
 * between taking it and the last use of its nodes.
 */
export function lspQueries(): Promise<LspQueries> {
  queriesPromise ??= (async () => {
    const language = await loadCLanguage();
    const read = (name: string) => new Query(language, fs.readFileSync(packageFile('server', 'src', 'lsp', 'queries', `${name}.scm`), 'utf8'));
    return { functions: read('functions'), printk: read('printk') };
  })();
  return queriesPromise;
}

export interface FunctionDefinition {
  name: string;
  /** The whole definition. */
  node: Node;
  /** The identifier that names it. */
  nameNode: Node;
}

export function functionDefinitions(tree: Tree, queries: LspQueries): FunctionDefinition[] {
  return queries.functions.matches(tree.rootNode).flatMap((match) => {
    const node = match.captures.find((capture) => capture.name === 'function')?.node;
    const nameNode = match.captures.find((capture) => capture.name === 'name')?.node;
    return node && nameNode ? [{ name: nameNode.text, node, nameNode }] : [];
  });
}

/** The definition whose name covers the string index `offset`. */
export function functionNamedAt(functions: FunctionDefinition[], offset: number): FunctionDefinition | undefined {
  return functions.find((fn) => fn.nameNode.startIndex <= offset && offset <= fn.nameNode.endIndex);
}

/** The innermost function definition that contains `node`. */
export function enclosingFunction(node: Node): Node | undefined {
  for (let current: Node | null = node; current; current = current.parent) {
    if (current.type === 'function_definition') return current;
  }
  return undefined;
}

/** The name of a function_definition node. */
export function functionNameOf(definition: Node): string | undefined {
  let declarator = definition.childForFieldName('declarator');
  while (declarator && declarator.type !== 'function_declarator') declarator = declarator.childForFieldName('declarator');
  const name = declarator?.childForFieldName('declarator');
  return name?.type === 'identifier' ? name.text : undefined;
}

/**
 * The string index of the start of the line where file-scope code goes above `definition`. tree-sitter
 * parses `SEC("tc")` on the line before a function as a statement of its own, and code inserted
 * between the two would take the section attribute; a comment right above belongs to the function too.
 */
export function insertionPointAbove(definition: Node, text: string): number {
  let top: Node = definition;
  for (let previous = top.previousSibling; previous; previous = previous.previousSibling) {
    const adjacent = previous.endPosition.row >= top.startPosition.row - 1;
    const attribute = previous.type === 'expression_statement' && !previous.text.trimEnd().endsWith(';');
    const leadingComment = previous.type === 'comment' && text.slice(text.lastIndexOf('\n', previous.startIndex - 1) + 1, previous.startIndex).trim() === '';
    if (!adjacent || !(attribute || leadingComment)) break;
    top = previous;
  }
  return text.lastIndexOf('\n', top.startIndex - 1) + 1;
}

/** The node at a string index, the smallest named one. */
export function namedNodeAt(tree: Tree, offset: number): Node | null {
  return tree.rootNode.namedDescendantForIndex(offset, offset);
}
