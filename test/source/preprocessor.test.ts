/**
 * The preprocessor: includes and guards, conditionals, function-like macros and constant
 * expressions in array bounds, each proven by clang-19 on the same fixture; and the main file's
 * tokens after preprocessing compared with `clang -E` on a program that uses libbpf's macros.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { analyzeTranslationUnit } from '../../server/src/source/translationUnit';
import { HeaderIndex } from '../../server/src/source/headerIndex';
import { typesReport } from '../../server/src/source/typesReport';
import { createPreprocessorState, preprocessFile } from '../../server/src/source/preprocessor';
import { spell, tokenize } from '../../server/src/source/lexer';
import type { Token } from '../../server/src/source/lexer';
import { CDocument } from '../../server/src/source/parser';
import { dataFile, hasClang, layoutExpectations, runClang, temporaryDirectory } from './helpers';
import { skipUnlessCI } from '../support/unavailable';

const mainFile = dataFile(path.join('preprocessor', 'main.c'));
const includeDir = dataFile(path.join('preprocessor', 'include'));
const mainText = fs.readFileSync(mainFile, 'utf8');
const expectations = layoutExpectations(mainText);
const libbpfPresent = fs.existsSync('/usr/include/bpf/bpf_helpers.h');

function memoryIndex(): HeaderIndex {
  return new HeaderIndex({ cacheDir: null });
}

/** Preprocesses text alone (no includes) and spells the result. */
function expand(text: string): { text: string; problems: string[] } {
  const state = createPreprocessorState();
  const tokens: Token[] = [];
  const problems: { message: string }[] = [];
  preprocessFile('/virtual/x.c', text, state, { tokens: (batch) => tokens.push(...batch), include: () => undefined, hasInclude: () => false }, problems);
  return { text: spell(tokens), problems: problems.map((problem) => problem.message) };
}

test('clang-19 agrees with every expectation in preprocessor/main.c', { skip: skipUnlessCI(!hasClang() && 'clang-19 is not installed') }, () => {
  const asserts = expectations.map(
    ({ kind, name, size, align }) => `_Static_assert(sizeof(${kind} ${name}) == ${size} && _Alignof(${kind} ${name}) == ${align}, "${name}");`,
  );
  const directory = temporaryDirectory('preprocessor');
  const file = path.join(directory, 'main-asserts.c');
  fs.writeFileSync(file, `#include "${mainFile}"\n${asserts.join('\n')}\n`);
  const result = runClang(['-fsyntax-only', `-I${includeDir}`, file]);
  assert.equal(result.status, 0, result.stderr);
});

test('includes, guards, conditionals and macros give the sizes clang gives', () => {
  const report = typesReport(mainFile, { includeDirs: [includeDir], index: memoryIndex() });
  assert.deepEqual(report.problems, []);
  const byName = new Map(report.types.map((entry) => [entry.name, entry]));
  for (const expected of expectations) {
    const actual = byName.get(expected.name);
    assert.deepEqual(actual && [actual.size, actual.align], [expected.size, expected.align], `${expected.kind} ${expected.name}`);
  }
});

test('a header is found beside its includer, then in -I dirs; a guarded or #pragma once header is read once', () => {
  const unit = analyzeTranslationUnit(mainFile, mainText, { includeDirs: [includeDir], index: memoryIndex() });
  const resolved = unit.includes.map((include) => [include.spelled, include.resolved && path.relative(includeDir, include.resolved)]);
  assert.deepEqual(resolved, [
    ['guarded.h', 'guarded.h'],
    ['guarded.h', 'guarded.h'],
    ['once.h', 'once.h'],
    ['once.h', 'once.h'],
    ['sub/nested.h', path.join('sub', 'nested.h')],
    ['sibling.h', path.join('sub', 'sibling.h')],
    ['feature.h', 'feature.h'],
  ]);
  assert.equal(unit.macros.get('GUARDED_VALUE')?.spelling, '7');
});

test('a macro defined before an include changes what the header declares', () => {
  const index = memoryIndex();
  const small = typesReport(mainFile, { includeDirs: [includeDir], index });
  const big = typesReport(mainFile, { includeDirs: [includeDir], index, defines: ['WANT_BIG'] });
  assert.equal(small.types.find((entry) => entry.name === 'feature')?.size, 8);
  assert.equal(big.types.find((entry) => entry.name === 'feature')?.size, 64);
});

