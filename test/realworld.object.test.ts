/**
 * The object analyzer on programs we did not write: every program of the real-world corpus whose
 * stack the 6.18 verifier judged must get the verifier's own "stack depth" line and verdict from
 * `check`, and no program the verifier rejected for another reason may be said to break a stack
 * rule. The committed objects make this run without clang or bpf(); VERIFIER.json holds what the
 * kernel said (test/fixtures/realworld/measure.mjs re-measures it).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { analyzeObject } from '../server/src/object/analyzeObject';
import { kernelVerifierAvailable, repositoryRoot, verifyProgram } from './support/kernel';
import { type RealWorldProgram, compareWithKernel, isCompared, readRealWorldCorpus } from './support/realworld';
import { skipOrFail } from './support/unavailable';

const corpus = readRealWorldCorpus();
const PROFILE = { version: '6.18', jit: true };

/**
 * Programs whose line is known to differ from the kernel's, with why. The test fails when one of
 * them starts to agree, so that this list only ever says what is still true.
 */
const KNOWN_DIFFERENCES = new Map<string, string>([]);

function keyOf(program: Pick<RealWorldProgram, "object" | "name">): string {
  return `${program.object}:${program.name}`;
}

test('the corpus is broad: at least 200 sources, 400 compared programs, every origin', () => {
  const objects = new Set(corpus.programs.map((program) => program.object));
  const origins = new Set([...objects].map((object) => object.split('/')[0]));
  assert.ok(objects.size >= 200, `${objects.size} objects`);
  assert.ok(corpus.programs.filter(isCompared).length >= 400);
  assert.deepEqual([...origins].sort(), ['bcc-libbpf-tools', 'libbpf-bootstrap', 'linux-samples', 'linux-selftests', 'linux-tools']);
});

test(`check gives the ${corpus.kernel} verifier's stack depth line and verdict for every program it judged`, (t) => {
  const byObject = new Map<string, RealWorldProgram[]>();
  for (const program of corpus.programs) byObject.set(program.object, [...(byObject.get(program.object) ?? []), program]);
  const mismatches: string[] = [];
  const nowAgreeing: string[] = [];
  let compared = 0;
  let exact = 0;
  let verdicts = 0;
  for (const [object, programs] of byObject) {
    const path = join(corpus.directory, object);
    const { report } = analyzeObject(new Uint8Array(readFileSync(path)), path, [PROFILE]);
    for (const program of programs) {
      const comparison = compareWithKernel(program, report.programs.find((candidate) => candidate.name === program.name), 'check');
      if (!comparison.compared) {
        // Rejected for something else, or never verified: we must not claim a stack violation the kernel never reported.
        if (comparison.falseClaim) mismatches.push(`${keyOf(program)}: kernel rejects it for "${program.error}", check claims "${comparison.falseClaim}"`);
        continue;
      }
      compared++;
      if (comparison.lineAgrees) exact++;
      if (comparison.verdictAgrees) verdicts++;
      const known = KNOWN_DIFFERENCES.get(keyOf(program));
      if (comparison.lineAgrees && comparison.verdictAgrees) {
        if (known) nowAgreeing.push(keyOf(program));
      } else if (!known) {
        mismatches.push(comparison.description);
      }
    }
  }
  t.diagnostic(`real-world corpus vs the ${corpus.kernel} verifier: stack depth line exact ${exact}/${compared}, verdict ${verdicts}/${compared}`);
  assert.deepEqual(mismatches, [], 'programs where check and the kernel disagree');
  assert.deepEqual(nowAgreeing, [], 'listed as known differences but now agreeing: take them off the list');
});

/*
 * The numbers above are only as good as VERIFIER.json: on the kernel it was measured on, measure it
 * again and require the same statuses and lines, so that nobody edits it by hand.
 */
