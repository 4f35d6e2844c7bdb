#!/usr/bin/env bash
# Training throughput of Pocket vs PyTorch on the CPU, side by side in one run (issue 13,
# "Speed"; results and how to read them: docs/PERFORMANCE.md, "Training").
#
#   bash bench/train/train_bench.sh [BUILD_DIR=build/release] [OUT_DIR=/tmp/pocket-train-bench]
#
# Two cases, each run by Pocket and by PyTorch (bench/train/torch_train.py) alternately for
# ROUNDS rounds, on THREADS threads, with the same model shape, batch and sequence length:
#   full  `pocket train` of RECIPE's model (default recipes/default.toml: shape, batch,
#         seq_len, grad_accum are read from it; its data, steps and outputs are replaced)
#         vs PyTorch training every tensor with AdamW
#   lora  `pocket finetune` rank LORA_RANK on the default targets (q,k,v,o,gate,up,down) of a
#         random LORA_SHAPE model (smollm2-135m) quantized to each of LORA_TYPES (q8_0 q4_0)
#         vs PyTorch's LoRA on the float32 model of that shape (base frozen, A/B trained)
# and prints a markdown table: tokens/s of each (the steps after the warm-up ones, batch x
# seq_len tokens per step for both), the ratio, and each process's peak RSS (/usr/bin/time
# -v, both measured the same way). Pocket's step times are the arrival times of its
# per-step progress lines (stderr); PyTorch times its own steps.
#
# PyTorch: the first of /usr/bin/python3, python3 that can `import torch`; none: the PyTorch
# columns are skipped. Its BLAS matters (a matrix multiply is ~15x faster with OpenBLAS than
# with the reference BLAS that Debian's libtorch pulls in by default): TORCH_BLAS=auto (the
# default) runs it on OpenBLAS when one is found (OPENBLAS_DIR, or Debian's
# libopenblas0-openmp / -pthread installed), else on the system's libblas.so.3; "system",
# "openblas" or "system openblas" (both rows) choose. To get OpenBLAS without installing it:
#   apt-get download libopenblas0-openmp && dpkg -x libopenblas0-openmp_*.deb /tmp/ob
#   OPENBLAS_DIR=/tmp/ob/usr/lib/x86_64-linux-gnu/openblas-openmp bash bench/train/train_bench.sh
#
# Environment (defaults): RECIPE (recipes/default.toml) THREADS (2) ROUNDS (2)
#   FULL_STEPS (12) TORCH_FULL_STEPS (8) FULL_WARMUP (2)
#   LORA_SHAPE (smollm2-135m) LORA_TYPES ("q8_0 q4_0") LORA_RANK (8) LORA_BATCH (4)
#   LORA_SEQ (128) LORA_STEPS (5) TORCH_LORA_STEPS (3) LORA_WARMUP (1)
#   PYTHON (found as above; "none" skips PyTorch) TORCH_BLAS (auto) OPENBLAS_DIR
# A CI-sized smoke run (seconds): SMOKE=1 (tests/cli/train/recipe.toml, the tiny shape, few
# steps, one round). OUT_DIR keeps every log, *.time file and the table (table.md).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${1:-build/release}
OUT=${2:-/tmp/pocket-train-bench}
POCKET=$(cd "$BUILD" && pwd)/pocket
[[ -x $POCKET ]] || { echo "train_bench: $POCKET: not built (cmake --build $BUILD --target pocket)" >&2; exit 2; }
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

if [[ ${SMOKE:-0} == 1 ]]; then
  : "${RECIPE:=$ROOT/tests/cli/train/recipe.toml}" "${LORA_SHAPE:=tiny}" "${ROUNDS:=1}"
  : "${FULL_STEPS:=4}" "${TORCH_FULL_STEPS:=3}" "${FULL_WARMUP:=1}" "${LORA_STEPS:=3}"
  : "${TORCH_LORA_STEPS:=2}" "${LORA_SEQ:=32}" "${LORA_TYPES:=q8_0}"
