#!/usr/bin/env bash
# Fetches and builds the real-world BPF corpus: programs we did not write, taken at test time from
# Debian's packages (never committed), built with clang-19 into a git-ignored cache.
#
#   bash scripts/corpus.sh            # fetch, extract and build what is missing; print the manifest's path
#   bash scripts/corpus.sh --packages # print the packages (NAME VERSION) the corpus comes from
#
# Sources (pinned, so that a corpus is the same wherever it is built; Debian replaces point
# releases now and then, and a pin that disappears fails here, loudly, with the package's name):
#   linux-source-6.12 and linux-source-6.1: tools/testing/selftests/bpf/progs/*.c, samples/bpf/*.bpf.c
#     and tools/bpf/**/*.bpf.c, with what they include (the tree's own libbpf headers, its
#     tools/include/uapi, the selftests' headers). samples/bpf/*_kern.c are left out: they include
#     the kernel's internal headers, which only a configured kernel tree has.
#   xdp-tools (source package): the BPF programs its Makefiles list (XDP_TARGETS, BPF_TARGETS),
#     with its headers/ and libbpf-dev's headers. (bcc's libbpf-tools, in the source package bpfcc,
#     would belong here, but the archive serves none of bpfcc's source tarballs.)
# Each .deb or source package comes through scripts/debian-fetch.sh (private apt state in
# .cache/debian; the system's sources are never touched), and only the folders above are extracted.
#
# Every C file is built the way the projects build their BPF objects, reduced to what every
# file shares: clang-19 -O2 -g -target bpf -D__TARGET_ARCH_x86, vmlinux.h generated from the
# running kernel's BTF (/sys/kernel/btf/vmlinux, through bpftool). The objects are cached under
# .cache/corpus/build/KEY/, KEY naming the compiler's version, the vmlinux BTF and this script, and
# the package versions are folders inside it: a second run builds nothing. A file that does not
# build is listed in the manifest with clang's first error, and is not fatal.
#
# The manifest (.cache/corpus/build/KEY/objects.tsv) has one line per C file, tab-separated:
#   status (built|failed)  package  version  source  object  include-dirs (colon-separated)  defines (space-separated)  error
# Paths are absolute. The exit code is 0 when the corpus was built (however many files failed), 1
# when it could not be (a missing tool, a package that cannot be fetched).
set -euo pipefail
script=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
cd "$(dirname "$script")/.."
root=$PWD

CORPUS=${BPF_STACK_LENS_CORPUS_DIR:-$root/.cache/corpus}
CLANG=${CLANG:-clang-19}
BTF=${VMLINUX_BTF:-/sys/kernel/btf/vmlinux}
JOBS=${JOBS:-$(nproc)}

# NAME=VERSION kind: "deb" is a binary package holding the kernel tree as a tarball, "src" a source package.
PACKAGES=(
  "linux-source-6.12=6.12.107-1 deb"
  "linux-source-6.1=6.1.176-1 deb"
  "xdp-tools=1.6.3-1 src"
)

say() { echo "corpus: $*" >&2; }
die() { say "$*"; exit 1; }

if [ "${1:-}" = --packages ]; then
  for entry in "${PACKAGES[@]}"; do spec=${entry%% *}; echo "${spec%%=*} ${spec#*=}"; done
  exit 0
fi

for tool in "$CLANG" bpftool dpkg-deb tar xz python3; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (scripts/setup.sh installs what the corpus needs)"
done
[ -r "$BTF" ] || die "$BTF is not readable: vmlinux.h is generated from the running kernel's BTF"

mkdir -p "$CORPUS/src" "$CORPUS/build"
exec 8>"$CORPUS/.lock"
flock 8

