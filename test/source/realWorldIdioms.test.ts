/**
 * Idioms of real BPF programs (libbpf's macros, bpf_experimental.h, selftests' helpers) that the
 * estimator must see through, each a small program whose frames clang-19 -fstack-usage confirms
 * when it is installed. The real-world corpus test (test/realworld.estimate.test.ts) measures the
 * same on whole programs against the kernel.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type EstimateReport, EstimateSession, estimateSource } from '../../server/src/source/estimateSource';
import { FrameEstimateCache } from '../../server/src/source/frameEstimate';
import { DEFAULT_SYSTEM_INCLUDE_DIRS } from '../../server/src/source/headerIndex';
import { parseKernelProfiles } from '../../server/src/rules/kernelProfile';
import { hasClang, runClang, temporaryDirectory } from './helpers';
import { skipOrFail } from '../support/unavailable';

const { profiles } = parseKernelProfiles(['6.18'], true);

/** What every snippet starts with: the few libbpf definitions it uses, spelled as libbpf does. */
const PRELUDE = `#define SEC(name) __attribute__((section(name), used))
#define __always_inline inline __attribute__((always_inline))
#define __noinline __attribute__((noinline))
static long (*bpf_probe_read_kernel)(void *dst, unsigned int size, const void *src) = (void *) 113;
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *) 1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value, unsigned long long flags) = (void *) 2;
struct { int x; } hmap SEC(".maps");
`;

/** Writes `files` (the first is the main file) to a fresh folder; returns the main file's path. */
function writeSnippet(files: Record<string, string>): string {
  const directory = temporaryDirectory('idiom');
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(directory, name), text);
  return path.join(directory, Object.keys(files)[0]);
}

async function estimateFile(file: string): Promise<EstimateReport> {
  const session = new EstimateSession(new FrameEstimateCache());
  try {
    return await estimateSource(file, fs.readFileSync(file, 'utf8'), profiles, { includeDirs: [path.dirname(file)] }, session);
  } finally {
    session.dispose();
  }
}

/** clang-19's frame of every function it emits (-fstack-usage), by name; undefined without clang. */
function clangFrames(file: string): Map<string, number> | undefined {
  if (!hasClang()) return undefined;
  const object = file.replace(/\.c$/, '.o');
  // -g: __builtin_btf_type_id needs debug info (without it clang-19's backend aborts).
  const result = runClang(['-O2', '-g', '-fstack-usage', '-I', path.dirname(file), '-c', file, '-o', object]);
  assert.equal(result.status, 0, result.stderr);
  const frames = new Map<string, number>();
  for (const line of fs.readFileSync(object.replace(/\.o$/, '.su'), 'utf8').split('\n')) {
    const [where, bytes] = line.split('\t');
    if (where && bytes) frames.set(where.slice(where.lastIndexOf(':') + 1), Number(bytes));
  }
  return frames;
}

/** The estimate's frame of every function that is not inlined, by name. */
function estimatedFrames(report: EstimateReport): Map<string, number> {
  return new Map(report.functions.filter((fn) => !fn.inline).map((fn) => [fn.name, fn.frameBytes]));
}

/** Estimates the snippet, checks `expected` frames against the estimate and (when here) clang. */
async function assertFrames(files: Record<string, string>, expected: Record<string, number>): Promise<EstimateReport> {
  const file = writeSnippet(files);
  const report = await estimateFile(file);
  const estimated = estimatedFrames(report);
  const compiled = clangFrames(file);
  for (const [name, bytes] of Object.entries(expected)) {
    assert.equal(estimated.get(name), bytes, `estimated frame of ${name}`);
    if (compiled) assert.equal(compiled.get(name), bytes, `clang's frame of ${name}`);
  }
  return report;
}

const BPF_PROG = `#define BPF_PROG(name, args...) \\
name(unsigned long long *ctx); \\
static __always_inline typeof(name(0)) ____##name(unsigned long long *ctx, ##args); \\
typeof(name(0)) name(unsigned long long *ctx) \\
{ \\
	_Pragma("GCC diagnostic push") \\
	_Pragma("GCC diagnostic ignored \\"-Wint-conversion\\"") \\
	return ____##name(ctx, (void *)ctx[0]); \\
	_Pragma("GCC diagnostic pop") \\
} \\
static __always_inline typeof(name(0)) ____##name(unsigned long long *ctx, ##args)
`;

