#!/usr/bin/env bash
# kmeans_outofcore.sh — `kmeans` on a feature matrix larger than its memory
# budget against the same command with the matrix in memory, side by side:
# peak resident memory (file-backed pages of a mapping included), wall time,
# and whether the assignments and centroids are the same bytes. Flat k-means
# and two-level (4 super-clusters: each one's members over the budget go
# through a scratch file). Defaults: issue 25's 4,000,000 x 512 (8 GB) with
# --memory-mb 2000.
# Usage: N=4000000 D=512 MB=2000 bash bench/kmeans_outofcore.sh [BIN]
set -eu
BIN=${1:-build/release/deepercluster}
N=${N:-4000000}; D=${D:-512}; MB=${MB:-2000}; K=${K:-256}; NITER=${NITER:-5}
PY=${PY:-/usr/bin/python3}
TMP=${TMP_DIR:-$(mktemp -d)}
trap 'rm -rf "$TMP"' EXIT
# the matrix: 64 Gaussian blobs, written in slices (never whole in memory)
"$PY" - "$TMP/x.npy" "$N" "$D" <<'PYEOF'
import sys, numpy as np
path, n, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
centres = rng.normal(size=(64, d)).astype(np.float32) * 2
x = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
for a in range(0, n, 262144):
    b = min(n, a + 262144)
    x[a:b] = centres[rng.integers(0, 64, b - a)] + rng.standard_normal((b - a, d), dtype=np.float32)
x.flush()
PYEOF
run() { # NAME ARGS... -> "seconds peak_MB"
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$TMP/$name.time" "$BIN" kmeans --in "$TMP/x.npy" --niter "$NITER" --seed 1 \
    --out "$TMP/$name.npy" --centroids "$TMP/$name.c.npy" --scratch "$TMP" "$@" >"$TMP/$name.log" 2>&1
  awk '{printf "%s %.0f", $1, $2 / 1024}' "$TMP/$name.time"
}
printf 'kmeans on %s x %s float32 (%s MB), k = %s, %s passes + 1; budget --memory-mb %s\n' "$N" "$D" \
  $(( N * D * 4 >> 20 )) "$K" "$NITER" "$MB"
printf '%-26s %12s %12s %12s %12s %8s %6s\n' "" "memory s" "memory MB" "budget s" "budget MB" "time x" "same"
for mode in flat two-level; do
  extra=(--k "$K"); [ "$mode" = two-level ] && extra+=(--super-clusters 4)
  read -r ta ma <<<"$(run "$mode-mem" "${extra[@]}" --memory-mb $(( N * D * 4 / 1048576 + 1024 )))"
  read -r tb mb <<<"$(run "$mode-ooc" "${extra[@]}" --memory-mb "$MB")"
  grep -q "read a block at a time" "$TMP/$mode-ooc.log" || { echo "the budget run did not stream" >&2; exit 1; }
  same=no; cmp -s "$TMP/$mode-mem.npy" "$TMP/$mode-ooc.npy" && cmp -s "$TMP/$mode-mem.c.npy" "$TMP/$mode-ooc.c.npy" && same=yes
  printf '%-26s %12s %12s %12s %12s %8.2f %6s\n' "$mode" "$ta" "$ma" "$tb" "$mb" "$(awk -v a="$ta" -v b="$tb" 'BEGIN{print b / a}')" "$same"
done
