#!/usr/bin/env bash
# Fetches Debian packages by exact name into a git-ignored cache, through a private apt state, so
# the tests can use packages from suites the system does not list (kernels from bullseye to
# experimental, kernel sources) without root and without touching the system's sources.
#
#   bash scripts/debian-fetch.sh NAME[=VERSION]...  # binary packages: prints each .deb's path
#   bash scripts/debian-fetch.sh --source NAME...   # source packages: prints each unpacked folder
#   bash scripts/debian-fetch.sh --orig NAME...     # only a source package's upstream tarball (.orig), unpacked:
#                                                   # for packages whose .dsc the archive does not serve
#   bash scripts/debian-fetch.sh --version NAME     # prints the version apt would fetch
#
# The cache is $BPF_STACK_LENS_DEBIAN_DIR (default .cache/debian): apt/ holds the private state,
# debs/ the binary packages, src/NAME_VERSION/ the unpacked source packages (and upstream tarballs). A package already in
# debs/ is not downloaded again. The package lists are refreshed when older than a day.
# The mirror is the one the system's own apt configuration names (deb.debian.org if none).
# Exits 1 with one line naming the package when a package cannot be fetched.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${BPF_STACK_LENS_DEBIAN_DIR:-$PWD/.cache/debian}
APT_DIR=$CACHE/apt
SUITES=(bullseye bookworm trixie sid experimental)
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

say() { echo "debian-fetch: $*" >&2; }
die() { say "$*"; exit 1; }

mode=binary
case "${1:-}" in
  --source) mode=source; shift ;;
  --orig) mode=orig; shift ;;
  --version) mode=version; shift ;;
  -h|--help|'') sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; [ -n "${1:-}" ] && exit 0; exit 2 ;;
esac

command -v apt-get >/dev/null || die "apt-get is not available: this needs a Debian-based system"
[ -r "$KEYRING" ] || die "$KEYRING is missing (apt-get install debian-archive-keyring)"

# The system's Debian mirror: the first URIs/deb line that is not the security archive.
mirror() {
  local uri
  uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {print $2}' | grep -v -- '-security' | grep -m1 debian || true)
  [ -n "$uri" ] || uri=$(grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
    | grep -v -- '-security' | grep -m1 -oE '(https?|file)://[^ ]+' || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial" "$CACHE/debs" "$CACHE/src"
exec 9>"$CACHE/.lock"
flock 9

MIRROR=$(mirror)
SOURCES=$APT_DIR/sources.list
{
  for suite in "${SUITES[@]}"; do
    echo "deb [signed-by=$KEYRING] $MIRROR $suite main"
    echo "deb-src [signed-by=$KEYRING] $MIRROR $suite main"
  done
} >"$SOURCES.new"
changed=1
cmp -s "$SOURCES.new" "$SOURCES" 2>/dev/null && changed=0
mv "$SOURCES.new" "$SOURCES"

APT_OPTIONS=(
  -o "Dir::Etc::sourcelist=$SOURCES" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$APT_DIR/lists"
  -o "Dir::Cache=$APT_DIR/cache" -o Dir::Etc::preferencesparts=- -o APT::Get::AllowUnauthenticated=false
  -o Acquire::Languages=none -o Debug::NoLocking=1
)

stamp=$APT_DIR/updated
if [ $changed = 1 ] || [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +1440 2>/dev/null)" ]; then
  say "refreshing the package lists of ${SUITES[*]} from $MIRROR (private state in $APT_DIR)"
  apt-get "${APT_OPTIONS[@]}" update -qq >"$APT_DIR/update.log" 2>&1 \
    || { tail -n 5 "$APT_DIR/update.log" >&2; die "apt-get update failed (no network to $MIRROR?); see $APT_DIR/update.log"; }
  touch "$stamp"
fi

# NAME=VERSION pins a version; NAME alone takes the newest in any suite.
candidate() {
  case "$1" in *=*) echo "${1#*=}"; return ;; esac
  apt-cache "${APT_OPTIONS[@]}" show --no-all-versions "$1" 2>/dev/null | awk '/^Version:/ {print $2; exit}'
}
source_candidate() {
  case "$1" in *=*) echo "${1#*=}"; return ;; esac
  apt-cache "${APT_OPTIONS[@]}" showsrc "$1" 2>/dev/null | awk '/^Version:/ {print $2}' | sort -V | tail -n 1
}