test('missing headers, #error and unbalanced conditionals are problems with offsets', () => {
  const text = '#include "no-such-header.h"\n#if 1\n#error stop here\n#endif\n#else\n#if 1\nint x;\n';
  const unit = analyzeTranslationUnit('/virtual/problems.c', text, { index: memoryIndex() });
  const messages = unit.problems.map((problem) => [problem.message, problem.offset]);
  assert.ok(
    messages.some(([message, offset]) => String(message).includes('no-such-header.h') && offset === 0),
    JSON.stringify(messages),
  );
  assert.ok(
    messages.some(([message]) => String(message).includes('#error stop here')),
    JSON.stringify(messages),
  );
  assert.ok(
    messages.some(([message]) => String(message).includes('#else without #if')),
    JSON.stringify(messages),
  );
  assert.ok(
    messages.some(([message]) => String(message).includes('unterminated #if')),
    JSON.stringify(messages),
  );
});

test('function-like macros: #, ##, __VA_ARGS__, named variadics, GNU comma elision, rescanning', () => {
  const { text, problems } = expand(
    [
      '#define STR(x) #x',
      '#define CAT(a, b) a ## b',
      '#define LOG(fmt, ...) printf(fmt, ##__VA_ARGS__)',
      '#define NAMED(fmt, args...) f(fmt, ##args)',
      '#define F(x) G(x) + 1',
      '#define G(x) x * 2',
      '#define SELF SELF + 1',
      '#define OPT(a, ...) g(a __VA_OPT__(,) __VA_ARGS__)',
      'STR(a "b" \\n) CAT(foo, bar) LOG("x") LOG("y", 1, 2) NAMED("z") NAMED("w", 3) F(F(1)) SELF OPT(1) OPT(1, 2)',
    ].join('\n'),
  );
  assert.deepEqual(problems, []);
  assert.equal(text, '"a \\"b\\" \\n" foobar printf("x") printf("y", 1, 2) f("z") f("w", 3) 1 * 2 + 1 * 2 + 1 SELF + 1 g(1) g(1 , 2)');
});

test('#if arithmetic follows C: unsigned conversions, shifts, ternaries, character constants', () => {
  const cases: [string, boolean][] = [
    ['-1 > 0u', true],
    ['-1 < 0', true],
    ['(1 << 63) < 0', true],
    ["'A' == 65", true],
    ['0x10 == 16 && 010 == 8 && 0b11 == 3', true],
    ['UNDEFINED_NAME == 0', true],
    ['defined(__bpf__) && defined __BPF__ && !defined(__x86_64__)', true],
    ['__LP64__ && __CHAR_BIT__ == 8 && __SIZEOF_POINTER__ == 8', true],
    ['__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__', true],
    ['(2 > 1 ? 10 : 20) == 10', true],
    ['18446744073709551615 == -1', true],
  ];
  for (const [condition, expected] of cases) {
    const { text, problems } = expand(`#if ${condition}\nyes\n#else\nno\n#endif`);
    assert.deepEqual(problems, [], condition);
    assert.equal(text, expected ? 'yes' : 'no', condition);
  }
});

test("a conditional inside a macro's arguments chooses its tokens, as clang's -E does", () => {
  // selftests' BPF_UPROBE(handle_uprobe_byname, ... #if FUNC_REG_ARG_CNT > 3 , int arg4 #endif ...):
  // the invocation spans the conditional, which must not end it.
  const source = ['#define CALL(a, ...) f(a, __VA_ARGS__)', '#define N 3', 'CALL(1', '#if N > 2', ', 2', '#else', ', 3', '#endif', ', 4);', 'int after;'].join(
    '\n',
  );
  const { text, problems } = expand(source);
  assert.deepEqual(problems, []);
  const words = (spelled: string) => tokenize(spelled).map((token) => token.text);
  // clang-19 -E -P prints "f(1, 2, 4);" and "int after;".
  assert.deepEqual(words(text), words('f(1, 2, 4); int after;'));
  if (!hasClang()) return;
  const file = path.join(temporaryDirectory('conditional-arguments'), 'm.c');
  fs.writeFileSync(file, `${source}\n`);
  const clang = runClang(['-E', '-P', file]);
  assert.equal(clang.status, 0, clang.stderr);
  assert.deepEqual(words(clang.stdout), words(text));
});

