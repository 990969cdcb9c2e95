#!/usr/bin/env bash
# Builds every BPF C fixture under test/fixtures/programs into the object (.bpf.o) and the
# per-function frame sizes (.bpf.su) that are committed next to it, so that analyzer tests run on
# machines without clang. The flags are the ones the notes and real projects use; changing them
# changes the committed objects, and test/fixtures.kernel.test.ts notices when they drift.
#
#   scripts/build-fixtures.sh [OUTDIR]
#
# With OUTDIR the objects go there instead (the up-to-date test rebuilds into a temporary folder).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src_dir="$here/test/fixtures/programs"
out_dir="${1:-$src_dir}"
clang="${CLANG:-clang-19}"

if ! command -v "$clang" >/dev/null 2>&1; then
  echo "build-fixtures: $clang not found" >&2
  exit 1
fi
mkdir -p "$out_dir"

# Building from inside the source folder with relative names, and mapping the folder to "." in the
# debug info, keeps absolute paths out of the objects and the .su files: the committed files do not
# depend on where the checkout lives.
cd "$src_dir"
status=0
for source in *.bpf.c; do
  base="${source%.c}"
  # no_btf_* fixtures are about objects built without -g: no BTF, so the kernel gets no func_info.
  debug_info=-g
  case "$source" in no_btf_*) debug_info= ;; esac
  # -fstack-usage names its output after the object, so the object is written to its final place
  # and clang puts X.bpf.su beside it.
  if ! "$clang" -O2 $debug_info -target bpf -I/usr/include/x86_64-linux-gnu \
      -fdebug-prefix-map="$src_dir"=. -fstack-usage -c "$source" -o "$out_dir/$base.o"; then
    echo "build-fixtures: $source failed" >&2
    status=1
  fi
done
exit $status
