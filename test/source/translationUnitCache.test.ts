/**
 * Reusing a file's include prefix between analyses (TranslationUnitCache): an edit below the
 * includes gives exactly what a fresh analysis gives, and a header that changes, or appears earlier
 * on the include path, is read again. Also the header index's replays: they give back the macros and
 * problems a cold read gave.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HeaderIndex } from '../../server/src/source/headerIndex';
import { type TranslationUnit, TranslationUnitCache, analyzeTranslationUnit } from '../../server/src/source/translationUnit';
import { temporaryDirectory } from './helpers';

function summary(unit: TranslationUnit): unknown {
  return {
    aligned: unit.aligned.text,
    tokens: unit.tokens.map((token) => [token.text, token.offset, token.flags]),
    names: unit.mainFileNames.map((name) => [name.name, name.offset, name.isFunctionDefinition, name.body]),
    problems: unit.problems,
    inactive: unit.inactiveRanges,
    records: [...unit.environment.records].map(([tag, def]) => [tag, unit.layout.recordLayout(def).size]),
    constants: [...unit.environment.constants],
    macros: [...unit.macros.values()].map((macro) => `${macro.name}${macro.params ? `(${macro.params})` : ''} ${macro.spelling}`).sort(),
  };
}

function project(): { directory: string; includeDirs: string[]; main: string } {
  const directory = temporaryDirectory('unit-cache');
  fs.mkdirSync(path.join(directory, 'inc'));
  fs.writeFileSync(
    path.join(directory, 'inc', 'types.h'),
    '#pragma once\n#define LEN (2 + 2)\nstruct pair { int a; char b[LEN]; };\nenum color { RED, GREEN = 7 };\ntypedef struct pair pair_t;\n',
  );
  fs.writeFileSync(path.join(directory, 'inc', 'more.h'), '#include <types.h>\nstruct more { pair_t p; long x; };\n');
  return { directory, includeDirs: [path.join(directory, 'inc')], main: path.join(directory, 'main.c') };
}

const MAIN = [
  '#include <types.h>',
  '#ifdef WANT_MORE',
  '#include <more.h>',
  '#endif',
  '#include <more.h>',
  'struct local { pair_t p; enum color c; };',
  '#define TWICE(x) ((x) + (x))',
  'static int f(void) { char buf[TWICE(LEN)]; return buf[0]; }',
  '/* a comment',
  '   over lines */ int g(int v) { return v + GREEN; }',
  '#if 0',
  'int hidden;',
  '#endif',
  'int last;',
  '',
].join('\n');

test('edits below the includes reuse the prefix and give what a fresh analysis gives', () => {
  const { includeDirs, main } = project();
  const index = new HeaderIndex({ cacheDir: null });
  const cache = new TranslationUnitCache();
  const edits = [
    MAIN,
    MAIN.replace('buf[TWICE(LEN)]', 'buf[TWICE(LEN) + 1]'),
    MAIN.replace('int last;', 'int last; struct added { char c[3]; };'),
    MAIN.replace('/* a comment', '/* a comment */ int /*'),
    MAIN.replace('return v + GREEN;', 'return v + GREEN + "x\\"y";'),
    MAIN.replace('int last;', '#define LEN 9\nint last[LEN];'),
    MAIN.replace('#include <types.h>', '#define LEN 3\n#include <types.h>'),
    MAIN.replace('#ifdef WANT_MORE', '#ifndef WANT_MORE'),
    MAIN,
    `${MAIN}int tail`,
    MAIN.slice(0, MAIN.indexOf('struct local')),
  ];
  for (const text of edits) {
    const cached = analyzeTranslationUnit(main, text, { includeDirs, index, cache });
    const fresh = analyzeTranslationUnit(main, text, { includeDirs, index: new HeaderIndex({ cacheDir: null }) });
    assert.deepEqual(summary(cached), summary(fresh), text);
  }
});

test('a header that changes on disk, or appears earlier on the include path, is read again', () => {
  const { directory, includeDirs, main } = project();
  const index = new HeaderIndex({ cacheDir: null });
  const cache = new TranslationUnitCache();
  const sizeOfPair = (unit: TranslationUnit) => unit.layout.recordLayout(unit.environment.record('pair')!).size;
  assert.equal(sizeOfPair(analyzeTranslationUnit(main, MAIN, { includeDirs, index, cache })), 8);

  fs.writeFileSync(
    path.join(directory, 'inc', 'types.h'),
    '#pragma once\n#define LEN 4\nstruct pair { long a; char b[LEN]; };\nenum color { RED, GREEN };\ntypedef struct pair pair_t;\n',
  );
  assert.equal(sizeOfPair(analyzeTranslationUnit(main, MAIN, { includeDirs, index, cache })), 16);

  const earlier = path.join(directory, 'earlier');
  fs.mkdirSync(earlier);
  fs.writeFileSync(
    path.join(earlier, 'types.h'),
    '#pragma once\n#define LEN 1\nstruct pair { char a; };\nenum color { RED, GREEN };\ntypedef struct pair pair_t;\n',
  );
  assert.equal(sizeOfPair(analyzeTranslationUnit(main, MAIN, { includeDirs: [earlier, ...includeDirs], index, cache })), 1);
  // Same options as the cached prefix, but a new file on its path.
  const cacheForPath = new TranslationUnitCache();
  analyzeTranslationUnit(main, MAIN, { includeDirs: [path.join(directory, 'later'), ...includeDirs], index, cache: cacheForPath });
  fs.mkdirSync(path.join(directory, 'later'));
  fs.writeFileSync(
    path.join(directory, 'later', 'types.h'),
    '#pragma once\n#define LEN 1\nstruct pair { short a; };\nenum color { RED, GREEN };\ntypedef struct pair pair_t;\n',
  );
  const unit = analyzeTranslationUnit(main, MAIN, { includeDirs: [path.join(directory, 'later'), ...includeDirs], index, cache: cacheForPath });
  assert.equal(sizeOfPair(unit), 2);
});

test('a header replayed from the index, in memory or from disk, gives the macros and problems a cold read gave', () => {
  const { directory, includeDirs, main } = project();
  fs.writeFileSync(path.join(directory, 'inc', 'deep.h'), '#include "missing.h"\n#define PAREN (1 | 2)\n#define CALL(x) (x)\n#if (\n#endif\n');
  fs.writeFileSync(path.join(directory, 'inc', 'middle.h'), '#include "deep.h"\n');
  fs.writeFileSync(path.join(directory, 'inc', 'top.h'), '#include "middle.h"\nint top_array[PAREN];\n');
  const text = '#include <top.h>\nint x[CALL(PAREN)];\n';
  const cacheDir = path.join(directory, 'cache');
  const cold = analyzeTranslationUnit(main, text, { includeDirs, index: new HeaderIndex({ cacheDir }) });
  const sharedIndex = new HeaderIndex({ cacheDir });
  const fromDisk = analyzeTranslationUnit(main, text, { includeDirs, index: sharedIndex });
  const fromMemory = analyzeTranslationUnit(main, text, { includeDirs, index: sharedIndex });
  assert.equal(sharedIndex.statistics.diskHits, 1);
  assert.equal(sharedIndex.statistics.memoryHits, 1);
  assert.equal(cold.macros.get('PAREN')?.params, undefined);
  assert.equal(cold.problems.filter((problem) => problem.message.includes('missing.h')).length, 1);
  for (const warm of [fromDisk, fromMemory]) {
    assert.deepEqual(summary(warm), summary(cold));
    assert.equal(warm.macros.get('PAREN')?.params, undefined, '#define PAREN (1 | 2) stays object-like');
  }
});
