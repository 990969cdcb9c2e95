/**
 * The ground-truth fixtures: BPF C programs under test/fixtures/programs, each beside its committed
 * object, each stating in its opening comment what the kernel says about every program in it:
 *
 *   /* bpf-stack-lens fixture: <one sentence of what it exercises>
 *    * EXPECT prog=entry kernel=6.18 depths=208+32+48 accepted
 *    *\/
 *
 * `kernel=6.18` lines are measured on a real verifier (depths exactly as its "stack depth" line prints
 * them). Other kernels are not written by hand: the kernel lab measures them into
 * test/fixtures/programs/measured/<release>.json (test/support/kernelLab.ts). A header that does not
 * parse is an error, never a fixture to skip.
 */

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { repositoryRoot } from './kernel';

export interface FixtureExpectation {
  program: string;
  /** "6.18": major.minor of the kernel this line is about. */
  kernel: string;
  /** The verifier's "stack depth" line for that kernel, when it was measured. */
  depths?: string;
  accepted: boolean;
  /** The verifier's error line, verbatim, when rejected. */
  error?: string;
}

export interface Fixture {
  /** Absolute path of the .bpf.c source. */
  source: string;
  /** Absolute path of the committed .bpf.o built from it. */
  object: string;
  /** The one-sentence description from the header. */
  description: string;
  expectations: FixtureExpectation[];
}

export const FIXTURE_HEADER_PREFIX = '/* bpf-stack-lens fixture: ';

export function fixturesDirectory(): string {
  return join(repositoryRoot(), 'test', 'fixtures', 'programs');
}

/**
 * Every fixture, sorted by file name. Throws, naming the file and line, when any header is
 * malformed, so that a typo fails the suite instead of silently dropping an expectation.
 */
export function listFixtures(): Fixture[] {
  const folder = fixturesDirectory();
  const problems: string[] = [];
  const fixtures: Fixture[] = [];
  for (const name of readdirSync(folder)
    .filter((file) => file.endsWith('.bpf.c'))
    .sort()) {
    const source = join(folder, name);
    const parsed = parseFixtureHeader(readFileSync(source, 'utf8'));
    for (const problem of parsed.problems) problems.push(`${name}: ${problem}`);
    fixtures.push({
      source,
      object: source.replace(/\.c$/, '.o'),
      description: parsed.description,
      expectations: parsed.expectations,
    });
  }
  if (problems.length > 0) throw new Error(`malformed fixture headers:\n  ${problems.join('\n  ')}`);
  return fixtures;
}

export interface ParsedFixtureHeader {
  description: string;
  expectations: FixtureExpectation[];
  /** "line 3: ..." for every line that breaks the format; empty when the header is well formed. */
  problems: string[];
}

// prog=NAME kernel=X.Y [depths=A+B+C] accepted | rejected="message"
const EXPECT_LINE = /^ \* EXPECT prog=([A-Za-z_][A-Za-z0-9_]*) kernel=(\d+\.\d+)(?: depths=(\d+(?:\+\d+)*))? (?:(accepted)|rejected="([^"]+)")$/;

/** Parses the opening comment of a fixture source; never throws. */
export function parseFixtureHeader(text: string): ParsedFixtureHeader {
  const lines = text.split('\n');
  const problems: string[] = [];
  const expectations: FixtureExpectation[] = [];
  const first = lines[0] ?? '';
  if (!first.startsWith(FIXTURE_HEADER_PREFIX)) {
    return {
      description: '',
      expectations,
      problems: [`line 1: the file must open with "${FIXTURE_HEADER_PREFIX}<what it exercises>"`],
    };
  }
  const description = first.slice(FIXTURE_HEADER_PREFIX.length).trim();
  if (description.length === 0) problems.push('line 1: the description is empty');

  const seen = new Set<string>();
  let closed = false;
  for (let index = 1; index < lines.length; index++) {
    const line = lines[index] ?? '';
    if (line === ' */') {
      closed = true;
      break;
    }
    const match = EXPECT_LINE.exec(line);
    if (!match) {
      problems.push(`line ${index + 1}: not an EXPECT line: ${JSON.stringify(line)}`);
      continue;
    }
    const [, program = '', kernel = '', depths, accepted, error] = match;
    const key = `${program}@${kernel}`;
    if (seen.has(key)) problems.push(`line ${index + 1}: a second EXPECT for prog=${program} kernel=${kernel}`);
    seen.add(key);
    const expectation: FixtureExpectation = { program, kernel, accepted: accepted !== undefined };
    if (depths !== undefined) expectation.depths = depths;
    if (error !== undefined) expectation.error = error;
    expectations.push(expectation);
  }
  if (!closed) problems.push('the header comment is not closed by a line " */"');
  if (expectations.length === 0) problems.push('the header has no EXPECT lines');
  return { description, expectations, problems };
}

/** Whether the committed object of a fixture exists (it is built by scripts/build-fixtures.sh). */
export function fixtureObjectExists(fixture: Fixture): boolean {
  return existsSync(fixture.object);
}