test('a BPF_PROG program is the outer function, its SEC() from the prototype, the body inlined into it', async () => {
  const report = await assertFrames(
    {
      'prog.c': `${PRELUDE}${BPF_PROG}
static __always_inline int record(unsigned int pid)
{
	unsigned long long ts = 1;
	bpf_map_update_elem(&hmap, &pid, &ts, 0);
	return 0;
}
SEC("tp_btf/sched_wakeup")
int BPF_PROG(wakeup, void *p)
{
	char buf[16];
	bpf_probe_read_kernel(buf, sizeof(buf), p);
	return record(buf[1]);
}
`,
    },
    // buf (16), and record()'s ts (8) and pid, whose address is taken (4, in an 8-byte slot).
    { wakeup: 32 },
  );
  const program = report.programs.find((candidate) => candidate.name === 'wakeup');
  assert.equal(program?.section, 'tp_btf/sched_wakeup');
  assert.equal(program?.stackDepths, '32');
  assert.equal(report.functions.find((fn) => fn.name === '____wakeup')?.inline, true);
});

test('functions and programs defined in an included header are frames of their own file', async () => {
  const header = `#define SEC(name) __attribute__((section(name), used))
static long (*bpf_getsockopt)(void *ctx, int level, int optname, void *optval, int optlen) = (void *) 57;
__attribute__((noinline)) int get_priority(void *ctx)
{
	int prio;
	return bpf_getsockopt(ctx, 1, 12, &prio, sizeof(prio));
}
SEC("tc")
int header_prog(void *ctx)
{
	char buf[32];
	bpf_getsockopt(ctx, 1, 2, buf, sizeof(buf));
	return get_priority(ctx);
}
`;
  const report = await assertFrames(
    {
      'main.c': `#include "helpers.h"
SEC("cgroup/sendmsg4")
int main_prog(void *ctx)
{
	return get_priority(ctx);
}
`,
      'helpers.h': header,
    },
    { get_priority: 8, header_prog: 32, main_prog: 0 },
  );
  const helper = report.functions.find((fn) => fn.name === 'get_priority');
  assert.ok(helper?.file?.endsWith('helpers.h'), 'located in the header');
  assert.equal(helper?.line, 3);
  assert.equal(report.programs.find((program) => program.name === 'main_prog')?.stackDepths, '0+8');
  const fromHeader = report.programs.find((program) => program.name === 'header_prog');
  assert.equal(fromHeader?.stackDepths, '32+8');
  assert.ok(fromHeader?.subprograms[0].source?.file.endsWith('helpers.h'));
});

test('typeof of an expression (bpf_obj_new, BPF_PROG) does not hide the functions after it', async () => {
  const report = await assertFrames(
    {
      'prog.c': `${PRELUDE}struct node { long key; long data; };
static void *(*bpf_obj_new_impl)(unsigned long long type_id, void *meta) = (void *) 7;
#define bpf_obj_new(type) ((type *)bpf_obj_new_impl(__builtin_btf_type_id(*(typeof(type) *)0, 0), 0))
__noinline int make(struct node *n)
{
	struct node *m = bpf_obj_new(typeof(*n));
	char buf[16];
	bpf_probe_read_kernel(buf, sizeof(buf), m);
	return buf[3];
}
SEC("tc")
int after(void *ctx)
{
	char buf[24];
	bpf_probe_read_kernel(buf, sizeof(buf), ctx);
	return make(ctx) + buf[1];
}
`,
    },
    { make: 16, after: 24 },
  );
  assert.equal(report.programs.find((program) => program.name === 'after')?.stackDepths, '24+16');
});

