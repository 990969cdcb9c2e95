#!/usr/bin/env bash
# The main job in a real VS Code: builds the extension and its .vsix, builds the example workspace
# (examples/workspace: the seed, a 512-byte-rule program and one that passes) with clang-19,
# installs code-server once into .cache/editors/ (scripts/editors.sh), and serves VS Code with the
# extension installed on http://127.0.0.1:PORT (PORT=8080 unless set; --auth none, loopback only),
# opened on examples/workspace, until Ctrl-C.
#
#   bash scripts/main-job.sh            # serve; open the printed address in a browser
#   PORT=9000 bash scripts/main-job.sh
#   bash scripts/main-job.sh --check    # start, wait for the extension's diagnostics in headless
#                                       # Chromium, print one line, exit 0 (shown) or 1
# Set BPF_STACK_LENS_SKIP_BUILD=1 to reuse dist/bpf-stack-lens.vsix as it is.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=serve
for arg in "$@"; do
  case "$arg" in
    --check) mode=check ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "main-job: unknown argument $arg (try --help)" >&2; exit 2 ;;
  esac
done
PORT=${PORT:-8080}

step() { echo "main-job: $*" >&2; }

if [ "${BPF_STACK_LENS_SKIP_BUILD:-0}" != 1 ] || [ ! -f dist/bpf-stack-lens.vsix ]; then
  step "building the extension and dist/bpf-stack-lens.vsix (npm run package)"
  npm run --silent package >/dev/null
fi
step "building examples/workspace with clang-19"
bash examples/workspace/build.sh
step "code-server (cached in .cache/editors/)"
bash scripts/editors.sh

args=(--port "$PORT" --workspace "$PWD/examples/workspace" --vsix "$PWD/dist/bpf-stack-lens.vsix")
[ "$mode" = check ] && args+=(--check)
exec node test/editors/code-server-main.mjs "${args[@]}"
