#!/bin/sh
# npm-ci.sh — installs ui/node_modules from package-lock.json when they are
# missing or older than the lock file (the copy of the lock file in
# node_modules records what was installed). Run by the CMake build, the UI
# tests and tools/{run,test}.sh; a no-op when nothing changed.
set -e
cd "$(dirname "$0")"
if ! cmp -s package-lock.json node_modules/.tally-installed-lock 2>/dev/null; then
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.tally-installed-lock
fi
