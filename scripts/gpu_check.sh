#!/usr/bin/env bash
# gpu_check.sh — everything a GPU node should run, in one go, from a
# bundle (make CUDA=1 bundle): the GPU suite (tests/gpu/run.sh), the
# side-by-side benchmark against PyTorch on the same card, and the
# wall-clock of `train` on all 60,000 Fashion-MNIST images with the
# defaults. Logs into LOGDIR.
#   scripts/gpu_check.sh BUNDLE.tar.xz DATA_DIR LOGDIR [quick]
# DATA_DIR holds train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz.
# Time limits in seconds (0 skips the part): T_CHECK (300), T_BENCH (200),
# T_TRAIN (150), T_KMEANS (0: the k-means benchmark, bench/kmeans_vs_faiss.py --device cuda); CASES=vgg16:48,... the bench's rows; AUTOTUNE=1 adds our timed algorithm choice to the bench;
# PROFILE=1 adds per-layer CUDA-event timings of the VGG-16 step;
# T_NONCURATED (0) runs scripts/noncurated.sh on the GPU (NC_EPOCHS, 30:
# five times the CPU table's budget; NC_SEEDS, "31 7 11") into
# LOG/noncurated.md, its runs in a scratch folder (re-running reuses them).
# T_FEWLABELS (0) runs scripts/fewlabels.sh on the GPU (issue 28's
# table): for each of FL_METHODS ("deepercluster rotnet deepcluster") the
# default 60,000-image pre-training per seed (FL_SEEDS, "31 7 11"), then
# classifier mode with the rate chosen on held-out images and the whole
# network at the original's fixed 0.05 (from a re-initialised classifier,
# then with --head-first 1: after the classifier-mode runs), at FL_LABELS ("10 100 1000 0"; 0:
# all 60,000) labels per class, FL_CROPS (10) test crops, into
# LOG/fewlabels-<method>-<mode>.md (runs in FL_OUT, /tmp/fewlabels-gpu;
# the scratch runs are shared by the methods). DATA_DIR then also holds
# t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz.
set -u
BUNDLE=${1:?usage: gpu_check.sh BUNDLE.tar.xz DATA_DIR LOGDIR [quick]}
DATA=${2:?data dir}
LOG=${3:?log dir}
QUICK=${4:-}
mkdir -p "$LOG"
t0=$(date +%s)
stage=$(mktemp -d)
tar -C "$stage" -xJf "$BUNDLE" || exit 1
dir=$(ls -d "$stage"/*/)
. "$dir/env.sh"
mkdir -p build && ln -sfn "${dir%/}/build" build/bundle
echo "== machine"; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
nproc; python3 -c 'import torch; print("torch", torch.__version__, torch.backends.cudnn.version())' 2>&1
missing=$(ldd build/bundle/deepercluster | grep 'not found')
[ -z "$missing" ] || { echo "libraries not found: $missing"; exit 1; }
ldd build/bundle/deepercluster | grep -E 'cudnn|cublas|cudart'
export DC_GPU_DATA=$DATA/train-images-idx3-ubyte.gz
echo "== check-gpu"
[ "${T_CHECK:-300}" -gt 0 ] && timeout "${T_CHECK:-300}" bash tests/gpu/run.sh build/bundle 2>&1 | tee "$LOG/check-gpu.log" | tail -80
echo "== bench ($(( $(date +%s) - t0 ))s so far)"
[ "${T_BENCH:-200}" -gt 0 ] && timeout "${T_BENCH:-200}" python3 bench/nn_vs_torch.py --device cuda \
  --binary build/bundle/bench/bench_nn ${QUICK:+--quick} ${AUTOTUNE:+--autotune} ${CASES:+--cases $CASES} 2>&1 |
  tee "$LOG/bench.log"
if [ "${T_KMEANS:-0}" -gt 0 ]; then
  echo "== k-means on the GPU against a PyTorch k-means on the same card ($(( $(date +%s) - t0 ))s so far)"
  timeout "${T_KMEANS}" python3 bench/kmeans_vs_faiss.py --device cuda --build build/bundle 2>&1 | tee "$LOG/kmeans.log"
fi
if [ "${PROFILE:-0}" = 1 ]; then
  echo "== where the time goes: vgg16 b256 tf32 and vgg-s32 b256 tf32, CUDA events per layer"
  DC_GPU_PROFILE=1 timeout 60 build/bundle/bench/bench_nn vgg16 256 1 4 cuda tf32 2>&1 | tee "$LOG/profile-vgg16.log"
  DC_GPU_PROFILE=1 timeout 30 build/bundle/bench/bench_nn vgg-s32 256 1 20 cuda tf32 2>&1 | tee "$LOG/profile-s32.log"
fi
if [ "${T_NONCURATED:-0}" -gt 0 ]; then
  echo "== the non-curated benchmark on the GPU ($(( $(date +%s) - t0 ))s so far)"
  DEVICE=cuda BIN=build/bundle/deepercluster OUT=${NC_OUT:-/tmp/noncurated} EPOCHS=${NC_EPOCHS:-30} \
    SEEDS=${NC_SEEDS:-31 7 11} timeout "$T_NONCURATED" bash scripts/noncurated.sh >"$LOG/noncurated.md" \
    2>"$LOG/noncurated.log"
  echo "noncurated exit $?"; tail -20 "$LOG/noncurated.md"
fi
if [ "${T_FEWLABELS:-0}" -gt 0 ]; then
  echo "== fine-tuning with few labels on the GPU ($(( $(date +%s) - t0 ))s so far)"
  end=$(( $(date +%s) + T_FEWLABELS )) fl=${FL_OUT:-/tmp/fewlabels-gpu}
  for method in ${FL_METHODS:-deepercluster rotnet deepcluster}; do
    mkdir -p "$fl/$method"
    [ "$method" = deepercluster ] || cp -n "$fl"/deepercluster/*-scratch-*.json "$fl/$method/" 2>/dev/null
    for mode in classifier all all-hf; do # all-hf: the whole network after the classifier (--head-first 1)
      left=$(( end - $(date +%s) )); [ $left -gt 0 ] || break 2
      lr=; [ $mode != classifier ] && lr=0.05
      hf=0; [ $mode = all-hf ] && hf=1
      DEVICE=cuda BIN=build/bundle/deepercluster OUT=$fl/$method METHOD=$method MODES=${mode%-hf} FT_LR=$lr HEAD_FIRST=$hf \
        LABELS=${FL_LABELS:-10 100 1000 0} SEEDS=${FL_SEEDS:-31 7 11} CROPS=${FL_CROPS:-10} \
        TRAIN=$DATA/train-images-idx3-ubyte.gz TEST=$DATA/t10k-images-idx3-ubyte.gz \
        timeout $left bash scripts/fewlabels.sh >"$LOG/fewlabels-$method-$mode.md" 2>"$LOG/fewlabels-$method-$mode.log"
      echo "fewlabels $method $mode: exit $? ($(( $(date +%s) - t0 ))s so far)"; tail -8 "$LOG/fewlabels-$method-$mode.md"
    done
  done
fi
[ "${T_TRAIN:-150}" -gt 0 ] || { echo "== done in $(( $(date +%s) - t0 ))s"; exit 0; }
echo "== train on all 60,000 images, defaults, GPU ($(( $(date +%s) - t0 ))s so far)"
s=$(date +%s.%N)
timeout "${T_TRAIN:-150}" build/bundle/deepercluster train --data "$DATA/train-images-idx3-ubyte.gz" --out "$stage/full" \
  --device cuda >"$LOG/train60k.log" 2>&1; rc=$?
e=$(date +%s.%N)
echo "train exit $rc in $(awk -v a="$s" -v b="$e" 'BEGIN{printf "%.1f", b-a}') s"
grep -E '"type":"(epoch|clustering)"' "$stage/full/stats.jsonl" | cut -c1-300 | tee "$LOG/train60k-stats.txt"
tail -3 "$LOG/train60k.log"
echo "== done in $(( $(date +%s) - t0 ))s"
