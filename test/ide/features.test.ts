/**
 * The editor features on their own, in process and without clang: diagnostics, CodeLens, hover and
 * the status bar made from the source estimate of a self-contained snippet (no headers), and from an
 * object analysis with the same programs where a test needs one. Each test states what the user
 * must see; test/lsp/ holds the same scenarios against the spawned server with real objects.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { deepestChainThrough, shrinkOptions } from '../../server/src/ide/advice';
import type { DocumentStackAnalysis } from '../../server/src/ide/analysis';
import { lensTitle } from '../../server/src/ide/codeLens';
import { CLANG_STACK_LIMIT_RULE } from '../../server/src/ide/advice';
import { stackFindings } from '../../server/src/ide/diagnostics';
import { functionHover } from '../../server/src/ide/hover';
import { markdownCode } from '../../server/src/common/markdown';
import { relocatedLine } from '../../server/src/ide/relocate';
import { fileStatus } from '../../server/src/ide/status';
import { parseKernelProfiles } from '../../server/src/rules/kernelProfile';
import { estimateSource } from '../../server/src/source/estimateSource';
import { analyzeObject } from '../../server/src/object/analyzeObject';
import { fixturesDirectory } from '../support/fixtures';

const FILE = '/work/snippet/combined.bpf.c';
/** outer → inner breaks 512 B; entry → middle → do_tail reaches 256 B on 6.1; huge is over clang's limit. */
const SNIPPET = `#define SEC(name) __attribute__((section(name), used))
#define __noinline __attribute__((noinline))
typedef unsigned char __u8;
typedef unsigned int __u32;
static long (*bpf_tail_call)(void *ctx, void *map, __u32 index) = (void *)12;
static long (*bpf_probe_read_kernel)(void *dst, __u32 size, const void *src) = (void *)113;
struct { int type; } jmp SEC(".maps");

static __noinline int inner(void *ctx)
{
	volatile __u8 buf[280];
	bpf_probe_read_kernel((void *)buf, sizeof(buf), ctx);
	return buf[3];
}

SEC("xdp")
int outer(void *ctx)
{
	volatile __u8 scratch[260];
	bpf_probe_read_kernel((void *)scratch, sizeof(scratch), ctx);
	return inner(ctx) + scratch[1];
}

static __noinline int do_tail(void *ctx)
{
	bpf_tail_call(ctx, &jmp, 0);
	return 0;
}

static __noinline int middle(void *ctx)
{
	volatile __u8 pad[16];
	bpf_probe_read_kernel((void *)pad, sizeof(pad), ctx);
	return do_tail(ctx) + pad[0];
}

SEC("tc")
int entry(void *ctx)
{
	volatile __u8 big[200];
	bpf_probe_read_kernel((void *)big, sizeof(big), ctx);
	return middle(ctx) + big[2];
}

SEC("xdp")
int huge(void *ctx)
{
	volatile __u8 copy[600];
	bpf_probe_read_kernel((void *)copy, sizeof(copy), ctx);
	return copy[5];
}
char LICENSE[] SEC("license") = "GPL";
`;
const PROFILES = parseKernelProfiles(['6.1', '6.18'], true).profiles;

async function estimated(text = SNIPPET): Promise<DocumentStackAnalysis> {
  const report = await estimateSource(FILE, text, PROFILES);
  return {
    origin: 'source estimate',
    label: 'combined.bpf.c (estimated from the source)',
    path: FILE,
    programs: report.programs,
    profiles: PROFILES,
    frames: report.functions,
    estimatedText: text,
  };
}

/** An object analysis with the estimate's programs, as if clang had measured the same frames. */
function asObject(estimate: DocumentStackAnalysis, staleReason?: string): DocumentStackAnalysis {
  return { origin: 'object', label: 'combined.bpf.o', path: '/work/snippet/combined.bpf.o', programs: estimate.programs, profiles: PROFILES, staleReason };
}

function lineOf(text: string, needle: string): number {
  return text.split('\n').findIndex((line) => line.includes(needle)) + 1;
}

