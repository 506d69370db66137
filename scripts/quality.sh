#!/usr/bin/env bash
# The quality comparison of docs/results.md in one command: trains
# DeeperCluster, DeepCluster and RotNet on Fashion-MNIST with the same budget
# (same images, epochs, number of training samples per epoch, network and
# seed), then scores each — and a randomly initialised network and the raw
# pixels — on the test images: k-means (k = 10) NMI/ARI/accuracy of the
# final features and the linear probe on every layer. Prints a Markdown
# table; the runs stay in $OUT (re-running resumes or reuses them).
#
# Defaults are docs/results.md's protocol (all 60,000 training images, 6 epochs,
# the probe on all training images: about 70 minutes of training and 30 of
# probing on 2 cores, from docs/results.md's figures). Smaller, for a quick look:
#   IMAGES=12000 EPOCHS=4 PROBE_IMAGES=30000 bash scripts/quality.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-./build/release/deepercluster}
D=${DATA_DIR:-/usr/share/datasets/fashion-mnist}
TRAIN=$D/train-images-idx3-ubyte.gz
TEST=$D/t10k-images-idx3-ubyte.gz
OUT=${OUT:-runs/quality}
IMAGES=${IMAGES:-60000}         # training images used
EPOCHS=${EPOCHS:-6}
SEED=${SEED:-31}
PROBE_IMAGES=${PROBE_IMAGES:-0} # per set for the probe (0: all)
TEST_IMAGES=${TEST_IMAGES:-0}   # test images clustered (0: all)
[ -x "$BIN" ] || make -j2
[ -e "$TRAIN" ] || { echo "quality.sh: $TRAIN missing (bash scripts/setup.sh installs it)" >&2; exit 1; }
mkdir -p "$OUT"

# every method sees IMAGES samples per epoch: S super-classes x epoch size
train() {
  local name=$1; shift
  echo "== training $name" >&2
  "$BIN" train --data "$TRAIN" --out "$OUT/$name" --max-images "$IMAGES" --epochs "$EPOCHS" --seed "$SEED" "$@" \
    >"$OUT/$name.train.log" 2>&1 || { tail -3 "$OUT/$name.train.log" >&2; exit 1; }
}
train deepercluster
train deepcluster --method deepcluster --epoch-size "$IMAGES"
train rotnet --method rotnet

# one table row: name | NMI | ARI | ACC | probe per layer (raw pixels: the
# last column only)
score() {
  local name=$1 weights=$2 row probes
  echo "== scoring $name" >&2
  row=$("$BIN" eval clusters --weights "$weights" --data "$TEST" --max-images "$TEST_IMAGES" 2>/dev/null |
        awk '$1 == "final" || $1 == "pixels" {printf "%s | %s | %s", $2, $3, $4}')
  [ -n "$row" ] || { echo "quality.sh: eval clusters of $weights failed" >&2; exit 1; }
  "$BIN" eval linear --weights "$weights" --train "$TRAIN" --test "$TEST" --layer all \
    --max-images "$PROBE_IMAGES" >"$OUT/$name.probe.txt" 2>/dev/null ||
    { echo "quality.sh: eval linear of $weights failed" >&2; exit 1; }
  probes=$(awk -v pad="$pad" '$1 ~ /^(conv[0-9]+|final)$/ {printf " | %s", $2}
                              $1 == "pixels" {printf "%s | %s", pad, $2}' "$OUT/$name.probe.txt")
  echo "| $name | $row$probes |"
}
pad=""
table=$(score deepercluster "$OUT/deepercluster")
layers=$(awk '$1 ~ /^(conv[0-9]+|final)$/ {print $1}' "$OUT/deepercluster.probe.txt")
for l in $layers; do [ "$l" = final ] || pad="$pad | –"; done
table+=$'\n'$(score deepcluster "$OUT/deepcluster")
table+=$'\n'$(score rotnet "$OUT/rotnet")
table+=$'\n'$(score random random:vgg-s32)
table+=$'\n'$(score pixels pixels)
echo
echo "Fashion-MNIST: $IMAGES training images, $EPOCHS epochs, seed $SEED; test images clustered: ${TEST_IMAGES/#0/all};" \
  "probe images per set: ${PROBE_IMAGES/#0/all}"
echo
printf '| features | NMI | ARI | ACC'; for l in $layers; do printf ' | probe, %s' "$l"; done; echo ' |'
printf '|---|---|---|---'; for l in $layers; do printf '|---'; done; echo '|'
echo "$table"
