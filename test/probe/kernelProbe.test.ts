/**
 * The running kernel probed: the loader is built, the probes load into this machine's verifier, and
 * what they found decides `check` without --kernel. On this machine's 6.18.44 build plain kprobes get
 * no private stack, so kprobe_400_400 and kprobe_480_48 of private_stack.bpf.o must be rejected, as
 * the kernel rejects them. Where bpf() is not allowed the kernel part skips and says why (in CI it fails).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runningKernelProfile } from '../../server/src/probe/runningKernel';
import { analyzeObject } from '../../server/src/object/analyzeObject';
import { factsFromAnswers, gnuBuildId, probeRunningKernelSync } from '../../server/src/probe/kernelProbe';
import { readFileSync } from 'node:fs';
import { fixturesDirectory } from '../support/fixtures';
import { kernelVerifierAvailable, verifyProgram } from '../support/kernel';

/** An ELF note: namesz, descsz, type, name and desc each padded to 4 bytes. */
function note(name: string, type: number, desc: number[]): number[] {
  const nameBytes = [...Buffer.from(`${name}\0`)];
  const pad = (bytes: number[]) => [...bytes, ...new Array((4 - (bytes.length % 4)) % 4).fill(0)];
  const header = Buffer.alloc(12);
  header.writeUInt32LE(nameBytes.length, 0);
  header.writeUInt32LE(desc.length, 4);
  header.writeUInt32LE(type, 8);
  return [...header, ...pad(nameBytes), ...pad(desc)];
}

test('the GNU build-id is read from a sequence of ELF notes', () => {
  const notes = Uint8Array.from([...note('Xen', 6, [1, 2, 3, 4, 5]), ...note('GNU', 3, [0xa3, 0xe4, 0xcd, 0x60, 0x01])]);
  assert.equal(gnuBuildId(notes), 'a3e4cd6001');
  assert.equal(gnuBuildId(Uint8Array.from(note('Linux', 1, [0]))), undefined);
  assert.equal(gnuBuildId(Uint8Array.from([1, 0, 0])), undefined);
});

test('probe answers: accepted is private, the 528 error shared, EPERM and other errors unknown', () => {
  const facts = factsFromAnswers(
    {
      'private:kprobe/none': 'rejected combined stack size of 2 calls is 528. Too large',
      'private:kprobe/trace_kprobe_multi': 'ok',
      'private:tracing/trace_fentry': 'errno 1',
      'private:tracing/trace_iter': 'rejected invalid attach target',
      rounding: 'rejected combined stack size of 2 calls is 544. Too large',
      frames: 'ok',
      tailcalls: 'rejected tail_call is not allowed in subprogs without BTF',
    },
    'id',
    'r',
    212,
  );
  assert.deepEqual(facts, {
    buildId: 'id',
    release: 'r',
    privateStack: { 'kprobe/none': false, 'kprobe/trace_kprobe_multi': true },
    sixteenByteRounding: false,
    maxCallFrames: 16,
    bpfFuncMaxId: 212,
  });
});

test("this machine's kernel, probed: check without --kernel agrees with its verifier on private_stack.bpf.o", (t) => {
  const cache = mkdtempSync(join(tmpdir(), 'bpf-stack-lens-probe-'));
  const previous = process.env.XDG_CACHE_HOME;
  process.env.XDG_CACHE_HOME = cache;
  try {
    const outcome = probeRunningKernelSync();
    if (!outcome.facts) {
      if (process.env.CI === 'true') assert.fail(`the running kernel could not be probed: ${outcome.reason}`);
      t.skip(`the running kernel could not be probed: ${outcome.reason}`);
      return;
    }
    assert.equal(outcome.fromCache, undefined);
    assert.ok(readdirSync(join(cache, 'bpf-stack-lens', 'kernel-probe')).some((file) => file.startsWith(outcome.facts!.buildId)));
    // Every kernel with a private stack gives it to tracepoints; the socket-filter probes always load.
    const privateStack = outcome.facts.privateStack;
    assert.equal(outcome.facts.sixteenByteRounding !== undefined && outcome.facts.maxCallFrames !== undefined, true, JSON.stringify(outcome.raw));
    assert.notEqual(outcome.facts.tailCallsWithCalls, undefined, JSON.stringify(outcome.raw));
    assert.notEqual(outcome.facts.asyncCallbacksAreRoots, undefined, JSON.stringify(outcome.raw));
    // Read from the kernel's BTF: every kernel with BTF has enum bpf_func_id, and none since 6.2 has added a helper.
    if (existsSync('/sys/kernel/btf/vmlinux')) assert.ok((outcome.facts.bpfFuncMaxId ?? 0) >= 156, `bpfFuncMaxId ${outcome.facts.bpfFuncMaxId}`);
    // EPERM from a sandbox gate is "unknown", never "shared".
    for (const [name, answer] of Object.entries(outcome.raw ?? {})) {
      if (/^errno 1$/.test(answer) && name.startsWith('private:')) assert.equal(privateStack[name.slice(8)], undefined, name);
    }
    // A second call reads the cache.
    assert.equal(probeRunningKernelSync().fromCache, true);

    const { profile } = runningKernelProfile();
    assert.deepEqual(profile.probed, outcome.facts);
    const bytes = readFileSync(join(fixturesDirectory(), 'private_stack.bpf.o'));
    const report = analyzeObject(new Uint8Array(bytes), 'private_stack.bpf.o', [profile]).report;
    const verdictOf = (name: string) => report.programs.find((program) => program.name === name)?.verdicts[0];
    // What the probe found for plain kprobes decides these two, as it decides them in the kernel.
    const kprobesPrivate = privateStack['kprobe/none'];
    assert.notEqual(kprobesPrivate, undefined, 'the kprobe probe gave no answer');
    for (const name of ['kprobe_400_400', 'kprobe_480_48']) assert.equal(verdictOf(name)?.accepted, kprobesPrivate, name);
    if (privateStack['tracepoint/none'] !== undefined) assert.equal(verdictOf('tracepoint_400_400_400')?.accepted, privateStack['tracepoint/none']);
    assert.deepEqual(verdictOf('kprobe_400_400')?.assumes, []);
    // And the kernel itself, loading the fixture: no false accept, no false reject.
    if (kernelVerifierAvailable().available) {
      for (const name of ['kprobe_400_400', 'kprobe_480_48', 'tracepoint_400_400_400', 'raw_tp_48_48_400', 'perf_event_496_400']) {
        assert.equal(verdictOf(name)?.accepted, verifyProgram(join(fixturesDirectory(), 'private_stack.bpf.o'), name).accepted, name);
      }
    }
  } finally {
    if (previous === undefined) delete process.env.XDG_CACHE_HOME;
    else process.env.XDG_CACHE_HOME = previous;
    rmSync(cache, { recursive: true, force: true });
  }
});
