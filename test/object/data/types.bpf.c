// One of every BTF kind clang emits, for test/object/btf.test.ts: bit-fields, a signed and an
// unsigned enum, an enum64, a float, a union, a forward declaration, qualifiers, a function
// pointer, an array of pointers, decl and type tags, static and global functions and variables,
// and two CO-RE relocations for test/object/btfExt.test.ts.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define __user __attribute__((btf_type_tag("user")))
#define __tagged __attribute__((btf_decl_tag("hot")))

enum direction { INGRESS = 1, EGRESS = -2 };
enum big_flags : unsigned long long { FLAG_LOW = 1, FLAG_HIGH = 0x100000000ULL };

struct opaque;

struct packet_meta {
	unsigned int version : 4;
	unsigned int header_words : 4;
	unsigned short length;
	enum direction direction;
	enum big_flags flags;
	union {
		float ratio;
		int raw;
	} u;
	const volatile char *restrict name;
	char *labels[3];
	int (*handler)(struct opaque *, int);
	int __user *user_data;
} __tagged;

struct packet_meta global_meta;
static volatile int weight = 3;

static __noinline int weigh(struct packet_meta *meta __tagged)
{
	return meta->version * weight + meta->u.raw;
}

SEC("xdp")
int tag_all(struct xdp_md *ctx)
{
	global_meta.length = ctx->data_end - ctx->data;
	if (bpf_core_field_exists(ctx->egress_ifindex))
		global_meta.u.raw = BPF_CORE_READ(ctx, rx_queue_index);
	return weigh(&global_meta) > 3 ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
