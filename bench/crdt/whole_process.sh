#!/usr/bin/env bash
# `pocket doc replay` against the same job in Yjs (bench/crdt/yjs_replay_once.mjs), each a
# whole process timed from outside (start, read and parse the trace, replay, encode, write),
# interleaved round by round; medians and the ratio. Both outputs must decode to the trace's
# end text (each checks it; the two files are the same update only up to encoding order).
#   bash bench/crdt/whole_process.sh [TRACE] [POCKET] [ROUNDS]
# Defaults: ../shared/data/editing-traces/automerge-paper.json.gz, build/release/pocket, 5.
set -euo pipefail
cd "$(dirname "$0")/../.."
TRACE=${1:-../shared/data/editing-traces/automerge-paper.json.gz}
POCKET=${2:-build/release/pocket}
ROUNDS=${3:-5}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
seconds() {  # wall seconds of one run of "$@", stdout discarded; fails if the run fails
  local t0 t1
  t0=$(date +%s%N)
  "$@" >/dev/null
  t1=$(date +%s%N)
  echo "$(((t1 - t0) / 1000))e-6"
}
for r in $(seq 1 "$ROUNDS"); do
  echo "pocket $(seconds "$POCKET" doc replay "$TRACE" --out "$out/p.ydoc")" >>"$out/times"
  echo "yjs $(seconds node bench/crdt/yjs_replay_once.mjs "$TRACE" "$out/y.ydoc")" >>"$out/times"
done
python3 - "$out/times" <<'PY'
import statistics, sys
t = {}
for line in open(sys.argv[1]):
    k, v = line.split()
    t.setdefault(k, []).append(float(v))
p, y = statistics.median(t["pocket"]), statistics.median(t["yjs"])
print(f"whole process, median of {len(t['pocket'])}: pocket {p * 1000:.0f} ms, yjs {y * 1000:.0f} ms, "
      f"yjs/pocket {y / p:.1f}x")
PY
