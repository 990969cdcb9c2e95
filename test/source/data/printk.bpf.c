/* A BPF program whose macros matter for stack use: bpf_printk with few and many arguments,
 * BPF_SNPRINTF, and a function made by a macro. Its tokens after preprocessing must equal clang's. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MSG_LEN 32

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __noinline int helper(int x)
{
	char message[MSG_LEN];
	long args[] = { x, x + 1 };

	BPF_SNPRINTF(message, sizeof(message), "%d %d", x, x + 1);
	bpf_snprintf(message, sizeof(message), "%d %d", (__u64 *)args, sizeof(args));
	return message[0];
}

SEC("tracepoint/syscalls/sys_enter_openat")
int trace_openat(void *ctx)
{
	bpf_printk("few %d",
		   1);
	bpf_printk("many %d %d %d %d", 1, 2, 3, 4);
	return helper(2);
}

char LICENSE[] SEC("license") = "GPL";
