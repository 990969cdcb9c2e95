#!/usr/bin/env bash
# The kernel lab: real Debian kernels under QEMU (TCG) asked about BPF objects.
#
#   bash scripts/kernel-lab.sh fetch [LABEL...]      # fetch and cache the lab kernels (.cache/kernels)
#   bash scripts/kernel-lab.sh measure [LABEL...]    # boot each lab kernel on every fixture object and
#                                                    # rewrite test/fixtures/programs/measured/<release>.json
#   bash scripts/kernel-lab.sh measure --corpus [LABEL...]
#                                                    # load every program of the real-world corpus in each
#                                                    # lab kernel (answers cached in .cache/lab/corpus), print
#                                                    # the agreement table and rewrite test/lab/corpus-counts.json
#   bash scripts/kernel-lab.sh boot LABEL OBJ...     # boot one lab kernel and print its verdicts as JSON lines
#
# LABEL is a lab kernel's major.minor (5.10 6.1 6.12 7.2 7.3; default all). Needs qemu-system-x86,
# busybox-static, cpio, libbpf-dev, libelf-dev and zlib1g-dev, and the project built (npm run build).
# Every failure is one line on stderr naming what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f out/test/support/kernelLab.js ] || { echo "kernel-lab: out/ is missing: run npm run build first" >&2; exit 1; }
exec node -e 'require("./out/test/support/kernelLab.js").runCommandLine(process.argv.slice(1))' "$@"