test('VERIFIER.json is what this kernel\'s verifier says today', (t) => {
  if (release() !== corpus.kernel) return skipOrFail(t, `VERIFIER.json was measured on ${corpus.kernel}, this is ${release()}`);
  const availability = kernelVerifierAvailable();
  if (!availability.available) return skipOrFail(t, availability.reason ?? 'the kernel verifier is not available');
  const out = join(mkdtempSync(join(tmpdir(), 'bpf-stack-lens-realworld-')), 'VERIFIER.json');
  const run = spawnSync(process.execPath, [join(corpus.directory, 'measure.mjs'), '--out', out], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  const now = JSON.parse(readFileSync(out, 'utf8')) as { objects: { object: string; programs: { name: string; status: string; stack_depth?: string }[] }[] };
  const measured = new Map(now.objects.flatMap(({ object, programs }) => programs.map((program) => [keyOf({ object, name: program.name }), program] as const)));
  const changed = corpus.programs.filter((program) => {
    const today = measured.get(keyOf(program));
    return today?.status !== program.status || today?.stack_depth !== program.stackDepth;
  });
  assert.deepEqual(changed.map(keyOf), []);
  assert.equal(measured.size, corpus.programs.length);
});

/*
 * The objects are built against a vmlinux.h of this kernel, so on it build.sh must make them again
 * from their sources: a sample (every twentieth, and the first of each origin) is rebuilt, and each
 * must give the committed object's report. (The bytes match in the checkout that built them; in
 * another folder clang may order a few BTF strings differently.)
 */
test('the committed objects are what build.sh makes of their sources', (t) => {
  if (release() !== corpus.kernel) return skipOrFail(t, `the objects were built against ${corpus.kernel}'s vmlinux.h, this is ${release()}`);
  for (const tool of ['clang-19', 'llvm-strip-19', 'bpftool']) {
    if (spawnSync(tool, ['--version']).status !== 0) return skipOrFail(t, `${tool} is not installed`);
  }
  const objects = [...new Set(corpus.programs.map((program) => program.object))].sort();
  const origins = new Set<string>();
  const sample = objects.filter((object, index) => {
    const origin = object.split('/')[0];
    const first = !origins.has(origin);
    origins.add(origin);
    return first || index % 20 === 0;
  });
  const out = mkdtempSync(join(tmpdir(), 'bpf-stack-lens-realworld-build-'));
  const sources = sample.map((object) => object.replace(/\.o$/, '.c'));
  const build = spawnSync('bash', [join(corpus.directory, 'build.sh'), out], { encoding: 'utf8', env: { ...process.env, ONLY: sources.join(' ') } });
  assert.equal(build.status, 0, build.stderr);
  // What check says of an object, without its path: the programs, their lines, verdicts and places.
  const reportOf = (path: string) => JSON.stringify(analyzeObject(new Uint8Array(readFileSync(path)), 'object', [PROFILE]).report.programs);
  const differing = sample.filter((object) => reportOf(join(out, object)) !== reportOf(join(corpus.directory, object)));
  assert.deepEqual(differing, []);
  const identical = sample.filter((object) => readFileSync(join(out, object)).equals(new Uint8Array(readFileSync(join(corpus.directory, object))))).length;
  t.diagnostic(`rebuilt ${sample.length} of ${objects.length} objects: every report the committed one's, ${identical} byte for byte`);
});

/*
 * The corpus is built one way (-O2, the default cpu). Other flags change the code clang emits —
 * spills, jumps, 32-bit compares, sign-extending loads — so a sample of the sources is built with
 * -O1, -mcpu=v1 and -mcpu=v4 as well, loaded into the running kernel, and held to what it says.
 */
test('check agrees with the kernel on the same sources built with -O1, -mcpu=v1 and -mcpu=v4', (t) => {
  const availability = kernelVerifierAvailable();
  if (!availability.available) return skipOrFail(t, availability.reason ?? 'the kernel verifier is not available');
  if (spawnSync('clang-19', ['--version']).status !== 0) return skipOrFail(t, 'clang-19 is not installed');
  const vmlinux = join(repositoryRoot(), '.cache', 'realworld');
  if (!existsSync(join(vmlinux, 'vmlinux.h'))) {
    const build = spawnSync('bash', [join(corpus.directory, 'build.sh'), mkdtempSync(join(tmpdir(), 'bpf-stack-lens-vmlinux-'))], { encoding: 'utf8', env: { ...process.env, ONLY: 'none' } });
    if (!existsSync(join(vmlinux, 'vmlinux.h'))) return skipOrFail(t, `no vmlinux.h for the corpus: ${build.stderr.trim().split('\n')[0]}`);
  }
  const sources = [...new Set(corpus.programs.map((program) => program.object.replace(/\.o$/, '.c')))].sort().filter((_, index) => index % 12 === 0);
  const out = mkdtempSync(join(tmpdir(), 'bpf-stack-lens-variants-'));
  const disagreements: string[] = [];
  let compared = 0;
  for (const source of sources) {
    for (const [tag, flags] of [['O1', ['-O1']], ['v1', ['-O2', '-mcpu=v1']], ['v4', ['-O2', '-mcpu=v4']]] as const) {
      const object = join(out, `${source.replace(/[/.]/g, '_')}.${tag}.o`);
      const folder = join(corpus.directory, source.split('/')[0]);
      const built = spawnSync('clang-19', [...flags, '-g', '-target', 'bpf', '-D__TARGET_ARCH_x86', `-I${vmlinux}`, `-I${folder}`, '-I/usr/include/x86_64-linux-gnu', '-Wno-everything', '-c', join(corpus.directory, source), '-o', object]);
      if (built.status !== 0) continue; // Some selftests need -O2 to fit the verifier's limits; not our concern here.
      const { report } = analyzeObject(new Uint8Array(readFileSync(object)), object, [PROFILE]);
      for (const ours of report.programs) {
        let kernel;
        try {
          kernel = verifyProgram(object, ours.name);
        } catch {
          continue; // Never reached the verifier (fentry without ftrace, a missing module...).
        }
        const program: RealWorldProgram = { object: `${source} ${tag}`, name: ours.name, section: ours.section, status: kernel.accepted ? 'ok' : 'rejected', stackDepth: kernel.stackDepths, error: kernel.error };
        const comparison = compareWithKernel(program, ours, 'check');
        if (!comparison.compared) continue;
        compared++;
        if (!comparison.lineAgrees || !comparison.verdictAgrees) disagreements.push(comparison.description);
      }
    }
  }
  t.diagnostic(`${compared} programs of ${sources.length} sources built three other ways: ${compared - disagreements.length} agree with the kernel`);
  assert.ok(compared >= 50, `only ${compared} programs compared`);
  assert.deepEqual(disagreements, []);
});
