#!/usr/bin/env bash
# dist_memory.sh — the sharded clustering's peak memory per process at
# W = 1, 2, 4 (bench_dist_cluster: N synthetic features, the training
# loop's PCA + whitening + two-level k-means across the processes); the
# objectives printed must agree (the same clustering at every W).
# Usage: bash bench/dist_memory.sh [N D DIM K M] (2000000 256 128 256 4)
set -eu
B=${BIN_DIR:-build/release}
[ -x "$B/bench/bench_dist_cluster" ] || make -j2 bench >/dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
for W in 1 2 4; do
  mpirun --oversubscribe --bind-to none -np "$W" "$B/bench/bench_dist_cluster" "$@"
done
