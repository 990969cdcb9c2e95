/**
 * The layers of server/src, held by a test rather than by habit (ARCHITECTURE.md draws them):
 *
 *   common ← rules ← {object, source} ← {probe, compile, lab} ← ide ← {lsp, cli}
 *
 * A folder imports only the folders to its left (and itself); object and source never import each
 * other, nor do lsp and cli; no two files import each other, however indirectly; and only
 * server/src/lsp and client/ import an editor or protocol package. Every `import`, `export … from`,
 * `import type` and `require()` counts: a type-only edge still couples the folders. The few edges
 * that break the rule today are listed with why, and the test fails both on a new one and on a
 * listed one that is gone, so that the list only says what is still true.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';

import { repositoryRoot } from './support/kernel';

/** What each folder of server/src may import besides itself. */
const ALLOWED: Record<string, readonly string[]> = {
  common: [],
  rules: ['common'],
  object: ['common', 'rules'],
  source: ['common', 'rules'],
  probe: ['common', 'rules', 'object', 'source'],
  compile: ['common', 'rules', 'object', 'source'],
  // The kernel lab boots real kernels: I/O at the edge, like probe/, for `verify`.
  lab: ['common', 'rules'],
  ide: ['common', 'rules', 'object', 'source', 'probe', 'compile', 'lab'],
  lsp: ['common', 'rules', 'object', 'source', 'probe', 'compile', 'lab', 'ide'],
  cli: ['common', 'rules', 'object', 'source', 'probe', 'compile', 'lab', 'ide'],
  // The extension imports the protocol's names and types only.
  client: ['lsp/protocol'],
};

/** Packages that speak an editor's API or the protocol: lsp/ and client/ only. */
const EDITOR_PACKAGES = /^(vscode|vscode-languageserver.*|vscode-languageclient.*|vscode-jsonrpc.*)(\/|$)/;
const MAY_IMPORT_EDITOR_PACKAGES = new Set(['lsp', 'client']);

/** Edges that break the rule today, file → file (without .ts), with why. */
const KNOWN_EXCEPTIONS = new Map<string, string>([
  // One binary: `bpf-stack-lens lsp` is a command of the CLI, loaded on demand.
  ['server/src/cli/main -> server/src/lsp/lspCommand', 'the lsp subcommand of the one binary'],
]);

/**
 * Import cycles that exist today, as their sorted members, with why; the test fails on a new one
 * and on one that has gone.
 */
const KNOWN_CYCLES = new Map<string, string>([
  [
    'server/src/lsp/codeActions server/src/lsp/convert server/src/lsp/documents',
    "convert.ts takes codeActions' QuickFix type, codeActions the documents' SyntaxSnapshot, and documents convert's uriToPath: moving the quick fixes to ide/ breaks it",
  ],
]);

interface SourceFile {
  /** Relative to the repository, without .ts: "server/src/source/parser". */
  name: string;
  folder: string;
  /** Files of the project it imports (same form as `name`). */
  imports: string[];
  /** Packages it imports. */
  packages: string[];
}

function folderOf(name: string): string {
  const parts = name.split('/');
  return parts[0] === 'client' ? 'client' : parts[2];
}

function listTypeScript(directory: string): string[] {
  const found: string[] = [];
  for (const entry of fs.readdirSync(directory, { withFileTypes: true })) {
    const full = path.join(directory, entry.name);
    if (entry.isDirectory()) found.push(...listTypeScript(full));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) found.push(full);
  }
  return found;
}

function readSources(): SourceFile[] {
  const root = repositoryRoot();
  const files = [...listTypeScript(path.join(root, 'server', 'src')), ...listTypeScript(path.join(root, 'client', 'src'))];
  const relative = (file: string) => path.relative(root, file).split(path.sep).join('/').replace(/\.ts$/, '');
  return files.map((file) => {
    const source = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
    const imports: string[] = [];
    const packages: string[] = [];
    const add = (specifier: string) => {
      if (!specifier.startsWith('.')) {
        packages.push(specifier);
        return;
      }
      let target = path.resolve(path.dirname(file), specifier.replace(/\.js$/, ''));
      // A folder import means its index.
      if (!fs.existsSync(`${target}.ts`) && fs.existsSync(path.join(target, 'index.ts'))) target = path.join(target, 'index');
      imports.push(relative(`${target}.ts`));
    };
    const visit = (node: ts.Node) => {
      if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier))
        add(node.moduleSpecifier.text);
      else if (ts.isCallExpression(node) && node.arguments.length === 1 && ts.isStringLiteral(node.arguments[0])) {
        const callee = node.expression;
        if ((ts.isIdentifier(callee) && callee.text === 'require') || callee.kind === ts.SyntaxKind.ImportKeyword) add(node.arguments[0].text);
      } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) add(node.argument.literal.text);
      ts.forEachChild(node, visit);
    };
    visit(source);
    const name = relative(file);
    return { name, folder: folderOf(name), imports, packages };
  });
}

