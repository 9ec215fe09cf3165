#!/usr/bin/env bash
# run.sh — the README's first command: install what is needed, build, and start
# the server on the embedded default (SQLite metadata + local data directory
# ./tally-data, http://127.0.0.1:5000). Extra arguments go to `tally serve`
# (e.g. --port 5001 --data /srv/tally).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
ui/npm-ci.sh # the web UI's npm packages (a no-op when the lock file is unchanged)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DTALLY_WERROR=OFF >/dev/null
ninja -C build tally tally-bench
exec build/tally serve "$@"
