#!/usr/bin/env bash
# test_train_gpu.sh — `train`, `features` and `eval` on the GPU end to end:
# the device recorded in config.json, the loss goes down, a run killed by
# SIGKILL or stopped by SIGTERM and resumed ends bit-identical to an
# uninterrupted one on the same GPU, the GPU's features equal the CPU's
# within 1e-4, a batch too large for the card is refused naming one that
# fits, and a device that is not there is refused. Data: Fashion-MNIST, or
# DC_GPU_DATA (an IDX file of at least 16,384 images).
. "$(dirname "$0")/../lib.sh" train_gpu
DATA=${DC_GPU_DATA:-$FMNIST/train-images-idx3-ubyte.gz}
[ -e "$DATA" ] || skip "no data: $DATA (install dataset-fashion-mnist or set DC_GPU_DATA)"
RUN=(--data "$DATA" --max-images 16384 --batch-size 32 --niter 5 --epochs 4 --reassignment 2 --k 16 --seed 5
     --dim-pca 24 --device cuda)

expect_fail() { # PATTERN ARGS...
  local pat=$1; shift
  "$BIN" train "$@" >"$TMP/out" 2>&1; local rc=$?
  [ "$rc" -ne 0 ] && ok || bad "train $* succeeded"
  grep -qE -- "$pat" "$TMP/out" && ok || bad "train $*: no '$pat' in: $(cat "$TMP/out")"
}
expect_fail "cuda:7: 1 CUDA device is visible|cuda:7: [0-9]+ CUDA devices are visible" "${RUN[@]}" --out "$TMP/v1" --device cuda:7
expect_fail "vgg16 for batches of [0-9]+ images needs [0-9.]+ GiB of GPU memory.*batches of at most [0-9]+ images fit" \
  "${RUN[@]}" --out "$TMP/v2" --arch vgg16 --batch-size 20000 --super-classes 4
expect_fail "expected fp32 or tf32|is not one of" "${RUN[@]}" --out "$TMP/v3" --precision fp16

"$BIN" train "${RUN[@]}" --out "$TMP/full" >"$TMP/full.log" 2>&1 && ok || bad "GPU run failed: $(tail -3 "$TMP/full.log")"
grep -qE '"device":[[:space:]]*"cuda:0"' "$TMP/full/config.json" && grep -q 'cuDNN' "$TMP/full/config.json" &&
  grep -qE '"precision":[[:space:]]*"tf32"' "$TMP/full/config.json" && ok || bad "config.json: $(grep -E 'device|precision' "$TMP/full/config.json")"
grep -q "device cuda:0" "$TMP/full/log.txt" && ok || bad "log.txt names no device"
first=$(grep '"type":"epoch"' "$TMP/full/stats.jsonl" | head -1 | sed 's/.*"loss":\([0-9.e+-]*\).*/\1/')
last=$(grep '"type":"epoch"' "$TMP/full/stats.jsonl" | tail -1 | sed 's/.*"loss":\([0-9.e+-]*\).*/\1/')
echo "loss per epoch on the GPU: $(grep '"type":"epoch"' "$TMP/full/stats.jsonl" | sed 's/.*"loss":\([0-9.e+-]*\).*/\1/' | tr '\n' ' ')"
awk -v a="$first" -v b="$last" 'BEGIN{exit !(b < a)}' && ok || bad "loss did not go down: $first -> $last"
grep -q '"data_wait_s":' "$TMP/full/stats.jsonl" && ok || bad "no data_wait_s in stats.jsonl"
"$BIN" inspect --hash "$TMP/full/checkpoint.safetensors" | grep ' hash ' > "$TMP/full.hash"
[ -s "$TMP/full.hash" ] && ok || bad "no hashes"
# the same command again: the same bits (a function of the seed on one GPU)
"$BIN" train "${RUN[@]}" --out "$TMP/again" >"$TMP/again.log" 2>&1 || bad "second GPU run failed"
"$BIN" inspect --hash "$TMP/again/checkpoint.safetensors" | grep ' hash ' > "$TMP/again.hash"
cmp -s "$TMP/full.hash" "$TMP/again.hash" && ok || bad "two GPU runs of the same command differ"
signals_resume "$TMP/full.hash" "1.5 3.5" "${RUN[@]}"
# features on the GPU in fp32 = on the CPU (1e-4), final layer and a conv layer
for layer in final conv3; do
  for dev in cpu cuda; do
    "$BIN" features --weights "$TMP/full" --data "$DATA" --max-images 1000 --layer $layer --device $dev --precision fp32 \
      --out "$TMP/f-$layer-$dev.npy" >"$TMP/f.log" 2>&1 || bad "features --device $dev: $(tail -2 "$TMP/f.log")"
  done
  python3 - "$TMP/f-$layer-cpu.npy" "$TMP/f-$layer-cuda.npy" <<'PY' && ok || bad "features $layer: GPU and CPU differ"
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
e = float(np.abs(a - b).max() / np.abs(a).max())
print(f"features {sys.argv[1].split('f-')[1].split('-')[0]}: {a.shape}, largest difference relative to the largest value {e:.3g}")
sys.exit(0 if a.shape == b.shape and e < 1e-4 else 1)
PY
done
# eval on the GPU runs and gives what the CPU gives for the clusters' NMI (k-means on the same features, 1e-4 apart)
for dev in cpu cuda; do
  "$BIN" eval clusters --weights "$TMP/full" --data "$DATA" --max-images 1000 --device $dev --json "$TMP/e-$dev.json" \
    >"$TMP/e.log" 2>&1 || bad "eval clusters --device $dev: $(tail -2 "$TMP/e.log")"
done
echo "eval clusters: cpu $(cat "$TMP/e-cpu.json" 2>/dev/null | head -c 200) / cuda $(cat "$TMP/e-cuda.json" 2>/dev/null | head -c 200)"
[ -s "$TMP/e-cuda.json" ] && ok || bad "eval --device cuda wrote no results"
# --gpu-kmeans 1: the clustering's k-means on the GPU too; recorded, the loss
# goes down, the clusters' NMI against the labels in the log, a function of
# the seed
for r in gk1 gk2; do
  "$BIN" train "${RUN[@]}" --epochs 2 --gpu-kmeans 1 --out "$TMP/$r" >"$TMP/$r.log" 2>&1 ||
    bad "train --gpu-kmeans 1: $(tail -3 "$TMP/$r.log")"
done
grep -qE '"gpu_kmeans":[[:space:]]*1' "$TMP/gk1/config.json" && ok || bad "config.json: no gpu_kmeans 1"
grep -q "k-means on cuda:0" "$TMP/gk1/log.txt" && ok || bad "the log names no k-means pass on the GPU"
"$BIN" inspect --hash "$TMP/gk1/checkpoint.safetensors" | grep ' hash ' > "$TMP/gk1.hash"
"$BIN" inspect --hash "$TMP/gk2/checkpoint.safetensors" | grep ' hash ' > "$TMP/gk2.hash"
[ -s "$TMP/gk1.hash" ] && cmp -s "$TMP/gk1.hash" "$TMP/gk2.hash" && ok || bad "two --gpu-kmeans 1 runs differ"
summary
