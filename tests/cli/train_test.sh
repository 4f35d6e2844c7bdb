#!/usr/bin/env bash
# pocket train / repro / finetune and run --lora end to end, on the tiny recipe and corpus of
# tests/cli/train (a few seconds in all):
#  - train gives the same bytes with --threads 1 and 2, and when stopped after a step and resumed;
#  - repro passes with --threads 1 and 2 against the digest of a first run, fails (exit 1, both
#    digests) when the recipe's seed changes, and prints the digest to record when none is;
#  - finetune on a folder of notes lowers the held-out validation loss; run --lora changes the
#    greedy output and equals the --merge model's;
#  - a bad recipe key or flag exits 2 with one line naming it.
# Env: POCKET_BIN (the built binary), POCKET_SOURCE_DIR (the repository root).
set -euo pipefail
BIN=${POCKET_BIN:?}
SRC=${POCKET_SOURCE_DIR:?}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

cp -r "$SRC/tests/cli/train" "$TMP/w"
R="$TMP/w/recipe.toml"

# Train: 1 and 2 threads, the same bytes; the output carries the provenance keys.
"$BIN" train "$R" -q -t 1 --out "$TMP/t1/tiny.gguf" >"$TMP/out1" 2>"$TMP/err" || fail "train: $(cat "$TMP/err")"
"$BIN" train "$R" -q -t 2 --out "$TMP/t2/tiny.gguf" >/dev/null 2>"$TMP/err" || fail "train -t 2: $(cat "$TMP/err")"
A=$(sha "$TMP/t1/tiny.gguf")
[ "$A" = "$(sha "$TMP/t2/tiny.gguf")" ] || fail "train: --threads 1 and 2 differ"
grep -q "sha256 $A" "$TMP/out1" || fail "train did not print the output's sha256: $(cat "$TMP/out1")"
for key in pocket.recipe_sha256 pocket.data_sha256 pocket.seed pocket.tool_version; do
  grep -aq "$key" "$TMP/t1/tiny.gguf" || fail "no $key in the output"
done
[ -f "$TMP/t1/tiny.ckpt.gguf" ] && [ -f "$TMP/t1/tiny.ckpt-state.gguf" ] || fail "no checkpoint files"
# The trained model runs.
"$BIN" run "$TMP/t1/tiny.gguf" "The sea" -n 4 --temp 0 >/dev/null 2>"$TMP/err" || fail "run: $(cat "$TMP/err")"

# Stopped after step 13 (between checkpoints), then resumed: the same bytes.
"$BIN" train "$R" -q --stop-after 13 --out "$TMP/t3/tiny.gguf" >"$TMP/out3" 2>"$TMP/err" || fail "stop: $(cat "$TMP/err")"
[ ! -e "$TMP/t3/tiny.gguf" ] || fail "a stopped run wrote the final output"
grep -q -- "--resume" "$TMP/out3" || fail "a stopped run did not say how to resume"
"$BIN" train "$R" -q --resume -t 2 --out "$TMP/t3/tiny.gguf" >/dev/null 2>"$TMP/err" || fail "resume: $(cat "$TMP/err")"
grep -q "resuming from .* at step 13" "$TMP/err" || fail "resume did not resume: $(cat "$TMP/err")"
[ "$A" = "$(sha "$TMP/t3/tiny.gguf")" ] || fail "a resumed run ends with other bytes"
[ "$(wc -l <"$TMP/t3/tiny.log.jsonl")" -eq 40 ] || fail "the resumed run's log does not hold the 40 steps once"
grep -q "<svg" "$TMP/t3/tiny.loss.svg" || fail "no loss curve"

# Repro: no digest recorded -> exit 1 with the digest to record.
set +e
"$BIN" repro "$R" -q >"$TMP/rout" 2>"$TMP/err"; rc=$?
set -e
[ $rc -eq 1 ] || fail "repro without a digest: exit $rc"
grep -q "sha256 = \"$A\"" "$TMP/rout" || fail "repro did not print the digest to record: $(cat "$TMP/rout")"
printf '\n[repro]\nsha256 = "%s"\n' "$A" >>"$R"
for t in 1 2; do
  "$BIN" repro "$R" -q -t $t >"$TMP/rout" 2>"$TMP/err" || fail "repro -t $t: $(cat "$TMP/rout" "$TMP/err")"
  grep -q "^reproduced" "$TMP/rout" || fail "repro -t $t: $(cat "$TMP/rout")"
