#!/usr/bin/env bash
# Builds every *.bpf.c here into a *.bpf.o beside it, the way a BPF project does: clang-19 for the
# BPF target with BTF (-g), which is what bpf-stack-lens reads. The extension watches the .o files,
# so run this again after an edit (or bind it to a VS Code task) and the diagnostics follow.
set -euo pipefail
cd "$(dirname "$0")"
CLANG=${CLANG:-clang-19}
for source in *.bpf.c; do
  "$CLANG" -O2 -g -target bpf -I/usr/include/x86_64-linux-gnu -c "$source" -o "${source%.c}.o"
done
