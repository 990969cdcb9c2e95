/* Preprocessor fixture: each "expect:" line is proven by clang and by the engine. */
#include "guarded.h"
#include <guarded.h>
#include "once.h"
#include "once.h"
#include "sub/nested.h"
#include "feature.h"

#define STR(x) #x
#define XSTR(x) STR(x)
#define CAT(a, b) a ## b
#define COUNT(...) COUNT_N(_, ##__VA_ARGS__, 3, 2, 1, 0)
#define COUNT_N(_, _1, _2, _3, N, ...) N
#define NAMED_VARIADIC(fmt, args...) COUNT(args)
#define TWICE(x) ((x) * 2)
#define EMPTY

#if defined(__bpf__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && !defined(__x86_64__)
#define TARGET_OK 1
#else
#define TARGET_OK 0
#endif

#if GUARDED_VALUE > 5 && defined GUARDED_H
struct conditionals { char yes[TARGET_OK + 1]; };
#elif 1
struct conditionals { char no[100]; };
#else
#error not reached
#endif

#ifdef NOT_DEFINED
struct conditionals { char never[3]; };
#endif

#if (1 ? -1 : 0u) > 0 && (-1 < 0)
struct unsigned_rules { char ok[2]; };
#else
struct unsigned_rules { char ok[3]; };
#endif

#if __has_include(<sub/sibling.h>) && !__has_include("missing.h")
struct has_include { char ok[4]; };
#endif

enum { ENUM_BASE = 10, ENUM_NEXT, ENUM_SHIFTED = ENUM_NEXT << 2 };

struct macro_bounds {
	char counted[COUNT(a, b, c)];
	char counted_empty[COUNT() + 1];
	char counted_named[NAMED_VARIADIC("x", 1, 2)];
	char stringified[sizeof(XSTR(TWICE(3)))];
	char pasted[CAT(1, 6)];
	char twice[TWICE(ENUM_SHIFTED)];
	char by_char['A' - '@'];
	char multi_line[TWICE(
		2
	) EMPTY];
	nested_t nested;
	struct feature feature;
};

// expect: struct guarded size=4 align=4
// expect: struct only_once size=1 align=1
// expect: struct sibling size=16 align=8
// expect: struct conditionals size=2 align=1
// expect: struct unsigned_rules size=2 align=1
// expect: struct has_include size=4 align=1
// expect: struct feature size=8 align=1
// expect: struct macro_bounds size=152 align=8
