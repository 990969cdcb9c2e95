/**
 * The header index: entries persist on disk keyed by content, are reused only under the same
 * relevant macros and unchanged files, and a corrupt cache is just a miss.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HeaderIndex, resolveInclude, writePendingSaves } from '../../server/src/source/headerIndex';
import { typesReport } from '../../server/src/source/typesReport';
import { analyzeTranslationUnit } from '../../server/src/source/translationUnit';
import { TokenFlags, TokenKind, identifierHashes, tokenize } from '../../server/src/source/lexer';
import { temporaryDirectory } from './helpers';

function project(): { directory: string; main: string; cacheDir: string } {
  const directory = temporaryDirectory('index');
  fs.mkdirSync(path.join(directory, 'inc'));
  fs.writeFileSync(path.join(directory, 'inc', 'outer.h'), '#include "inner.h"\nstruct outer { struct inner in; char tail[OUTER_LEN]; };\n');
  fs.writeFileSync(path.join(directory, 'inc', 'inner.h'), '#ifndef INNER_LEN\n#define INNER_LEN 4\n#endif\nstruct inner { char data[INNER_LEN]; };\n');
  const main = path.join(directory, 'main.c');
  fs.writeFileSync(main, '#define OUTER_LEN 2\n#include <outer.h>\n');
  return { directory, main, cacheDir: path.join(directory, 'cache') };
}

function sizes(report: ReturnType<typeof typesReport>): Record<string, number> {
  return Object.fromEntries(report.types.map((entry) => [entry.name, entry.size]));
}

test('a second process reads headers from the disk cache and gets the same types', () => {
  const { directory, main, cacheDir } = project();
  const includeDirs = [path.join(directory, 'inc')];
  const coldIndex = new HeaderIndex({ cacheDir });
  const cold = typesReport(main, { includeDirs, index: coldIndex });
  assert.deepEqual(cold.problems, []);
  assert.deepEqual(sizes(cold), { inner: 4, outer: 6 });
  assert.equal(coldIndex.statistics.misses, 2);

  const warmIndex = new HeaderIndex({ cacheDir });
  const warm = typesReport(main, { includeDirs, index: warmIndex });
  assert.deepEqual(warm.types, cold.types);
  assert.equal(warmIndex.statistics.diskHits, 1, 'outer.h, with inner.h inside it, comes from disk');
  assert.equal(warmIndex.statistics.misses, 0);
});

test('an entry is not reused when a macro the header uses changes, or a header it includes changes', () => {
  const { directory, main, cacheDir } = project();
  const includeDirs = [path.join(directory, 'inc')];
  const index = new HeaderIndex({ cacheDir });
  typesReport(main, { includeDirs, index });

  const redefined = typesReport(main, { includeDirs, index, defines: { INNER_LEN: '12' } });
  assert.deepEqual(sizes(redefined), { inner: 12, outer: 14 });

  fs.writeFileSync(main, '#define OUTER_LEN 5\n#include <outer.h>\n');
  assert.deepEqual(sizes(typesReport(main, { includeDirs, index })), { inner: 4, outer: 9 });

  // A macro the header never mentions does not invalidate it.
  const before = index.statistics.memoryHits;
  typesReport(main, { includeDirs, index, defines: { UNRELATED_FLAG: '1' } });
  assert.equal(index.statistics.memoryHits, before + 1);

  fs.writeFileSync(path.join(directory, 'inc', 'inner.h'), 'struct inner { long data[3]; };\n');
  assert.deepEqual(sizes(typesReport(main, { includeDirs, index })), { inner: 24, outer: 32 });
});

test('a corrupt cache file is a miss, not an error', () => {
  const { directory, main, cacheDir } = project();
  const includeDirs = [path.join(directory, 'inc')];
  typesReport(main, { includeDirs, index: new HeaderIndex({ cacheDir }) });
  // Entries are written when the process is idle: write them now, to corrupt them.
  writePendingSaves();
  for (const folder of fs.readdirSync(cacheDir)) {
    for (const file of fs.readdirSync(path.join(cacheDir, folder))) fs.writeFileSync(path.join(cacheDir, folder, file), '{not json');
  }
  const index = new HeaderIndex({ cacheDir });
  assert.deepEqual(sizes(typesReport(main, { includeDirs, index })), { inner: 4, outer: 6 });
  assert.equal(index.statistics.misses, 2);
});

test('include resolution: quotes look beside the includer first, angle brackets do not', () => {
  const { directory } = project();
  const search = { includeDirs: [path.join(directory, 'inc')], systemIncludeDirs: [] };
  const exists = (file: string) => fs.existsSync(file);
  const fromFile = path.join(directory, 'inc', 'outer.h');
  assert.equal(resolveInclude({ spelled: 'inner.h', angled: false, next: false, fromFile, offset: 0 }, search, exists), path.join(directory, 'inc', 'inner.h'));
  assert.equal(resolveInclude({ spelled: 'main.c', angled: true, next: false, fromFile, offset: 0 }, search, exists), undefined);
  assert.equal(
    resolveInclude({ spelled: 'main.c', angled: false, next: false, fromFile: path.join(directory, 'x.c'), offset: 0 }, search, exists),
    path.join(directory, 'main.c'),
  );
});

test('a cached header is read again when an include would now resolve elsewhere, or a __has_include target appears', () => {
  const directory = temporaryDirectory('index');
  const [first, second] = ['a', 'b'].map((name) => path.join(directory, name));
  for (const folder of [first, second]) fs.mkdirSync(folder);
  fs.writeFileSync(
    path.join(first, 'outer.h'),
    '#include <inner.h>\n#if __has_include(<extra.h>)\n#include <extra.h>\n#else\nstruct extra { char x[8]; };\n#endif\n',
  );
  fs.writeFileSync(path.join(second, 'inner.h'), 'struct inner { char data[8]; };\n');
  const main = path.join(directory, 'main.c');
  fs.writeFileSync(main, '#include <outer.h>\n');
  const cacheDir = path.join(directory, 'cache');
  const includeDirs = [first, second];
  assert.deepEqual(sizes(typesReport(main, { includeDirs, index: new HeaderIndex({ cacheDir }) })), { inner: 8, extra: 8 });

  // A header earlier on the search path now answers <inner.h>: a new process must not replay the old meaning.
  fs.writeFileSync(path.join(first, 'inner.h'), 'struct inner { char data[304]; };\n');
  const afterShadow = new HeaderIndex({ cacheDir });
  assert.deepEqual(sizes(typesReport(main, { includeDirs, index: afterShadow })), { inner: 304, extra: 8 });
  assert.equal(afterShadow.statistics.diskHits, 0);

  // The file __has_include asked about appears.
  fs.writeFileSync(path.join(second, 'extra.h'), 'struct extra { char x[304]; };\n');
  assert.deepEqual(sizes(typesReport(main, { includeDirs, index: new HeaderIndex({ cacheDir }) })), { inner: 304, extra: 304 });

  // Nothing changed since: the entry is reused from disk.
  const unchanged = new HeaderIndex({ cacheDir });
  assert.deepEqual(sizes(typesReport(main, { includeDirs, index: unchanged })), { inner: 304, extra: 304 });
  assert.equal(unchanged.statistics.diskHits, 1);
});

/**
 * A header `inc/NAME.h` and two ways to read it: included by a file (after `prefix`), and pasted into
 * one, where nothing is deferred or skimmed; the first is the header index's, the second the truth.
 */
