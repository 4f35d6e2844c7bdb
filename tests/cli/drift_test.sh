#!/usr/bin/env bash
# pocket drift end to end on the micro-dataset of testdata/eval/drift (a CSV reference and a
# JSONL current, made by tests/golden/eval/make_drift_micro.py):
#  - the committed pair drifts (exit 1) with the tests and verdict docs/eval.md shows;
#    a file against itself does not (exit 0);
#  - -m MODEL adds COLUMN:tokens for --text columns (the default model's tokenizer);
#  - --json is one object with the same verdict; --test/--threshold overrides are applied;
#  - bad input exits 2 with one line: a missing file, an unknown column, a bad --test, a
#    malformed line (FILE:LINE), which --skip-bad-lines counts and skips instead.
# Env: POCKET_BIN (the built binary), POCKET_SOURCE_DIR (the repository root).
set -euo pipefail
BIN=${POCKET_BIN:?}
SRC=${POCKET_SOURCE_DIR:?}
D="$SRC/testdata/eval/drift"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# Output is matched with here-strings, not `echo | grep -q`: grep -q exits at the first match
# and the echo's SIGPIPE would fail the pipeline under pipefail.
run() {  # run ARGS...: sets RC, OUT, ERR
  set +e
  "$BIN" drift "$@" >"$TMP/out" 2>"$TMP/err"
  RC=$?
  set -e
  OUT=$(cat "$TMP/out")
  ERR=$(cat "$TMP/err")
}

run "$D/reference.csv" "$D/current.jsonl" --text answer
[ "$RC" = 1 ] || fail "micro-dataset: exit $RC, want 1 (drift): $ERR"
grep -Eq '^plan +categorical +chisquare .* yes ' <<<"$OUT" || fail "plan row: $OUT"
grep -Eq '^country +categorical +chisquare .* no ' <<<"$OUT" || fail "country row: $OUT"
grep -Eq '^latency_ms +numerical +ks +0\.4014 +4\.988e-07 .* yes +113/75 \(7/5\)' <<<"$OUT" ||
  fail "latency row (SciPy: D=0.40142, p=4.9877e-07): $OUT"
grep -Eq '^resolved +categorical +z ' <<<"$OUT" || fail "resolved row: $OUT"
grep -Eq '^answer:words +numerical +ks ' <<<"$OUT" || fail "answer:words row: $OUT"
grep -q 'dataset drift: yes (4 of 7 columns drifted, share 0.571 >= 0.5)' <<<"$OUT" ||
  fail "verdict: $OUT"

# -m: the model's tokenizer adds answer:tokens.
run "$D/reference.csv" "$D/current.jsonl" --text answer -m "$SRC/models/default.gguf"
[ "$RC" = 1 ] || fail "-m: exit $RC, want 1: $ERR"
grep -Eq '^answer:tokens +numerical +ks .* yes ' <<<"$OUT" || fail "answer:tokens row: $OUT"
grep -q 'of 8 columns drifted' <<<"$OUT" || fail "-m verdict: $OUT"
run "$D/reference.csv" "$D/current.jsonl" -m "$SRC/models/default.gguf"
[ "$RC" = 2 ] && grep -q "name one with --text" <<<"$ERR" || fail "-m without --text: $RC $ERR"

run "$D/reference.csv" "$D/reference.csv" --text answer
[ "$RC" = 0 ] || fail "a file against itself: exit $RC, want 0: $OUT $ERR"
grep -q 'dataset drift: no (0 of 7 columns drifted' <<<"$OUT" || fail "self verdict: $OUT"

run "$D/reference.csv" "$D/current.jsonl" --columns plan,score --test score=psi \
  --threshold plan=1e-9 --threshold score=0.2 --json
[ "$RC" = 0 ] || fail "--json with overrides: exit $RC, want 0: $ERR"
grep -q '"test": "psi"' <<<"$OUT" || fail "--test score=psi not applied: $OUT"
grep -q '"threshold": 1e-09' <<<"$OUT" || fail "--threshold plan not applied: $OUT"
grep -q '"dataset_drift": false' <<<"$OUT" || fail "json verdict: $OUT"
[ "${OUT:0:1}" = "{" ] || fail "--json is not one object: $OUT"

run "$D/reference.csv" "$TMP/nope.csv"
[ "$RC" = 2 ] || fail "missing file: exit $RC, want 2"
[ "$(wc -l <<<"$ERR")" = 1 ] && grep -q "nope.csv" <<<"$ERR" || fail "missing file: $ERR"
run "$D/reference.csv" "$D/current.jsonl" --columns plan,nope
[ "$RC" = 2 ] && [ "$ERR" = "pocket drift: column 'nope' is not in $D/reference.csv" ] ||
  fail "unknown column: $RC $ERR"
run "$D/reference.csv" "$D/current.jsonl" --test plan=ttest
[ "$RC" = 2 ] && grep -q "unknown test 'ttest'" <<<"$ERR" || fail "bad --test: $RC $ERR"
run "$D/reference.csv" "$D/current.jsonl" --test latency_ms
[ "$RC" = 2 ] && grep -q "is not COLUMN=VALUE" <<<"$ERR" || fail "--test without =: $RC $ERR"

# A malformed line: fatal with FILE:LINE, or skipped and counted.
{ head -3 "$D/current.jsonl"; echo '{"plan": "pro", '; tail -n +4 "$D/current.jsonl"; } >"$TMP/bad.jsonl"
run "$D/reference.csv" "$TMP/bad.jsonl"
[ "$RC" = 2 ] && grep -q "^pocket drift: $TMP/bad.jsonl:4: " <<<"$ERR" || fail "bad line: $RC $ERR"
run "$D/reference.csv" "$TMP/bad.jsonl" --skip-bad-lines --text answer
[ "$RC" = 1 ] || fail "--skip-bad-lines: exit $RC, want 1: $ERR"
grep -q "skipped 1 malformed line(s) in $TMP/bad.jsonl" <<<"$ERR" || fail "skip count: $ERR"
grep -q "  $TMP/bad.jsonl:4: " <<<"$ERR" || fail "skip message: $ERR"

# --help documents the exit status and every flag.
"$BIN" drift --help >"$TMP/help"
for word in "Exit status: 0 no dataset drift, 1 dataset drift, 2 bad input" --columns --text \
            --test --threshold --drift-share --model --json --skip-bad-lines; do
  grep -q -- "$word" "$TMP/help" || fail "--help lacks $word"
done
echo "pocket drift: ok"
