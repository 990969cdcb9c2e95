#!/usr/bin/env bash
# Builds the BPF programs of the Linux selftests (tools/testing/selftests/bpf/progs) of a Debian
# linux-source package into the git-ignored .cache/corpus, for `npm run bench` and for measuring the
# source estimate on code the project never saw. Nothing of it is committed.
#
#   bash scripts/selftests-corpus.sh [VERSION]   # VERSION: 6.12 (default) or 6.1
#
# Result: .cache/corpus/linux-VERSION-selftests/ with
#   src/      the selftests' progs/ (and the headers they include, below src/include)
#   obj/      NAME.bpf.o for every program that compiles (objects not stripped)
#   compile_commands.json   one entry per compiled program, with the flags it was built with
#   failed.txt              the programs that did not compile here, one a line
# The flags are the selftests Makefile's (BPF_CFLAGS, -O2 --target=bpf -mcpu=v3), with the running
# kernel's vmlinux.h in place of the one the kernel build would generate. Set CLANG to override
# clang-19. Re-running only compiles what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
version=${1:-6.12}
clang=${CLANG:-clang-19}
out=$root/.cache/corpus/linux-$version-selftests
say() { echo "selftests-corpus: $*" >&2; }

command -v "$clang" >/dev/null || { say "$clang not found"; exit 1; }
command -v bpftool >/dev/null || { say "bpftool not found (needed for vmlinux.h)"; exit 1; }

if [ ! -f "$out/.unpacked" ]; then
  deb=$(bash scripts/debian-fetch.sh "linux-source-$version")
  rm -rf "$out/tree" && mkdir -p "$out/tree"
  say "unpacking the selftests and headers of $deb"
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$out/tree" --wildcards '*.tar.xz'
  tarball=$(ls "$out"/tree/usr/src/linux-source-*.tar.xz)
  top=$(basename "$tarball" .tar.xz)
  tar -xJf "$tarball" -C "$out/tree" "$top/tools/testing/selftests/bpf" "$top/tools/lib/bpf" \
    "$top/tools/include" "$top/include/uapi" "$top/scripts/bpf_doc.py"
  rm -rf "$out/tree/usr"
  rm -rf "$out/src" && mkdir -p "$out/src/include/bpf"
  cp -r "$out/tree/$top/tools/testing/selftests/bpf/." "$out/src/"
  cp "$out/tree/$top"/tools/lib/bpf/*.h "$out/src/include/bpf/"
  python3 "$out/tree/$top/scripts/bpf_doc.py" --header --file "$out/tree/$top/include/uapi/linux/bpf.h" >"$out/src/include/bpf/bpf_helper_defs.h"
  mkdir -p "$out/src/include/uapi" && cp -r "$out/tree/$top/tools/include/uapi/." "$out/src/include/uapi/"
  rm -rf "$out/tree"
  touch "$out/.unpacked"
fi

mkdir -p "$out/obj" "$out/vmlinux"
[ -s "$out/vmlinux/vmlinux.h" ] || bpftool btf dump file /sys/kernel/btf/vmlinux format c >"$out/vmlinux/vmlinux.h"

src=$out/src
# The selftests Makefile's BPF_CFLAGS and CLANG_BPF_BUILD_RULE; the system include dirs last, as
# get_sys_includes adds them.
flags=(-g -Wall -Werror -D__TARGET_ARCH_x86 -mlittle-endian -I"$src/include" -I"$src" -I"$src/include/uapi"
  -I"$out/vmlinux" -Wno-compare-distinct-pointer-types -idirafter /usr/include/x86_64-linux-gnu -idirafter /usr/include
  -DENABLE_ATOMICS_TESTS -O2 --target=bpf -mcpu=v3)
extra_flags() { case "$1" in test_l4lb_noinline | test_xdp_noinline) echo -fno-inline ;; esac; }
compile_one() {
  local name object
  name=$(basename "$1" .c)
  object=$out/obj/$name.bpf.o
  [ -f "$object" ] && return 0
  # shellcheck disable=SC2046
  "$clang" "${flags[@]}" $(extra_flags "$name") -c "$1" -o "$object.tmp" 2>/dev/null && mv "$object.tmp" "$object"
  rm -f "$object.tmp"
}
export -f compile_one extra_flags
export out clang
# Two compiles at a time: the machine is shared.
printf '%s\0' "$src"/progs/*.c | FLAGS="${flags[*]}" xargs -0 -n 1 -P "${JOBS:-2}" bash -c 'flags=($FLAGS); compile_one "$0"'
: >"$out/failed.txt"
entries=()
count=0
for source in "$src"/progs/*.c; do
  name=$(basename "$source" .c)
  object=$out/obj/$name.bpf.o
  if [ ! -f "$object" ]; then
    echo "$name" >>"$out/failed.txt"
    continue
  fi
  count=$((count + 1))
  # shellcheck disable=SC2046
  args=$(printf '"%s",' "$clang" "${flags[@]}" $(extra_flags "$name") -c "$source" -o "$object")
  entries+=("{\"directory\":\"$src/progs\",\"file\":\"$source\",\"arguments\":[${args%,}]}")
done
(IFS=,; echo "[${entries[*]}]") >"$out/compile_commands.json"
say "$count programs built in $out/obj, $(wc -l <"$out/failed.txt") did not compile here (failed.txt)"
