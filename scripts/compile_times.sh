#!/usr/bin/env bash
# Compiler launcher that records what each translation unit costs: CPU seconds (user+sys of
# the compiler and its children), peak RSS and the source file, one line per compile, so a
# build's cost can be measured on a machine shared with other jobs (wall clock is not).
# Use it instead of ccache, in a build directory of its own, so every TU really compiles:
#   COMPILE_TIMES_LOG=/tmp/ct.log cmake --preset release -B /tmp/bt \
#       -DCMAKE_CXX_COMPILER_LAUNCHER=$PWD/scripts/compile_times.sh \
#       -DCMAKE_C_COMPILER_LAUNCHER=$PWD/scripts/compile_times.sh
#   COMPILE_TIMES_LOG=/tmp/ct.log cmake --build /tmp/bt -j2
#   sort -rn /tmp/ct.log | head -15      # the most expensive TUs
#   awk '{s+=$1} END {print s}' /tmp/ct.log   # CPU seconds of the whole build
# Log line: "<cpu seconds> <peak RSS in MiB> <source file>". Lines are appended atomically
# (one short write each), so parallel compiles may share a log.
set -uo pipefail
log=${COMPILE_TIMES_LOG:-${TMPDIR:-/tmp}/compile_times.log}
src=""
prev=""
for a in "$@"; do
  if [[ "$prev" == "-c" ]]; then src=$a; fi
  prev=$a
done
tf=$(mktemp)
/usr/bin/time -o "$tf" -f '%U %S %M' "$@"
rc=$?
if [[ -n "$src" ]]; then
  # The last line: /usr/bin/time puts "Command exited with non-zero status" before it.
  tail -n 1 "$tf" | awk -v src="$src" '{ printf "%.2f %d %s\n", $1 + $2, $3 / 1024, src }' >>"$log"
fi
rm -f "$tf"
exit $rc
