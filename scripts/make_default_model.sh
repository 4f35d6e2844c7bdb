#!/usr/bin/env bash
# Regenerates models/default.gguf, the embedded default model: a random-weight llama-arch
# model (d_model 256, 4 layers, 4 heads, d_ff 768, vocab 2048 synthetic byte-level BPE,
# ChatML template, Q8_0 matrices, about 4 MB) written by Pocket's own `pocket make-model`.
# Deterministic: src/formats/random_model_test.cc checks that regenerating gives the
# committed bytes. Later work replaces it with a small trained model.
# Usage: scripts/make_default_model.sh [path/to/pocket]   (default: build/release/pocket)
set -euo pipefail
cd "$(dirname "$0")/.."
POCKET=${1:-${POCKET:-build/release/pocket}}
"$POCKET" make-model --shape pocket-default --seed 0 --out models/default.gguf
