#!/usr/bin/env bash
# Installs what Pocket needs on Debian 12, once: the one list of system packages, and the
# npm packages the cross-language tests use. Idempotent; installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config git clang libclang-rt-14-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libhwy-dev libboost-dev nlohmann-json3-dev libcli11-dev libtomlplusplus-dev
  libsqlite3-dev libssl-dev libsodium-dev libzstd-dev zlib1g-dev libpcre2-dev
  openssl ca-certificates
  python3 chromium chromium-driver
)
# Node.js and npm: Debian's nodejs + npm unless a node with npm is already installed (the
# NodeSource build bundles npm and conflicts with Debian's npm package).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  APT_PACKAGES+=(nodejs npm)
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Node packages for the cross-language tests (real yjs, y-websocket, openai, ...), pinned
# by tests/node/package-lock.json.
if [ "${1:-}" = "--with-node" ] && [ -f tests/node/package.json ]; then
  if [ ! -d tests/node/node_modules ] || [ tests/node/package-lock.json -nt tests/node/node_modules ]; then
    (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
