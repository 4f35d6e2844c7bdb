#!/usr/bin/env bash
# Every test: install what is missing, then
#   1. release build (g++, -Werror): unit, end-to-end and cross-language tests, each
#      benchmark once, the layering check;
#   2. dev build (clang, ASan + UBSan): the same tests, then each libFuzzer target for a
#      fixed, seeded number of runs (POCKET_FUZZ_RUNS, default 100000; POCKET_FUZZ_SEED,
#      default 1), so a CI result is reproducible; longer exploratory runs: raise both;
#      then the update_fuzz corpus is replayed against real Yjs (tests/crdt/fuzz_diff.mjs,
#      reported only: the grown corpus is not reproducible).
# POCKET_TEST_QUICK=1 skips the dev build.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
FUZZ_RUNS=${POCKET_FUZZ_RUNS:-100000}
FUZZ_SEED=${POCKET_FUZZ_SEED:-1}
# Targets with an open, reproduced failure (names, space-separated): built, runnable by
# hand, not run here until the bug is fixed. None at present.
FUZZ_KNOWN_FAILING=${POCKET_FUZZ_KNOWN_FAILING:-}

bash scripts/deps.sh --with-node
python3 scripts/check_layering.py

echo "== release build" >&2
cmake --preset release -DPOCKET_WERROR=ON -DPOCKET_BENCH=ON >/dev/null
cmake --build build/release -j "$JOBS"
echo "== release tests" >&2
ctest --test-dir build/release --output-on-failure -j "$JOBS"
echo "== benchmarks, one pass each" >&2
benchmarks=0
for b in build/release/src/*/pocket_*_bench; do
  [ -x "$b" ] || continue
  "$b" --benchmark_min_time=0.01 >/dev/null || { echo "benchmark failed: $b" >&2; exit 1; }
  benchmarks=$((benchmarks + 1))
done
# A configuration without the benchmarks would make this pass silently: say so and fail.
((benchmarks > 0)) || { echo "no benchmark binary under build/release/src" >&2; exit 1; }
echo "benchmarks: ${benchmarks} ran once each" >&2

if [ "${POCKET_TEST_QUICK:-0}" = 1 ]; then exit 0; fi

echo "== dev build (ASan + UBSan)" >&2
cmake --preset dev >/dev/null
cmake --build build/dev -j "$JOBS"
echo "== dev tests" >&2
ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build/dev --output-on-failure -j "$JOBS" -LE slow
echo "== fuzz, ${FUZZ_RUNS} runs per target, seed ${FUZZ_SEED}" >&2
for f in $(find build/dev -name '*_fuzz' -type f -perm -u+x | sort); do
  name=$(basename "$f")
  if [[ " $FUZZ_KNOWN_FAILING " == *" $name "* ]]; then
    echo "fuzz: $name SKIPPED (POCKET_FUZZ_KNOWN_FAILING)" >&2
    continue
  fi
  corpus=build/dev/fuzz-corpus/$name
  mkdir -p "$corpus"
  seeds=testdata/fuzz/$name
  [ -d "$seeds" ] || seeds=""
  echo "fuzz: $name" >&2
  "$f" -seed="$FUZZ_SEED" -runs="$FUZZ_RUNS" -max_total_time=300 -rss_limit_mb=2048 -print_final_stats=0 \
       "$corpus" $seeds 2>build/dev/$name.log || { tail -50 build/dev/$name.log; exit 1; }
done
# What the update fuzzer's corpus does to a doc, checked against real Yjs. Reported, not
# gating: the corpus libFuzzer grows differs from run to run even with a fixed seed, so a
# rare divergence would make CI flaky. Each one found is triaged by hand and its input
# committed to testdata/fuzz/update_fuzz, whose replay (CTest crdt_yjs_fuzz_seeds) gates.
node tests/crdt/fuzz_diff.mjs --keep-going build/release/tests/crdt/crdt_peer \
    build/dev/fuzz-corpus/update_fuzz ||
  echo "fuzz_diff: the differences above are not gating; triage them (docs/crdt.md)" >&2
echo "== all tests passed" >&2
