/**
 * The scratch-map rewrite on its own, without clang: the shapes it must get right (a 2-D array
 * keeps its inner dimension, uses of a struct by value dereference it) and the locals it must
 * refuse, each with the reason. test/lsp/quickFixes.test.ts compiles and loads its output.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { scratchMapRewrite } from '../../server/src/ide/scratchMap';
import { CDocument } from '../../server/src/source/parser';

async function rewrite(body: string, name: string, line = 4): Promise<string> {
  const text = `struct s { int a; };\nint f(int n)\n{\n${body}}\n`;
  const parsed = await CDocument.create(text);
  try {
    const functionNode = parsed.tree.rootNode.namedChildren.find((node) => node?.type === 'function_definition');
    assert.ok(functionNode);
    const result = scratchMapRewrite({ text, functionNode, name, line, section: null, mapInsertAt: 0 });
    if ('problem' in result) return `problem: ${result.problem}`;
    let fixed = text;
    for (const edit of [...result.edits].reverse()) fixed = fixed.slice(0, edit.start) + edit.newText + fixed.slice(edit.end);
    return fixed;
  } finally {
    parsed.dispose();
  }
}

test('a 2-D array becomes a pointer to its rows; subscripts stay, sizeof names the array type', async () => {
  const fixed = await rewrite('\tchar grid[8][32];\n\tgrid[n][0] = 1;\n\treturn sizeof(grid) + sizeof grid[0];\n', 'grid');
  assert.match(fixed, /__type\(value, char\[8\]\[32\]\);/);
  assert.match(fixed, /char \(\*grid\)\[32\] = bpf_map_lookup_elem\(&grid_scratch, &grid_key\);/);
  assert.match(fixed, /grid\[n\]\[0\] = 1;\n\treturn sizeof\(char\[8\]\[32\]\) \+ sizeof grid\[0\];/);
});

test('a struct used by value is dereferenced; its initializer list becomes an assignment', async () => {
  const fixed = await rewrite('\tstruct s v = { .a = 1 }, *p;\n\treturn 0;\n', 'v');
  assert.equal(fixed, 'problem: `v` is declared together with other variables');
  const assigned = await rewrite('\tstruct s v = { .a = n };\n\tstruct s w = v;\n\treturn v.a + w.a;\n', 'v');
  assert.match(assigned, /\tif \(!v\)\n\t\treturn 0;\n\t\*v = \(struct s\)\{ \.a = n \};\n\tstruct s w = \*v;\n\treturn v->a \+ w\.a;/);
});

test('locals it cannot move say why', async () => {
  assert.equal(await rewrite('\tstatic char buf[64];\n\treturn buf[0];\n', 'buf'), 'problem: `buf` is declared static, register, const or volatile');
  assert.equal(
    await rewrite('\tchar buf[64];\n\t{ char buf[8]; buf[0] = 0; }\n\treturn buf[0];\n', 'buf'),
    'problem: another `buf` is declared in the function',
  );
  assert.match(await rewrite('\tstruct { int x; } anon;\n\treturn anon.x;\n', 'anon'), /defined in its declaration/);
});