test("one diagnostic per problem per program, with each kernel's bytes, by how much and what to shrink", async () => {
  const findings = stackFindings(FILE, [await estimated()]);
  const combined = findings.filter((finding) => finding.rule === 'combined-stack');
  assert.equal(combined.length, 1, combined.map((finding) => finding.message).join('\n---\n'));
  const [message] = combined.map((finding) => finding.message);
  assert.equal(message.split('\n')[0], 'combined stack size of 2 calls is 576. Too large');
  assert.match(message, /rejected on 6\.1 \(576 B\), 6\.18 \(560 B\)/);
  // 6.1 rounds to 32: 288 + 288 = 576, 64 over; outer (264 B) at 224 B rounds to 224 and fits.
  assert.match(message, /576 B is 64 B over 512 on 6\.1: outer must lose 40 B \(264 → 224 B\), or inner 56 B to pass/);
  assert.match(message, /560 B is 48 B over 512 on 6\.18: outer must lose 40 B \(264 → 224 B\), or inner 40 B to pass/);
  assert.match(message, /largest: buf 280 B \(inner, line 11\), scratch 264 B \(outer, line 19\)/);

  const [tail] = findings.filter((finding) => finding.rule === 'tail-call-depth');
  assert.match(tail.message, /rejected on 6\.1; passes on 6\.18/);
  assert.match(
    tail.message,
    /the callers' frames add up to 256 B, and a tail call needs them under 256 B on 6\.1: entry must lose 8 B \(200 → 192 B\) to pass/,
  );
  assert.ok(tail.related.every((related) => !/the limit is below/.test(related.message)));
  assert.match(tail.related[tail.related.length - 1].message, /a tail call needs them under 256 B/);
});

test("a frame over 512 B is clang's refusal, not a kernel's, and says what to move", async () => {
  const findings = stackFindings(FILE, [await estimated()]);
  const refused = findings.filter((finding) => finding.rule === CLANG_STACK_LIMIT_RULE);
  assert.equal(refused.length, 1);
  assert.equal(refused[0].severity, 'error');
  assert.equal(refused[0].location.line, lineOf(SNIPPET, 'int huge('));
  assert.match(refused[0].message, /^clang will refuse to compile huge: its frame is 600 B, 88 B over the 512 B clang allows one BPF function/);
  assert.match(refused[0].message, /move copy into a per-CPU array map/);
  assert.deepEqual(refused[0].data.chain, ['huge']);
  assert.equal(
    findings.filter((finding) => finding.data.program === 'huge' && finding.rule === 'combined-stack').length,
    0,
    'no "combined stack size of 1 calls"',
  );
});

test('locations follow edits made since the analysis', async () => {
  const estimate = await estimated();
  const edited = `// one\n// two\n${SNIPPET}`;
  const before = stackFindings(FILE, [estimate]).find((finding) => finding.rule === 'tail-call-depth');
  const after = stackFindings(FILE, [estimate], { currentText: () => edited }).find((finding) => finding.rule === 'tail-call-depth');
  assert.ok(before && after);
  assert.equal(after.location.line, before.location.line + 2);
  assert.deepEqual(
    after.related.map((related) => related.location.line),
    before.related.map((related) => related.location.line + 2),
  );
  assert.equal(relocatedLine(5, 'return 0;', ['a', 'b', 'c', 'd', 'e', 'x', '  return 0;']), 7);
  assert.equal(relocatedLine(5, 'gone();', ['a', 'b', 'c', 'd', 'e']), 5, 'a line no longer there stays put');
});

test('a stale object and the estimate that says the same are one diagnostic', async () => {
  const estimate = await estimated();
  const findings = stackFindings(FILE, [asObject(estimate, 'combined.bpf.o is older than combined.bpf.c: rebuild it to update'), estimate]);
  const tail = findings.filter((finding) => finding.rule === 'tail-call-depth');
  assert.equal(tail.length, 1);
  assert.equal(tail[0].severity, 'error');
  assert.match(
    tail[0].message,
    /combined\.bpf\.o \(stale: combined\.bpf\.o is older than combined\.bpf\.c: rebuild it to update\) said: tail_calls are not allowed/,
  );
  // Fresh, the object's error stands alone: the estimate adds no duplicate.
  const fresh = stackFindings(FILE, [asObject(estimate), estimate]).filter((finding) => finding.rule === 'tail-call-depth');
  assert.equal(fresh.length, 1);
  assert.equal(fresh[0].source, 'bpf-stack-lens (object)');
});

