/**
 * The helpers the estimate sees a function call: the id is the one the unit's own declaration gives
 * (bpf_helper_defs.h's `static long (*name)(...) = (void *) N;`, or a hand-written one), calls in code
 * the verifier never reaches are not counted, and a call in a function that tests what libbpf sets at
 * load (.kconfig, CO-RE existence) says the refusal assumes the call is reached.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseKernelProfiles } from '../../server/src/rules/kernelProfile';
import { formatEstimateText } from '../../server/src/ide/estimateText';
import { estimateSource } from '../../server/src/source/estimateSource';

const K510 = parseKernelProfiles(['5.10.223'], true).profiles;

async function verdictOf(file: string, text: string, program: string) {
  const report = await estimateSource(file, text, K510);
  const found = report.programs.find((candidate) => candidate.name === program);
  assert.ok(found, `${program} in ${report.programs.map((candidate) => candidate.name).join(', ')}`);
  return found.verdicts[0];
}

const PRELUDE = `#define SEC(name) __attribute__((section(name), used))
struct __sk_buff { unsigned int len; };
`;

test("a helper's id is its declaration's, whatever the name", async () => {
  const text = `${PRELUDE}static long (* const stamp_now)(void) = (void *) 160;
static long (*old_enough)(void) = (void *) 5;
enum bpf_func_id { BPF_FUNC_ktime_get_coarse_ns = 160 };
static long (*coarse_by_enum)(void) = (void *) BPF_FUNC_ktime_get_coarse_ns;
SEC("tc") int uses_stamp(struct __sk_buff *skb) { return stamp_now() + old_enough(); }
SEC("tc") int uses_old(struct __sk_buff *skb) { return old_enough(); }
SEC("tc") int uses_enum(struct __sk_buff *skb) { return coarse_by_enum(); }
`;
  const stamp = await verdictOf('/work/snippet/ids.bpf.c', text, 'uses_stamp');
  const refusal = stamp.violations.find((violation) => violation.reportedByKernel);
  assert.equal(refusal?.message, 'invalid func unknown#160');
  assert.equal(refusal?.missingFeature?.what, 'stamp_now (helper 160)');
  assert.equal(refusal?.missingFeature?.since, '5.11');
  assert.equal((await verdictOf('/work/snippet/ids.bpf.c', text, 'uses_old')).accepted, true);
  // Older copies of the header spell the id with linux/bpf.h's enumerator.
  const byEnum = (await verdictOf('/work/snippet/ids.bpf.c', text, 'uses_enum')).violations.find((violation) => violation.reportedByKernel);
  assert.equal(byEnum?.message, 'invalid func unknown#160');
});

test('a local of the same name, or a call clang or the verifier removes, is no helper call', async () => {
  const text = `${PRELUDE}static long (*stamp_now)(void) = (void *) 160;
const volatile int use_stamp = 0;
SEC("tc") int shadowed(struct __sk_buff *skb) { long (*stamp_now)(void) = 0; return skb->len; }
SEC("tc") int compiled_out(struct __sk_buff *skb) { if (0) return stamp_now(); return skb->len; }
SEC("tc") int frozen_out(struct __sk_buff *skb) { if (use_stamp) return stamp_now(); return skb->len; }
SEC("tc") int reached(struct __sk_buff *skb) { if (skb->len) return stamp_now(); return 0; }
`;
  for (const program of ['shadowed', 'compiled_out', 'frozen_out'])
    assert.equal((await verdictOf('/work/snippet/dead.bpf.c', text, program)).accepted, true, program);
  assert.equal((await verdictOf('/work/snippet/dead.bpf.c', text, 'reached')).accepted, false);
});

test('a helper inlined from a callee is refused at the call site, in the order do_check meets it', async () => {
  const text = `${PRELUDE}static long (*stamp_now)(void) = (void *) 160;
static long (*load_bytes)(void) = (void *) 189;
static __attribute__((always_inline)) long read_clock(void) { return stamp_now(); }
SEC("tc") int inlined(struct __sk_buff *skb)
{
	long t = read_clock();
	return t + load_bytes();
}
`;
  const refusal = (await verdictOf('/work/snippet/inline.bpf.c', text, 'inlined')).violations.find((violation) => violation.reportedByKernel);
  assert.equal(refusal?.message, 'invalid func unknown#160', 'the inlined call comes first');
  assert.equal(refusal?.source?.line, text.split('\n').findIndex((line) => line.includes('= read_clock()')) + 1);
});

test('a call in a function that reads .kconfig or CO-RE existence says the refusal assumes it is reached', async () => {
  const text = `${PRELUDE}static long (*stamp_now)(void) = (void *) 160;
extern unsigned int LINUX_KERNEL_VERSION __attribute__((section(".kconfig")));
enum bpf_func_id { BPF_FUNC_ktime_get_coarse_ns = 160 };
SEC("tc") int kconfig_guard(struct __sk_buff *skb) { if (LINUX_KERNEL_VERSION >= 0x50b00) return stamp_now(); return 0; }
SEC("tc") int core_guard(struct __sk_buff *skb)
{
	if (__builtin_preserve_enum_value(*(typeof(enum bpf_func_id) *)BPF_FUNC_ktime_get_coarse_ns, 0))
		return stamp_now();
	return 0;
}
SEC("tc") int unguarded(struct __sk_buff *skb) { return stamp_now(); }
`;
  for (const program of ['kconfig_guard', 'core_guard']) {
    const verdict = await verdictOf('/work/snippet/guard.bpf.c', text, program);
    assert.equal(verdict.accepted, false, program);
    assert.ok(
      verdict.assumes.some((assumption) => /^the call to stamp_now \(helper 160\) at \/work\/snippet\/guard\.bpf\.c:\d+ is reached/.test(assumption)),
      `${program}: ${verdict.assumes.join('; ')}`,
    );
  }
  const printed = formatEstimateText(await estimateSource('/work/snippet/guard.bpf.c', text, K510));
  assert.match(
    printed,
    /kernel 5\.10\.223: rejected: invalid func unknown#160\n {4}assumes: the call to stamp_now \(helper 160\) at \/work\/snippet\/guard\.bpf\.c:6 is reached: kconfig_guard also tests/,
  );
  const unguarded = await verdictOf('/work/snippet/guard.bpf.c', text, 'unguarded');
  assert.ok(!unguarded.assumes.some((assumption) => assumption.startsWith('the call to')), unguarded.assumes.join('; '));
});
