#!/usr/bin/env bash
# A quick look without an editor: build the example workspace with clang-19 and judge the seed
# program for the running kernel and for 6.1, the kernel of the blog post this project started from.
set -euo pipefail
cd "$(dirname "$0")/.."
bash examples/workspace/build.sh
set +e
node bin/bpf-stack-lens.js check --kernel "$(uname -r | cut -d. -f1,2),6.1" examples/workspace/seed.bpf.o
status=$?
set -e
# Exit 1 means "a kernel rejects it", which is the point of the example; only usage errors fail here.
[ "$status" -le 1 ]
