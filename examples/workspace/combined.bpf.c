// The 512-byte rule: the frames along a call chain, each rounded up, must add up to at most 512
// bytes. An XDP program keeps a 232-byte scratch record and calls a parser with a 264-byte buffer.
//
// Kernel 6.18 (16-byte rounding with the JIT): 240 + 272 = 512, accepted.
// Kernel 6.1 (32-byte rounding): 256 + 288 = 544, "combined stack size of 2 calls is 544. Too large".
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct record {
	__u64 stamps[25];
	__u32 words[8];
}; // 232 bytes

static __attribute__((noinline)) int parse_options(struct xdp_md *ctx)
{
	__u8 options[264];

	if (bpf_probe_read_kernel(options, sizeof(options), 0) < 0)
		return XDP_PASS;
	return options[ctx->rx_queue_index & 7] ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int xdp_record(struct xdp_md *ctx)
{
	struct record rec;

	if (bpf_probe_read_kernel(&rec, sizeof(rec), 0) < 0)
		return XDP_PASS;
	return parse_options(ctx) + (rec.words[ctx->ingress_ifindex & 7] & 1);
}

char LICENSE[] SEC("license") = "GPL";