test('the main file is rendered line for line, with expansions where their macro was', async () => {
  const text = [
    '#define SIZE 16',
    '#define DECLARE(name) char name[SIZE]',
    '#if 0',
    'int skipped;',
    '#endif',
    'int f(void)',
    '{',
    '\tDECLARE(buffer);',
    '\treturn buffer[0];',
    '}',
    '',
  ].join('\n');
  const unit = analyzeTranslationUnit('/virtual/aligned.c', text, { index: memoryIndex() });
  const lines = unit.aligned.text.split('\n');
  assert.equal(lines.length, text.split('\n').length);
  assert.equal(lines[3], '');
  assert.equal(lines[5], 'int f(void)');
  assert.match(lines[7], /^\s*char buffer \[ 16 \] ;$/);
  assert.equal(lines[8], '\treturn buffer[0];');
  assert.deepEqual(
    unit.inactiveRanges.map(([start, end]) => text.slice(start, end)),
    ['int skipped;\n'],
  );
  // An offset inside an expansion maps to the macro name; elsewhere offsets map one to one.
  const expansionOffset = unit.aligned.text.indexOf('buffer [');
  assert.equal(unit.aligned.originalOffset(expansionOffset), text.indexOf('DECLARE(buffer)'));
  const returnOffset = unit.aligned.text.indexOf('return');
  assert.equal(unit.aligned.originalOffset(returnOffset), text.indexOf('return'));

  const document = await CDocument.create(unit.aligned.text);
  try {
    const functionNode = document.tree.rootNode.namedChildren.find((node) => node?.type === 'function_definition');
    assert.equal(functionNode?.startPosition.row, 5);
    assert.ok(!document.tree.rootNode.hasError);
  } finally {
    document.dispose();
  }
});

test(
  'the main file after preprocessing is token for token what clang -E makes of it',
  { skip: skipUnlessCI((!hasClang() && 'clang-19 is not installed') || (!libbpfPresent && 'libbpf-dev is not installed')) },
  () => {
    const file = dataFile('printk.bpf.c');
    const text = fs.readFileSync(file, 'utf8');
    for (const defines of [[], ['BPF_NO_GLOBAL_DATA']]) {
      const unit = analyzeTranslationUnit(file, text, { defines, index: memoryIndex() });
      assert.deepEqual(unit.problems, []);
      const clang = runClang(['-E', ...defines.map((name) => `-D${name}`), '-I/usr/include/x86_64-linux-gnu', file]);
      assert.equal(clang.status, 0, clang.stderr);
      // Keep the lines clang attributes to the main file, using its `# LINE "FILE"` markers.
      const mainLines: string[] = [];
      let inMain = false;
      for (const line of clang.stdout.split('\n')) {
        const marker = /^# \d+ "([^"]*)"/.exec(line);
        if (marker) {
          inMain = marker[1] === file;
          continue;
        }
        if (inMain && !line.startsWith('#')) mainLines.push(line);
      }
      const expected = tokenize(mainLines.join('\n')).map((token) => token.text);
      const actual = unit.tokens.map((token) => token.text);
      assert.deepEqual(actual, expected, `defines: ${defines.join(',') || 'none'}`);
    }
  },
);

test(
  "BPF_NO_GLOBAL_DATA puts bpf_printk's format on the stack, as libbpf documents",
  { skip: skipUnlessCI(!libbpfPresent && 'libbpf-dev is not installed') },
  () => {
    const file = dataFile('printk.bpf.c');
    const text = fs.readFileSync(file, 'utf8');
    const rodata = analyzeTranslationUnit(file, text, { index: memoryIndex() });
    const stack = analyzeTranslationUnit(file, text, { index: memoryIndex(), defines: { BPF_NO_GLOBAL_DATA: '1' } });
    const line = (unit: typeof rodata) => unit.aligned.text.split('\n')[text.split('\n').findIndex((l) => l.includes('bpf_printk("few'))];
    assert.match(line(rodata), /static const char ____fmt \[ \] = "few %d"/);
    assert.match(line(stack), /\( \{ char ____fmt \[ \] = "few %d"/);
    // Four arguments: __bpf_vprintk's parameter array of ___bpf_narg() = 4 entries, counted by the preprocessor.
    const many = rodata.aligned.text.split('\n')[text.split('\n').findIndex((l) => l.includes('bpf_printk("many'))];
    assert.match(many, /unsigned long long ___param \[ 4 \]/);
  },
);

test("a __has_ operator that a macro expands to is answered after expansion, as glibc's cdefs.h needs", () => {
  const { text, problems } = expand(
    [
      '#define my_has_attribute(attr) __has_attribute (attr)',
      '#if my_has_attribute (__nothrow__) && !my_has_attribute (__no_such_attribute__)',
      'int has_nothrow;',
      '#else',
      'int lacks_nothrow;',
      '#endif',
    ].join('\n'),
  );
  assert.deepEqual(problems, []);
  assert.equal(text.trim(), 'int has_nothrow;');
});
