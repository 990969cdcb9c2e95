// The case from the blog post that started this project: bpf2bpf calls combined with a tail call.
// A tc program parses the packet into a struct tunnel (44 bytes) and a struct sflow (48 bytes) and
// logs the overlay addresses with a bpf_printk whose format string is built on the stack (as libbpf
// did before 0.6, and still does with BPF_NO_GLOBAL_DATA). Two frames down, it tail-calls.
//
// Kernel 6.1 (32-byte rounding): "tail_calls are not allowed when call stack of previous frames is
// 256 bytes. Too large". Open this file with bpf-stack-lens to see why, and apply a quick fix.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

// The on-stack printk of older libbpf: the format is a local array, copied to the stack each call.
#define stack_printk(fmt, ...)                                          \
	({                                                              \
		char ____fmt[] = fmt;                                   \
		bpf_trace_printk(____fmt, sizeof(____fmt), ##__VA_ARGS__); \
	})

struct tunnel {
	__u32 saddr;
	__u32 daddr;
	__u32 vni;
	__u32 flags;
	__u8 inner_mac[6];
	__u8 outer_mac[6];
	__u32 ifindex;
	__u32 mark;
	__u32 label;
	__u32 pad;
}; // 44 bytes

struct sflow {
	__u64 bytes;
	__u64 packets;
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 tos;
	__u16 vlan;
	__u64 timestamp;
	__u64 cookie;
}; // 48 bytes

struct acl_key {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 pad[3];
	__u64 cookie[4];
}; // 48 bytes

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct acl_key);
	__type(value, __u32);
} acl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u32);
} jmp_table SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sflow);
} flows SEC(".maps");

/* The tail call sits two frames down: entry -> process -> do_tail. */
static __attribute__((noinline)) int do_tail(struct __sk_buff *skb)
{
	bpf_tail_call(skb, &jmp_table, 0);
	return 0;
}

static __attribute__((noinline)) int process(struct __sk_buff *skb, struct tunnel *tun)
{
	struct iphdr iph;

	if (bpf_skb_load_bytes(skb, ETH_HLEN, &iph, sizeof(iph)) < 0)
		return 0;
	tun->saddr = iph.saddr;
	tun->daddr = iph.daddr;
	return do_tail(skb);
}

SEC("tc")
int entry(struct __sk_buff *skb)
{
	struct tunnel tun;
	struct sflow flow = {};
	struct acl_key acl_key = {};
	__u32 key = 0;

	if (bpf_skb_load_bytes(skb, ETH_HLEN + sizeof(struct iphdr), &tun, sizeof(tun)) < 0)
		return 0;
	flow.bytes = skb->len;
	flow.packets = 1;
	flow.saddr = tun.saddr;
	flow.daddr = tun.daddr;
	flow.proto = skb->protocol;
	flow.timestamp = bpf_ktime_get_ns();
	bpf_map_update_elem(&flows, &key, &flow, BPF_ANY);
	acl_key.saddr = tun.saddr;
	acl_key.daddr = tun.daddr;
	acl_key.proto = flow.proto;
	if (bpf_map_lookup_elem(&acl, &acl_key))
		return TC_ACT_SHOT;
	stack_printk("acl-test, overlay saddr=0x%08x daddr=0x%08x\n", tun.saddr, tun.daddr);
	return process(skb, &tun);
}

char LICENSE[] SEC("license") = "GPL";
