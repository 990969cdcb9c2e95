#!/usr/bin/env bash
# Fetches and builds the real-world BPF corpus: programs we did not write, taken at test time from
# Debian's packages (never committed), built with clang-19 into a git-ignored cache. The tests
# (test/support/realworld.ts) and the benches (bench/estimateAccuracy.ts, bench/corpusSource.ts)
# all use this one corpus.
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
#     with its headers/ and libbpf-dev's headers.
#   pcp (source package): bcc's libbpf-tools (vendor/github.com/iovisor/bcc/libbpf-tools/*.bpf.c),
#     which PCP vendors for its bpf PMDA, built as bcc's Makefile builds them (its x86/vmlinux.h, the
#     libbpf headers PCP vendors with bpftool), and the PMDA's own modules (src/pmdas/bpf/modules).
#     The source package bpfcc itself cannot be used: the archive serves none of its source tarballs.
#   libbpf-tools (binary package of bpfcc): the same tools as Debian built them; each executable
#     carries its BPF object (a libbpf skeleton), which is cut out of it. Objects without C source:
#     the object analyzer is held to the kernel on them, the source estimate is not.
#   systemd (source package): src/**/*.bpf.c, with systemd's meson flags (-D__x86_64__).
#   suricata (source package): ebpf/*.c, the programs its Makefile.am lists, with its include/.
#   bpftune (upstream tarball of the source package, whose .dsc the archive does not serve): every
#     tuner three times, as its Makefile builds them (plain, -DBPFTUNE_LEGACY, -DBPFTUNE_NOBTF), with
#     its own vmlinux_x86_64.h and libbpf-dev's headers.
#   golang-github-cilium-ebpf (upstream tarball, as bpftune): cilium/ebpf's examples and test
#     programs, every C file of it, with its examples/headers.
# Each .deb or source package comes through scripts/debian-fetch.sh (private apt state in
# .cache/debian; the system's sources are never touched), and only the folders above are used.
#
# Every C file is built the way the projects build their BPF objects, reduced to what every
# file shares: clang-19 -O2 -g -target bpf -D__TARGET_ARCH_x86 and the package's include folders and
# defines, vmlinux.h generated from the running kernel's BTF (/sys/kernel/btf/vmlinux, through
# bpftool) unless the project ships its own. Each package is cached on its own, under
# .cache/corpus/build/NAME_VERSION/KEY/, KEY naming what its objects depend on (the compiler's
# version, the package's build jobs, which name its include folders and so the vmlinux BTF, and the
# build step): adding or changing one package leaves the others' objects valid, and a second run
# builds nothing. (A package built by an earlier layout of this script, .cache/corpus/build/HASH/
# NAME_VERSION, is used where it is, when its manifest lists the same jobs and its objects the same
# compiler.) A file that does not build is listed in the manifest with clang's first error, and
# is not fatal.
#
# The manifest (.cache/corpus/build/corpus-HASH/objects.tsv, HASH naming the packages' keys) has one
# line per C file or extracted object, tab-separated:
#   status (built|failed|extracted)  package  version  source  object  include-dirs (colon-separated)
#   defines (space-separated)  error  package-key (.cache/corpus/build/NAME_VERSION/KEY)
# "extracted" objects come from a binary package's executable (the source column); they have no C
# source. compile_commands.json beside it has the command of every built object, for the benches and
# the language server. Paths are absolute, with symbolic links resolved. The exit code is 0 when the
# corpus was built (however many files failed), 1 when it could not be (a missing tool, a package
# that cannot be fetched).
set -euo pipefail
script=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
cd "$(dirname "$script")/.."
root=$PWD

CORPUS=${BPF_STACK_LENS_CORPUS_DIR:-$root/.cache/corpus}
CLANG=${CLANG:-clang-19}
BTF=${VMLINUX_BTF:-/sys/kernel/btf/vmlinux}
JOBS=${JOBS:-$(nproc)}

