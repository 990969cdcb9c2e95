// The seed's tail call done right: the bpf_printk of current libbpf keeps its format in .rodata, so
// it costs no stack, and the frames above the tail call stay well under 256 bytes on every kernel.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u32);
} next_stage SEC(".maps");

static __attribute__((noinline)) int hand_off(struct __sk_buff *skb)
{
	bpf_tail_call(skb, &next_stage, 0);
	return TC_ACT_OK;
}

SEC("tc")
int classify(struct __sk_buff *skb)
{
	__u32 counters[16] = {};

	if (bpf_skb_load_bytes(skb, 0, counters, sizeof(counters)) < 0)
		return TC_ACT_OK;
	bpf_printk("classify: len=%u first=%u", skb->len, counters[0]);
	return hand_off(skb);
}

char LICENSE[] SEC("license") = "GPL";
