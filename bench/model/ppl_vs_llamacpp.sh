#!/usr/bin/env bash
# Perplexity of Pocket against llama.cpp's llama-perplexity, type by type, on files that
# llama.cpp's own llama-quantize makes from one F16/F32 source: the check that each GGML type
# Pocket reads is decoded and multiplied as llama.cpp does (issue 12: within 0.5 %).
#   bash bench/model/ppl_vs_llamacpp.sh POCKET_BUILD LLAMA_BIN SOURCE.gguf TEXT
# POCKET_BUILD: a Pocket build dir with the `pocket` binary (build/release). LLAMA_BIN: the
# folder with llama-quantize, llama-perplexity and llama-imatrix (a llama.cpp build kept
# outside this tree). TEXT: at least CTX*CHUNKS tokens of text.
# Environment: OUT (folder for the quantized files, default the source's folder; existing
# files newer than the source are reused), TYPES (llama-quantize file types, default all
# below), CTX (256), CHUNKS (16), THREADS (2), TOL_PCT (0.5), GGUF_PY (llama.cpp's gguf-py
# folder: lists the tensor types of a file that `pocket inspect` cannot read).
# The IQ1/IQ2/IQ3 types need an importance matrix: it is made once with llama-imatrix on the
# same text (OUT/<source>.imatrix.gguf).
# A random-weight source must have sharp logits for the comparison to mean anything: make it
# with `pocket make-model --shape smollm2-135m --type f16 --seed 1 --init-std 0.05` (at the
# default 0.02 the logits are nearly uniform and Q4_0 moves perplexity by only 0.6 %).
# QUANTIZER=pocket makes the files with `pocket quantize` instead (issue 13: its output must
# load in llama.cpp and give the same perplexity there): TYPES then defaults to, and may only
# hold, Q8_0 Q4_0 Q4_K Q6_K, and the files are OUT/<source>-pocket-<type>.gguf; with PURE=1
# they are made with --pure (every matrix in the type) as OUT/<source>-pocket-pure-<type>.gguf.
# Prints one row per type: the tensor types llama-quantize put in the file, both
# perplexities, their relative difference and PASS/FAIL; a file Pocket cannot load is
# reported on its row ("pocket: <error>") and the run goes on. Exit status 0 only when every
# row passes.
set -uo pipefail
if [ $# -ne 4 ]; then
  echo "usage: bash bench/model/ppl_vs_llamacpp.sh POCKET_BUILD LLAMA_BIN SOURCE.gguf TEXT" >&2
  exit 2
fi
pocket=$1/pocket llama_bin=$2 src=$3 text=$4
ctx=${CTX:-256} chunks=${CHUNKS:-16} threads=${THREADS:-2} tol=${TOL_PCT:-0.5}
out=${OUT:-$(dirname "$src")}
quantizer=${QUANTIZER:-llama}
case $quantizer in
  llama) types=${TYPES:-"Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K_M Q4_K_M Q5_K_M Q6_K IQ4_NL IQ4_XS \
IQ3_S IQ3_XXS IQ2_S IQ2_XS IQ2_XXS IQ1_M IQ1_S"} ;;
  pocket) types=${TYPES:-"Q8_0 Q4_0 Q4_K Q6_K"} ;;
  *) echo "ppl_vs_llamacpp: QUANTIZER must be llama or pocket" >&2; exit 2 ;;
esac
for f in "$pocket" "$llama_bin/llama-quantize" "$llama_bin/llama-perplexity"; do
  [ -x "$f" ] || { echo "ppl_vs_llamacpp: $f is not an executable" >&2; exit 2; }
done
for f in "$src" "$text"; do
  [ -r "$f" ] || { echo "ppl_vs_llamacpp: cannot read $f" >&2; exit 2; }
done
mkdir -p "$out"
base=$(basename "$src" .gguf)
log=$out/$base.ppl_vs_llamacpp.log
pure=()
tag=pocket
[ "${PURE:-0}" = 1 ] && pure=(--pure) && tag=pocket-pure
[ "$quantizer" = pocket ] && log=$out/$base.$tag-quantize.ppl_vs_llamacpp.log
: >"$log"

# "Final estimate: PPL = 123.4567 +/- 1.2345" -> 123.4567 (both tools print this line).
final_ppl() { sed -n 's/.*Final estimate: PPL = \([0-9.eE+-]*\).*/\1/p' | tail -1; }

