/**
 * The layout engine against fixtures whose expected sizes clang itself confirms: each
 * `// expect:` line of test/source/data/layout.c becomes a _Static_assert that clang-19 -target bpf
 * must accept, and the engine must report the same size and alignment.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { typesReport } from '../../server/src/source/typesReport';
import { HeaderIndex } from '../../server/src/source/headerIndex';
import { analyzeTranslationUnit } from '../../server/src/source/translationUnit';
import { dataFile, hasClang, layoutExpectations, runClang, temporaryDirectory } from './helpers';
import { skipUnlessCI } from '../support/unavailable';

const fixture = dataFile('layout.c');
const fixtureText = fs.readFileSync(fixture, 'utf8');
const expectations = layoutExpectations(fixtureText);

test('the fixture states many layouts', () => {
  assert.ok(expectations.length >= 30, `only ${expectations.length} expectations`);
});

test('clang-19 agrees with every expectation in layout.c', { skip: skipUnlessCI(!hasClang() && 'clang-19 is not installed') }, () => {
  const asserts = expectations.map(
    ({ kind, name, size, align }) =>
      `_Static_assert(sizeof(${kind} ${name}) == ${size}, "${name} size");\n_Static_assert(_Alignof(${kind} ${name}) == ${align}, "${name} align");`,
  );
  const directory = temporaryDirectory('layout');
  const file = path.join(directory, 'layout-asserts.c');
  fs.writeFileSync(file, `${fixtureText}\n${asserts.join('\n')}\n`);
  const result = runClang(['-fsyntax-only', '-Wno-gnu-folding-constant', file]);
  assert.equal(result.status, 0, result.stderr);
});

test('the layout engine matches every expectation in layout.c', () => {
  const report = typesReport(fixture, { index: new HeaderIndex({ cacheDir: null }) });
  assert.deepEqual(report.problems, []);
  const byName = new Map(report.types.map((entry) => [entry.name, entry]));
  const wrong: string[] = [];
  for (const expected of expectations) {
    const actual = byName.get(expected.name);
    if (!actual || actual.size !== expected.size || actual.align !== expected.align || actual.kind !== expected.kind) {
      wrong.push(
        `${expected.kind} ${expected.name}: expected ${expected.size}/${expected.align}, got ${actual ? `${actual.size}/${actual.align}` : 'nothing'}`,
      );
    }
  }
  assert.deepEqual(wrong, []);
});

test('field offsets follow clang, bit-fields included', () => {
  const unit = analyzeTranslationUnit(fixture, fixtureText, { index: new HeaderIndex({ cacheDir: null }) });
  const offsets = (tag: string) => {
    const def = unit.environment.record(tag);
    assert.ok(def, `struct ${tag} is defined`);
    return unit.layout.recordLayout(def).fields.map((field) => [field.name ?? '', field.bitOffset ?? field.offset * 8]);
  };
  assert.deepEqual(offsets('named_bitfields'), [
    ['c', 0],
    ['x', 32],
    ['y', 64],
  ]);
  assert.deepEqual(offsets('unnamed_long_64'), [
    ['c', 0],
    ['', 64],
    ['e', 128],
  ]);
  assert.deepEqual(offsets('aligned_member'), [
    ['c', 0],
    ['x', 64],
    ['tail', 96],
  ]);
  const anonymous = unit.environment.record('anonymous_members')!;
  const union = anonymous.fields[1].type;
  assert.equal(unit.layout.findField({ k: 'struct', tag: 'anonymous_members' }, 'hi')?.offset, 12);
  assert.equal(union.k, 'union');
});

test('unknown types and bad bounds are problems, not exceptions', () => {
  const text = 'struct broken { struct never_defined inner; char x[UNDEFINED_BOUND]; int ok; };\nstruct after { int y; };\n';
  const unit = analyzeTranslationUnit('/virtual/broken.c', text, { index: new HeaderIndex({ cacheDir: null }) });
  assert.ok(unit.problems.some((problem) => problem.message.includes('UNDEFINED_BOUND')));
  const broken = unit.layout.recordLayout(unit.environment.record('broken')!);
  assert.equal(broken.complete, false);
  assert.equal(unit.layout.recordLayout(unit.environment.record('after')!).size, 4);
});
