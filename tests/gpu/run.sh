#!/usr/bin/env bash
# The GPU suite (make CUDA=1 check-gpu): the engine against the CPU engine
# (test_gpu), the PyTorch parity fixtures on the GPU (test_parity and
# test_finetune with DC_TEST_DEVICE=cuda), `train`/`features` on the GPU
# end to end (test_train_gpu.sh) and `eval finetune` (test_finetune_gpu.sh). Says plainly that it skipped when no GPU is visible.
# Usage: tests/gpu/run.sh BUILD_DIR   (a CUDA build: build/<mode>-cuda)
set -u
B=${1:?usage: tests/gpu/run.sh BUILD_DIR}
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "check-gpu: SKIPPED: no NVIDIA GPU is visible on this machine (nvidia-smi finds none); nothing was tested"
  exit 0
fi
[ -x "$B/tests/gpu/test_gpu" ] || { echo "check-gpu: $B/tests/gpu/test_gpu missing: build with make CUDA=1" >&2; exit 1; }
nvidia-smi -L
export DC_TEST_BIN="$PWD/$B/deepercluster" DC_TEST_ROOT="$PWD"
export DC_TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/dcgpu.XXXXXX")
trap 'rm -rf "$DC_TEST_TMP"' EXIT
total_p=0; total_f=0; bad=()
t0=$(date +%s)
run() { # NAME CMD...
  local name=$1; shift
  local start=$EPOCHREALTIME out rc line
  out=$("$@" 2>&1); rc=$?
  line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -1)
  printf '%s\n' "$out" | grep -vE '^[0-9]+ passed, [0-9]+ failed$' | sed "s/^/  [$name] /"
  local dur; dur=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}')
  if [ -z "$line" ]; then echo "✗ $name: exited $rc without a summary line"; bad+=("$name"); return; fi
  local p=${line%% passed*} f=${line#*, }; f=${f%% failed*}
  total_p=$((total_p + p)); total_f=$((total_f + f))
  if [ "$rc" -ne 0 ] || [ "$f" -ne 0 ]; then echo "✗ $name: $line (exit $rc)"; bad+=("$name")
  else printf '✓ %-24s %s  (%ss)\n' "$name" "$line" "$dur"; fi
}
run test_gpu "$B/tests/gpu/test_gpu"
run test_gpu_kmeans "$B/tests/gpu/test_gpu_kmeans"
run test_parity_gpu env DC_TEST_DEVICE=cuda "$B/tests/test_parity"
run test_finetune_gpu env DC_TEST_DEVICE=cuda "$B/tests/test_finetune"
run test_train_gpu bash tests/gpu/test_train_gpu.sh
run test_finetune_e2e_gpu bash tests/gpu/test_finetune_gpu.sh
echo "check-gpu ($B): $total_p passed, $total_f failed, ${#bad[@]} programs failing, $(( $(date +%s) - t0 ))s"
[ ${#bad[@]} -eq 0 ]
