/**
 * How the source estimate compares with the compiled objects of a corpus the project never saw
 * (scripts/corpus.sh: the real-world corpus of Debian's packages, built into .cache/corpus): every
 * program of every object built from C, the object analyzer's "stack depth" line (exact against the
 * verifier on such code) against the estimate of the program's C source with the flags it was
 * compiled with, tallied per package and in all.
 *
 *   node out/bench/estimateAccuracy.js [COMPILE_COMMANDS_JSON] [--list] [--json FILE]
 *
 * Without an argument: the compile_commands.json of the corpus scripts/corpus.sh built last.
 *
 * Per program: exact (same line), in the 16-byte bucket (every frame rounded up to 16 the same, as
 * the JIT-era check rounds them), else under or over by the sum of the line's frames; and whether
 * the estimate's range (its upper bound, when it gives one) holds the compiled number. Nothing asserts.
 */
import { readFileSync, readdirSync, existsSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { analyzeObject } from '../server/src/object/analyzeObject';
import { parseKernelProfiles } from '../server/src/rules/kernelProfile';
import { EstimateSession, estimateSource } from '../server/src/source/estimateSource';
import { FrameEstimateCache } from '../server/src/source/frameEstimate';
import { loadCompileDatabase, unitOptionsFor } from '../server/src/source/unitOptions';

const root = resolve(__dirname, '..', '..');

export type Outcome = 'exact' | 'bucket' | 'under' | 'over' | 'missing';

export interface ProgramComparison {
  /** The Debian package the object was built from (the manifest beside the compile database says). */
  package: string;
  object: string;
  program: string;
  compiled: string;
  estimated?: string;
  /** The estimate's upper line, when it gives a range. */
  estimatedUpTo?: string;
  outcome: Outcome;
  /** The compiled sum lies in [estimate, upper bound]. */
  inRange?: boolean;
}

function frames(line: string): number[] {
  return line.split('+').map(Number);
}

const sum = (values: number[]) => values.reduce((total, value) => total + value, 0);
const bucket = (value: number) => Math.ceil(value / 16) * 16;

export function classify(compiled: string, estimated: string | undefined): Outcome {
  if (estimated === undefined) return 'missing';
  if (compiled === estimated) return 'exact';
  const a = frames(compiled);
  const b = frames(estimated);
  if (a.length === b.length && a.every((value, index) => bucket(value) === bucket(b[index]))) return 'bucket';
  return sum(b) < sum(a) ? 'under' : sum(b) > sum(a) ? 'over' : 'bucket';
}

/**
 * The compile database of the corpus scripts/corpus.sh built last (it writes one beside each
 * manifest, .cache/corpus/build/corpus-HASH/); undefined when it has built none.
 */
export function corpusCompileDatabase(): string | undefined {
  const build = join(root, '.cache', 'corpus', 'build');
  if (!existsSync(build)) return undefined;
  const databases = readdirSync(build)
    .filter((name) => name.startsWith('corpus-'))
    .map((name) => join(build, name, 'compile_commands.json'))
    .filter((path) => existsSync(path));
  return databases.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
}

/** Object path -> package, from the manifest (objects.tsv) beside a corpus compile database. */
function packagesOf(databasePath: string): Map<string, string> {
  const manifest = join(dirname(databasePath), 'objects.tsv');
  const packages = new Map<string, string>();
  if (!existsSync(manifest)) return packages;
  for (const line of readFileSync(manifest, 'utf8').split('\n')) {
    const [, name, version, , object] = line.split('\t');
    if (object) packages.set(object, `${name} ${version}`);
  }
  return packages;
}

export async function measureCorpus(databasePath: string, onProgram?: (comparison: ProgramComparison) => void): Promise<ProgramComparison[]> {
  const directory = dirname(databasePath);
  const database = loadCompileDatabase(databasePath, [directory]);
  const entries = (database?.entries ?? []) as { file: string; arguments: string[] }[];
  const packages = packagesOf(databasePath);
  const { profiles } = parseKernelProfiles(['6.18'], true);
  const cache = new FrameEstimateCache();
  const results: ProgramComparison[] = [];
  for (const entry of entries) {
    const objectPath = entry.arguments[entry.arguments.indexOf('-o') + 1];
    if (!existsSync(objectPath)) continue;
    const object = analyzeObject(new Uint8Array(readFileSync(objectPath)), objectPath, profiles).report;
    // This object's own command: a source built twice (bpftune's legacy and current objects, by
    // -DBPFTUNE_LEGACY) has an entry for each, and the first is not this object's.
    const options = unitOptionsFor(entry.file, { database: database && { ...database, entries: [entry] }, includePaths: [], defines: [] });
    const session = new EstimateSession(cache);
    let estimate;
    try {
      estimate = await estimateSource(
        entry.file,
        readFileSync(entry.file, 'utf8'),
        profiles,
        { includeDirs: options.includeDirs, defines: Object.fromEntries(options.defines) },
        session,
      );
    } finally {
      session.dispose();
    }
    for (const program of object.programs) {
      const ours = estimate.programs.find((candidate) => candidate.name === program.name);
      const comparison: ProgramComparison = {
        package: packages.get(objectPath) ?? '?',
        object: objectPath,
        program: program.name,
        compiled: program.stackDepths,
        estimated: ours?.stackDepths,
        estimatedUpTo: ours?.stackDepthsUpTo,
        outcome: classify(program.stackDepths, ours?.stackDepths),
      };
      if (ours) {
        const compiledSum = sum(frames(program.stackDepths));
        comparison.inRange = sum(frames(ours.stackDepths)) <= compiledSum + 15 && compiledSum <= sum(frames(ours.stackDepthsUpTo ?? ours.stackDepths)) + 15;
      }
      results.push(comparison);
      onProgram?.(comparison);
    }
  }
  return results;
}

export function tally(results: readonly ProgramComparison[]): Record<Outcome | 'programs' | 'inRange' | 'underOutOfRange', number> {
  const counts = { programs: results.length, exact: 0, bucket: 0, under: 0, over: 0, missing: 0, inRange: 0, underOutOfRange: 0 };
  for (const result of results) {
    counts[result.outcome]++;
    if (result.inRange) counts.inRange++;
    if (result.outcome === 'under' && !result.inRange) counts.underOutOfRange++;
  }
  return counts;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const jsonAt = args.indexOf('--json');
  const jsonFile = jsonAt >= 0 ? args[jsonAt + 1] : undefined;
  const given = args.find((arg, index) => !arg.startsWith('--') && (jsonAt < 0 || index !== jsonAt + 1));
  const databasePath = given !== undefined ? resolve(given) : corpusCompileDatabase();
  if (databasePath === undefined) {
    console.error('estimateAccuracy: no corpus under .cache/corpus; build it with: bash scripts/corpus.sh');
    process.exitCode = 2;
    return;
  }
  const all = await measureCorpus(databasePath);
  const line = (label: string, results: ProgramComparison[]) => {
    const counts = tally(results);
    return (
      `${label}: ${counts.programs} programs: exact ${counts.exact}, in the 16-byte bucket ${counts.bucket}, under ${counts.under}, over ${counts.over}, not found ${counts.missing}; ` +
      `compiled number inside the estimate's range ${counts.inRange}, under and outside the range ${counts.underOutOfRange}`
    );
  };
  for (const name of [...new Set(all.map((result) => result.package))])
    console.log(
      line(
        name,
        all.filter((result) => result.package === name),
      ),
    );
  console.log(line(`all of ${databasePath}`, all));
  if (args.includes('--list'))
    for (const result of all)
      if (result.outcome !== 'exact')
        console.log(
          `  ${result.outcome.padEnd(7)} ${result.object}:${result.program} compiled ${result.compiled} estimated ${result.estimated ?? '-'}${result.estimatedUpTo ? ` up to ${result.estimatedUpTo}` : ''}`,
        );
  if (jsonFile) writeFileSync(jsonFile, JSON.stringify(all, null, 1));
}

if (require.main === module) {
  main().catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
}
