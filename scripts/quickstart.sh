#!/usr/bin/env bash
# The main job on a fresh machine: install what is missing, build, and generate text with
# the embedded default model. Extra arguments go to `pocket run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake --preset release -DPOCKET_BENCH=OFF >/dev/null
cmake --build build/release --target pocket
if [ $# -eq 0 ]; then
  set -- "Once upon a time"
fi
./build/release/pocket run "$@"
echo