# NAME=VERSION kind: "deb" is a binary package holding the kernel tree as a tarball, "src" a source
# package, "orig" only a source package's upstream tarball, "skeletons" a binary package whose
# executables carry their BPF objects.
PACKAGES=(
  "linux-source-6.12=6.12.107-1 deb"
  "linux-source-6.1=6.1.176-1 deb"
  "xdp-tools=1.6.3-1 src"
  "pcp=6.3.8-1 src"
  "libbpf-tools=0.31.0+ds-7 skeletons"
  "systemd=257.13-1~deb13u1 src"
  "suricata=1:7.0.10-1+deb13u4 src"
  "bpftune=0.0~git20250314.8fd59cc-1 orig"
  "golang-github-cilium-ebpf=0.11.0-2 orig"
)

say() { echo "corpus: $*" >&2; }
die() { say "$*"; exit 1; }

if [ "${1:-}" = --packages ]; then
  for entry in "${PACKAGES[@]}"; do spec=${entry%% *}; echo "${spec%%=*} ${spec#*=}"; done
  exit 0
fi

for tool in "$CLANG" bpftool dpkg-deb tar xz python3 sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (scripts/setup.sh installs what the corpus needs)"
done
[ -r "$BTF" ] || die "$BTF is not readable: vmlinux.h is generated from the running kernel's BTF"

mkdir -p "$CORPUS/src" "$CORPUS/build"
# Resolved, so that every checkout sharing the cache through a link names its files the same way.
CORPUS=$(cd "$CORPUS" && pwd -P)
exec 8>"$CORPUS/.lock"
flock 8

btf_hash=$(sha256sum "$BTF" | cut -c1-16)
vmlinux_dir=$CORPUS/vmlinux/$btf_hash
if [ ! -f "$vmlinux_dir/vmlinux.h" ]; then
  mkdir -p "$vmlinux_dir"
  bpftool btf dump file "$BTF" format c >"$vmlinux_dir/vmlinux.h.tmp"
  mv "$vmlinux_dir/vmlinux.h.tmp" "$vmlinux_dir/vmlinux.h"
fi
clang_version=$("$CLANG" --version | head -n 1)