test("CodeLens shows every rule's bytes and verdict, short, and keeps its shape when the estimate arrives", async () => {
  const estimate = await estimated();
  assert.equal(lensTitle('entry', [estimate]), 'frame ≈200 B · tail call at 256 B: rejected on 6.1 · 224 B: passes on 6.18');
  assert.equal(lensTitle('outer', [estimate]), 'frame ≈264 B · 576 B of 512: rejected on 6.1 · 560 B of 512: rejected on 6.18');
  const object = asObject(estimate);
  assert.equal(lensTitle('inner', [object]), 'frame 280 B · 576 B of 512: rejected on 6.1 · 560 B of 512: rejected on 6.18');
  assert.equal(lensTitle('inner', [object, estimate]), lensTitle('inner', [object]), 'the estimate coming in changes nothing');
  for (const name of ['entry', 'middle', 'do_tail', 'outer', 'inner']) assert.ok((lensTitle(name, [object]) ?? '').length <= 90, lensTitle(name, [object]));
});

test('the deepest chain through a function is the one the verdict adds up', async () => {
  const estimate = await estimated();
  const outer = estimate.programs.find((program) => program.name === 'outer');
  assert.ok(outer);
  assert.equal(deepestChainThrough('inner', outer, outer.verdicts[0], PROFILES[0]), 576);
  const options = shrinkOptions({ rule: 'combined-stack', depth: 560, frames: outer.verdicts[1].violations[0].frames }, PROFILES[1]);
  assert.deepEqual(
    options.map((option) => [option.name, option.loseBytes]),
    [
      ['outer', 40],
      ['inner', 40],
    ],
  );
});

test("hover: one section, labeled totals, each kernel's rounding once, the 512 rule like the tail-call rule", async () => {
  const estimate = await estimated();
  const object = asObject(estimate);
  const entry = functionHover('entry', [object, estimate]) ?? '';
  assert.match(entry, /\*\*entry\*\* — frame \*\*200 B\*\*, measured in `combined\.bpf\.o`/);
  assert.match(entry, /Estimated from the source: 200 B \(the same\)/);
  assert.equal(entry.match(/Rounded as the verifier counts it/g)?.length, 1, 'said once, not once per analysis');
  assert.match(entry, /6\.1: frames round up to 32 B before 6\.9 or without the JIT; 6\.18: frames round up to 16 B with the JIT from 6\.9/);
  assert.match(
    entry,
    /6\.1: entry 224 B \(total 224 B\) → middle 32 B \(total 256 B\) → tail call in do_tail at \*\*256 B\*\* of callers' frames — \*\*rejected\*\* \(must stay below 256 B\): entry must lose 8 B/,
  );
  assert.match(entry, /`big` \(`__u8\[200\]`\) 200 B \(line 40\)/);
  const inner = functionHover('inner', [object]) ?? '';
  assert.match(inner, /- 6\.1: outer 288 B → inner 288 B = \*\*576 B\*\* — \*\*rejected\*\*: 576 B is 64 B over 512: outer must lose 40 B/);
});

test('the status bar leads with the live verdict and says what is stale', async () => {
  const estimate = await estimated();
  const fresh = fileStatus([asObject(estimate), estimate]);
  assert.equal(fresh.text, 'BPF stack: rejected on 6.1, 6.18');
  assert.equal(fresh.state, 'rejected');
  const stale = fileStatus([asObject(estimate, 'combined.bpf.o is older than combined.bpf.c: rebuild it to update'), estimate]);
  assert.equal(stale.text, 'BPF stack: rejected on 6.1, 6.18 (estimate; combined.bpf.o stale)');
  assert.equal(stale.state, 'rejected');
  assert.match(stale.stale ?? '', /older than combined\.bpf\.c: rebuild/);
  const onlyStale = fileStatus([asObject(estimate, 'older')]);
  assert.equal(onlyStale.state, 'stale');
});

test('text from the file cannot become markup in a hover', () => {
  assert.equal(markdownCode('buf'), '`buf`');
  assert.equal(markdownCode('a`b'), '``a`b``');
  assert.equal(markdownCode('x\n# heading'), '`x # heading`');
});