done
sed -i 's/^seed = 7$/seed = 8/' "$R"
set +e
"$BIN" repro "$R" -q >"$TMP/rout" 2>"$TMP/err"; rc=$?
set -e
[ $rc -eq 1 ] || fail "repro with another seed: exit $rc"
grep -q "NOT reproduced" "$TMP/rout" && grep -q "recorded sha256 $A" "$TMP/rout" ||
  fail "repro with another seed: $(cat "$TMP/rout")"
sed -i 's/^seed = 8$/seed = 7/' "$R"

# Finetune on notes: the held-out loss falls; run --lora differs from the base and equals the
# merged model (greedy).
BASE="$TMP/t1/tiny.ckpt.gguf"
"$BIN" finetune "$BASE" --data "$TMP/w/notes" --out "$TMP/ft/notes-lora.gguf" \
  --merge "$TMP/ft/merged.gguf" --steps 40 --lr 3e-2 --batch 2 --seq-len 32 -q \
  >"$TMP/fout" 2>"$TMP/err" || fail "finetune: $(cat "$TMP/err")"
read -r before after < <(sed -n 's/.*validation loss \([0-9.]*\) -> \([0-9.]*\).*/\1 \2/p' "$TMP/fout")
[ -n "$before" ] || fail "finetune printed no validation loss: $(cat "$TMP/fout")"
awk -v b="$before" -v a="$after" 'BEGIN { exit !(a < b) }' || fail "validation loss did not fall: $before -> $after"
grep -aq "adapter.lora.alpha" "$TMP/ft/notes-lora.gguf" || fail "no adapter.lora.alpha in the adapter"
gen() { "$BIN" run "$@" "Meeting with the" -n 16 --temp 0 2>"$TMP/err" || fail "run $*: $(cat "$TMP/err")"; }
plain=$(gen "$BASE")
lora=$(gen "$BASE" --lora "$TMP/ft/notes-lora.gguf")
merged=$(gen "$TMP/ft/merged.gguf")
[ "$plain" != "$lora" ] || fail "run --lora did not change the output"
[ "$lora" = "$merged" ] || fail "run --lora and the merged model differ: '$lora' vs '$merged'"
# An adapter that does not fit is named.
set +e
"$BIN" run "$BASE" --lora "$BASE" "x" -n 1 >/dev/null 2>"$TMP/err"; rc=$?
set -e
[ $rc -ne 0 ] && grep -q "LoRA adapter $BASE: not a LoRA adapter" "$TMP/err" || fail "bad adapter: $(cat "$TMP/err")"

# Bad recipe keys and flags: exit 2, one line naming them.
expect2() {
  local what=$1 pattern=$2; shift 2
  set +e
  "$@" >/dev/null 2>"$TMP/err"; local rc=$?
  set -e
  [ $rc -eq 2 ] || fail "$what: exit $rc ($(cat "$TMP/err"))"
  [ "$(wc -l <"$TMP/err")" -eq 1 ] || fail "$what: not one line: $(cat "$TMP/err")"
  grep -q -- "$pattern" "$TMP/err" || fail "$what: '$pattern' not in $(cat "$TMP/err")"
}
sed 's/^lr = /lr_max = /' "$R" >"$TMP/w/bad.toml"
expect2 "unknown recipe key" "training.lr_max: unknown key" "$BIN" train "$TMP/w/bad.toml"
sed 's/^d_model = 32$/d_model = -1/' "$R" >"$TMP/w/bad2.toml"
expect2 "bad recipe value" "model.d_model" "$BIN" repro "$TMP/w/bad2.toml"
expect2 "bad --threads" "--threads" "$BIN" train "$R" --threads -3
expect2 "bad --lora-rank" "--lora-rank" "$BIN" finetune "$BASE" --data "$TMP/w/notes" --out "$TMP/x.gguf" --lora-rank 0
expect2 "bad --targets" "--targets" "$BIN" finetune "$BASE" --data "$TMP/w/notes" --out "$TMP/x.gguf" --targets q,x
echo "train_test: ok"