# libbpf's headers, laid out as <bpf/...> the way libbpf's `make install_headers` does, from a
# folder of libbpf's sources (the kernel tree's tools/lib/bpf, a vendored libbpf/src).
libbpf_include() {
  local folder=$1 headers=$2
  mkdir -p "$folder/.libbpf-include/bpf"
  cp "$headers"/*.h "$folder/.libbpf-include/bpf/"
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
  libbpf_include "$folder" "$folder/tools/lib/bpf"
  # bpf_helper_defs.h is generated from the tree's uapi bpf.h, as libbpf's own build does.
  python3 "$folder/scripts/bpf_doc.py" --header --file "$folder/include/uapi/linux/bpf.h" >"$folder/.libbpf-include/bpf/bpf_helper_defs.h"
  touch "$folder/.extracted"
  echo "$folder"
}

# Extracts a binary package's executables into $CORPUS/src/NAME_VERSION (once).
extract_executables() {
  local name=$1 version=$2 deb=$3 folder=$CORPUS/src/${name}_$version
  [ -f "$folder/.extracted" ] && { echo "$folder"; return; }
  say "extracting the executables of $name $version"
  rm -rf "$folder" && mkdir -p "$folder"
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$folder" --wildcards './usr/sbin/*' './usr/bin/*' 2>/dev/null || true
  touch "$folder/.extracted"
  echo "$folder"
}

# Writes the build jobs of one package, "package|version|source|object|includes|defines" per line,
# objects below the placeholder @OUT@ (the package's build folder, named by a hash of these lines).
jobs_of() {
  local name=$1 version=$2 folder=$3 out=@OUT@
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
    pcp)
      # bcc's Makefile: -I$(ARCH)/ (its own vmlinux.h) and the libbpf it builds; PCP's modules add
      # their own folder, where the build links bcc's headers in.
      local tools=$folder/vendor/github.com/iovisor/bcc/libbpf-tools modules=$folder/src/pmdas/bpf/modules
      for source in "$tools"/*.bpf.c; do
        echo "$name|$version|$source|$out/${source#"$folder/"}|$tools/x86:$tools:$folder/.libbpf-include|"
      done
      for source in "$modules"/*.bpf.c; do
        echo "$name|$version|$source|$out/${source#"$folder/"}|$modules:$tools/x86:$tools:$folder/.libbpf-include|"
      done
      ;;
    libbpf-tools)
      # The executables (links to them left out), each giving NAME.bpf.o.
      find "$folder/usr" -type f | sort | while read -r executable; do
        echo "$name|$version|$executable|$out/$(basename "$executable").bpf.o||"
      done
      ;;
    systemd)
      # meson.build's bpf_o_unstripped_cmd for x86_64: the architecture as -D__x86_64__, libbpf's
      # include folder after everything else.
      find "$folder/src" -name '*.bpf.c' | sort | while read -r source; do
        echo "$name|$version|$source|$out/${source#"$folder/"}|$(dirname "$source"):$vmlinux_dir:/usr/include|-D__x86_64__"
      done
      ;;
    suricata)
      # ebpf/Makefile.am's BPF_TARGETS and BPF_CFLAGS (its copy of the uapi bpf.h in include/).
      sed -n 's/^BPF_TARGETS *+\{0,1\}= *\([a-z_0-9]*\)\.bpf$/\1/p' "$folder/ebpf/Makefile.am" | while read -r target; do
        echo "$name|$version|$folder/ebpf/$target.c|$out/ebpf/$target.o|$folder/ebpf:$folder/ebpf/include|-D__KERNEL__ -D__ASM_SYSREG_H"
      done
      ;;
    bpftune)
      find "$folder" -name '*.bpf.c' | sort | while read -r source; do
        local variant includes="$(dirname "$source"):$folder/include:/usr/include:$folder/include/uapi"
        for variant in "" LEGACY NOBTF; do
          echo "$name|$version|$source|$out/${source#"$folder/"}${variant:+.${variant,,}}|$includes|${variant:+-DBPFTUNE_$variant}"
        done
      done | sed -E 's/\.bpf\.c(\.[a-z]+)\|/.bpf\1.o|/'
      ;;
    golang-github-cilium-ebpf)
      find "$folder" -name '*.c' | sort | while read -r source; do
        echo "$name|$version|$source|$out/${source#"$folder/"}|$(dirname "$source"):$folder/examples/headers|"
      done
      ;;
  esac
}

# The compiler's command for one job line, one argument a line: what build_one runs and what
# compile_commands.json records.
compile_command() {
  IFS='|' read -r _name _version source object includes defines <<<"$1"
  local dir
  printf '%s\n' "$CLANG" -O2 -g -target bpf -D__TARGET_ARCH_x86
  # shellcheck disable=SC2086 # the defines are words
  [ -z "$defines" ] || printf '%s\n' $defines
  IFS=: read -ra dirs <<<"$includes"
  for dir in "${dirs[@]}"; do echo "-I$dir"; done
  # Built as the selftests' Makefile builds these two: their point is the calls clang would inline.
  case "$source" in */test_l4lb_noinline.c|*/test_xdp_noinline.c) echo -fno-inline ;; esac
  printf '%s\n' -idirafter /usr/include/x86_64-linux-gnu -Wno-everything -c "$source" -o "$object"
}