# Tensor types and counts of a GGUF file, e.g. "Q4_K:150 Q6_K:31 F32:61".
tensor_types() {
  local t
  t=$("$pocket" inspect "$1" 2>/dev/null |
    awk -F'|' '/^ *[0-9]+: +[0-9]+ \|/ {gsub(/ /, "", $3); n[$3]++}
               END {for (k in n) printf "%s:%d ", k, n[k]}')
  if [ -z "$t" ] && [ -n "${GGUF_PY:-}" ]; then
    t=$(/usr/bin/python3 - "$GGUF_PY" "$1" <<'EOF' 2>/dev/null
import collections, sys
sys.path.insert(0, sys.argv[1])
import gguf
r = gguf.GGUFReader(sys.argv[2])
c = collections.Counter(t.tensor_type.name for t in r.tensors)
print(" ".join(f"{k}:{v}" for k, v in c.most_common()))
EOF
    )
  fi
  echo "${t:-?}" | tr ' ' '\n' | grep . | sort -t: -k2,2nr | tr '\n' ' ' | sed 's/ $//'
}

llama_ppl() {
  # llama-perplexity logs from a thread of its own; on this machine it now and then exits
  # before that thread has printed the last lines (the running figures stop early or the
  # "Final estimate" line is missing). Such a run is repeated, up to three times in all.
  local try p
  for try in 1 2 3; do
    p=$("$llama_bin/llama-perplexity" -m "$1" -f "$text" -c "$ctx" --chunks "$chunks" \
      -t "$threads" 2>&1 | tee -a "$log" | final_ppl)
    [ -n "$p" ] && break
    echo "llama-perplexity printed no final estimate for $1 (try $try)" >>"$log"
  done
  echo "$p"
}

# Sets pocket_ppl, or pocket_err to the first error line when Pocket fails.
pocket_run() {
  local o
  pocket_ppl="" pocket_err=""
  o=$("$pocket" perplexity -m "$1" -f "$text" -c "$ctx" --chunks "$chunks" -t "$threads" 2>&1)
  echo "$o" >>"$log"
  pocket_ppl=$(echo "$o" | final_ppl)
  # The last line, less the "pocket perplexity: gguf PATH: " prefix the row already names.
  [ -n "$pocket_ppl" ] || pocket_err=$(echo "$o" | grep -v '^\s*$' | tail -1 |
    sed "s|^pocket perplexity: ||; s|^gguf $1: ||" | cut -c1-100)
}

needs_imatrix() { case $1 in IQ1_* | IQ2_* | IQ3_*) return 0 ;; esac; return 1; }
imatrix=$out/$base.imatrix.gguf
for t in $types; do
  [ "$quantizer" = llama ] || break
  needs_imatrix "$t" || continue
  if ! [ "$imatrix" -nt "$src" ]; then
    echo "making the importance matrix $imatrix (llama-imatrix, -c $ctx, $chunks chunks)" >&2
    "$llama_bin/llama-imatrix" -m "$src" -f "$text" -c "$ctx" --chunks "$chunks" \
      -t "$threads" -o "$imatrix" >>"$log" 2>&1 ||
      echo "llama-imatrix failed: see $log" >&2
  fi
  break
done

printf '%s, -c %s, %s chunks of %s\n' "$src" "$ctx" "$chunks" "$text"
# "vs source": how far the type moves llama.cpp's own perplexity from the source file's, the
# scale against which the tolerance is to be read.
row() { printf '%-8s | %-40s | %9s | %14s | %14s | %8s | %s\n' "$@"; }
row type "tensor types ($quantizer quantize${pure[*]:+ --pure})" "vs source" "llama.cpp ppl" "Pocket ppl" "rel diff" \
  result
fails=0
src_ppl=""
for t in SOURCE $types; do
  file=$src
  if [ "$t" != SOURCE ] && [ "$quantizer" = pocket ]; then
    file=$out/$base-$tag-$t.gguf
    if ! [ "$file" -nt "$src" ] &&
      ! "$pocket" quantize "${pure[@]}" "$src" "$file" --type "${t,,}" -t "$threads" \
        >>"$log" 2>&1; then
      row "$t" - - - - - "pocket quantize failed"
      fails=$((fails + 1))
      continue
    fi
  elif [ "$t" != SOURCE ]; then
    file=$out/$base-$t.gguf
    if ! [ "$file" -nt "$src" ]; then
      extra=()
      needs_imatrix "$t" && [ -r "$imatrix" ] && extra=(--imatrix "$imatrix")
      if ! "$llama_bin/llama-quantize" "${extra[@]}" "$src" "$file" "$t" "$threads" \
        >>"$log" 2>&1; then
        rm -f "$file"
        row "$t" - - - - - "llama-quantize failed"
        fails=$((fails + 1))
        continue
      fi
    fi
  fi
  lp=$(llama_ppl "$file")
  pocket_run "$file"
  [ "$t" = SOURCE ] && src_ppl=$lp
  result="" diff="-" vs_src="-"
  [ -n "$lp" ] && [ -n "$src_ppl" ] &&
    vs_src=$(awk -v a="$src_ppl" -v b="$lp" 'BEGIN {printf "%+.2f%%", 100 * (b - a) / a}')
  if [ -z "$lp" ]; then
    result="llama-perplexity failed"
  elif [ -z "$pocket_ppl" ]; then
    result="pocket: $pocket_err"
  else
    diff=$(awk -v a="$lp" -v b="$pocket_ppl" 'BEGIN {printf "%+.3f%%", 100 * (b - a) / a}')
    result=$(awk -v a="$lp" -v b="$pocket_ppl" -v tol="$tol" \
      'BEGIN {d = 100 * (b - a) / a; if (d < 0) d = -d; print (d < tol ? "PASS" : "FAIL")}')
  fi
  [ "$result" = PASS ] || fails=$((fails + 1))
  row "$t" "$(tensor_types "$file")" "$vs_src" "${lp:--}" "${pocket_ppl:--}" "$diff" "$result"
done
echo "$fails row(s) not passing; logs in $log"
[ "$fails" -eq 0 ]