function headerAndCopy(name: string, header: string, prefix = ''): { included: string; inline: string; includeDirs: string[]; cacheDir: string } {
  const directory = temporaryDirectory(name);
  fs.mkdirSync(path.join(directory, 'inc'));
  fs.writeFileSync(path.join(directory, 'inc', `${name}.h`), header);
  const included = path.join(directory, 'included.c');
  fs.writeFileSync(included, `${prefix}#include <${name}.h>\n`);
  const inline = path.join(directory, 'inline.c');
  fs.writeFileSync(inline, prefix + header);
  return { included, inline, includeDirs: [path.join(directory, 'inc')], cacheDir: path.join(directory, 'cache') };
}

test("a header's records, read only when first used and kept as C source on disk, lay out as when read at once", () => {
  const header = [
    'enum state { ON = 1, OFF = -2, BIG = 4294967296 };',
    'struct packed_one { char a; int b; } __attribute__((packed));',
    'struct with_inner { struct named_inner { long x; } in; int y; };',
    'struct uses_enum { enum state s; char c; };',
    'struct aligned_one { char a; } __attribute__((aligned(16)));',
    'typedef struct { int q; } anon_t;',
    'struct flex { int n; char data[]; };',
    'struct bits { unsigned int a: 3, : 0, b: 7; long: 64; };',
    'union either { struct packed_one p; struct aligned_one q; };',
    'struct split_line { int a; \\',
    '  char b[sizeof(struct packed_one)]; };',
    '',
  ].join('\n');
  const { included, inline, includeDirs, cacheDir } = headerAndCopy('types', header);
  const atOnce = typesReport(inline, { index: new HeaderIndex({ cacheDir: null }) });
  assert.deepEqual(atOnce.problems, []);
  assert.equal(sizes(atOnce).named_inner, 8, 'the nested tag is declared at file scope');
  // Indexed without looking a record up: the cache keeps them as C source, read back on first use.
  analyzeTranslationUnit(included, fs.readFileSync(included, 'utf8'), { includeDirs, index: new HeaderIndex({ cacheDir }) });
  writePendingSaves();
  const cacheFiles = fs
    .readdirSync(cacheDir, { recursive: true })
    .map(String)
    .filter((name) => name.endsWith('.idx'));
  const cached = fs.readFileSync(path.join(cacheDir, cacheFiles[0]), 'utf8').split('\n');
  assert.ok(cached.includes('packed_one\tstruct packed_one { char a; int b; } __attribute__((packed))'));
  assert.ok(cached.includes('split_line\tstruct split_line { int a; char b[sizeof(struct packed_one)]; }'), 'the backslash-newline is spliced out');
  const fromDisk = typesReport(included, { includeDirs, index: new HeaderIndex({ cacheDir }) });
  const cold = typesReport(included, { includeDirs, index: new HeaderIndex({ cacheDir: null }) });
  for (const report of [cold, fromDisk]) {
    assert.deepEqual(report.problems, []);
    assert.deepEqual(report.types, atOnce.types);
  }
});