for spec in "$@"; do
  name=${spec%%=*}
  case "$mode" in
    version)
      version=$(candidate "$spec")
      [ -n "$version" ] || die "no package named $name in ${SUITES[*]}"
      echo "$version"
      ;;
    binary)
      version=$(candidate "$spec")
      [ -n "$version" ] || die "no package named $name in ${SUITES[*]} (Debian may have replaced it with a newer point release)"
      file=$CACHE/debs/${name}_${version//:/%3a}_amd64.deb
      [ -f "$file" ] || file=$CACHE/debs/${name}_${version//:/%3a}_all.deb
      if [ ! -f "$file" ]; then
        say "downloading $name $version"
        (cd "$CACHE/debs" && apt-get "${APT_OPTIONS[@]}" download -qq "$name=$version" >"$APT_DIR/download.log" 2>&1) \
          || { tail -n 5 "$APT_DIR/download.log" >&2; die "could not download $name $version"; }
        file=$(ls "$CACHE/debs/${name}_${version//:/%3a}_"*.deb | head -n 1)
      fi
      echo "$file"
      ;;
    source)
      version=$(source_candidate "$spec")
      [ -n "$version" ] || die "no source package named $name in ${SUITES[*]}"
      folder=$CACHE/src/${name}_${version//:/%3a}
      if [ ! -f "$folder/.unpacked" ]; then
        command -v dpkg-source >/dev/null || die "dpkg-source is missing (apt-get install dpkg-dev)"
        say "downloading the source of $name $version"
        rm -rf "$folder" "$folder.download"
        mkdir -p "$folder.download"
        (cd "$folder.download" && apt-get "${APT_OPTIONS[@]}" source --download-only -qq "$name=$version" >"$APT_DIR/source.log" 2>&1) \
          || { tail -n 5 "$APT_DIR/source.log" >&2; die "could not download the source of $name $version"; }
        dpkg-source --no-check -x "$folder.download"/*.dsc "$folder" >/dev/null \
          || die "could not unpack the source of $name $version"
        rm -rf "$folder.download"
        touch "$folder/.unpacked"
      fi
      echo "$folder"
      ;;
    orig)
      # apt-get source --print-uris lists the files with the hashes of the signed Sources index;
      # apt's own downloader checks the tarball against it.
      version=$(source_candidate "$spec")
      [ -n "$version" ] || die "no source package named $name in ${SUITES[*]}"
      folder=$CACHE/src/${name}_${version//:/%3a}
      if [ ! -f "$folder/.unpacked" ]; then
        read -r uri file _ hash < <(apt-get "${APT_OPTIONS[@]}" source --print-uris -qq "$name=$version" 2>/dev/null | grep -m1 -E "\.orig\.tar\.[a-z0-9]+ " | tr -d "'") \
          || die "no upstream tarball listed for the source of $name $version"
        say "downloading the upstream tarball of $name $version"
        rm -rf "$folder" "$folder.download"
        mkdir -p "$folder.download" "$folder"
        /usr/lib/apt/apt-helper "${APT_OPTIONS[@]}" download-file "$uri" "$folder.download/$file" "$hash" >"$APT_DIR/source.log" 2>&1 \
          || { tail -n 5 "$APT_DIR/source.log" >&2; die "could not download the upstream tarball of $name $version"; }
        tar -xf "$folder.download/$file" -C "$folder" --strip-components=1 || die "could not unpack the upstream tarball of $name $version"
        rm -rf "$folder.download"
        touch "$folder/.unpacked"
      fi
      echo "$folder"
      ;;
  esac
done