test('a variable with a section before its initializer (a prog array with its slots, SEC(".data.x") = {...}) does not hide the functions after it', async () => {
  // tree-sitter-c ends the declaration at the attribute and reads the braces as a compound
  // statement: it then found no function of the file (verifier_subprog_precision.c lost all 30).
  const report = await assertFrames(
    {
      'prog.c': `${PRELUDE}int vals[] SEC(".data.vals") = {1, 2, 3, 4};
static const unsigned int *const ptrs[2] __attribute__((section(".data.ptrs"))) __attribute__((used)) = {0, 0};
SEC("tc")
int first(void *ctx)
{
	char buf[40];
	bpf_probe_read_kernel(buf, sizeof(buf), ctx);
	return buf[1] + vals[2] + (ptrs[0] != 0);
}
struct { int type; int (*values[2])(void *); } jmp SEC(".maps") = { .values = { [0] = first } };
SEC("tc")
int second(void *ctx)
{
	char buf[24];
	bpf_probe_read_kernel(buf, sizeof(buf), ctx);
	return buf[1];
}
`,
    },
    { first: 40, second: 24 },
  );
  assert.deepEqual(
    report.programs.map((program) => program.name),
    ['first', 'second'],
  );
});

test("a ';' inside a string of an attribute before a definition (a selftest's __msg) keeps the SEC() before it", async () => {
  // The header of a definition starts after the previous declaration's last ';': one inside
  // __msg("... ; R0_w=...") cut the SEC() off, and verifier_bounds.c lost 5 programs so.
  const report = await assertFrames(
    {
      'prog.c': `${PRELUDE}#define __msg(msg) __attribute__((btf_decl_tag("comment:test_expect_msg=" msg)))
SEC("socket")
__msg("5: (af) r0 ^= r6                      ; R0_w=scalar(var_off=(0x0; 0x1af))")
__msg("a ';' and a \\" quote")
int xor_program(void *ctx)
{
	char buf[24];
	bpf_probe_read_kernel(buf, sizeof(buf), ctx);
	return buf[1];
}
`,
    },
    { xor_program: 24 },
  );
  assert.deepEqual(
    report.programs.map((program) => `${program.name} ${program.section}`),
    ['xor_program socket'],
  );
});

test('clang puts on the stack: compound literals by address, "+g" asm operands, zero-length arrays passed on', async () => {
  await assertFrames(
    {
      'prog.c': `${PRELUDE}static long (*bpf_seq_printf)(void *m, const char *fmt, unsigned int fmt_size, const void *data, unsigned int data_len) = (void *) 126;
#define __sink(expr) asm volatile("" : "+g"(expr))
SEC("tc")
int literal_key(void *ctx)
{
	return bpf_map_lookup_elem(&hmap, &(int){0}) != 0;
}
__noinline int sink(void *skb)
{
	int ret = bpf_map_lookup_elem(&hmap, skb) != 0;
	__sink(ret);
	__sink(skb);
	return ret;
}
SEC("tc")
int sinks(void *ctx)
{
	return sink(ctx);
}
SEC("iter/bpf_map")
int no_arguments(void *m)
{
	static const char fmt[] = "x";
	unsigned long long ___param[0];
	return bpf_seq_printf(m, fmt, sizeof(fmt), ___param, sizeof(___param));
}
`,
    },
    { literal_key: 8, sink: 16, no_arguments: 8 },
  );
});

// clang's limits.h and stdint.h go on to glibc's, which wants gnu/stubs-32.h under -target bpf: not here.
test("clang's own headers are found in its resource directory, and #if answers __building_module", async (t) => {
  const report = await estimateFile(
    writeSnippet({
      'prog.c': `#include <stddef.h>
#include <stdbool.h>
#include <stdarg.h>
#define SEC(name) __attribute__((section(name), used))
#if __building_module(stddef)
#error not a module
#endif
SEC("tc")
int sized(void *ctx)
{
	volatile size_t sizes[4] = {};
	volatile bool flags[sizeof(size_t)] = {};
	return sizes[1] + flags[2];
}
`,
    }),
  );
  if (!DEFAULT_SYSTEM_INCLUDE_DIRS.some((directory) => fs.existsSync(path.join(directory, 'stddef.h')))) {
    skipOrFail(t, 'no clang resource directory on this machine');
    return;
  }
  assert.deepEqual(report.problems, []);
  assert.equal(report.functions.find((fn) => fn.name === 'sized')?.frameBytes, 40);
});