btf_hash=$(sha256sum "$BTF" | cut -c1-16)
vmlinux_dir=$CORPUS/vmlinux/$btf_hash
if [ ! -f "$vmlinux_dir/vmlinux.h" ]; then
  mkdir -p "$vmlinux_dir"
  bpftool btf dump file "$BTF" format c >"$vmlinux_dir/vmlinux.h.tmp"
  mv "$vmlinux_dir/vmlinux.h.tmp" "$vmlinux_dir/vmlinux.h"
fi
key=$({ "$CLANG" --version | head -n 1; echo "$btf_hash"; cat "$script"; } | sha256sum | cut -c1-16)
build=$CORPUS/build/$key
mkdir -p "$build"

# The tree's libbpf headers, laid out as <bpf/...> the way libbpf's `make install_headers` does;
# bpf_helper_defs.h is generated from the tree's uapi bpf.h, as libbpf's own build does.
libbpf_include() {
  local tree=$1
  mkdir -p "$tree/.libbpf-include/bpf"
  cp "$tree"/tools/lib/bpf/*.h "$tree/.libbpf-include/bpf/"
  python3 "$tree/scripts/bpf_doc.py" --header --file "$tree/include/uapi/linux/bpf.h" >"$tree/.libbpf-include/bpf/bpf_helper_defs.h"
}

# Extracts a linux-source .deb's BPF folders into $CORPUS/src/NAME_VERSION (once).
extract_kernel_tree() {
  local name=$1 version=$2 deb=$3 folder=$CORPUS/src/${name}_$version
  [ -f "$folder/.extracted" ] && { echo "$folder"; return; }
  say "extracting the BPF folders of $name $version"
  rm -rf "$folder" && mkdir -p "$folder"
  local top=${name}
  dpkg-deb --fsys-tarfile "$deb" | tar -xO "./usr/src/$top.tar.xz" | tar -xJ -C "$folder" --strip-components=1 --wildcards \
    "$top/tools/testing/selftests/bpf/*" "$top/samples/bpf/*" "$top/tools/bpf/*" "$top/tools/lib/bpf/*" \
    "$top/tools/include/*" "$top/scripts/bpf_doc.py" "$top/include/uapi/linux/bpf.h"
  libbpf_include "$folder"
  touch "$folder/.extracted"
  echo "$folder"
}

# Writes the build jobs of one package: "package version source object includes defines" per line.
jobs_of() {
  local name=$1 version=$2 folder=$3 out=$build/${name}_$version
  local sys=/usr/include/x86_64-linux-gnu
  case "$name" in
    linux-source-*)
      local selftests=$folder/tools/testing/selftests/bpf
      local common="$vmlinux_dir:$folder/.libbpf-include:$folder/tools/include/uapi"
      for source in "$selftests"/progs/*.c; do
        echo "$name|$version|$source|$out/${source#"$folder/"}|$selftests/progs:$common:$selftests|-DENABLE_ATOMICS_TESTS"
      done
      for source in "$folder"/samples/bpf/*.bpf.c; do
        if [ -e "$source" ]; then echo "$name|$version|$source|$out/${source#"$folder/"}|$folder/samples/bpf:$common|"; fi
      done
      find "$folder/tools/bpf" -name '*.bpf.c' | sort | while read -r source; do
        echo "$name|$version|$source|$out/${source#"$folder/"}|$(dirname "$source"):$common|"
      done
      ;;
    xdp-tools)
      # The targets are the Makefiles' lists, continuation lines joined: NAME means NAME.c.
      grep -rl --include=Makefile -E '^(XDP|BPF)_TARGETS' "$folder" | sort | while read -r makefile; do
        local dir
        dir=$(dirname "$makefile")
        sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$makefile" | awk -F':?=' '/^(XDP|BPF)_TARGETS/ {print $2}' | tr ' \t' '\n\n' | grep . |
          while read -r target; do
            if [ -f "$dir/$target.c" ]; then
              echo "$name|$version|$dir/$target.c|$out/${dir#"$folder/"}/$target.o|$dir:$vmlinux_dir:$folder/headers:$folder/lib/util:/usr/include:$sys|"
            fi
          done
      done
      ;;
  esac
}

# Builds one job line; prints "built OBJECT" or "failed OBJECT". The result (the object, or a
# .failed file with clang's messages) is what a later run reuses.
build_one() {
  IFS='|' read -r _name _version source object includes defines <<<"$1"
  [ -f "$object" ] && { echo "built $object"; return; }
  [ -f "$object.failed" ] && { echo "failed $object"; return; }
  mkdir -p "$(dirname "$object")"
  local flags=() dir
  IFS=: read -ra dirs <<<"$includes"
  for dir in "${dirs[@]}"; do flags+=("-I$dir"); done
  # Built as the selftests' Makefile builds these two: their point is the calls clang would inline.
  case "$source" in */test_l4lb_noinline.c|*/test_xdp_noinline.c) flags+=(-fno-inline) ;; esac
  # shellcheck disable=SC2086 # the defines are words
  if "$CLANG" -O2 -g -target bpf -D__TARGET_ARCH_x86 $defines "${flags[@]}" -idirafter /usr/include/x86_64-linux-gnu \
      -Wno-everything -c "$source" -o "$object.tmp" 2>"$object.log"; then
    mv "$object.tmp" "$object"
    rm -f "$object.log"
    echo "built $object"
  else
    rm -f "$object.tmp"
    mv "$object.log" "$object.failed"
    echo "failed $object"
  fi
}
export -f build_one
export CLANG

