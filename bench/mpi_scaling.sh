#!/usr/bin/env bash
# mpi_scaling.sh — the same training run on this machine's 2 cores as one
# process with 2 threads and as 2 MPI processes with 1 thread each: training
# and feature-extraction throughput, and the bytes each step all-reduces;
# then the gradient sums started while the backward runs (the default)
# against after it (--grad-overlap 0) at W = 2 and W = 4 (4 processes
# oversubscribe the 2 cores: their times are for the comparison only).
# Usage: bash bench/mpi_scaling.sh [BIN] (default build/release/deepercluster)
set -eu
BIN=${1:-build/release/deepercluster}
DATA=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
RUN=(--data "$DATA" --max-images 4096 --epochs 1 --batch-size 32 --k 64 --seed 1)
rate() { grep -o '"images_per_s":[0-9.]*' "$1/stats.jsonl" | tail -1 | cut -d: -f2; }
feat() { grep -o 'features: 100.0%  [0-9/]*  [0-9.]* img/s' "$1" | tail -1 | awk '{print $4}'; }
OMP_NUM_THREADS=2 "$BIN" train "${RUN[@]}" --out "$TMP/w1" >"$TMP/w1.log" 2>&1
OMP_NUM_THREADS=1 mpirun --oversubscribe -np 2 --bind-to core "$BIN" train "${RUN[@]}" --out "$TMP/w2" >"$TMP/w2.log" 2>&1
a=$(rate "$TMP/w1"); b=$(rate "$TMP/w2")
printf '%-28s %10s %14s\n' "vgg-s32, 4096 images" "train img/s" "features img/s"
printf '%-28s %10.1f %14s\n' "1 process x 2 threads" "$a" "$(feat "$TMP/w1.log")"
printf '%-28s %10.1f %14s\n' "2 processes x 1 thread" "$b" "$(feat "$TMP/w2.log")"
awk -v a="$a" -v b="$b" 'BEGIN{printf "ratio (2 processes / 1 process): %.2f\n", b / a}'
grep -h "each step all-reduces" "$TMP/w2/log.txt" | sed 's/^\[[^]]*\] /vgg-s32: /'
printf '\n%-28s %12s %12s %8s\n' "gradient sums" "overlap img/s" "after img/s" "ratio"
for np in 2 4; do
  for ov in 1 0; do
    OMP_NUM_THREADS=1 mpirun --oversubscribe -np $np --bind-to none "$BIN" train "${RUN[@]}" --grad-overlap $ov \
      --out "$TMP/o$np-$ov" >"$TMP/o$np-$ov.log" 2>&1
  done
  a=$(rate "$TMP/o$np-1"); b=$(rate "$TMP/o$np-0")
  printf '%-28s %12.1f %12.1f %8.2f\n' "$np processes x 1 thread" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN{print a / b}')"
done
