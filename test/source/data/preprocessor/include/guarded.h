#ifndef GUARDED_H
#define GUARDED_H
/* Included twice by main.c: the guard must make the second inclusion empty. */
struct guarded { int once; };
#define GUARDED_VALUE 7
#endif
