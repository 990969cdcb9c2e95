#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for bpf-stack-lens, everything the main job and the whole test
# suite need, so that neither skips anything afterwards:
#   - Debian's packages: the BPF toolchain (clang-19 and llvm-19 build the objects, bpftool and
#     libbpf-dev give headers and the kernel's view), the kernel lab's QEMU and initramfs tools, and
#     the editors the tests drive (Chromium for code-server, Neovim, Emacs with eglot);
#   - the npm packages exactly as package-lock.json pins them (`npm ci` also builds the TypeScript);
#   - code-server, Node 24 and playwright-core in .cache/editors/ (scripts/editors.sh, once).
# The real-world corpus (Debian's kernel trees, xdp-tools, pcp's copy of bcc's libbpf-tools, libbpf-tools,
# systemd and suricata: scripts/corpus.sh, about a quarter of an hour the first time) is fetched and built by the tests that use it, so the main job does not wait for it.
# Needs node 20 or later and npm on PATH, and root (or sudo) only when a Debian package is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "setup: $*" >&2; }

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  say "needs node 20 or later on PATH (found: $(node --version 2>/dev/null || echo none))"
  exit 1
fi

packages=(
  clang-19 llvm-19 bpftool libbpf-dev gcc libc6-dev libelf-dev zlib1g-dev  # building and reading BPF objects
  qemu-system-x86 busybox-static cpio                                       # the kernel lab's virtual machines
  dpkg-dev debian-archive-keyring xz-utils python3                          # fetching and unpacking the real-world corpus
  chromium libkrb5-dev neovim emacs-nox elpa-eglot                          # the editor tests
)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    say "needs root to install: ${missing[*]} (run with sudo)"
    exit 1
  fi
  say "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

say "npm ci (installs the pinned packages and builds)"
npm ci --no-audit --no-fund
say "code-server, Node 24, playwright-core and Neovim 0.10 into .cache/editors/ (once, about three minutes)"
bash scripts/editors.sh
