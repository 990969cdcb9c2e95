/**
 * Every conversion between the analysis's plain data and the Language Server Protocol lives here:
 * 1-based source locations from BTF and string indices from tree-sitter in, LSP positions, ranges,
 * diagnostics, hovers, edits and lenses out (and back). The feature modules never build an LSP
 * object themselves, so off-by-one decisions are made once.
 */
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  type CodeAction,
  CodeActionKind,
  type CodeLens,
  type Diagnostic,
  DiagnosticSeverity,
  type Hover,
  type Location,
  MarkupKind,
  type Position,
  type Range,
  type TextEdit,
} from 'vscode-languageserver/node';
import type { TextDocument } from 'vscode-languageserver-textdocument';
import type { SourceLocation } from '../common/problem';
import type { LensTitle } from '../ide/codeLens';
import type { QuickFix } from './codeActions';
import type { FindingData, StackFinding } from '../ide/diagnostics';
import type { HoverContent } from '../ide/hover';
import type { TextSpan } from '../ide/textSpan';

export function uriToPath(uri: string): string | undefined {
  // A client's message may carry anything where a uri belongs; a throw per change event is slow.
  if (typeof uri !== 'string') return undefined;
  try {
    return uri.startsWith('file:') ? fileURLToPath(uri) : undefined;
  } catch {
    return undefined;
  }
}

export function pathToUri(filePath: string): string {
  return pathToFileURL(filePath).href;
}

/** BTF lines are 1-based and columns 1-based with 0 meaning "unknown"; LSP counts both from 0. */
export function toPosition(location: SourceLocation): Position {
  return { line: Math.max(location.line - 1, 0), character: Math.max(location.column - 1, 0) };
}

/**
 * The range a source location stands for: from its column to the end of the statement's text on
 * that line, when the document is at hand; otherwise an empty range at the column.
 */
export function toRange(location: SourceLocation, document?: TextDocument): Range {
  const start = toPosition(location);
  if (!document || start.line >= document.lineCount) return { start, end: start };
  const lineText = document.getText({ start: { line: start.line, character: 0 }, end: { line: start.line + 1, character: 0 } }).replace(/\r?\n$/, '');
  const firstNonBlank = lineText.search(/\S/);
  const startCharacter = location.column === 0 && firstNonBlank >= 0 ? firstNonBlank : Math.min(start.character, lineText.length);
  const endCharacter = Math.max(startCharacter, lineText.trimEnd().length);
  return { start: { line: start.line, character: startCharacter }, end: { line: start.line, character: endCharacter } };
}

export function toLocation(location: SourceLocation, document?: TextDocument): Location {
  return { uri: pathToUri(location.file), range: toRange(location, document) };
}

export function spanToRange(document: TextDocument, span: TextSpan): Range {
  return { start: document.positionAt(span.start), end: document.positionAt(span.end) };
}

export function rangeToSpan(document: TextDocument, range: Range): TextSpan {
  return { start: document.offsetAt(range.start), end: document.offsetAt(range.end) };
}

export function offsetOf(document: TextDocument, position: Position): number {
  return document.offsetAt(position);
}

/** `documentFor` gives the open document of a file, so related locations get full ranges too. */
export function toDiagnostic(finding: StackFinding, documentFor: (file: string) => TextDocument | undefined): Diagnostic {
  return {
    range: toRange(finding.location, documentFor(finding.location.file)),
    severity:
      finding.severity === 'error' ? DiagnosticSeverity.Error : finding.severity === 'warning' ? DiagnosticSeverity.Warning : DiagnosticSeverity.Information,
    source: finding.source,
    code: finding.rule,
    message: finding.message,
    relatedInformation: finding.related.map((related) => ({
      location: toLocation(related.location, documentFor(related.location.file)),
      message: related.message,
    })),
    data: finding.data,
  };
}

export function toHover(document: TextDocument, content: HoverContent): Hover {
  return { contents: { kind: MarkupKind.Markdown, value: content.markdown }, range: spanToRange(document, content.span) };
}

export function toCodeLens(document: TextDocument, lens: LensTitle): CodeLens {
  const position = document.positionAt(lens.offset);
  return {
    range: { start: position, end: position },
    command: { title: lens.title, command: lens.command ?? '', arguments: lens.command ? [pathToUri(lens.file)] : undefined },
  };
}

export function toCodeAction(document: TextDocument, fix: QuickFix, diagnostics: Diagnostic[]): CodeAction {
  const edits: TextEdit[] = fix.edits.map((edit) => ({ range: spanToRange(document, edit), newText: edit.newText }));
  return {
    title: fix.title,
    kind: CodeActionKind.QuickFix,
    isPreferred: fix.preferred,
    diagnostics: diagnostics.length > 0 ? diagnostics : undefined,
    edit: { changes: { [document.uri]: edits } },
  };
}

/** The finding data a diagnostic of ours carries, or undefined for anyone else's diagnostic. */
export function findingDataOf(diagnostic: Diagnostic): FindingData | undefined {
  const data = diagnostic.data as Partial<FindingData> | undefined;
  if (!diagnostic.source?.startsWith('bpf-stack-lens') || !data || !Array.isArray(data.chain) || typeof data.rule !== 'string') return undefined;
  return { program: String(data.program ?? ''), chain: data.chain.map(String), rule: data.rule };
}
