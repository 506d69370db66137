#!/usr/bin/env bash
# The main job, from nothing: install the Debian packages, build, train
# DeeperCluster on Fashion-MNIST (a shortened run: 12,000 training images,
# 4 epochs at learning rate 0.01 — the default 0.05 suits the full run, not
# this one: over three seeds 0.01 gave the best clusters and final-layer
# probe of 0.05, 0.02, 0.01 and 0.005 (docs/results.md) — about 3 minutes of
# training on 2 cores), then
# evaluate the learned features on
# the 10,000 test images: k-means (k = 10) NMI/ARI/accuracy (the mean of 5
# clusterings) and the linear
# probe (a middle conv layer and the final one), each beside a randomly
# initialised network of the same preset; then the run's HTML report.
# Re-running resumes (or reuses) the run in $RUN.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
make -j2
D=/usr/share/datasets/fashion-mnist
TRAIN=$D/train-images-idx3-ubyte.gz
TEST=$D/t10k-images-idx3-ubyte.gz
RUN=${RUN:-runs/fashion-mnist-quick}
BIN=./build/release/deepercluster
mkdir -p "$(dirname "$RUN")"
$BIN train --data "$TRAIN" --out "$RUN" --max-images 12000 --epochs 4 --lr 0.01
# one k-means clustering moves the NMI by about a point: each network's
# figure is the mean of 5 (k-means seeds 0-4, each the best of 10 starts)
echo "== k-means (k = 10) on the test images' features, mean ± sd of 5 clusterings: trained, then random"
$BIN eval clusters --weights "$RUN" --data "$TEST" --runs 5 --json "$RUN/eval-clusters.json"
$BIN eval clusters --weights random:vgg-s32 --data "$TEST" --runs 5 --record "$RUN" --json "$RUN/random-clusters.json"
for layer in conv4 final; do
  echo "== linear probe on $layer (10,000 training images, 10,000 test images): trained, then random"
  $BIN eval linear --weights "$RUN" --train "$TRAIN" --test "$TEST" --layer $layer --max-images 10000 \
    --json "$RUN/eval-linear-$layer.json"
  $BIN eval linear --weights random:vgg-s32 --train "$TRAIN" --test "$TEST" --layer $layer --max-images 10000 \
    --record "$RUN" --json "$RUN/random-linear-$layer.json"
done
echo "== the trained network against the random one"
bash scripts/margins.sh "k-means NMI (final, mean of 5)" "$RUN/eval-clusters.json" "$RUN/random-clusters.json" \
  "linear probe, conv4" "$RUN/eval-linear-conv4.json" "$RUN/random-linear-conv4.json" \
  "linear probe, final layer" "$RUN/eval-linear-final.json" "$RUN/random-linear-final.json"
echo "NMI: how well k-means clusters of the test images' features match the 10 classes the network never saw (0: chance, 1: the classes exactly)."
echo "Linear probe: the test accuracy of a logistic regression trained on a layer's frozen features with 10,000 labelled images, i.e. how much of the class that layer makes linearly readable."
echo "== the run's report"
$BIN report --run "$RUN"
