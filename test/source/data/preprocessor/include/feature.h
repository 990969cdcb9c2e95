/* What this header declares depends on macros defined before it is included. */
#ifdef WANT_BIG
#define FEATURE_LEN 64
#else
#define FEATURE_LEN 8
#endif
struct feature { char data[FEATURE_LEN]; };