test("BPF_CORE_READ's typeof((src)->a->b) __r takes the read field's slot, in a return and in an if (anonymous members too)", async () => {
  // libbpf's bpf_core_read.h, reduced to the two-hop read it expands to.
  const coreRead = `#define ___type(src, a, b) typeof((src)->a->b)
#define CORE_READ2(src, a, b) ({ void *__t; ___type(src, a, b) __r; \\
	bpf_probe_read_kernel(&__t, sizeof(__t), &(src)->a); \\
	bpf_probe_read_kernel(&__r, sizeof(__r), &((typeof((src)->a))__t)->b); __r; })
#define CORE_READ1(src, a) ({ typeof((src)->a) __r; bpf_probe_read_kernel(&__r, sizeof(__r), &(src)->a); __r; })
struct mm { unsigned long long total_vm; };
struct task { struct { int pid; struct task *parent; }; struct mm *mm; };
`;
  await assertFrames(
    {
      'core.c': `${PRELUDE}${coreRead}
__noinline int own_pid(struct task *task)
{
	return CORE_READ1(task, pid);
}
__noinline int big_vm(struct task *task)
{
	if (CORE_READ2(task, mm, total_vm) > 1000)
		return 1;
	return 0;
}
SEC("tp/sched/sched_switch")
int prog(void *ctx)
{
	return own_pid(ctx) + big_vm(ctx);
}
`,
    },
    // own_pid: an int __r in an 8-byte slot; big_vm: the __t pointer and an 8-byte __r.
    { own_pid: 8, big_vm: 16 },
  );
});

/** bpf_experimental.h's exceptions, reduced to what the estimate reads. */
const EXCEPTIONS = `extern void bpf_throw(unsigned long long cookie) __attribute__((section(".ksyms")));
#define __exception_cb(name) __attribute__((btf_decl_tag("exception_callback:" #name)))
#define bpf_assert(cond) if (!(cond)) bpf_throw(0);
#define __bpf_assert(LHS, op, RHS) asm volatile ("if %[lhs] " op " %[rhs] goto +2; r1 = 0; call bpf_throw" : : [lhs] "r"(LHS), [rhs] "i"(RHS))
#define bpf_assert_ge(LHS, RHS) ({ _Static_assert(sizeof(&(LHS)), "lvalue"); __bpf_assert(LHS, ">=", RHS); })
#define bpf_cmp_unlikely(LHS, OP, RHS) ({ typeof(LHS) __lhs = (LHS); int ret = 0; \\
	asm volatile goto("if %[lhs] " #OP " %[rhs] goto %l[l_true]" :: [lhs] "r"(__lhs), [rhs] "i"(RHS) :: l_true); \\
	ret = 1; l_true: ret; })
`;

test('bpf_experimental.h: sizeof(&x) takes no address, typeof of a volatile is volatile, a throw without callback ends the line in +0', async () => {
  const report = await assertFrames(
    {
      'throw.c': `${PRELUDE}${EXCEPTIONS}
static long (*bpf_ktime_get_ns)(void) = (void *) 5;
__noinline int assert_zero(long c)
{
	volatile long cookie = c;

	bpf_assert(bpf_cmp_unlikely(cookie, ==, 0));
	return 0;
}
SEC("tc")
int asserts(void *ctx)
{
	return assert_zero((long)ctx) + 1;
}
SEC("tc")
int in_range(void *ctx)
{
	unsigned long long time = bpf_ktime_get_ns();

	bpf_assert_ge(time, 10);
	return 1;
}
static __always_inline void throw_inline(void)
{
	bpf_throw(1);
}
SEC("tc")
int throws_inlined(void *ctx)
{
	throw_inline();
	return 0;
}
__noinline int callback(unsigned long long cookie)
{
	return cookie + 1;
}
SEC("tc")
__exception_cb(callback)
int with_callback(void *ctx)
{
	bpf_throw(2);
	return 0;
}
SEC("tc")
int never_throws(void *ctx)
{
	if (0)
		bpf_throw(3);
	return 0;
}
`,
    },
    // assert_zero: cookie and bpf_cmp_unlikely's volatile copy __lhs; in_range: time stays in a register.
    { assert_zero: 16, in_range: 0, throws_inlined: 0 },
  );
  const lines = Object.fromEntries(report.programs.map((program) => [program.name, program.stackDepths]));
  // with_callback names its own callback: no default one is appended (libbpf's appending of the
  // named one is not modelled: the corpus has no program that loads with one).
  assert.deepEqual(lines, { asserts: '0+16+0', in_range: '0+0', throws_inlined: '0+0', with_callback: '0', never_throws: '0' });
});