joblist=$build/.jobs
: >"$joblist"
for entry in "${PACKAGES[@]}"; do
  spec=${entry%% *} kind=${entry#* }
  name=${spec%%=*} version=${spec#*=}
  if [ "$kind" = deb ]; then
    deb=$(bash scripts/debian-fetch.sh "$spec") || die "cannot fetch $spec"
    folder=$(extract_kernel_tree "$name" "$version" "$deb")
  else
    folder=$(bash scripts/debian-fetch.sh --source "$spec") || die "cannot fetch the source of $spec"
  fi
  # The object is named after its source: NAME.c gives NAME.o.
  jobs_of "$name" "$version" "$folder" | sed -E 's/^(([^|]*\|){3}[^|]*)\.c\|/\1.o|/' >>"$joblist"
done

total=$(wc -l <"$joblist")
done_count=0 failed=0
started=$(date +%s)
tty=0; [ -t 2 ] && tty=1
while read -r status object; do
  done_count=$((done_count + 1))
  [ "$status" = failed ] && failed=$((failed + 1))
  if [ $tty = 1 ]; then
    printf '\rcorpus: %d/%d C files (%d failed), %ds ' "$done_count" "$total" "$failed" $(($(date +%s) - started)) >&2
  elif [ $((done_count % 100)) = 0 ] || [ "$done_count" = "$total" ]; then
    say "$done_count/$total C files ($failed failed), $(($(date +%s) - started))s"
  fi
done < <(tr '\n' '\0' <"$joblist" | xargs -0 -P "$JOBS" -I{} bash -c 'build_one "$1"' _ {})
[ $tty = 1 ] && echo >&2

manifest=$build/objects.tsv
while IFS='|' read -r name version source object includes defines; do
  if [ -f "$object" ]; then
    printf 'built\t%s\t%s\t%s\t%s\t%s\t%s\t\n' "$name" "$version" "$source" "$object" "$includes" "$defines"
  else
    error=$(grep -m1 'error:' "$object.failed" 2>/dev/null || head -n 1 "$object.failed" 2>/dev/null || echo 'no object')
    printf 'failed\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$version" "$source" "$object" "$includes" "$defines" "${error//$'\t'/ }"
  fi
done <"$joblist" >"$manifest.tmp"
mv "$manifest.tmp" "$manifest"
say "$((total - failed)) of $total C files built, $failed failed (listed in $manifest)"
echo "$manifest"
