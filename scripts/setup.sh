#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for bpf-stack-lens: the BPF toolchain from Debian's packages
# (clang-19 and llvm-19 build the objects, bpftool and libbpf-dev give headers and the kernel's view),
# then the npm packages exactly as package-lock.json pins them (`npm ci` also builds the TypeScript).
# Set BPF_STACK_LENS_EDITORS=1 to also install what the editor tests need (Chromium, Neovim).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(clang-19 llvm-19 bpftool libbpf-dev gcc libc6-dev)
if [ "${BPF_STACK_LENS_EDITORS:-0}" = 1 ]; then
  packages+=(chromium neovim libkrb5-dev)
fi

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: needs root to install: ${missing[*]} (run with sudo)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

npm ci --no-audit --no-fund