# Builds one job line; prints "built OBJECT" or "failed OBJECT". The result (the object, or a
# .failed file with clang's messages) is what a later run reuses.
build_one() {
  IFS='|' read -r _name _version _source object _includes _defines <<<"$1"
  [ -f "$object" ] && { echo "built $object"; return; }
  [ -f "$object.failed" ] && { echo "failed $object"; return; }
  mkdir -p "$(dirname "$object")"
  local command=()
  mapfile -t command < <(compile_command "$1")
  # Written to a temporary name first, so that an interrupted build leaves no object behind.
  command[${#command[@]}-1]=$object.tmp
  if "${command[@]}" 2>"$object.log"; then
    mv "$object.tmp" "$object"
    rm -f "$object.log"
    echo "built $object"
  else
    rm -f "$object.tmp"
    mv "$object.log" "$object.failed"
    echo "failed $object"
  fi
}
export -f build_one compile_command
export CLANG

# Cuts the BPF objects out of executables (libbpf skeletons keep the whole ELF object as a byte
# string): every embedded little-endian ELF64 file of machine EM_BPF (247), its size given by its
# section header table, which ends it. An object identical to one already cut (a tool built twice
# under two names) is left out. Reads job lines; writes each job's object or OBJECT.failed.
extract_skeletons() {
  python3 -c '
import hashlib, os, struct, sys
seen = set()
for line in sys.stdin.read().splitlines():
    executable, obj = line.split("|")[2:4]
    data = open(executable, "rb").read()
    found = []
    at = data.find(b"\x7fELF", 1)
    while at != -1:
        if data[at + 4:at + 6] == b"\x02\x01" and struct.unpack_from("<H", data, at + 18)[0] == 247:
            shoff, = struct.unpack_from("<Q", data, at + 0x28)
            shentsize, shnum = struct.unpack_from("<HH", data, at + 0x3a)
            found.append(data[at:at + shoff + shentsize * shnum])
        at = data.find(b"\x7fELF", at + 1)
    os.makedirs(os.path.dirname(obj), exist_ok=True)
    digest = hashlib.sha256(b"".join(found)).digest()
    if len(found) != 1 or digest in seen:
        why = "identical to an object already extracted" if found and digest in seen else f"{len(found)} embedded BPF objects"
        open(obj + ".failed", "w").write(f"error: not extracted: {why}\n")
        continue
    seen.add(digest)
    open(obj + ".tmp", "wb").write(found[0])
    os.rename(obj + ".tmp", obj)
'
}

# A build folder of this script's earlier layout (build/HASH/NAME_VERSION, one HASH for all
# packages) that holds exactly this package's jobs, built by the same compiler: its objects are
# valid, and are used where they are. Prints the folder, or nothing.
earlier_build() {
  local name=$1 version=$2 jobs=$3
  python3 - "$CORPUS/build" "${name}_$version" "$name" "$version" "$jobs" "$clang_version" <<'EOF'
import glob, os, re, sys
build, folder_name, name, version, jobs, clang = sys.argv[1:]
wanted = open(jobs).read()
version_number = re.search(r"clang version (\S+)", clang)
for manifest in sorted(glob.glob(os.path.join(build, "*", "objects.tsv"))):
    if not re.fullmatch(r"[0-9a-f]{16}", os.path.basename(os.path.dirname(manifest))):
        continue
    folder = os.path.join(os.path.dirname(manifest), folder_name)
    lines = [line.split("\t") for line in open(manifest).read().splitlines()]
    mine = [fields for fields in lines if fields[1:3] == [name, version]]
    if not mine:
        continue
    listed = "".join("|".join(fields[1:7]).replace(folder, "@OUT@") + "\n" for fields in mine)
    built = [fields[4] for fields in mine if fields[0] == "built"]
    if listed != wanted or not built or not all(os.path.isfile(path) for path in built):
        continue
    producer = re.search(rb"clang version (\S+)", open(built[0], "rb").read())
    if producer and version_number and producer.group(1).decode() == version_number.group(1):
        print(folder)
        break
EOF
}

manifest_lines=$CORPUS/build/.manifest.$$
: >"$manifest_lines"
trap 'rm -f "$manifest_lines"' EXIT
keys=()
for entry in "${PACKAGES[@]}"; do
  spec=${entry%% *} kind=${entry#* }
  name=${spec%%=*} version=${spec#*=}
  case "$kind" in
    deb) deb=$(bash scripts/debian-fetch.sh "$spec") || die "cannot fetch $spec"; folder=$(extract_kernel_tree "$name" "$version" "$deb") ;;
    skeletons) deb=$(bash scripts/debian-fetch.sh "$spec") || die "cannot fetch $spec"; folder=$(extract_executables "$name" "$version" "$deb") ;;
    src|orig)
      folder=$(bash scripts/debian-fetch.sh "--${kind/src/source}" "$spec") || die "cannot fetch the source of $spec"
      folder=$(cd "$folder" && pwd -P)
      # PCP vendors libbpf with bpftool; its headers, as <bpf/...>, are what bcc's tools include.
      if [ "$name" = pcp ] && [ ! -d "$folder/.libbpf-include" ]; then libbpf_include "$folder" "$folder/vendor/github.com/libbpf/bpftool/libbpf/src"; fi
      ;;
  esac
  package=${name}_${version//:/%3a}
  jobs=$CORPUS/build/.jobs.$$
  # The object is named after its source: NAME.c gives NAME.o.
  jobs_of "$name" "$version" "$folder" | sed -E 's/^(([^|]*\|){3}[^|]*)\.c\|/\1.o|/' >"$jobs"
  if [ "$kind" = skeletons ]; then step=$(declare -f extract_skeletons); else step="$clang_version $(declare -f build_one compile_command)"; fi
  key=$({ echo "$step"; cat "$jobs"; } | sha256sum | cut -c1-16)
  keys+=("$package/$key")
  home=$CORPUS/build/$package/$key
  if [ ! -e "$home" ] && [ "$kind" != skeletons ]; then
    earlier=$(earlier_build "$name" "$version" "$jobs")
    if [ -n "$earlier" ]; then
      mkdir -p "$(dirname "$home")" && ln -s "$earlier" "$home"
      say "$name $version: the objects built by the earlier layout, in $earlier"
    fi
  fi
  mkdir -p "$home"
  out=$(cd "$home" && pwd -P)
  sed "s|@OUT@|$out|" "$jobs" >"$home.jobs"
  rm -f "$jobs"

  total=$(wc -l <"$home.jobs")
  if [ "$kind" = skeletons ]; then
    [ -f "$home.extracted" ] || { say "$name $version: cutting the BPF objects out of $total executables"; extract_skeletons <"$home.jobs"; touch "$home.extracted"; }
  else
    done_count=0 failed=0
    started=$(date +%s)
    tty=0; [ -t 2 ] && tty=1
    while read -r status object; do
      done_count=$((done_count + 1))
      [ "$status" = failed ] && failed=$((failed + 1))
      if [ $tty = 1 ]; then
        printf '\rcorpus: %s %s: %d/%d C files (%d failed), %ds ' "$name" "$version" "$done_count" "$total" "$failed" $(($(date +%s) - started)) >&2
      elif [ $((done_count % 100)) = 0 ] || [ "$done_count" = "$total" ]; then
        say "$name $version: $done_count/$total C files ($failed failed), $(($(date +%s) - started))s"
      fi
    done < <(tr '\n' '\0' <"$home.jobs" | xargs -0 -P "$JOBS" -I{} bash -c 'build_one "$1"' _ {})
    [ $tty = 1 ] && echo >&2
  fi
  while IFS='|' read -r name version source object includes defines; do
    if [ -f "$object" ]; then
      status=built; [ "$kind" = skeletons ] && status=extracted
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t\t%s\n' "$status" "$name" "$version" "$source" "$object" "$includes" "$defines" "$home"
    else
      error=$(grep -m1 'error:' "$object.failed" 2>/dev/null || head -n 1 "$object.failed" 2>/dev/null || echo 'no object')
      printf 'failed\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$version" "$source" "$object" "$includes" "$defines" "${error//$'\t'/ }" "$home"
    fi
  done <"$home.jobs" >>"$manifest_lines"
done

build=$CORPUS/build/corpus-$(printf '%s\n' "${keys[@]}" | sha256sum | cut -c1-16)
mkdir -p "$build"
manifest=$build/objects.tsv
# compile_commands.json: the command of every built object, as clang ran it.
while IFS=$'\t' read -r status name version source object includes defines _; do
  [ "$status" = built ] && compile_command "$name|$version|$source|$object|$includes|$defines" | tr '\n' '\0' && printf '\1'
done <"$manifest_lines" | python3 -c '
import json, os, sys
commands = [entry.split("\0")[:-1] for entry in sys.stdin.buffer.read().decode().split("\1") if entry]
entries = [{"directory": os.path.dirname(argv[argv.index("-c") + 1]), "file": argv[argv.index("-c") + 1], "arguments": argv} for argv in commands]
json.dump(entries, open(sys.argv[1] + ".tmp", "w"), indent=1)
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
' "$build/compile_commands.json"
mv "$manifest_lines" "$manifest"
counts=$(awk -F'\t' '{count[$1]++} END {printf "%d built, %d extracted from executables, %d failed", count["built"], count["extracted"], count["failed"]}' "$manifest")
say "$counts (listed in $manifest)"
echo "$manifest"
