/**
 * The open documents: each one's text, kept by incremental sync, and its C syntax tree, reparsed
 * incrementally with the same edits (tree-sitter reuses every subtree an edit did not touch).
 * Features take a snapshot — text, tree and compiled queries that belong together — and must finish
 * with its nodes before their next await, because the next edit frees the tree.
 */
import type { TextDocumentContentChangeEvent } from 'vscode-languageserver/node';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { CDocument, type Tree } from '../source/parser';
import { resolvedPath } from './documentAnalysis';
import { type LspQueries, lspQueries } from './syntax';
import { uriToPath } from './convert';

export interface SyntaxSnapshot {
  uri: string;
  /** The file's resolved path, when the document is a file. */
  path?: string;
  text: string;
  tree: Tree;
  /** A TextDocument of exactly `text`, for converting the tree's string indices. */
  document: TextDocument;
  queries: LspQueries;
}

interface OpenDocument {
  document: TextDocument;
  path?: string;
  /** The parsed document once its parser is ready; edits are chained onto it in order. */
  syntax: Promise<CDocument | undefined>;
  /** Edited since it was opened or last saved, so the file on disk is not what the editor shows. */
  dirty: boolean;
}

export class OpenDocuments {
  private readonly open = new Map<string, OpenDocument>();

  constructor(private readonly log: (message: string) => void) {}

  opened(uri: string, languageId: string, version: number, text: string): void {
    this.closed(uri);
    const filePath = uriToPath(uri);
    const syntax = CDocument.create(text).catch((error) => {
      this.log(`cannot parse ${uri}: ${String(error)}`);
      return undefined;
    });
    this.open.set(uri, { document: TextDocument.create(uri, languageId, version, text), path: filePath && resolvedPath(filePath), syntax, dirty: false });
  }

  /** Applies an editor's changes in order, to the text at once and to the tree as they are reached. */
  changed(uri: string, version: number, changes: TextDocumentContentChangeEvent[]): void {
    const entry = this.open.get(uri);
    if (!entry) return;
    const edits: ({ start: number; end: number; text: string } | { full: string })[] = [];
    let document = entry.document;
    for (const change of changes) {
      if ('range' in change) {
        edits.push({ start: document.offsetAt(change.range.start), end: document.offsetAt(change.range.end), text: change.text });
      } else {
        edits.push({ full: change.text });
      }
      document = TextDocument.update(document, [change], version);
    }
    entry.document = document;
    entry.dirty = true;
    const finalText = document.getText();
    entry.syntax = entry.syntax.then((parsed) => {
      if (!parsed) return parsed;
      for (const edit of edits) {
        if ('full' in edit) parsed.update(edit.full);
        else parsed.edit(edit.start, edit.end, edit.text);
      }
      // A client that sent ranges we read differently would leave the tree behind; start over then.
      if (parsed.text !== finalText) parsed.parse(finalText);
      return parsed;
    });
  }

  saved(uri: string): void {
    const entry = this.open.get(uri);
    if (entry) entry.dirty = false;
  }

  isDirty(uri: string): boolean {
    return this.open.get(uri)?.dirty ?? false;
  }

  closed(uri: string): void {
    const entry = this.open.get(uri);
    if (!entry) return;
    this.open.delete(uri);
    void entry.syntax.then((parsed) => parsed?.dispose());
  }

  get(uri: string): TextDocument | undefined {
    return this.open.get(uri)?.document;
  }

  pathOf(uri: string): string | undefined {
    return this.open.get(uri)?.path;
  }

  uris(): string[] {
    return [...this.open.keys()];
  }

  /** The open document of a file, by path. */
  byPath(filePath: string): TextDocument | undefined {
    const resolved = resolvedPath(filePath);
    for (const entry of this.open.values()) if (entry.path === resolved) return entry.document;
    return undefined;
  }

  /** The text of every open file, by resolved path. */
  textsByPath(): Map<string, string> {
    const texts = new Map<string, string>();
    for (const entry of this.open.values()) if (entry.path) texts.set(entry.path, entry.document.getText());
    return texts;
  }

  async snapshot(uri: string): Promise<SyntaxSnapshot | undefined> {
    const entry = this.open.get(uri);
    if (!entry) return undefined;
    const [parsed, queries] = await Promise.all([entry.syntax, lspQueries()]);
    if (!parsed || this.open.get(uri) !== entry) return undefined;
    const text = parsed.text;
    const document = text === entry.document.getText() ? entry.document : TextDocument.create(uri, 'c', entry.document.version, text);
    return { uri, path: entry.path, text, tree: parsed.tree, document, queries };
  }
}
