#!/usr/bin/env bash
# Writes the King James Bible as the training text of Pocket's default model and of the
# trained perplexity check: Debian's bible-kjv-text, printed by its `bible` program, with
# each verse joined onto one line (the program wraps at 80 columns), the verse numbers
# dropped, and a "Book N" line plus a blank line before each chapter.
# Usage: scripts/kjv_text.sh OUT.txt [FIRST-LAST]   (default range gen1:1-rev22:21: all of it)
# Needs the `bible` program (apt-get install bible-kjv; scripts/deps.sh installs it).
# The same package version gives the same bytes (bible-kjv 4.38, Debian 12: 4,153,207 bytes,
# sha256 in docs/train.md); the text's hash is also in every checkpoint (pocket.data_sha256).
set -euo pipefail
out=${1:?usage: scripts/kjv_text.sh OUT.txt [FIRST-LAST]}
range=${2:-gen1:1-rev22:21}
command -v bible >/dev/null || {
  echo "kjv_text: no 'bible' program (apt-get install bible-kjv)" >&2
  exit 2
}
tmp=$(mktemp "$out.XXXXXX")
trap 'rm -f "$tmp"' EXIT
bible "$range" | LC_ALL=C awk '
  /^[A-Z0-9][A-Za-z0-9 ]* [0-9]+$/ { flush(); if (n++) print ""; print; print ""; next }
  /^ *[0-9]+ / { flush(); sub(/^ *[0-9]+ /, ""); verse = $0; next }
  /^$/ { next }
  { verse = verse " " $0 }
  function flush() { if (verse != "") print verse; verse = "" }
  END { flush() }
' >"$tmp"
[ -s "$tmp" ] || { echo "kjv_text: bible printed nothing for $range" >&2; exit 1; }
mv "$tmp" "$out"
trap - EXIT
