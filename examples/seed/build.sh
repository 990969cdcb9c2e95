#!/usr/bin/env bash
# Builds the example objects the way a BPF project does: clang-19 for the BPF target, with BTF (-g).
set -euo pipefail
cd "$(dirname "$0")"
CLANG=${CLANG:-clang-19}
for source in *.bpf.c; do
  "$CLANG" -O2 -g -target bpf -I/usr/include/x86_64-linux-gnu -c "$source" -o "${source%.c}.o"
done