test('the frame-count rule and the pre-5.10 rule say what to do, in the diagnostic and the lens', async () => {
  // Nine static frames: deep calls f1, which calls f2, ... f8.
  const functions = Array.from({ length: 8 }, (_, index) => 8 - index)
    .map((n) => `static __noinline int f${n}(void *ctx)\n{\n\treturn ${n === 8 ? '0' : `f${n + 1}(ctx)`} + 1;\n}\n`)
    .join('\n');
  const text = `#define SEC(name) __attribute__((section(name), used))\n#define __noinline __attribute__((noinline))\n${functions}\nSEC("xdp")\nint deep(void *ctx)\n{\n\treturn f1(ctx);\n}\nchar LICENSE[] SEC("license") = "GPL";\n`;
  const estimate = await estimated(text);
  const [tooDeep] = stackFindings(FILE, [estimate]).filter((finding) => finding.rule === 'call-depth');
  assert.ok(tooDeep, JSON.stringify(stackFindings(FILE, [estimate]).map((finding) => finding.message)));
  assert.match(tooDeep.message, /^the call stack of 9 frames is too deep/);
  assert.match(tooDeep.message, /9 frames where 8 is the most: make a call on the chain inline \(static __always_inline\), such as f8/);
  assert.match(lensTitle('f8', [estimate]) ?? '', /9 frames of 8: rejected on 6\.1, 6\.18/);

  const old = parseKernelProfiles(['5.4'], true).profiles;
  const report = await estimateSource(FILE, SNIPPET, old);
  const withCalls = stackFindings(FILE, [{ ...(await estimated()), programs: report.programs, profiles: old }]).find(
    (finding) => finding.rule === 'tail-call-with-calls',
  );
  assert.ok(withCalls);
  assert.match(withCalls.message, /inline the subprograms \(__always_inline\), or target 5\.10 and later with the JIT \(5\.4\)/);
});

test('what an old kernel lacks: the diagnostic and the lens say what and from which release', () => {
  const object = join(fixturesDirectory(), 'missing_helpers.bpf.o');
  const profiles = parseKernelProfiles(['5.10.223', '6.18'], true).profiles;
  const { programs } = analyzeObject(new Uint8Array(readFileSync(object)), object, profiles).report;
  const analysis: DocumentStackAnalysis = { origin: 'object', label: 'missing_helpers.bpf.o', path: object, programs, profiles };
  const lacks = stackFindings('./missing_helpers.bpf.c', [analysis]).filter((finding) => finding.rule === 'kernel-lacks-feature');
  assert.equal(lacks.length, 2, JSON.stringify(lacks.map((finding) => finding.message)));
  assert.match(
    lacks[0].message,
    /^invalid func unknown#160\nrejected on 5\.10\.223; passes on 6\.18 · program helper_in_static_callee: helper_in_static_callee → stamp /,
  );
  assert.match(lacks[0].message, /bpf_ktime_get_coarse_ns \(helper 160\) needs 5\.11 or later \(kernel 5\.10\.223 predates it\)/);
  assert.match(lensTitle('stamp', [analysis]) ?? '', /needs 5\.11: rejected on 5\.10\.223/);
});

test('what an old kernel lacks, from the source as the user types: the estimate names the helper bpf_printk expanded to', async () => {
  const source = join(fixturesDirectory(), 'printk_variants.bpf.c');
  const text = readFileSync(source, 'utf8');
  const profiles = parseKernelProfiles(['5.10.223', '6.18'], true).profiles;
  const report = await estimateSource(source, text, profiles);
  const analysis: DocumentStackAnalysis = {
    origin: 'source estimate',
    label: 'printk_variants.bpf.c (estimated from the source)',
    path: source,
    programs: report.programs,
    profiles,
    frames: report.functions,
    estimatedText: text,
  };
  const lacks = stackFindings(source, [analysis]).filter((finding) => finding.rule === 'kernel-lacks-feature');
  assert.deepEqual(
    lacks.map((finding) => finding.message.split('\n')[0]),
    ['invalid func unknown#177', 'invalid func unknown#177', 'invalid func unknown#165'],
    JSON.stringify(lacks.map((finding) => finding.message)),
  );
  // The call the kernel refuses is bpf_printk's line: four arguments expand to bpf_trace_vprintk.
  assert.equal(lacks[0].location.line, lineOf(text, 'bpf_printk("len=%u mark=%u prio=%u proto=%u"'));
  assert.match(lacks[0].message, /bpf_trace_vprintk \(helper 177\) needs 5\.16 or later \(kernel 5\.10\.223 predates it\)/);
  assert.match(lacks[2].message, /bpf_snprintf \(helper 165\) needs 5\.13 or later/);
  assert.match(lensTitle('snprintf_3_args', [analysis]) ?? '', /needs 5\.13: rejected on 5\.10\.223/);
  assert.match(lensTitle('printk_4_args', [analysis]) ?? '', /needs 5\.16: rejected on 5\.10\.223/);
  assert.doesNotMatch(lensTitle('printk_3_args', [analysis]) ?? '', /needs/, 'three arguments stay bpf_trace_printk, which 5.10 has');
});
