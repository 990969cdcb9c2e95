/**
 * The open documents: each one's text, kept by incremental sync, and its C syntax tree, reparsed
 * incrementally with the same edits (tree-sitter reuses every subtree an edit did not touch).
 * Features take a snapshot — text, tree and compiled queries that belong together — and must finish
 * with its nodes before their next await, because the next edit frees the tree.
 *
 * Whether a buffer holds unsaved changes is decided by content, not by a flag set on edit and cleared
 * on save: an undo back to the saved text, or a file changed on disk that the editor reloaded, leaves
 * a buffer that matches the disk, and an object built from that file describes it.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import type { TextDocumentContentChangeEvent } from 'vscode-languageserver/node';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { CDocument } from '../source/parser';
import { resolvedPath } from '../common/paths';
import { SOURCE_QUOTE_CAP_BYTES, readRegularFile } from '../common/safeRead';
import { type SyntaxView, lspQueries } from '../ide/syntax';
import { uriToPath } from './convert';

/** The features' view of a document (ide/syntax.ts), with the TextDocument the conversions need. */
export interface SyntaxSnapshot extends SyntaxView {
  /** A TextDocument of exactly `text`, for converting the tree's string indices. */
  document: TextDocument;
}

interface OpenDocument {
  document: TextDocument;
  path?: string;
  /** The parsed document once its parser is ready; edits are chained onto it in order. */
  syntax: Promise<CDocument | undefined>;
  /** The hash of the text at `hashedVersion`, so that typing hashes each version at most once. */
  textHash?: { version: number; hash: string };
}

/** A file's content hash as of a size and modification time: read again only when either changes. */
interface DiskHash {
  size: number;
  mtimeMs: number;
  hash: string | undefined;
}

export class OpenDocuments {
  private readonly open = new Map<string, OpenDocument>();
  private readonly diskHashes = new Map<string, DiskHash>();

  constructor(private readonly log: (message: string) => void) {}

  opened(uri: string, languageId: string, version: number, text: string): void {
    this.closed(uri);
    const filePath = uriToPath(uri);
    const syntax = CDocument.create(text).catch((error) => {
      this.log(`cannot parse ${uri}: ${String(error)}`);
      return undefined;
    });
    this.open.set(uri, { document: TextDocument.create(uri, languageId, version, text), path: filePath && resolvedPath(filePath), syntax });
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

  /**
   * Whether the editor shows text other than the file on disk: false for a buffer that matches the
   * file byte for byte (whatever was typed and undone meanwhile), true for one that does not or for
   * a file that cannot be read (never saved, deleted, not a regular file).
   */
  differsFromDisk(uri: string): boolean {
    const entry = this.open.get(uri);
    if (!entry?.path) return false;
    const disk = this.diskHash(entry.path);
    if (disk === undefined) return true;
    if (entry.textHash?.version !== entry.document.version) entry.textHash = { version: entry.document.version, hash: hashOf(entry.document.getText()) };
    return entry.textHash.hash !== disk;
  }

  private diskHash(filePath: string): string | undefined {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(filePath);
    } catch {
      this.diskHashes.delete(filePath);
      return undefined;
    }
    const known = this.diskHashes.get(filePath);
    if (known && known.size === stat.size && known.mtimeMs === stat.mtimeMs) return known.hash;
    const read = readRegularFile(filePath, SOURCE_QUOTE_CAP_BYTES);
    const hash = 'bytes' in read ? hashOf(read.bytes.toString('utf8')) : undefined;
    this.diskHashes.set(filePath, { size: stat.size, mtimeMs: stat.mtimeMs, hash });
    return hash;
  }

  closed(uri: string): void {
    const entry = this.open.get(uri);
    if (!entry) return;
    this.open.delete(uri);
    if (entry.path) this.diskHashes.delete(entry.path);
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

/** Buffer and file are hashed as the same UTF-8 text, so that a BOM or CRLF counts like any other byte. */
function hashOf(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