const sources = readSources();

test('every folder imports only the layers below it', () => {
  assert.ok(sources.length > 50, `read ${sources.length} files`);
  const violations: string[] = [];
  const used = new Set<string>();
  for (const source of sources) {
    const allowed = ALLOWED[source.folder];
    assert.ok(allowed, `${source.name}: the folder ${source.folder} has no place in the layers; add it to ALLOWED and to ARCHITECTURE.md`);
    for (const target of source.imports) {
      const folder = folderOf(target);
      if (folder === source.folder || allowed.includes(folder) || allowed.includes(target.split('/').slice(2).join('/'))) continue;
      const edge = `${source.name} -> ${target}`;
      if (KNOWN_EXCEPTIONS.has(edge)) used.add(edge);
      else violations.push(`${edge} (${source.folder} may import ${allowed.join(', ') || 'nothing'})`);
    }
  }
  assert.deepEqual(violations, [], `imports against the layers:\n${violations.join('\n')}`);
  const stale = [...KNOWN_EXCEPTIONS.keys()].filter((edge) => !used.has(edge));
  assert.deepEqual(stale, [], `no longer imported, remove from KNOWN_EXCEPTIONS:\n${stale.join('\n')}`);
});

test('only lsp/ and the client import editor and protocol packages', () => {
  const violations = sources.flatMap((source) =>
    MAY_IMPORT_EDITOR_PACKAGES.has(source.folder)
      ? []
      : source.packages.filter((name) => EDITOR_PACKAGES.test(name)).map((name) => `${source.name} imports ${name}`),
  );
  assert.deepEqual(violations, []);
  // The rule is about something: lsp/ does speak the protocol.
  assert.ok(sources.some((source) => source.folder === 'lsp' && source.packages.some((name) => EDITOR_PACKAGES.test(name))));
});

test('no import cycles between files', () => {
  const byName = new Map(sources.map((source) => [source.name, source]));
  // Tarjan's strongly connected components, iteratively (no recursion the tree's depth controls).
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  let counter = 0;
  for (const start of byName.keys()) {
    if (index.has(start)) continue;
    const work: { name: string; next: number }[] = [{ name: start, next: 0 }];
    index.set(start, counter);
    low.set(start, counter++);
    stack.push(start);
    onStack.add(start);
    while (work.length > 0) {
      const frame = work[work.length - 1];
      const targets = byName.get(frame.name)?.imports.filter((target) => byName.has(target)) ?? [];
      if (frame.next < targets.length) {
        const target = targets[frame.next++];
        if (!index.has(target)) {
          index.set(target, counter);
          low.set(target, counter++);
          stack.push(target);
          onStack.add(target);
          work.push({ name: target, next: 0 });
        } else if (onStack.has(target)) low.set(frame.name, Math.min(low.get(frame.name)!, index.get(target)!));
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.name, Math.min(low.get(parent.name)!, low.get(frame.name)!));
      if (low.get(frame.name) === index.get(frame.name)) {
        const component: string[] = [];
        let member: string;
        do {
          member = stack.pop()!;
          onStack.delete(member);
          component.push(member);
        } while (member !== frame.name);
        if (component.length > 1) cycles.push(component.sort());
      }
    }
  }
  const found = cycles.map((cycle) => cycle.join(' '));
  const unknown = found.filter((cycle) => !KNOWN_CYCLES.has(cycle));
  assert.deepEqual(unknown, [], unknown.map((cycle) => `cycle: ${cycle}`).join('\n'));
  const stale = [...KNOWN_CYCLES.keys()].filter((cycle) => !found.includes(cycle));
  assert.deepEqual(stale, [], `no longer a cycle, remove from KNOWN_CYCLES:\n${stale.join('\n')}`);
});