fi
RECIPE=${RECIPE:-$ROOT/recipes/default.toml}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-2}
FULL_STEPS=${FULL_STEPS:-12}
TORCH_FULL_STEPS=${TORCH_FULL_STEPS:-8}
FULL_WARMUP=${FULL_WARMUP:-2}
LORA_SHAPE=${LORA_SHAPE:-smollm2-135m}
LORA_TYPES=${LORA_TYPES:-q8_0 q4_0}
LORA_RANK=${LORA_RANK:-8}
LORA_BATCH=${LORA_BATCH:-4}
LORA_SEQ=${LORA_SEQ:-128}
LORA_STEPS=${LORA_STEPS:-5}
TORCH_LORA_STEPS=${TORCH_LORA_STEPS:-3}
LORA_WARMUP=${LORA_WARMUP:-1}
TORCH_BLAS=${TORCH_BLAS:-auto}
# pocket train's last step also runs the validation pass and writes the checkpoint, so its
# timing ends at the step before: FULL_STEPS - 1 - FULL_WARMUP steps are timed.
(( FULL_STEPS >= FULL_WARMUP + 2 && TORCH_FULL_STEPS > FULL_WARMUP && LORA_STEPS > LORA_WARMUP &&
   TORCH_LORA_STEPS > LORA_WARMUP )) || { echo "train_bench: too few steps for the warm-up" >&2; exit 2; }

note() { echo "train_bench: $*" >&2; }

# ---- PyTorch: which python, which BLAS ------------------------------------------------------
if [[ -z ${PYTHON:-} ]]; then
  PYTHON=none
  for p in /usr/bin/python3 "$(command -v python3 || true)"; do
    if [[ -n $p && -x $p ]] && "$p" -c 'import torch' 2>/dev/null; then PYTHON=$p; break; fi
  done
fi
if [[ $PYTHON == none ]]; then
  note "no python3 that can 'import torch' (Debian: apt-get install python3-torch): the PyTorch columns are skipped"
fi
find_openblas() {
  local d
  for d in "${OPENBLAS_DIR:-}" /usr/lib/x86_64-linux-gnu/openblas-openmp \
           /usr/lib/x86_64-linux-gnu/openblas-pthread; do
    [[ -n $d && -e $d/libblas.so.3 ]] && { echo "$d"; return; }
  done
}
OB=$(find_openblas || true)
BLASES=()
if [[ $PYTHON != none ]]; then
  case $TORCH_BLAS in
    auto) if [[ -n $OB ]]; then BLASES=(openblas); else BLASES=(system); fi ;;
    *) read -r -a BLASES <<<"$TORCH_BLAS" ;;
  esac
  for b in "${BLASES[@]}"; do
    case $b in
      system) ;;
      openblas) [[ -n $OB ]] || { note "TORCH_BLAS=openblas but no OpenBLAS found (set OPENBLAS_DIR)"; exit 2; } ;;
      *) note "TORCH_BLAS: unknown '$b' (auto, system, openblas)"; exit 2 ;;
    esac
  done
  [[ -n $OB ]] || note "PyTorch runs on the system's libblas.so.3 (no OpenBLAS found; see the usage at the top)"
fi

# ---- helpers ----------------------------------------------------------------------------------
HAVE_TIME=0
[[ -x /usr/bin/time ]] && /usr/bin/time -v true 2>/dev/null && HAVE_TIME=1
(( HAVE_TIME )) || note "no GNU time (/usr/bin/time -v): peak RSS is not measured"

