#!/usr/bin/env bash
# test_mpi.sh — the communication module and distributed k-means under
# mpirun with 2 and 4 ranks (oversubscribed on this 2-core machine), and a
# failing rank bringing the whole job down with its message, quickly.
. "$(dirname "$0")/lib.sh" mpi
B=$(dirname "$BIN")
PROG="$B/tests/test_comm"
command -v mpirun >/dev/null || skip "mpirun not installed (apt-get install openmpi-bin)"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=0  # OpenMPI's own allocations
export OMP_NUM_THREADS=1
out=$(mpirun --oversubscribe -np 1 "$PROG" 2>&1)
grep -q "backend mpi" <<<"$out" || skip "this build has no MPI ($(head -1 <<<"$out"))"
for np in 2 3 4; do
  out=$(timeout 300 mpirun --oversubscribe -np $np "$PROG" 2>&1); rc=$?
  [ $rc -eq 0 ] && ok || bad "mpirun -np $np exited $rc: $out"
  grep -q "backend mpi, $np ranks" <<<"$out" && ok || bad "-np $np: $out"
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' <<<"$out")
  [ -n "$line" ] && [ "${line#*, }" = "0 failed" ] && ok || bad "-np $np: $line"
done
start=$(date +%s)
out=$(DC_TEST_ABORT=1 timeout 60 mpirun --oversubscribe -np 3 "$PROG" 2>&1); rc=$?
took=$(( $(date +%s) - start ))
[ $rc -ne 0 ] && [ $rc -ne 124 ] && ok || bad "a failing rank: exit $rc"
grep -q "rank 1: injected failure" <<<"$out" && ok || bad "no message from the failing rank: $out"
[ $took -le 15 ] && ok || bad "the job took ${took}s to stop"
# training at W = 1, 2 and 4 ranks: the same computation (the global batch
# split across the ranks, batch norm synchronised, gradients summed)
DATA=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
if [ -e "$DATA" ]; then
  TMP=${DC_TEST_TMP:-/tmp}/mpi.$$
  mkdir -p "$TMP"
  RUN=(--data "$DATA" --max-images 256 --batch-size 8 --epoch-size 16 --niter 3 --epochs 2 --reassignment 2 --k 16 --seed 5)
  # one epoch of 2 steps to compare: rounding differences (another process
  # count, or only another thread count) grow several-fold per step here,
  # flat Sobel backgrounds making ReLU and max-pool ties; after 8 steps the
  # weights of 1 and 2 threads on one process can differ by ~1%
  OMP_NUM_THREADS=2 "$DC_TEST_BIN" train "${RUN[@]}" --epochs 1 --out "$TMP/w1" >"$TMP/w1.log" 2>&1 && ok || bad "W=1 training: $(tail -3 "$TMP/w1.log")"
  losses() { grep '"type":"epoch"' "$1/stats.jsonl" | sed 's/.*"loss":\([0-9.e+-]*\).*/\1/'; }
  for np in 2 4; do
    out="$TMP/w$np"
    timeout 300 mpirun --oversubscribe -np $np "$DC_TEST_BIN" train "${RUN[@]}" --epochs 1 --out "$out" >"$out.log" 2>&1 && ok \
      || bad "W=$np training: $(grep -v '^\[' "$out.log" | tail -5)"
    grep -q "$np processes: this one takes rows 0\.\." "$out/log.txt" && ok || bad "W=$np: no share line in the log"
    [ "$(grep -c '"type":"epoch"' "$out/stats.jsonl")" -eq 1 ] && ok || bad "W=$np: stats.jsonl written by more than rank 0"
    cmp -s "$TMP/w1/assignments/epoch-000.npy" "$out/assignments/epoch-000.npy" && ok || bad "W=$np: other cluster assignments"
    paste <(losses "$TMP/w1") <(losses "$out") | awk '{d = $1 - $2; if (d < 0) d = -d; if (d > 1e-6 * $1) exit 1}' \
      && ok || bad "W=$np: epoch loss differs: $(losses "$out") vs $(losses "$TMP/w1")"
    # weights within rounding (~1e-5 after 2 steps); the momentum buffer
    # also holds the pre-BN conv biases, whose gradient is rounding
    "$DC_TEST_BIN" inspect "$TMP/w1/checkpoint.safetensors" --compare "$out/checkpoint.safetensors" >"$out.cmp"
    grep -q ", 0 tensors absent or different" "$out.cmp" && ok || bad "W=$np: $(tail -1 "$out.cmp")"
    awk '$1 != "optimizer.body.momentum" && $4 == "max_abs" && $5 + 0 > 1e-4 {print; bad = 1} END {exit bad}' "$out.cmp" \
      && ok || bad "W=$np: weights differ from W=1: $(awk '$1 != "optimizer.body.momentum" && $5 + 0 > 1e-4' "$out.cmp" | head -3)"
  done
  # the gradients summed after the backward instead of during it: the same
  # reductions (buckets), so the same weights, bit for bit
  timeout 300 mpirun --oversubscribe -np 4 "$DC_TEST_BIN" train "${RUN[@]}" --epochs 1 --grad-overlap 0 --out "$TMP/o4" \
    >"$TMP/o4.log" 2>&1 && ok || bad "W=4 --grad-overlap 0: $(grep -v '^\[' "$TMP/o4.log" | tail -5)"
  "$DC_TEST_BIN" inspect --hash "$TMP/w4/checkpoint.safetensors" | grep ' hash ' >"$TMP/a.hash"
  "$DC_TEST_BIN" inspect --hash "$TMP/o4/checkpoint.safetensors" | grep ' hash ' >"$TMP/b.hash"
  [ -s "$TMP/a.hash" ] && cmp -s "$TMP/a.hash" "$TMP/b.hash" && ok || bad "W=4: --grad-overlap 0 gives other weights"
  # the clustering sharded: each process extracts, whitens and keeps only its
  # own images' features (the PCA reads the sampled rows gathered a block at
  # a time, level 2 receives a super-cluster's members by all-to-all): with
  # one thread everywhere, the assignments and the nearest members are the
  # single process's bytes, and so is the PCA at W = 2 (at W = 3 the ranks'
  # shares are not whole batches, so features and PCA differ by rounding, as
  # before sharding) — 4 super-clusters on 3 processes (each clusters its
  # own), one sub-cluster per super-cluster (exact means), and DeepCluster's
  # flat k-means across both processes
  for cfg in "3 --super-classes 16" "2 --super-classes 16 --k 4" "2 --method deepcluster --k 8"; do
    read -r np extra <<<"$cfg"
    OMP_NUM_THREADS=1 "$DC_TEST_BIN" train "${RUN[@]}" --epochs 1 $extra --out "$TMP/s1" >"$TMP/s1.log" 2>&1 \
      || bad "W=1 $extra: $(tail -3 "$TMP/s1.log")"
    timeout 300 mpirun --oversubscribe -np "$np" "$DC_TEST_BIN" train "${RUN[@]}" --epochs 1 $extra --out "$TMP/s$np" \
      >"$TMP/s$np.log" 2>&1 && ok || bad "W=$np $extra: $(grep -v '^\[' "$TMP/s$np.log" | tail -5)"
    for f in assignments/epoch-000.npy assignments/epoch-000-nearest.npy $([ "$np" = 2 ] && echo pca.safetensors); do
      cmp -s "$TMP/s1/$f" "$TMP/s$np/$f" && ok || bad "W=$np $extra: $f differs from one process's"
    done
    "$DC_TEST_BIN" inspect "$TMP/s1/pca.safetensors" --compare "$TMP/s$np/pca.safetensors" | tail -1 \
      | awk '/0 tensors absent or different/ && $4 + 0 < 1e-5 {ok = 1} END {exit !ok}' && ok \
      || bad "W=$np $extra: the PCA differs: $("$DC_TEST_BIN" inspect "$TMP/s1/pca.safetensors" --compare "$TMP/s$np/pca.safetensors" | tail -1)"
    grep -q "each clustering holds per process: features" "$TMP/s$np/log.txt" && ok || bad "W=$np: no clustering accounting line"
    rm -rf "$TMP/s1" "$TMP/s$np"
  done
  # each process's features over --memory-mb (600 images x 512 values =
  # 1.2 MB > 1 MB): its own scratch files (features.<rank>, whitened.<rank>),
  # the PCA gathering the sampled rows from them; the same bytes as in memory
  OOC=(--data "$DATA" --max-images 1200 --batch-size 8 --epoch-size 16 --niter 3 --epochs 1 --k 16 --seed 5 --dim-pca 512)
  mkdir -p "$TMP/scr"
  timeout 300 mpirun --oversubscribe -np 2 "$DC_TEST_BIN" train "${OOC[@]}" --out "$TMP/q0" >"$TMP/q0.log" 2>&1 && ok \
    || bad "W=2 in memory: $(grep -v '^\[' "$TMP/q0.log" | tail -3)"
  timeout 300 mpirun --oversubscribe -np 2 "$DC_TEST_BIN" train "${OOC[@]}" --out "$TMP/q1" --memory-mb 1 --scratch "$TMP/scr" \
    >"$TMP/q1.log" 2>&1 && ok || bad "W=2 --memory-mb 1: $(grep -v '^\[' "$TMP/q1.log" | tail -3)"
  grep -q "over the memory budget of 1 MB: in the scratch file $TMP/scr/features.0.scratch.npy" "$TMP/q1/log.txt" && ok \
    || bad "W=2 --memory-mb 1: features not streamed"
  grep -q "of whitened features: in the scratch file $TMP/scr/whitened.0.scratch.npy" "$TMP/q1/log.txt" && ok \
    || bad "W=2 --memory-mb 1: whitened rows not streamed"
  for f in pca.safetensors assignments/epoch-000.npy assignments/epoch-000-nearest.npy checkpoint.safetensors; do
    cmp -s "$TMP/q0/$f" "$TMP/q1/$f" && ok || bad "W=2 --memory-mb 1: $f differs from the run in memory"
  done
  [ -z "$(ls -A "$TMP/scr")" ] && ok || bad "W=2: scratch files left: $(ls "$TMP/scr")"
  rm -rf "$TMP/q0" "$TMP/q1"
  # every rank resumes: 1 epoch, then the same command for 2, equals 2 at once
  timeout 300 mpirun --oversubscribe -np 2 "$DC_TEST_BIN" train "${RUN[@]}" --epochs 1 --out "$TMP/r2" >"$TMP/r2.log" 2>&1 \
    && timeout 300 mpirun --oversubscribe -np 2 "$DC_TEST_BIN" train "${RUN[@]}" --out "$TMP/r2" >>"$TMP/r2.log" 2>&1 && ok \
    || bad "W=2 resume: $(grep -v '^\[' "$TMP/r2.log" | tail -3)"
  grep -q "resuming from" "$TMP/r2/log.txt" && ok || bad "W=2: the second run did not resume"
  timeout 300 mpirun --oversubscribe -np 2 "$DC_TEST_BIN" train "${RUN[@]}" --out "$TMP/a2" >"$TMP/a2.log" 2>&1 && ok || bad "W=2, 2 epochs"
  "$DC_TEST_BIN" inspect --hash "$TMP/a2/checkpoint.safetensors" | grep ' hash ' >"$TMP/a.hash"
  "$DC_TEST_BIN" inspect --hash "$TMP/r2/checkpoint.safetensors" | grep ' hash ' >"$TMP/b.hash"
  [ -s "$TMP/a.hash" ] && cmp -s "$TMP/a.hash" "$TMP/b.hash" && ok || bad "W=2: resumed weights differ from the run in one go"
  # a rank that fails brings the job down with its message
  start=$(date +%s)
  timeout 120 mpirun --oversubscribe -np 2 "$DC_TEST_BIN" train "${RUN[@]}" --k 16 --out "$TMP/f2" --pretrained "$TMP/w1/log.txt" \
    >"$TMP/f2.log" 2>&1; rc=$?
  took=$(( $(date +%s) - start ))
  [ $rc -ne 0 ] && [ $rc -ne 124 ] && ok || bad "failing W=2 run: exit $rc"
  grep -q "rank [01]: .*log.txt" "$TMP/f2.log" && ok || bad "failing W=2 run: no message: $(tail -5 "$TMP/f2.log")"
  [ $took -le 30 ] && ok || bad "failing W=2 run took ${took}s to stop"
  rm -rf "$TMP"
fi
summary
