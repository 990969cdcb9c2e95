// A small object with every kind of call the stack analysis has to follow: bpf2bpf calls to a
// static and a global function in .text, a static callee in the program's own section, a callback
// taken by address for bpf_loop, a kfunc, a tail call, and bpf_printk with its format on the stack.
// The decode tests in test/object/ read the committed calls.bpf.o (and calls.bpfeb.o, built from
// this same file with -target bpfeb); rebuild both with test/object/data/build.sh.
#define BPF_NO_GLOBAL_DATA
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} jump_table SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

extern void bpf_rcu_read_lock(void) __ksym;
extern void bpf_rcu_read_unlock(void) __ksym;

static __noinline int fill_scratch(int seed)
{
	volatile char scratch[48];

	for (int i = 0; i < 48; i++)
		scratch[i] = seed + i;
	return scratch[seed & 31];
}

__noinline int count_event(int delta)
{
	__u32 key = 0;
	__u64 *value = bpf_map_lookup_elem(&counters, &key);

	if (!value)
		return 0;
	__sync_fetch_and_add(value, delta);
	return fill_scratch(delta);
}

static int loop_step(__u32 index, void *ctx)
{
	volatile __u64 sum[4] = {};

	sum[index & 3] += index;
	return sum[0] > 100;
}

static __noinline __attribute__((section("tc"))) int same_section_callee(struct __sk_buff *skb)
{
	volatile __u32 marks[8];

	marks[skb->len & 7] = skb->mark;
	return marks[0];
}

SEC("tc")
int classify(struct __sk_buff *skb)
{
	int verdict = same_section_callee(skb);

	bpf_printk("mark %d", verdict);
	bpf_tail_call(skb, &jump_table, 1);
	return count_event(verdict);
}

SEC("tp/syscalls/sys_enter_write")
int on_write(void *ctx)
{
	bpf_rcu_read_lock();
	bpf_loop(16, loop_step, 0, 0);
	bpf_rcu_read_unlock();
	return fill_scratch(3) + count_event(1);
}

char LICENSE[] SEC("license") = "GPL";
