// Instructions that only cpu v4 (-mcpu=v4) emits: sign-extending loads and moves, bswap, signed
// division and modulo, atomics with fetch, xchg and cmpxchg, and may_goto from inline assembly.
// test/object/instruction.test.ts checks each of them decodes and prints as the kernel prints it.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct sample {
	signed char tiny;
	short small;
	int medium;
	long big;
};

long shared_counter;

SEC("socket")
long exercise(struct sample *s)
{
	long widened = s->tiny + s->small + s->medium;
	int narrow = (int)s->big;
	long moved = (long)(short)narrow;
	long swapped = __builtin_bswap32((unsigned int)s->medium) + __builtin_bswap64(s->big);
	long quotient = s->big / widened;
	long remainder = s->big % widened;

	__sync_fetch_and_add(&shared_counter, 1);
	long before = __sync_fetch_and_or(&shared_counter, 2);
	long old = __sync_lock_test_and_set(&shared_counter, 7);
	long seen = __sync_val_compare_and_swap(&shared_counter, old, 9);

	asm volatile goto("may_goto %l[out]" :::: out);
	return widened + moved + swapped + quotient + remainder + before + seen;
out:
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
