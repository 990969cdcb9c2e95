/**
 * Sources no compiler accepts must still get an answer, not a crash: a header that includes itself
 * without a guard (clang: "#include nested too deeply"), and brackets nested far past clang's 256.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EstimateSession, estimateSource } from '../../server/src/source/estimateSource';
import { MAX_DECLARATION_NESTING } from '../../server/src/source/declarations';
import { FrameEstimateCache, estimateFrames } from '../../server/src/source/frameEstimate';
import { analyzeTranslationUnit } from '../../server/src/source/translationUnit';
import { HeaderIndex } from '../../server/src/source/headerIndex';
import { typesReport } from '../../server/src/source/typesReport';
import { MAX_EXPANDED_TOKENS } from '../../server/src/source/preprocessor';
import { parseKernelProfiles } from '../../server/src/rules/kernelProfile';
import { formatEstimateText } from '../../server/src/ide/estimateText';
import { CDocument, MAX_PARSED_CHARACTERS, ParseRefused } from '../../server/src/source/parser';
import { C_SEEDS, mutateSource, random } from '../fuzz/fuzz';
import { temporaryDirectory, wideFunction } from './helpers';

const { profiles } = parseKernelProfiles(['6.18'], true);

async function estimate(file: string, timeBudgetMs?: number) {
  const session = new EstimateSession(new FrameEstimateCache());
  try {
    return await estimateSource(file, fs.readFileSync(file, 'utf8'), profiles, timeBudgetMs === undefined ? {} : { timeBudgetMs }, session);
  } finally {
    session.dispose();
  }
}

test('a file that includes itself without a guard, next to a deeply nested expression, is estimated with a problem', async () => {
  const directory = temporaryDirectory('pathological');
  const file = path.join(directory, 'self.c');
  fs.writeFileSync(file, `#include "self.c"\nint f(void) { return ${'('.repeat(5000)}1${')'.repeat(5000)}; }\n`);
  const report = await estimate(file);
  assert.ok(
    report.problems.some((problem) => /nested|deeply|includes itself/.test(problem.message)),
    report.problems.map((problem) => problem.message).join('\n'),
  );
});

test('brackets nested 20,000 deep do not exhaust the stack', async () => {
  const directory = temporaryDirectory('pathological');
  const file = path.join(directory, 'deep.c');
  fs.writeFileSync(file, `__attribute__((section("tc"))) int f(void *ctx) { char b[32]; return b[0] + ${'('.repeat(20000)}1${')'.repeat(20000)}; }\n`);
  const report = await estimate(file);
  assert.equal(report.functions.find((fn) => fn.name === 'f')?.frameBytes !== undefined, true);
});

test('3,000 nested structs are refused past the nesting limit with a problem, and the outer types still lay out', () => {
  const directory = temporaryDirectory('pathological');
  const file = path.join(directory, 'nested.h');
  const depth = 3000;
  const opening = Array.from({ length: depth }, (_, i) => `struct s${i} { int a${i}; `).join('');
  fs.writeFileSync(file, `struct before { long x; };\n${opening} int z; ${'};'.repeat(depth)}\nstruct after { char c[12]; };\n`);
  const report = typesReport(file);
  assert.ok(
    report.problems.some((problem) => problem.message.includes(`nested deeper than ${MAX_DECLARATION_NESTING} levels`)),
    report.problems.map((problem) => problem.message).join('\n'),
  );
  assert.equal(report.types.find((type) => type.name === 'before')?.size, 8);
  assert.equal(report.types.find((type) => type.name === 'after')?.size, 12);
});

test('a declarator in 3,000 parentheses is refused with a problem, not a stack overflow', async () => {
  const directory = temporaryDirectory('pathological');
  const file = path.join(directory, 'parens.c');
  fs.writeFileSync(file, `__attribute__((section("tc"))) int f(void *ctx) { char b[32]; int ${'('.repeat(3000)}x${')'.repeat(3000)}; return b[0]; }\n`);
  const report = await estimate(file);
  assert.ok(
    report.functions.some((fn) => fn.name === 'f'),
    JSON.stringify(report.problems),
  );
});

test('a macro that doubles twenty times is cut off at the expansion budget, and the estimate says it is partial', async () => {
  const directory = temporaryDirectory('pathological');
  const file = path.join(directory, 'blowup.c');
  const doublings = Array.from({ length: 20 }, (_, i) => `#define A${i + 1} A${i} A${i}`).join('\n');
  fs.writeFileSync(file, `#define A0 x +\n${doublings}\n__attribute__((section("tc"))) int f(void *ctx) { int x = 1; return A20 1; }\n`);
  const report = await estimate(file);
  assert.ok(
    report.problems.some((problem) => problem.message.includes(`more than ${MAX_EXPANDED_TOKENS} tokens`) && problem.message.includes('partial')),
    report.problems.map((problem) => problem.message).join('\n'),
  );
});

test('20,000 locals live together in one function: every one gets its own slot', async () => {
  const directory = temporaryDirectory('pathological');
  const file = path.join(directory, 'wide.c');
  fs.writeFileSync(file, wideFunction(20000));
  // No budget: the test is that the estimate finishes and is whole (its time is in npm run bench).
  const report = await estimate(file, Infinity);
  const wide = report.functions.find((fn) => fn.name === 'wide');
  assert.equal(report.partial, undefined, report.problems.map((problem) => problem.message).join('\n'));
  assert.equal(wide?.frameBytes, 20000 * 8);
  assert.equal(wide?.items.length, 20000);
  assert.equal(
    wide?.items.some((item) => item.sharedWith !== undefined),
    false,
  );
});

test('an estimate past its time budget ends partial, says so, and never calls its numbers exact', async () => {
  const directory = temporaryDirectory('pathological');
  const file = path.join(directory, 'wide-budget.c');
  const before = `__attribute__((section("tc"))) int first(void *ctx) { volatile char a[16]; a[0] = 1; return 0; }\n`;
  fs.writeFileSync(file, before + wideFunction(2000) + `static __attribute__((noinline)) int after(void *ctx) { volatile char c[64]; c[0] = 1; return 0; }\n`);
  // One cache for both estimates below, to show that a partial walk is not kept.
  const cache = new FrameEstimateCache();
  const text = fs.readFileSync(file, 'utf8');
  const report = await estimateSource(file, text, profiles, { timeBudgetMs: 0 }, new EstimateSession(cache));
  assert.equal(report.partial, true);
  const problem = report.problems.find((candidate) => candidate.message.includes('ran out of time'));
  assert.ok(problem?.message.includes('so this estimate is partial'), report.problems.map((candidate) => candidate.message).join('\n'));
  assert.equal(
    report.functions.some((fn) => fn.name === 'after'),
    false,
  );
  const printed = formatEstimateText(report);
  assert.match(printed, /partial: the numbers below are lower bounds/);
  for (const program of report.programs) assert.match(printed, new RegExp(`program ${program.name} .* stack depth at least .* \\(partial\\)`));
  // With time to spare the same cache gives the whole estimate: the partial walk was not kept.
  const whole = await estimateSource(file, text, profiles, { timeBudgetMs: Infinity }, new EstimateSession(cache));
  assert.equal(whole.partial, undefined);
  assert.equal(whole.functions.find((fn) => fn.name === 'wide')?.frameBytes, 2000 * 8);
});

test('the function under way when the budget runs out is a lower bound marked partial, and the ones after it are not walked', async () => {
  const text = `__attribute__((section("tc"))) int first(void *ctx) { volatile char a[16]; a[0] = 1; return 0; }\n${wideFunction(5000)}static int after(void *ctx) { return 0; }\n`;
  const unit = analyzeTranslationUnit('/virtual/wide.c', text, { index: new HeaderIndex({ cacheDir: null }) });
  const document = await CDocument.create(unit.aligned.text);
  try {
    // A clock that ticks once per reading: the deadline falls inside the wide function's walk,
    // whatever the machine's speed (the walker reads the clock every 1,024 steps).
    let ticks = 0;
    const cache = new FrameEstimateCache();
    const frames = estimateFrames(unit, document.update(unit.aligned.text)!, cache, [], { deadline: 5, now: () => ticks++ });
    assert.match(frames.partial ?? '', /wide was walked only in part and 1 more function was not walked, so this estimate is partial/);
    assert.deepEqual(
      frames.functions.map((fn) => [fn.name, fn.partial ?? false]),
      [
        ['first', false],
        ['wide', true],
      ],
    );
    const wide = frames.functions[1];
    assert.ok(wide.frameBytes > 0 && wide.frameBytes < 5000 * 8, `${wide.frameBytes}`);
    // Only the whole walk was kept: a second estimate walks wide again, and whole.
    const again = estimateFrames(unit, document.update(unit.aligned.text)!, cache);
    assert.equal(again.partial, undefined);
    assert.deepEqual(
      again.functions.map((fn) => [fn.name, fn.frameBytes, fn.partial ?? false]),
      [
        ['first', 16, false],
        ['wide', 5000 * 8, false],
        ['after', 0, false],
      ],
    );
    assert.equal(cache.hits, 1);
  } finally {
    document.dispose();
  }
});

test('a source whose parse runs out of its time budget is not estimated, is marked partial, and the report says why', async () => {
  // Fuzz seed 25328: brackets and declarations mutated so that tree-sitter's error recovery took 26 s.
  const next = random(25328);
  const text = mutateSource(C_SEEDS[Math.floor(next() * C_SEEDS.length)], next);
  const file = path.join(temporaryDirectory('pathological'), 'recovery.c');
  fs.writeFileSync(file, text);
  const report = await estimate(file);
  assert.ok(
    report.problems.some((problem) => /is not estimated: parsing took longer than \d+ ms and was stopped/.test(problem.message)),
    report.problems.map((problem) => problem.message).join('\n'),
  );
  assert.equal(report.partial, true);
});

test('a source larger than the parse cap is refused before it is read further, by the estimate and the parser', async () => {
  const file = path.join(temporaryDirectory('pathological'), 'huge.c');
  const line = 'static int f(int x) { return x; }\n';
  fs.writeFileSync(file, line.repeat(Math.ceil((MAX_PARSED_CHARACTERS + 1) / line.length)));
  const report = await estimate(file);
  assert.deepEqual(report.functions, []);
  assert.match(report.problems[0]?.message ?? '', /is not estimated: \d+ characters, more than the 8388608 parsed/);
  await assert.rejects(CDocument.create(fs.readFileSync(file, 'utf8')), ParseRefused);
});
