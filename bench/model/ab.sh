#!/usr/bin/env bash
# Two `pocket` binaries side by side on the same model files: pp and tg tokens/s of each,
# interleaved round by round (A then B, then B then A, ...) so that the machine's drift hits
# both, and the median of the rounds with the ratio B/A. Also checks that both give the same
# greedy text (32 tokens) on every file, so a speed change cannot hide a change of bits.
#   bash bench/model/ab.sh OLD_POCKET NEW_POCKET ROUNDS MODEL.gguf...
# Environment: AB_THREADS (2), AB_PP (512), AB_TG (128), AB_REPS (3 per bench run).
set -euo pipefail
if [ $# -lt 4 ]; then
  echo "usage: bash bench/model/ab.sh OLD_POCKET NEW_POCKET ROUNDS MODEL.gguf..." >&2
  exit 2
fi
a=$1 b=$2 rounds=$3
shift 3
threads=${AB_THREADS:-2} pp=${AB_PP:-512} tg=${AB_TG:-128} reps=${AB_REPS:-3}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for model in "$@"; do
  ta=$("$a" run -m "$model" --temp 0 -n 32 --seed 1 "Once upon a time" 2>/dev/null | md5sum)
  tb=$("$b" run -m "$model" --temp 0 -n 32 --seed 1 "Once upon a time" 2>/dev/null | md5sum)
  [ "$ta" = "$tb" ] || { echo "greedy text differs on $model" >&2; exit 1; }
  for r in $(seq 1 "$rounds"); do
    order="a b"
    ((r % 2 == 0)) && order="b a"
    for which in $order; do
      bin=$a
      [ "$which" = b ] && bin=$b
      "$bin" bench "$model" -p "$pp" -n "$tg" -t "$threads" -r "$reps" --json 2>/dev/null |
        sed "s|^|$which $(basename "$model") |" >>"$out/runs"
    done
  done
done
python3 - "$out/runs" "$pp" "$tg" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    which, model, js = line.split(" ", 2)
    r = json.loads(js)
    test = f"pp{r['n_prompt']}" if r["n_prompt"] else f"tg{r['n_gen']}"
    rows.setdefault((model, test), {}).setdefault(which, []).append(r["avg_ts"])
print("| model | test | A tok/s (median) | B tok/s (median) | B/A | rounds |")
print("| --- | --- | ---: | ---: | ---: | ---: |")
for (model, test), v in rows.items():
    ma, mb = statistics.median(v["a"]), statistics.median(v["b"])
    print(f"| {model} | {test} | {ma:.1f} | {mb:.1f} | {mb / ma:.3f} | {len(v['a'])} |")
PY
