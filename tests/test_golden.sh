#!/usr/bin/env bash
# test_golden.sh — a fixed-seed tiny run writes the same bytes as the
# program did before the trainer was split into rooms (issue 26): the
# checkpoint, the PCA and the assignments of DeeperCluster and RotNet runs (256
# Fashion-MNIST images, 3 epochs, two clusterings), hashed and compared with
# tests/fixtures/golden-runs.txt.
#
# The bits of a float computation depend on the build (optimisation level,
# -march) and on the instructions the CPU offers (oneDNN and OpenBLAS pick
# their kernels at run time), so the fixture keys each hash by the CPU's
# model name and its vector-instruction flags (the release and the ASan
# builds wrote the same bytes when they were recorded). A machine
# with no recorded key says so (SKIP) and prints the lines to record after
# checking them against a build from before the change under test.
. "$(dirname "$0")/lib.sh" golden
need_fmnist
cd "$DC_TEST_ROOT" || exit 1
FIX=tests/fixtures/golden-runs.txt
[ -s "$FIX" ] || { bad "$FIX is missing"; summary; exit; }
export OMP_NUM_THREADS=2
model=$(grep -m1 '^model name' /proc/cpuinfo | sed 's/^[^:]*: *//; s/[[:space:]]*$//')
isa=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx|fma|amx)' | sort | tr '\n' ',' | sed 's/,$//')
key="$model|$isa"

lines=()
for m in deepercluster rotnet; do
  out="$TMP/$m"
  if ! "$BIN" train --data "$FMNIST/train-images-idx3-ubyte.gz" --max-images 256 --batch-size 8 --niter 3 \
       --epochs 3 --reassignment 2 --k 16 --seed 5 --method $m --out "$out" >"$out.log" 2>&1; then
    bad "$m: the tiny run failed: $(tail -3 "$out.log")"; continue
  fi
  for f in checkpoint.safetensors pca.safetensors assignments/epoch-000.npy assignments/epoch-002.npy; do
    [ $m = rotnet ] && [ "$f" != checkpoint.safetensors ] && continue # RotNet has no clustering
    [ -e "$out/$f" ] || { bad "$m: no $f"; continue; }
    lines+=("$key|$m|$f|$(sha256sum < "$out/$f" | cut -c1-64)")
  done
done

if ! grep -qF "$key|" "$FIX"; then
  echo "SKIP: no golden hashes for $key; after checking them against a build from before, record:"
  printf '%s\n' "${lines[@]}"
  summary; exit
fi
for l in "${lines[@]}"; do
  grep -qxF "$l" "$FIX" && ok || bad "not the recorded bytes: $l; recorded: $(grep -F "${l%|*}|" "$FIX" | sed 's/.*|//')"
done
# a check on the check: every recorded line for this key was produced
n=$(grep -cF "$key|" "$FIX")
[ "$n" -eq "${#lines[@]}" ] && ok || bad "$FIX has $n lines for this machine, the runs gave ${#lines[@]}"
summary
