#!/usr/bin/env bash
# install-deps.sh — installs the Debian packages Tally builds and tests with,
# skipping the apt round trip when everything is already there.
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config clang libclang-rt-dev
      liblz4-dev liburing-dev libxxhash-dev libsqlite3-dev
      libmicrohttpd-dev libcjson-dev libjsmn-dev libsodium-dev zlib1g-dev libcurl4-openssl-dev
      libyaml-dev python3 python3-yaml
      openssl   # self-signed certificates in the TLS tests
      chromium) # chromium: the web UI's end-to-end tests and `tally-bench ui`
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js (for the UI build and the npm-client tests): any existing install will do.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
