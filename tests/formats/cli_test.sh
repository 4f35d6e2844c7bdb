#!/usr/bin/env bash
# `pocket inspect`, `pocket make-model`, `pocket convert`: exit codes, one-line errors,
# byte-identical regeneration of the embedded default model.
# Env: POCKET_BIN (the binary), POCKET_SOURCE_DIR (the repository root).
set -euo pipefail
POCKET=${POCKET_BIN:?}
SRC=${POCKET_SOURCE_DIR:?}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# inspect: metadata, tensor table, totals.
out=$("$POCKET" inspect "$SRC/models/default.gguf")
grep -q "general.architecture = 'llama'" <<<"$out" || fail "inspect: no architecture line"
grep -q "tokenizer.ggml.tokens = \['<|endoftext|>'" <<<"$out" || fail "inspect: tokens not summarised"
grep -q "token_embd.weight" <<<"$out" || fail "inspect: no tensor table"
grep -q "^\* Totals: 38 tensors" <<<"$out" || fail "inspect: totals"
"$POCKET" inspect --help >/dev/null || fail "inspect --help"

# inspect on a truncated file: exit 1, exactly one line naming the file.
head -c 1000 "$SRC/models/default.gguf" >"$TMP/cut.gguf"
set +e
"$POCKET" inspect "$TMP/cut.gguf" >"$TMP/stdout" 2>"$TMP/stderr"
rc=$?
set -e
[ "$rc" = 1 ] || fail "inspect truncated: exit $rc"
[ "$(wc -l <"$TMP/stderr")" = 1 ] || fail "inspect truncated: not one line: $(cat "$TMP/stderr")"
grep -q "^pocket inspect: gguf $TMP/cut.gguf: .*runs past the end of the file (1000 bytes)" "$TMP/stderr" || fail "inspect message: $(cat "$TMP/stderr")"
[ ! -s "$TMP/stdout" ] || fail "inspect truncated: wrote to stdout"

# make-model regenerates the committed default model byte for byte.
"$POCKET" make-model --shape pocket-default --seed 0 --out "$TMP/default.gguf" >/dev/null
cmp "$TMP/default.gguf" "$SRC/models/default.gguf" || fail "default model not reproducible"

# make-model: custom shape loads back; bad flags are one-line usage errors (exit 2).
"$POCKET" make-model --d-model 64 --layers 1 --heads 2 --kv-heads 1 --d-ff 64 --vocab 600 \
  --type q8_0 --arch qwen2 --chat llama3 --out "$TMP/q.gguf" >/dev/null
"$POCKET" inspect "$TMP/q.gguf" | grep -q "blk.0.attn_q.bias" || fail "qwen2 biases"
set +e
"$POCKET" make-model --heads 3 --out "$TMP/bad.gguf" 2>"$TMP/stderr"
rc=$?
set -e
[ "$rc" = 2 ] || fail "make-model bad heads: exit $rc"
[ "$(wc -l <"$TMP/stderr")" = 1 ] || fail "make-model: not one line"
[ ! -e "$TMP/bad.gguf" ] || fail "make-model left a file behind"
set +e
"$POCKET" make-model --shape tiny --init-std 0 --out "$TMP/bad.gguf" 2>"$TMP/stderr"
rc=$?
set -e
[ "$rc" = 2 ] || fail "make-model --init-std 0: exit $rc"
grep -q "init-std must be in (0, 10]" "$TMP/stderr" || fail "make-model --init-std 0: message"
[ ! -e "$TMP/bad.gguf" ] || fail "make-model --init-std 0 left a file behind"

# convert: missing folder -> one line, non-zero, no output file.
set +e
"$POCKET" convert "$TMP/nope" --out "$TMP/c.gguf" 2>"$TMP/stderr"
rc=$?
set -e
[ "$rc" != 0 ] || fail "convert of a missing folder succeeded"
[ "$(wc -l <"$TMP/stderr")" = 1 ] || fail "convert: not one line"
[ ! -e "$TMP/c.gguf" ] || fail "convert left a file behind"
ls "$TMP" | grep -q tmp && fail "temp files left behind"
echo "formats cli: ok"
