#!/bin/sh
# Rebuilds the committed test objects and the bpftool dumps the BTF tests compare against. The decode
# tests read these files, so they run without clang; rebuild only when a .c file changes, with the same
# clang (clang-19), then refresh the disassembly goldens: UPDATE_GOLDEN=1 node --test out/test/object/
set -eu
cd "$(dirname "$0")"
CFLAGS="-O2 -g -I/usr/include/x86_64-linux-gnu"
for name in calls types; do
	clang-19 $CFLAGS -target bpf -c $name.bpf.c -o $name.bpf.o
	clang-19 $CFLAGS -target bpfeb -c $name.bpf.c -o $name.bpfeb.o
	bpftool btf dump file $name.bpf.o > $name.bpf.btf.txt
done
clang-19 $CFLAGS -target bpf -mcpu=v4 -c cpuv4.bpf.c -o cpuv4.bpf.o
clang-19 $CFLAGS -target bpfeb -mcpu=v4 -c cpuv4.bpf.c -o cpuv4.bpfeb.o
bpftool btf dump file cpuv4.bpf.o > cpuv4.bpf.btf.txt
# Built without -g: no .BTF, no .BTF.ext.
clang-19 -O2 -I/usr/include/x86_64-linux-gnu -target bpf -c calls.bpf.c -o nobtf.bpf.o
llvm-strip-19 -o stripped.bpf.o calls.bpf.o
# Not BPF: the readers must say so rather than decode x86 code.
printf 'int answer(void) { return 42; }\n' > notbpf.c
clang-19 -O2 -c notbpf.c -o x86_64.o
clang-19 -O2 -target i386-linux-gnu -c notbpf.c -o i386.o
rm notbpf.c
# Only .text functions (a library, or SEC() forgotten): nothing libbpf would load as a program.
printf 'int helper(int x)\n{\n\tvolatile char b[64];\n\n\tb[x & 63] = 1;\n\treturn b[0];\n}\n' > library.bpf.c
clang-19 $CFLAGS -target bpf -c library.bpf.c -o library.bpf.o
rm library.bpf.c
