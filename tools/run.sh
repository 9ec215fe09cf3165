#!/usr/bin/env bash
# run.sh — the README's first command: install what is needed, build, and run
# Tally's main job. Until the server lands that is the engine benchmark in its
# quick form.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C build tally tally-bench
exec build/tally-bench engine --quick "$@"