# timed NAME CMD...: runs CMD with stdout to NAME.out and every stderr line prefixed with its
# arrival time (bash's EPOCHREALTIME) in NAME.log; peak RSS into NAME.time.
timed() {
  local name=$1; shift
  local tv=()
  (( HAVE_TIME )) && tv=(/usr/bin/time -v -o "$OUT/$name.time")
  if ! { "${tv[@]}" "$@" 2>&1 >"$OUT/$name.out" |
         while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done >"$OUT/$name.log"; }; then
    note "$name failed:"; tail -n 5 "$OUT/$name.log" >&2; exit 1
  fi
}
peak_mb() {  # NAME -> peak RSS in MB, or n/a
  local f=$OUT/$1.time
  [[ -f $f ]] && awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$f" || echo n/a
}
# pocket_steps NAME FIRST LAST: NAME.steps = the seconds of steps FIRST+1..LAST, from the
# arrival times of their progress lines in NAME.log.
pocket_steps() {
  awk -v a="$2" -v b="$3" '
    { if (match($0, / step [0-9]+\//)) { s = substr($0, RSTART + 6, RLENGTH - 7) + 0; t[s] = $1 } }
    END { for (k = a + 1; k <= b; k++) if ((k - 1) in t && k in t) printf "%.6f\n", t[k] - t[k - 1] }' \
    "$OUT/$1.log" >"$OUT/$1.steps"
}
torch_run() {  # NAME BLAS WARMUP ARGS...: runs torch_train.py; NAME.steps as for Pocket
  local name=$1 blas=$2 warm=$3; shift 3
  local env=(env OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS")
  [[ $blas == openblas ]] && env+=(LD_LIBRARY_PATH="$OB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
  timed "$name" "${env[@]}" "$PYTHON" "$ROOT/bench/train/torch_train.py" --threads "$THREADS" \
    --warmup "$warm" "$@"
  "$PYTHON" -c 'import json, sys
r = json.loads(open(sys.argv[1]).read().splitlines()[-1])
print("\n".join("%.6f" % t for t in r["step_seconds"][int(sys.argv[2]):]))' \
    "$OUT/$name.out" "$warm" >"$OUT/$name.steps"
}
shape_of() {  # GGUF -> "d_model 192, 4 layers, ..." from pocket inspect
  "$POCKET" inspect "$1" 2>/dev/null | awk '
    / [a-z0-9]+\.embedding_length = / {d = $NF} / [a-z0-9]+\.block_count = / {l = $NF}
    / [a-z0-9]+\.attention\.head_count = / {h = $NF} / [a-z0-9]+\.attention\.head_count_kv = / {kv = $NF}
    / [a-z0-9]+\.feed_forward_length = / {f = $NF} / [a-z0-9]+\.vocab_size = / {v = $NF}
    / tokenizer\.ggml\.tokens = / {if (v == "") {v = $0; sub(/.*\| +/, "", v); sub(/ .*/, "", v)}}
    END {printf "d%s L%s h%s/%s ff%s v%s", d, l, h, kv, f, v}'
}
# recipe_get SECTION KEY DEFAULT: a scalar of the recipe (one line, no inline table).
recipe_get() {
  awk -v sec="$1" -v key="$2" -v def="$3" '
    /^[ \t]*\[/ { cur = $0; gsub(/[ \t\[\]]/, "", cur); next }
    cur == sec && $0 ~ "^[ \t]*" key "[ \t]*=" { v = $0; sub(/^[^=]*=[ \t]*/, "", v); sub(/[ \t]*#.*/, "", v); found = 1 }
    END { print found ? v : def }' "$RECIPE"
}
# The bench's copy of the recipe: the model, tokenizer and training settings as they are; the
# data, steps, warm-up, checkpoints and outputs replaced (keys of [data], [training],
# [checkpoint] listed below are dropped where they are and written after the table's header).
write_recipe() {
  local out=$1 data=$2 dir
  dir=$(cd "$(dirname "$RECIPE")" && pwd)
  awk -v dir="$dir" -v data="$data" -v steps="$FULL_STEPS" -v outgguf="$OUT/full/m.gguf" '
    BEGIN {
      ov["data"] = "paths = [\"" data "\"]\n"
      ov["training"] = "steps = " steps "\nwarmup_steps = 1\n"
      ov["checkpoint"] = "interval = 0\noutput = \"" outgguf "\"\nquantize = \"f32\"\n"
      drop["data", "paths"]; drop["training", "steps"]; drop["training", "warmup_steps"]
      drop["checkpoint", "interval"]; drop["checkpoint", "output"]; drop["checkpoint", "quantize"]
    }
    skipping { if ($0 ~ /\]/) skipping = 0; next }
    /^[ \t]*\[[a-z_]+\][ \t]*(#.*)?$/ {
      cur = $0; gsub(/[ \t]*#.*/, "", cur); gsub(/[ \t\[\]]/, "", cur)
      print; if (cur in ov) { printf "%s", ov[cur]; done[cur] = 1 }; next
    }
    {
      k = $0; sub(/^[ \t]*/, "", k); sub(/[ \t]*=.*/, "", k)
      if ((cur, k) in drop) { if ($0 ~ /\[/ && $0 !~ /\]/) skipping = 1; next }
      # tokenizer.from is relative to the recipe folder: make it absolute.
      if (cur == "tokenizer" && k == "from" && $0 !~ /=[ \t]*"\//) sub(/=[ \t]*"/, "= \"" dir "/")
      print
    }
    END { for (s in ov) if (!(s in done)) printf "\n[%s]\n%s", s, ov[s] }' "$RECIPE" >"$out"
}

# ---- inputs -----------------------------------------------------------------------------------
mkdir -p "$OUT/full" "$OUT/lora"
rm -f "$OUT"/*.steps "$OUT"/*.time "$OUT"/*.log "$OUT"/*.out   # an earlier run's
cat "$ROOT"/docs/*.md "$ROOT/README.md" >"$OUT/text.txt"        # ~300 KB of text
# LoRA data: about two batches of text, so that finetune's before/after loss passes (up to
# 16 batches of the training split, forward only, untimed) stay short; steps cycle over it.
# Whole lines, so that no UTF-8 character is cut.
awk -v n=$(( LORA_BATCH * LORA_SEQ * 4 )) '{ print; s += length($0) + 1; if (s >= n) exit }' \
  "$OUT/text.txt" >"$OUT/lora/notes.txt"
write_recipe "$OUT/full/recipe.toml" "$OUT/text.txt"
BATCH=$(recipe_get training batch_size 8)
ACCUM=$(recipe_get training grad_accum 1)
SEQ=$(recipe_get data seq_len 256)
FULL_TOKENS=$(( BATCH * ACCUM * SEQ ))
LORA_TOKENS=$(( LORA_BATCH * LORA_SEQ ))
"$POCKET" make-model --shape "$LORA_SHAPE" --type f16 --seed 1 --out "$OUT/lora/base-f16.gguf" >/dev/null
for q in $LORA_TYPES; do
  "$POCKET" quantize "$OUT/lora/base-f16.gguf" "$OUT/lora/base-$q.gguf" --type "$q" >/dev/null 2>&1
done
first_type=${LORA_TYPES%% *}

note "$("$POCKET" --version 2>/dev/null | head -1), python ${PYTHON}, torch BLAS: ${BLASES[*]:-none}${OB:+ (OpenBLAS: $OB)}"
LOAD_BEFORE=$(uptime | sed "s/.*load average: //")
note "load average before: $LOAD_BEFORE"
run_full_pocket() {  # ROUND
  timed "full-pocket-r$1" "$POCKET" train "$OUT/full/recipe.toml" -t "$THREADS"
  pocket_steps "full-pocket-r$1" "$FULL_WARMUP" $(( FULL_STEPS - 1 ))
}
run_full_torch() {  # ROUND BLAS
  torch_run "full-torch-$2-r$1" "$2" "$FULL_WARMUP" --model "$OUT/full/m.ckpt.gguf" \
    --mode full --batch "$BATCH" --accum "$ACCUM" --seq-len "$SEQ" --steps "$TORCH_FULL_STEPS"
}
run_lora_pocket() {  # ROUND TYPE
  timed "lora-pocket-$2-r$1" "$POCKET" finetune "$OUT/lora/base-$2.gguf" --data "$OUT/lora/notes.txt" \
    --out "$OUT/lora/adapter-$2.gguf" --lora-rank "$LORA_RANK" --batch "$LORA_BATCH" \
    --seq-len "$LORA_SEQ" --steps "$LORA_STEPS" --val-fraction 0 -t "$THREADS"
  pocket_steps "lora-pocket-$2-r$1" "$LORA_WARMUP" "$LORA_STEPS"
}
run_lora_torch() {  # ROUND BLAS
  torch_run "lora-torch-$2-r$1" "$2" "$LORA_WARMUP" --model "$OUT/lora/base-$first_type.gguf" \
    --mode lora --rank "$LORA_RANK" --batch "$LORA_BATCH" --seq-len "$LORA_SEQ" \
    --steps "$TORCH_LORA_STEPS"
}

# ---- the runs: Pocket and PyTorch alternately, the order flipped every other round -----------
for (( r = 1; r <= ROUNDS; r++ )); do
  note "round $r/$ROUNDS: full training"
  if (( r % 2 == 1 )) || [[ ! -f $OUT/full/m.ckpt.gguf ]]; then
    run_full_pocket "$r"; for b in "${BLASES[@]}"; do run_full_torch "$r" "$b"; done
  else
    for b in "${BLASES[@]}"; do run_full_torch "$r" "$b"; done; run_full_pocket "$r"
  fi
  note "round $r/$ROUNDS: LoRA"
  if (( r % 2 == 1 )); then
    for q in $LORA_TYPES; do run_lora_pocket "$r" "$q"; done
    for b in "${BLASES[@]}"; do run_lora_torch "$r" "$b"; done
  else
    for b in "${BLASES[@]}"; do run_lora_torch "$r" "$b"; done
    for q in $LORA_TYPES; do run_lora_pocket "$r" "$q"; done
  fi
done
LOAD_AFTER=$(uptime | sed "s/.*load average: //")
note "load average after: $LOAD_AFTER"

# ---- the table --------------------------------------------------------------------------------
# Every timed step of every round, pooled per case: tokens/s at the median step time, and at
# the fastest step (the one least slowed by whatever else the machine was running).
tps() {  # CASE TOKENS median|best
  cat "$OUT/$1"-r*.steps 2>/dev/null | sort -g | awk -v n="$2" -v w="$3" '
    {a[NR] = $1} END {
      if (!NR) { print "n/a"; exit }
      t = w == "best" ? a[1] : (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2)
      printf "%.1f\n", n / t }'
}
rounds() {  # CASE TOKENS: tokens/s of each round (its timed steps together)
  local r s=""
  for (( r = 1; r <= ROUNDS; r++ )); do
    s+="${s:+ / }$(awk -v n="$2" '{t += $1; c++} END {if (c) printf "%.1f", n * c / t; else print "n/a"}' "$OUT/$1-r$r.steps" 2>/dev/null || echo n/a)"
  done
  echo "$s"
}
max_mb() {  # CASE -> the largest peak RSS over the rounds
  local r m=n/a v
  for (( r = 1; r <= ROUNDS; r++ )); do
    v=$(peak_mb "$1-r$r"); [[ $v != n/a ]] && { [[ $m == n/a ]] || (( v > m )); } && m=$v
  done
  echo "$m"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2fx", a / b; else print "n/a" }'; }
met() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) print (a / b >= t ? "met" : "**not met**"); else print "n/a" }'; }
blas_name() { [[ $1 == openblas ]] && echo "OpenBLAS" || echo "system BLAS: $(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null | sed 's#.*/x86_64-linux-gnu/##')"; }
row() {  # MODEL MODE TOKENS POCKET_CASE TORCH_CASE BLAS TARGET
  local pm pb tm="skipped (no torch)" tb=n/a tmb=n/a label=""
  pm=$(tps "$4" "$3" median); pb=$(tps "$4" "$3" best)
  if [[ $6 != none ]]; then
    tm=$(tps "$5" "$3" median); tb=$(tps "$5" "$3" best); tmb="$(max_mb "$5") MB"; label=" ($(blas_name "$6"))"
  fi
  echo "| $1 | $2 | $3 | $pm | $tm$label | **$(ratio "$pm" "$tm")** | $pb / $tb = $(ratio "$pb" "$tb") | $7x: $(met "$pm" "$tm" "$7") | $(max_mb "$4") MB | $tmb |"
}

FULL_SHAPE=$(shape_of "$OUT/full/m.ckpt.gguf")
LORA_SHAPE_S=$(shape_of "$OUT/lora/base-$first_type.gguf")
{
  echo "| model | mode | tokens/step | Pocket tok/s | PyTorch tok/s | Pocket / PyTorch | fastest steps (tok/s) | target | Pocket peak RSS | PyTorch peak RSS |"
  echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |"
  for b in "${BLASES[@]:-none}"; do
    row "$(basename "$RECIPE") ($FULL_SHAPE)" "full, F32" "$FULL_TOKENS" full-pocket "full-torch-$b" "$b" 1.5
  done
  for q in $LORA_TYPES; do
    for b in "${BLASES[@]:-none}"; do
      row "$LORA_SHAPE ($LORA_SHAPE_S)" "LoRA r$LORA_RANK, ${q^^} base (PyTorch: F32)" "$LORA_TOKENS" \
        "lora-pocket-$q" "lora-torch-$b" "$b" 2
    done
  done
  echo
  echo -n "Per round (tok/s): full Pocket $(rounds full-pocket "$FULL_TOKENS")"
  for b in "${BLASES[@]}"; do echo -n "; full PyTorch/$b $(rounds "full-torch-$b" "$FULL_TOKENS")"; done
  for q in $LORA_TYPES; do echo -n "; LoRA Pocket/$q $(rounds "lora-pocket-$q" "$LORA_TOKENS")"; done
  for b in "${BLASES[@]}"; do echo -n "; LoRA PyTorch/$b $(rounds "lora-torch-$b" "$LORA_TOKENS")"; done
  echo "."
  echo "Threads $THREADS, $ROUNDS rounds. Timed steps: full $((FULL_WARMUP + 1))..$((FULL_STEPS - 1)) (Pocket), $((FULL_WARMUP + 1))..$TORCH_FULL_STEPS (PyTorch); LoRA $((LORA_WARMUP + 1))..$LORA_STEPS (Pocket), $((LORA_WARMUP + 1))..$TORCH_LORA_STEPS (PyTorch). tok/s: at the median step time of all rounds' timed steps."
  echo "Load: $LOAD_BEFORE (before), $LOAD_AFTER (after)."
} | tee "$OUT/table.md"
