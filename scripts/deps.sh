#!/usr/bin/env bash
# Installs what Pocket needs on Debian 12, once: the one list of system packages, and the
# npm packages the cross-language tests use. Idempotent; installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config git clang libclang-rt-14-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libhwy-dev libboost-dev nlohmann-json3-dev libcli11-dev libtomlplusplus-dev
  libsqlite3-dev libssl-dev libsodium-dev libzstd-dev zlib1g-dev libpcre2-dev libsimdjson-dev
  openssl ca-certificates
  bible-kjv  # the default model's training text (scripts/kjv_text.sh, recipes/default.toml)
  python3 chromium chromium-driver
  docker-registry apache2-utils  # tests/cli/registry_remote_test: a real OCI registry, htpasswd -B
)
# Optional, not installed here: python3-scipy (with python3-numpy) regenerates the drift golden
# cases (/usr/bin/python3 tests/golden/eval/make_drift_golden.py); no test needs it.
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
  # On a fresh VM an unattended upgrade or cloud-init often holds the apt/dpkg lock for a
  # few minutes: wait for it (up to POCKET_APT_LOCK_WAIT_S, default 600 s) instead of
  # failing at once. apt-get says "Could not get lock" (or "Unable to acquire the dpkg
  # frontend lock") and exits 100 when another process holds it.
  apt_retry() {
    local waited=0 limit=${POCKET_APT_LOCK_WAIT_S:-600} err
    err=$(mktemp)
    while true; do
      if "$@" 2>"$err"; then rm -f "$err"; return 0; fi
      if ! grep -qE 'Could not get lock|Unable to acquire the dpkg frontend lock|Unable to lock' "$err" ||
         ((waited >= limit)); then
        cat "$err" >&2
        rm -f "$err"
        return 1
      fi
      ((waited == 0)) && echo "deps: another process holds the apt/dpkg lock; waiting (up to ${limit} s)" >&2
      sleep 5
      waited=$((waited + 5))
    done
  }
  apt_retry $SUDO apt-get update -qq
  apt_retry env DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

# Node packages for the cross-language tests (real yjs, y-websocket, openai, ...), pinned
# by tests/node/package-lock.json; the build also copies the collab editor page's Yjs
# modules from them (web/collab/vendor.txt).
if [ "${1:-}" = "--with-node" ] && [ -f tests/node/package.json ]; then
  if [ ! -d tests/node/node_modules ] || [ tests/node/package-lock.json -nt tests/node/node_modules ]; then
    (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