/** A body large enough for clang to keep it out of line when called twice (cost 255 > 225). */
const RECORD_BODY = `{
	int key = first;
	long value = second;

	if (bpf_map_update_elem(&hmap, &key, &value, 0)) {
		err = 1;
		return 0;
	}
	key = second;
	value = first;
	if (bpf_map_update_elem(&hmap, &key, &value, 0)) {
		err = 2;
		return 0;
	}
	key = first + second;
	if (bpf_map_update_elem(&hmap, &key, &value, 0)) {
		err = 3;
		return 0;
	}
	key = first - second;
	if (bpf_map_update_elem(&hmap, &key, &value, 0)) {
		err = 4;
		return 0;
	}
	key = first * second;
	if (bpf_map_update_elem(&hmap, &key, &value, 0)) {
		err = 5;
		return 0;
	}
	return bpf_map_lookup_elem(&hmap, &key) != 0;
}
`;

test("a static function called from two places stays out of line when it is large, as clang's inliner decides", async () => {
  const report = await assertFrames(
    {
      'inline.c': `${PRELUDE}int err;

/* Small: inlined into both programs. */
static int bump(int key)
{
	int *value = bpf_map_lookup_elem(&hmap, &key);

	return value ? *value + 1 : 0;
}

/* Large and called twice: clang keeps it out of line. */
static int record(int first, int second)
${RECORD_BODY}
/* Just as large, called once: inlined. */
static int record_once(int first, int second)
${RECORD_BODY}
SEC("tc")
int first(void *ctx)
{
	long x = (long)ctx;
	return record(bump(x), x >> 8) + record_once(x >> 16, x >> 24);
}

SEC("tc")
int second(void *ctx)
{
	long x = (long)ctx;
	return record(bump(x + 1), x >> 4);
}
`,
    },
    // record: its key and value; first: record_once's, inlined; second: bump's key, inlined.
    { record: 16, first: 16, second: 8 },
  );
  const inlined = Object.fromEntries(report.functions.map((fn) => [fn.name, fn.inline]));
  assert.deepEqual(inlined, { bump: true, record: false, record_once: true, first: false, second: false });
  assert.deepEqual(
    report.programs.map((program) => program.stackDepths),
    ['16+16', '8+16'],
  );
});

test('SROA: an aggregate or addressed scalar that only inlined callees dereference at constant offsets lives in registers', async () => {
  const report = await assertFrames(
    {
      'prog.c': `${PRELUDE}struct pkt { unsigned short proto; unsigned short offset; unsigned char outer; };
static __always_inline int parse(const unsigned char *data, struct pkt *pkt, unsigned int *off)
{
	pkt->proto = data[12];
	pkt->outer = data[13];
	*off += pkt->proto;
	return bpf_map_lookup_elem(&hmap, data) != 0;
}
SEC("xdp")
int split(unsigned char *data)
{
	struct pkt pkt = { 0 };
	unsigned short swap[3];
	unsigned int off = 14;
	swap[0] = data[0];
	swap[1] = data[1];
	swap[2] = data[2];
	data[3] = swap[2];
	if (!parse(data, &pkt, &off))
		return 1;
	return pkt.outer + off + swap[0];
}
/* Its address goes to a helper: it stays. */
SEC("xdp")
int kept(unsigned char *data)
{
	struct pkt pkt = { 0 };
	unsigned int off = 14;
	parse(data, &pkt, &off);
	return bpf_map_update_elem(&hmap, data, &pkt, 0);
}
`,
    },
    { split: 0, kept: 8 },
  );
  assert.deepEqual(
    report.functions.find((fn) => fn.name === 'kept')?.items.map((item) => item.name),
    ['pkt'],
  );
});

test('a __naked function: the deepest r10 offset of its asm is its frame, `call %[f]` with __imm(f) calls f', async () => {
  const report = await assertFrames(
    {
      'prog.c': `${PRELUDE}#define __naked __attribute__((naked))
#define __imm(name) [name]"i"(name)
static __noinline void dummy(void) {}
SEC("socket")
__naked int naked_stack(void *ctx)
{
	asm volatile ("					\\
		*(u64*)(r10 - 128) = r1;		\\
		r1 = *(u8 *)(r10 - 8 );			\\
		call %[dummy];				\\
		r0 = 0;					\\
		exit;					\\
"
		      :
		      : __imm(dummy)
		      : "r0", "r1");
}
`,
    },
    // clang gives a naked function no frame of its own: its asm is all of it.
    { dummy: 0 },
  );
  assert.equal(report.functions.find((fn) => fn.name === 'naked_stack')?.frameBytes, 128);
  assert.deepEqual(
    report.programs.map((program) => program.stackDepths),
    ['128+0'],
  );
});

