/*
 * Record layouts for the BPF target. Every "expect:" line is checked twice by
 * test/source/layout.test.ts: clang-19 -target bpf compiles it as a _Static_assert (so the number
 * is clang's, not ours), and the layout engine must produce the same size and alignment.
 */
typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef int __s32;

struct scalars { char c; short s; int i; long l; long long ll; _Bool b; float f; double d; void *p; };
// expect: struct scalars size=48 align=8

struct int128 { char c; __int128 x; };
// expect: struct int128 size=32 align=16

struct long_double { char c; long double x; };
// expect: struct long_double size=16 align=8

struct packed_pair { char c; __u64 x; } __attribute__((packed));
// expect: struct packed_pair size=9 align=1

struct __attribute__((packed)) packed_leading { char c; int x; short s; };
// expect: struct packed_leading size=7 align=1

struct aligned_record { char c; } __attribute__((aligned(8)));
// expect: struct aligned_record size=8 align=8

struct aligned_member { char c; int x __attribute__((aligned(8))); char tail; };
// expect: struct aligned_member size=16 align=8

struct aligned_default { char c; int x __attribute__((aligned)); };
// expect: struct aligned_default size=32 align=16

struct packed_with_aligned_member { char c; int x __attribute__((aligned(4))); } __attribute__((packed));
// expect: struct packed_with_aligned_member size=8 align=4

struct alignas_member { char c; _Alignas(16) char x; };
// expect: struct alignas_member size=32 align=16

struct alignas_type { char c; _Alignas(long) char x; };
// expect: struct alignas_type size=16 align=8

typedef int int_aligned2 __attribute__((aligned(2)));
struct lowered_typedef_alignment { char c; int_aligned2 x; };
// expect: struct lowered_typedef_alignment size=6 align=2

typedef __u64 __attribute__((aligned(8))) __aligned_u64;
struct aligned_typedef_user { __u32 a; __aligned_u64 b; };
// expect: struct aligned_typedef_user size=16 align=8

struct named_bitfields { char c; int x : 31; int y : 2; };
// expect: struct named_bitfields size=12 align=4

struct straddle { __u8 a : 7; __u8 b : 2; __u16 c : 9; };
// expect: struct straddle size=4 align=2

struct unnamed_bitfield { char c; int : 4; };
// expect: struct unnamed_bitfield size=2 align=1

struct unnamed_long_64 { char c; long : 64; char e; };
// expect: struct unnamed_long_64 size=17 align=1

struct zero_width_int { char c; int : 0; char d; };
// expect: struct zero_width_int size=5 align=1

struct zero_width_long { char c; long : 0; };
// expect: struct zero_width_long size=8 align=1

struct packed_bitfields { __u8 a : 3; __u32 b : 30; } __attribute__((packed));
// expect: struct packed_bitfields size=5 align=1

struct bool_bitfield { char c; _Bool b : 1; };
// expect: struct bool_bitfield size=2 align=1

struct vmlinux_style_padding {
	__u32 flags;
	long: 64;
	long: 64;
	__u64 tail;
};
// expect: struct vmlinux_style_padding size=32 align=8

union number { int i; __u64 u; char bytes[3]; };
// expect: union number size=8 align=8

union bitfield_union { int a : 3; char c; };
// expect: union bitfield_union size=4 align=4

union packed_union { char c; __u64 x; } __attribute__((packed));
// expect: union packed_union size=8 align=1

struct anonymous_members {
	int kind;
	union {
		struct { __u32 lo; __u32 hi; };
		__u64 whole;
	};
	struct { char tag; } named;
	char last;
};
// expect: struct anonymous_members size=24 align=8

struct point { int x; int y; };
struct polygon { char n; struct point corners[3]; struct point *more; };
// expect: struct polygon size=40 align=8

struct flexible { __u16 len; __u64 data[]; };
// expect: struct flexible size=8 align=8

struct zero_length_array { __u32 len; char data[0]; };
// expect: struct zero_length_array size=4 align=4

enum small { SMALL_A, SMALL_B };
enum big { BIG = 0x100000000ULL };
enum negative_and_large { NEG = -1, LARGE = 0xffffffff };
enum unsigned_32 { U32_MAX_VALUE = 0xffffffffU };
enum __attribute__((packed)) packed_enum { PACKED_A = 1, PACKED_B = 200 };
struct enums { char c; enum small s; enum big b; enum negative_and_large n; enum unsigned_32 u; enum packed_enum p; };
// expect: struct enums size=32 align=8

#define NAME_LEN 16
enum { SLOTS = NAME_LEN / 4 + 1 };
struct constant_bounds {
	char name[NAME_LEN * 2];
	int slots[SLOTS];
	char by_size[sizeof(struct point) + sizeof(__u64)];
	char by_offset[__builtin_offsetof(struct polygon, more)];
	char by_cast[(unsigned char)258];
	char by_conditional[sizeof(long) == 8 ? 3 : 5];
	char by_shift[1 << 3];
};
// expect: struct constant_bounds size=116 align=4

#define my_offsetof(TYPE, MEMBER) ((unsigned long)&((TYPE *)0)->MEMBER)
struct offsetof_idiom { char pad[my_offsetof(struct anonymous_members, whole)]; };
// expect: struct offsetof_idiom size=8 align=1

struct function_pointers {
	void (*callback)(int);
	int (*table[4])(void *);
	char (*array_pointer)[10];
};
// expect: struct function_pointers size=48 align=8

typedef struct { __u8 kind; __u32 value; } __attribute__((packed)) packed_anonymous_t;
struct uses_typedefs { packed_anonymous_t a; __u8 b; packed_anonymous_t c[2]; };
// expect: struct uses_typedefs size=16 align=1

struct outer_defines_inner { struct inner_defined { __u16 a; __u8 b; } in; __u8 c; };
// expect: struct outer_defines_inner size=6 align=2
// expect: struct inner_defined size=4 align=2

struct __attribute__((preserve_access_index)) with_preserve { __u32 a; __u64 b; };
// expect: struct with_preserve size=16 align=8

struct mode_attribute { int small __attribute__((mode(QI))); int wide __attribute__((mode(DI))); };
// expect: struct mode_attribute size=16 align=8

struct va { char c; __builtin_va_list v; };
// expect: struct va size=16 align=8
