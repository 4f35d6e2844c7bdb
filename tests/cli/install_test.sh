#!/usr/bin/env bash
# `cmake --install` into a temporary prefix, then the installed binary run from another
# working directory with no POCKET_MODEL: it must find its default model relative to itself
# (P/bin/pocket -> P/share/pocket/models/default.gguf), and say how to point at a model once
# that file is gone. Also checks the docs are installed.
# Env: POCKET_BUILD_DIR (the configured and built tree), POCKET_SOURCE_DIR (the repository root).
set -euo pipefail
BUILD=${POCKET_BUILD_DIR:?}
SRC=${POCKET_SOURCE_DIR:?}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
P="$TMP/prefix"

cmake --install "$BUILD" --prefix "$P" >"$TMP/install.log" || fail "cmake --install: $(cat "$TMP/install.log")"
[ -x "$P/bin/pocket" ] || fail "no $P/bin/pocket"
cmp -s "$SRC/models/default.gguf" "$P/share/pocket/models/default.gguf" || fail "default model not installed"
[ -f "$P/share/doc/pocket/README.md" ] || fail "README not installed"
for doc in "$SRC"/docs/*.md; do
  [ -f "$P/share/doc/pocket/docs/$(basename "$doc")" ] || fail "docs/$(basename "$doc") not installed"
done

# Run from a directory with nothing of Pocket's in or above it.
mkdir -p "$TMP/elsewhere"
cd "$TMP/elsewhere"
env -u POCKET_MODEL "$P/bin/pocket" run "Hi" -n 4 --seed 1 >"$TMP/out" 2>"$TMP/err" ||
  fail "installed pocket run: $(cat "$TMP/err")"
[ -s "$TMP/out" ] || fail "installed pocket run printed nothing"
# The same text as the build tree's binary with the source tree's model.
env -u POCKET_MODEL "$BUILD/pocket" run -m "$SRC/models/default.gguf" "Hi" -n 4 --seed 1 \
  >"$TMP/want" 2>/dev/null || fail "build tree pocket run"
cmp -s "$TMP/out" "$TMP/want" || fail "installed output differs: '$(cat "$TMP/out")' vs '$(cat "$TMP/want")'"

# Without the installed model nothing else is picked up, and the error says what to do.
rm "$P/share/pocket/models/default.gguf"
set +e
env -u POCKET_MODEL "$P/bin/pocket" run "Hi" -n 4 >"$TMP/out" 2>"$TMP/err"
rc=$?
set -e
[ "$rc" = 1 ] || fail "missing default model: exit $rc"
[ "$(wc -l <"$TMP/err")" = 1 ] || fail "missing default model: not one line: $(cat "$TMP/err")"
grep -q "^pocket run: .*$P/share/pocket/models/default.gguf.*-m PATH or set POCKET_MODEL" "$TMP/err" ||
  fail "missing default model message: $(cat "$TMP/err")"
echo "install test: ok"