test('naked asm: `call f` by name, a callback by `%[cb]` with __imm_ptr(cb), and `call %[bpf_loop]` with no flags inlined', async () => {
  // Built with clang-19, the running kernel (6.18) prints "stack depth 32+16+48": main's 8 bytes and
  // the 24 of the inlined bpf_loop, the callback's 16, the 48 of the function called by name. The
  // estimate saw 8 before: verifier_subprog_precision.c and verifier_ref_tracking.c's asm so.
  const report = await assertFrames(
    {
      'prog.c': `${PRELUDE}#define __naked __attribute__((naked))
#define __imm(name) [name]"i"(name)
#define __imm_ptr(name) [name]"r"(&name)
static long (*bpf_loop)(unsigned int nr, void *fn, void *ctx, unsigned long long flags) = (void *) 181;
static __noinline __attribute__((used)) int callback_16(unsigned int index, void *data)
{
	volatile unsigned long long a = index, b = 2;
	return a + b > 100;
}
__naked __noinline __attribute__((used)) static int by_name_48(void)
{
	asm volatile ("*(u64 *)(r10 - 48) = r1; r0 = 0; exit;" ::: "memory");
}
SEC("socket")
__naked int asm_loop_and_call(void)
{
	asm volatile (
		"*(u64 *)(r10 - 8) = r1;"
		"call by_name_48;"
		"r1 = 3;"
		"r2 = %[callback_16];"
		"r3 = 0;"
		"r4 = 0;"
		"call %[bpf_loop];"
		"r0 = 0;"
		"exit;"
		:
		: __imm_ptr(callback_16), __imm(bpf_loop)
		: "r0", "r1", "r2", "r3", "r4", "r5", "memory");
}
`,
    },
    // clang gives the naked functions no frame of their own (their asm is all of it): only the callback is compared.
    { callback_16: 16 },
  );
  assert.deepEqual(
    report.programs.map((program) => program.stackDepths),
    ['32+16+48'],
  );
});

test("an uninitialised array's lifetime starts at its first use; sizeof of a global string array sizes a local", async () => {
  await assertFrames(
    {
      'prog.c': `${PRELUDE}static long (*bpf_sysctl_get_name)(void *ctx, char *buf, unsigned long buf_len, unsigned long long flags) = (void *) 101;
static long (*bpf_sysctl_get_current_value)(void *ctx, char *buf, unsigned long buf_len) = (void *) 102;
const char wanted[] = "net/ipv4/tcp_mem";
static __always_inline int is_wanted(void *ctx)
{
	char name[sizeof(wanted)];
	if (bpf_sysctl_get_name(ctx, name, sizeof(name), 0) != sizeof(wanted) - 1)
		return 0;
	return name[0] == wanted[0];
}
SEC("cgroup/sysctl")
int first_use(void *ctx)
{
	char value[64];
	if (!is_wanted(ctx))
		return 0;
	return bpf_sysctl_get_current_value(ctx, value, sizeof(value));
}
__noinline int out_of_line(void *ctx)
{
	char name[sizeof(wanted)];
	return bpf_sysctl_get_name(ctx, name, sizeof(name), 0);
}
`,
    },
    // name (17 bytes) is dead before value's first use: they share 64 bytes.
    { first_use: 64, out_of_line: 24 },
  );
});

test('a section given as __section__ with pasted literals ("?" "cgroup/...") makes a program, as in cgroup_getset_retval_hooks', async () => {
  const report = await assertFrames(
    {
      'hooks.bpf.c': `${PRELUDE}#define HOOK(name, section) __attribute__((__section__("?" section))) int name(void *ctx) { volatile long x = 1; return x; }
HOOK(optional_hook, "cgroup/getsockopt")
`,
    },
    { optional_hook: 8 },
  );
  const program = report.programs.find((candidate) => candidate.name === 'optional_hook');
  assert.equal(program?.section, '?cgroup/getsockopt');
});
