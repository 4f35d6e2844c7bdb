#!/usr/bin/env bash
# `pocket inspect`, `pocket make-model`, `pocket convert`, `pocket quantize`: exit codes, one-line errors,
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
grep -q "^\* Totals: 56 tensors" <<<"$out" || fail "inspect: totals"
"$POCKET" inspect --help >/dev/null || fail "inspect --help"

# inspect on a truncated file: exit 1, exactly one line naming the file.
head -c 60000 "$SRC/models/default.gguf" >"$TMP/cut.gguf"
set +e
"$POCKET" inspect "$TMP/cut.gguf" >"$TMP/stdout" 2>"$TMP/stderr"
rc=$?
set -e
[ "$rc" = 1 ] || fail "inspect truncated: exit $rc"
[ "$(wc -l <"$TMP/stderr")" = 1 ] || fail "inspect truncated: not one line: $(cat "$TMP/stderr")"
grep -q "^pocket inspect: gguf $TMP/cut.gguf: .*runs past the end of the file (60000 bytes)" "$TMP/stderr" || fail "inspect message: $(cat "$TMP/stderr")"
[ ! -s "$TMP/stdout" ] || fail "inspect truncated: wrote to stdout"

# make-model: the same shape and seed give the same bytes.
"$POCKET" make-model --shape pocket-default --seed 0 --out "$TMP/default.gguf" >/dev/null
"$POCKET" make-model --shape pocket-default --seed 0 --out "$TMP/default2.gguf" >/dev/null
cmp "$TMP/default.gguf" "$TMP/default2.gguf" || fail "make-model not deterministic"

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

# quantize: same bytes for 1 and 2 threads; provenance keys; the output loads and runs.
"$POCKET" quantize "$SRC/models/default.gguf" "$TMP/q4a.gguf" --type q4_0 -t 1 >"$TMP/stdout"
"$POCKET" quantize "$SRC/models/default.gguf" "$TMP/q4b.gguf" --type q4_0 -t 2 >/dev/null
cmp "$TMP/q4a.gguf" "$TMP/q4b.gguf" || fail "quantize: bytes depend on the thread count"
grep -q "^$TMP/q4a.gguf: q4_0, 56 tensors" "$TMP/stdout" || fail "quantize summary: $(cat "$TMP/stdout")"
out=$("$POCKET" inspect "$TMP/q4a.gguf")
grep -q "general.file_type = 2$" <<<"$out" || fail "quantize: general.file_type"
grep -q "pocket.quantize.type = 'q4_0'" <<<"$out" || fail "quantize: pocket.quantize.type"
sha=$(sha256sum "$SRC/models/default.gguf" | cut -d' ' -f1)
# (inspect shows the first 58 characters of a long string)
grep -q "pocket.parent_sha256 = '${sha:0:40}" <<<"$out" || fail "quantize: pocket.parent_sha256"
"$POCKET" run -m "$TMP/q4a.gguf" -n 4 --seed 1 "Hello" >/dev/null || fail "quantized model does not run"
"$POCKET" quantize --help | grep -q "pocket quantize .* --type q4_k" || fail "quantize --help: example"
"$POCKET" quantize --help | grep -q -- "--type TEXT=q8_0" || fail "quantize --help: default"

# quantize: a bad --type is a usage error listing the choices; a missing input is named;
# neither leaves a file, and a failed run keeps an existing good output as it was.
cp "$TMP/q4a.gguf" "$TMP/keep.gguf"
set +e
"$POCKET" quantize "$SRC/models/default.gguf" "$TMP/keep.gguf" --type q5_k 2>"$TMP/stderr"
rc=$?
set -e
[ "$rc" = 2 ] || fail "quantize --type q5_k: exit $rc"
grep -q "^pocket quantize: unknown --type 'q5_k' (q8_0, q4_0, q4_k, q6_k)$" "$TMP/stderr" ||
  fail "quantize --type message: $(cat "$TMP/stderr")"
set +e
"$POCKET" quantize "$TMP/missing.gguf" "$TMP/keep.gguf" --type q8_0 2>"$TMP/stderr"
rc=$?
set -e
[ "$rc" = 1 ] || fail "quantize missing input: exit $rc"
[ "$(wc -l <"$TMP/stderr")" = 1 ] || fail "quantize missing input: not one line"
grep -q "$TMP/missing.gguf" "$TMP/stderr" || fail "quantize: missing input not named: $(cat "$TMP/stderr")"
set +e
"$POCKET" quantize "$TMP/cut.gguf" "$TMP/keep.gguf" --type q8_0 2>/dev/null
rc=$?
set -e
[ "$rc" = 1 ] || fail "quantize truncated input: exit $rc"
cmp "$TMP/keep.gguf" "$TMP/q4a.gguf" || fail "quantize: a failed run changed the existing output"

ls "$TMP" | grep -q tmp && fail "temp files left behind"
echo "formats cli: ok"
