/**
 * tree-sitter from CommonJS: the runtime and the C grammar load, queries compile from their .scm
 * files, and a document reparses incrementally after edits, freeing the trees it replaces.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { functionName } from '../../server/src/source/frameEstimate/syntax';
import { CDocument, createCParser, loadCLanguage, loadQuery, pointAt } from '../../server/src/source/parser';

test('the C grammar loads with ABI 15', async () => {
  const language = await loadCLanguage();
  assert.equal(language.abiVersion, 15);
  const parser = await createCParser();
  const tree = parser.parse('int x;');
  assert.equal(tree?.rootNode.type, 'translation_unit');
  tree?.delete();
  parser.delete();
});

test('the functions query finds every function definition, pointer-returning ones too', async () => {
  const document = await CDocument.create('static int a(void) { return 0; }\nchar *b(int x) { return 0; }\nint c(void);\n');
  try {
    const query = await loadQuery('functions');
    assert.equal(await loadQuery('functions'), query, 'compiled once');
    const names = query.matches(document.tree.rootNode).map((match) => match.captures.find((capture) => capture.name === 'name')?.node.text);
    assert.deepEqual(names, ['a', 'b']);
  } finally {
    document.dispose();
  }
});

test('edits reparse incrementally and give the same tree as a fresh parse', async () => {
  const original = 'int f(void)\n{\n\treturn 1;\n}\n';
  const document = await CDocument.create(original);
  try {
    const start = original.indexOf('1;');
    document.edit(start, start + 1, 'g(2) + 3');
    assert.equal(document.text, 'int f(void)\n{\n\treturn g(2) + 3;\n}\n');
    const incremental = document.tree.rootNode.toString();
    const fresh = await CDocument.create(document.text);
    assert.equal(incremental, fresh.tree.rootNode.toString());
    fresh.dispose();

    document.update('int f(void)\n{\n\treturn g(2) + 3;\n}\nint h(void) { return 4; }\n');
    const functions = document.tree.rootNode.namedChildren.filter((node) => node?.type === 'function_definition');
    assert.equal(functions.length, 2);
    assert.equal(functions[1]?.startPosition.row, 4);
  } finally {
    document.dispose();
  }
});

test('positions are rows and string-index columns', () => {
  assert.deepEqual(pointAt('ab\ncd\nef', 4), { row: 1, column: 1 });
  assert.deepEqual(pointAt('ab', 0), { row: 0, column: 0 });
});

test('functionName, the one walk of a declarator the estimate uses, names functions returning pointers to pointers', async () => {
  const text =
    'struct s { int x; };\nstruct s **twice(void) { return 0; }\nchar ***thrice(int x) { return 0; }\nint (*returns_function(void))(int) { return 0; }\n';
  const document = await CDocument.create(text);
  try {
    const names = document.tree.rootNode.namedChildren
      .filter((node) => node?.type === 'function_definition')
      .map((definition) => functionName(definition!.childForFieldName('declarator'))?.text);
    assert.deepEqual(names, ['twice', 'thrice', 'returns_function']);
  } finally {
    document.dispose();
  }
});