test('a header wholly inside its include guard is skipped when included again with the guard defined, and entries recorded around the skip stay right', () => {
  const directory = temporaryDirectory('guard');
  fs.mkdirSync(path.join(directory, 'inc'));
  fs.writeFileSync(path.join(directory, 'inc', 'big.h'), '#ifndef BIG_H\n#define BIG_H\nstruct big { long a[4]; };\n#endif /* BIG_H */\n');
  fs.writeFileSync(path.join(directory, 'inc', 'helper.h'), '#include "big.h"\nstruct helper { struct big b; char c; };\n');
  // Not a guard: something follows the #endif, or the group has an #else.
  fs.writeFileSync(path.join(directory, 'inc', 'tail.h'), '#ifndef TAIL_H\n#define TAIL_H\n#endif\nstruct tail { int n; };\n');
  fs.writeFileSync(
    path.join(directory, 'inc', 'other.h'),
    '#ifndef OTHER_H\n#define OTHER_H\nstruct other { int n; };\n#else\nstruct again { int m; };\n#endif\n',
  );
  const main = path.join(directory, 'main.c');
  fs.writeFileSync(main, '#include <big.h>\n#include <helper.h>\n#include <tail.h>\n#include <tail.h>\n#include <other.h>\n#include <other.h>\n');
  const includeDirs = [path.join(directory, 'inc')];
  const index = new HeaderIndex({ cacheDir: null });
  const report = typesReport(main, { includeDirs, index });
  assert.deepEqual(report.problems, []);
  assert.deepEqual(sizes(report), { big: 32, helper: 40, tail: 4, other: 4, again: 4 });
  assert.equal(index.statistics.guardSkips, 1, 'only big.h, from inside helper.h');
  // helper.h was recorded while big.h was skipped: without BIG_H defined first, it is read again, big.h with it.
  const alone = path.join(directory, 'alone.c');
  fs.writeFileSync(alone, '#include <helper.h>\n');
  assert.deepEqual(sizes(typesReport(alone, { includeDirs, index })), { big: 32, helper: 40 });
});

