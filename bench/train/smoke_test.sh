#!/usr/bin/env bash
# Smoke test of the training throughput benchmark (ctest pocket_train_bench_smoke): runs
# train_bench.sh with SMOKE=1 (the CLI tests' tiny recipe and the tiny shape, a few steps, one
# round; PyTorch too when a python3 with torch is found) and checks that the table has a
# Pocket tokens/s in each row. It checks that the bench runs, not how fast anything is.
#   POCKET_BUILD_DIR=build/release bash bench/train/smoke_test.sh
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=${POCKET_BUILD_DIR:-$here/../../build/release}
out=$(mktemp -d "${TMPDIR:-/tmp}/pocket-train-bench-smoke.XXXXXX")
trap 'rm -rf "$out"' EXIT
rc=0
SMOKE=1 bash "$here/train_bench.sh" "$build" "$out" >"$out/stdout" 2>"$out/stderr" || rc=$?
if (( rc != 0 )); then
  cat "$out/stderr" >&2
  echo "FAIL: train_bench.sh exited $rc" >&2
  exit 1
fi
rows=$(grep -c '^| .* | [0-9][0-9.]* | ' "$out/table.md" || true)
if [[ $rows != 2 ]]; then
  cat "$out/stdout" "$out/stderr" >&2
  echo "FAIL: expected 2 table rows with a Pocket tokens/s (full, LoRA Q8_0), got $rows" >&2
  exit 1
fi
# With a python3 that has torch (as train_bench.sh looks for one), the PyTorch column too.
for p in /usr/bin/python3 "$(command -v python3 || true)"; do
  if [[ -n $p && -x $p ]] && "$p" -c 'import torch' 2>/dev/null; then
    rows=$(grep -c '^| .* | [0-9][0-9.]* | [0-9][0-9.]* (' "$out/table.md" || true)
    if [[ $rows != 2 ]]; then
      cat "$out/stdout" "$out/stderr" >&2
      echo "FAIL: $p has torch, but $rows of 2 rows have a PyTorch tokens/s" >&2
      exit 1
    fi
    break
  fi
done
cat "$out/table.md"
echo "PASS"
