#!/usr/bin/env bash
# margins.sh — a trained network's evaluation figures beside a baseline's,
# with the margins: reads pairs of JSON files written by `eval clusters
# --json` (the NMI) or `eval linear --json` (the top-1), prints one row
# per pair and a last line saying where the trained network is ahead.
# Exits 2 on a missing or unreadable file; 0 otherwise.
#
#   bash scripts/margins.sh "k-means NMI" trained.json random.json "probe, conv4" t4.json r4.json ...
set -euo pipefail
[ $# -ge 3 ] && [ $(($# % 3)) -eq 0 ] || { echo "usage: margins.sh NAME TRAINED.json BASELINE.json [NAME T B ...]" >&2; exit 2; }

# The figure of one result file: the top-level "nmi" (clusters) or "top1" (linear).
figure() {
  [ -s "$1" ] || { echo "margins.sh: $1: missing or empty" >&2; return 2; }
  local v
  v=$(awk -F'\t' '
    /^\t"protocol":/ { p = $3; gsub(/[",]/, "", p) }
    /^\t"nmi":/      { nmi = $3; sub(/,$/, "", nmi) }
    /^\t"top1":/     { top = $3; sub(/,$/, "", top) }
    END { if (p == "clusters" && nmi != "") print nmi; else if (p == "linear" && top != "") print top }' "$1")
  [ -n "$v" ] || { echo "margins.sh: $1: no NMI or top-1 (not written by eval clusters/linear --json?)" >&2; return 2; }
  echo "$v"
}

rows=$(printf '%-28s %9s %9s %9s' "" trained random margin)
behind=""
while [ $# -gt 0 ]; do
  t=$(figure "$2") || exit 2
  b=$(figure "$3") || exit 2
  rows+=$'\n'$(awk -v n="$1" -v t="$t" -v b="$b" 'BEGIN { printf "%-28s %9.4f %9.4f %+9.4f", n, t, b, t - b }')
  awk -v t="$t" -v b="$b" 'BEGIN { exit !(t > b) }' || behind="$behind${behind:+, }$1"
  shift 3
done
echo "$rows"
if [ -z "$behind" ]; then
  echo "The trained network is ahead of the random one on every figure."
else
  echo "The trained network is not ahead of the random one on: $behind."
fi
