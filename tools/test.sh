#!/usr/bin/env bash
# test.sh — the README's second command and what CI runs (.ci/run): install
# what is needed, then build and run every test through CTest:
#   1. a release build with -Werror (all labels),
#   2. an ASan + UBSan build (all labels),
#   3. a TSan build running the concurrency tests (label tsan: unit tests,
#      and integration tests against the TSan build's server),
#   4. a clang libFuzzer build running each fuzz target for a bounded time
#      (TALLY_FUZZ_SECONDS, default 20) on top of the checked-in corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
jobs=$(nproc)
fuzz_seconds=${TALLY_FUZZ_SECONDS:-20}

step() { printf '\n=== %s ===\n' "$*"; }

ui/npm-ci.sh # the web UI's npm packages (a no-op when the lock file is unchanged)
step "release build (-Werror)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTALLY_WERROR=ON >/dev/null
ninja -C build
ctest --test-dir build --output-on-failure -j "$jobs"

step "ASan + UBSan build"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DTALLY_WERROR=ON \
      -DTALLY_SANITIZE=address,undefined -DTALLY_BUILD_BENCH=ON >/dev/null
ninja -C build-asan
ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build-asan --output-on-failure -j "$jobs"

step "TSan build (concurrency tests)"
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTALLY_WERROR=ON \
      -DTALLY_SANITIZE=thread -DTALLY_BUILD_BENCH=OFF >/dev/null
ninja -C build-tsan
ctest --test-dir build-tsan --output-on-failure -L tsan

step "libFuzzer (clang, ASan + UBSan), ${fuzz_seconds}s per target"
CC=clang cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTALLY_FUZZ=ON \
      -DTALLY_SANITIZE=address,undefined -DTALLY_BUILD_BENCH=OFF >/dev/null
ninja -C build-fuzz
for target in build-fuzz/tests/fuzz_*; do
  case "$target" in *_replay) continue ;; esac
  [ -x "$target" ] || continue
  name=$(basename "$target")
  work=$(mktemp -d)
  cp -r "tests/fuzz/corpus/$name/." "$work/" 2>/dev/null || true
  echo "fuzzing $name"
  log="$work.log"
  # A fixed seed makes the run repeatable: the same binary explores the same
  # inputs (a slower machine a prefix of them), so CI does not fail at random.
  # Longer, free-running campaigns are run by hand with the same binaries.
  if ! "$target" -seed=1 -max_total_time="$fuzz_seconds" -print_final_stats=1 \
       -artifact_prefix="$work/" "$work" >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz target $name found a failure"
    exit 1
  fi
  grep -E "^stat::number_of_executed_units" "$log" | sed "s/^/  $name: /"
  rm -f "$log"
  rm -rf "$work"
done
step "all tests passed"
