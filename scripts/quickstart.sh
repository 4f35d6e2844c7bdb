#!/usr/bin/env bash
# The main job on a fresh machine: install what is missing, build, and generate text with
# the embedded default model. Extra arguments go to `pocket run`.
set -euo pipefail
cd "$(dirname "$0")/.."
# --with-node: the pinned npm packages (tests/node/package-lock.json), which the build copies
# the collab editor page's Yjs modules from (web/CMakeLists.txt); the tests use them too.
bash scripts/deps.sh --with-node
# The same configuration scripts/test.sh uses, so running the tests afterwards reuses this
# build instead of reconfiguring (and rebuilding) the tree.
cmake --preset release -DPOCKET_WERROR=ON -DPOCKET_BENCH=ON >/dev/null
cmake --build build/release --target pocket
if [ $# -gt 0 ]; then
  exec ./build/release/pocket run "$@"
fi
echo
echo "== Demo: 48 tokens from the embedded default model (models/default.gguf)"
echo "== Pocket trained it on the King James Bible (recipes/default.toml): the Bible's words"
echo "== and rhythm, not its sense."
echo
./build/release/pocket run "And the LORD said unto Moses," -n 48 --seed 1
echo
echo
echo "== For real answers, point Pocket at any Llama/SmolLM/Qwen2 GGUF file:"
echo "==   ./build/release/pocket run MODEL.gguf \"Once upon a time\" -n 64"
echo "== The README lists what else to try; every command has --help."