test("a header's record bodies are skimmed only where their tokens would be the same, and lay out as when read at once", () => {
  const header = [
    '#define LEN 4',
    'struct plain { int a; char b; };',
    'struct uses_macro { char data[LEN]; };',
    'struct with_comments { int a; // a line comment',
    '  char b; /* a block comment */ long c; };',
    'struct with_directive {',
    '  int a;',
    '#ifdef WIDE',
    '  long wide;',
    '#endif',
    '  char b;',
    '};',
    'struct nested_tag { struct inner_tag { int x; } i; };',
    'struct nested_enum { enum { A1, A2 } e; int after[A2 + 1]; };',
    'struct entry_macro { char buf[ENTRY_LEN]; };',
    'union either { struct plain p; struct entry_macro q; };',
    '',
  ].join('\n');
  const { included, inline, includeDirs, cacheDir } = headerAndCopy('skim', header, '#define ENTRY_LEN 6\n#define WIDE\n');
  const atOnce = typesReport(inline, { index: new HeaderIndex({ cacheDir: null }) });
  assert.deepEqual(atOnce.problems, []);
  assert.deepEqual(
    ['plain', 'uses_macro', 'with_comments', 'with_directive', 'inner_tag', 'nested_tag', 'nested_enum', 'entry_macro', 'either'].map(
      (name) => sizes(atOnce)[name],
    ),
    [8, 4, 16, 24, 4, 4, 12, 6, 8],
  );
  analyzeTranslationUnit(included, fs.readFileSync(included, 'utf8'), { includeDirs, index: new HeaderIndex({ cacheDir }) });
  writePendingSaves();
  const cold = typesReport(included, { includeDirs, index: new HeaderIndex({ cacheDir: null }) });
  const fromDisk = typesReport(included, { includeDirs, index: new HeaderIndex({ cacheDir }) });
  for (const report of [cold, fromDisk]) {
    assert.deepEqual(report.problems, []);
    assert.deepEqual(report.types, atOnce.types);
  }
});

test('the lexer skims a file-scope record body into one token, and tokenizes it where skimming could change its tokens', () => {
  const macros = new Set(['LEN']);
  const skimmed = (text: string): string[] => {
    const hashes = new Uint32Array(2);
    const macroHashes = new Set(
      [...macros].map((name) => {
        identifierHashes(name, 0, name.length, hashes);
        return hashes[0];
      }),
    );
    const noted: number[] = [];
    const tokens = tokenize(text, 0, TokenFlags.AtLineStart, { mayNameMacro: (hash) => macroHashes.has(hash), noteIdentifier: (hash) => noted.push(hash) });
    return tokens.filter((token) => token.kind === TokenKind.Skimmed).map((token) => token.text);
  };
  assert.deepEqual(skimmed('struct a { int x; char y; };'), ['{ int x; char y; }']);
  assert.deepEqual(skimmed('union u { int x; } ;\nstruct b { struct { int q; } anonymous; };'), ['{ int x; }', '{ struct { int q; } anonymous; }']);
  assert.deepEqual(skimmed('struct a { char data[LEN]; };'), [], 'a macro defined before the header');
  assert.deepEqual(skimmed('#define OWN 2\nstruct a { char data[OWN]; };'), [], 'a macro the header defines');
  assert.deepEqual(skimmed('#include "x.h"\nstruct a { int x; };'), [], 'after an #include any name may be a macro');
  assert.deepEqual(skimmed('struct a {\n#if X\n int x;\n#endif\n};'), [], 'a directive inside');
  assert.deepEqual(skimmed('struct a { int x; \\\n int y; };'), [], 'a line continuation inside');
  assert.deepEqual(skimmed('struct a { struct inner { int x; } i; };'), [], 'a nested tag definition');
  assert.deepEqual(skimmed('struct a { enum { ONE } e; };'), [], 'a nested enum definition');
  assert.deepEqual(skimmed('struct a { char *s; } v = { "}" };'), ['{ char *s; }'], 'an initializer is not a record body');
  assert.deepEqual(skimmed('void f(void) { struct a { int x; } v; }'), [], 'only at file scope');
  assert.deepEqual(skimmed('#if A\nstruct a {\n#else\nstruct a { int y; };\n#endif'), ['{ int y; }'], 'each branch starts at the depth of its #if');
});
