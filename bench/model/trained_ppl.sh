#!/usr/bin/env bash
# The per-type perplexity check against llama.cpp (bench/model/ppl_vs_llamacpp.sh) on models
# Pocket trains itself, whose logits are shaped by data rather than chaotic like a random
# model's: the King James Bible from Debian's bible-kjv (all but Revelation) trains the two
# recipes in bench/model/trained/ (500 steps each, ~3 min each on 2 cores), and Revelation
# (never seen in training) is the perplexity text.
#   bash bench/model/trained_ppl.sh POCKET_BUILD LLAMA_BIN OUT_DIR
# Needs the `bible` program (apt-get install bible-kjv). Exit status 0 only when every row
# of both tables passes (within TOL_PCT, default 0.5 %).
set -euo pipefail
if [ $# -ne 3 ]; then
  echo "usage: bash bench/model/trained_ppl.sh POCKET_BUILD LLAMA_BIN OUT_DIR" >&2
  exit 2
fi
build=$(realpath "$1") llama_bin=$(realpath "$2") out=$3
here=$(cd "$(dirname "$0")" && pwd)
command -v bible >/dev/null || { echo "trained_ppl: no 'bible' program (apt-get install bible-kjv)" >&2; exit 2; }
mkdir -p "$out/train"
out=$(realpath "$out")
bible "gen1:1-rev22:21" >"$out/kjv.txt"
# Split at Revelation's heading: everything before it trains, Revelation is held out.
line=$(grep -n '^Revelation 1$' "$out/kjv.txt" | cut -d: -f1)
head -n $((line - 1)) "$out/kjv.txt" >"$out/train/kjv-train.txt"
tail -n +"$line" "$out/kjv.txt" >"$out/kjv-rev.txt"
status=0
for w in 576 512; do
  cp "$here/trained/kjv-$w.toml" "$out/"
  "$build/pocket" train -q "$out/kjv-$w.toml" >/dev/null
  OUT=$out/q bash "$here/ppl_vs_llamacpp.sh" "$build" "$llama_bin" "$out/out/kjv-$w.gguf" \
    "$out/kjv-rev.txt" || status=1
done
exit $status
