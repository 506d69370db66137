#!/usr/bin/env bash
# The feature-quality targets of issue 24, measured: DeeperCluster trained
# with the default command on all 60,000 Fashion-MNIST training images, for
# every seed, against the random network of the same seed. Scores, on the
# 10,000 test images: the final layer's k-means NMI (k = 10, the mean of
# RUNS clusterings of one whitening) and the linear probe on every layer
# (PROBE_IMAGES labelled training images). Prints a Markdown table — a row
# per seed and network, the mean ± sd of each, the margins — and one line
# per target saying whether the mean meets it:
#   - final-layer NMI >= 0.65;
#   - every conv layer's probe and the final layer's >= the random
#     network's + 1 point.
# Runs and scores stay in $OUT (re-running reuses them: a network with its
# scores is not scored again; a finished run is not trained again). The run
# directories are named as scripts/fewlabels.sh names its pre-training
# (deepercluster-SEED), so OUT=runs/fewlabels shares them.
#
#   bash scripts/targets.sh                    # about 25 minutes of training per seed on 2 cores
#   IMAGES=12000 EPOCHS=4 LR=0.01 bash scripts/targets.sh   # the main job's budget
#   TRAIN_OPTS="--batch-size 48" OUT=runs/b48 bash scripts/targets.sh   # a setting under study
# (copying docs/targets/scores/random-* into $OUT/scores spares scoring
# the random networks again)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-./build/release/deepercluster}
PY=${PY:-/usr/bin/python3}
OUT=${OUT:-runs/targets}
SEEDS=${SEEDS:-31 7 11}
IMAGES=${IMAGES:-0}             # training images (0: all)
EPOCHS=${EPOCHS:-0}             # 0: the preset's default
LR=${LR:-}
TRAIN_OPTS=${TRAIN_OPTS:-}     # more `train` options, a setting under study (e.g. "--batch-size 48")
TEST_IMAGES=${TEST_IMAGES:-0}   # test images scored (0: all 10,000)
PROBE_IMAGES=${PROBE_IMAGES:-10000}
RUNS=${RUNS:-5}                 # k-means clusterings per network
DEV=(); [ -n "${DEVICE:-}" ] && DEV=(--device "$DEVICE")
[ -x "$BIN" ] || make -j2
D=${DATA_DIR:-/usr/share/datasets/fashion-mnist}
TRAIN=$D/train-images-idx3-ubyte.gz
TEST=$D/t10k-images-idx3-ubyte.gz
[ -e "$TRAIN" ] || { echo "targets.sh: Fashion-MNIST missing (bash scripts/setup.sh installs it)" >&2; exit 1; }
mkdir -p "$OUT/scores"

# scores of one network into $2.clusters.json and $2.probe.json
score() {
  local weights=$1 out=$2 seed=$3
  [ -s "$out.probe.json" ] && [ -s "$out.clusters.json" ] && return 0
  echo "== scoring $weights (seed $seed)" >&2
  "$BIN" eval clusters --weights "$weights" --data "$TEST" --max-images "$TEST_IMAGES" --runs "$RUNS" --seed "$seed" \
    "${DEV[@]}" --json "$out.clusters.tmp" >"$out.log" 2>&1 || { tail -3 "$out.log" >&2; exit 1; }
  # the probe's test set is the first PROBE_IMAGES or TEST_IMAGES test images, whichever is smaller
  local n=$PROBE_IMAGES
  [ "$TEST_IMAGES" != 0 ] && { [ "$n" = 0 ] || [ "$TEST_IMAGES" -lt "$n" ]; } && n=$TEST_IMAGES
  "$BIN" eval linear --weights "$weights" --train "$TRAIN" --test "$TEST" --max-images "$n" --layer all --seed "$seed" \
    "${DEV[@]}" --json "$out.probe.tmp" >>"$out.log" 2>&1 || { tail -3 "$out.log" >&2; exit 1; }
  mv "$out.clusters.tmp" "$out.clusters.json"
  mv "$out.probe.tmp" "$out.probe.json"
}

for s in $SEEDS; do
  r=$OUT/deepercluster-$s
  if ! [ -s "$OUT/scores/deepercluster-$s.probe.json" ] && ! grep -q '"type":"done"\|done:' "$r/log.txt" 2>/dev/null; then
    echo "== training deepercluster, seed $s" >&2
    "$BIN" train --data "$TRAIN" --out "$r" --seed "$s" --max-images "$IMAGES" --epochs "$EPOCHS" ${LR:+--lr "$LR"} \
      $TRAIN_OPTS "${DEV[@]}" >"$r.log" 2>&1 || { tail -3 "$r.log" >&2; exit 1; }
  fi
  score "$r" "$OUT/scores/deepercluster-$s" "$s"
  score random:vgg-s32 "$OUT/scores/random-$s" "$s"
done

$PY - "$OUT" "$SEEDS" "$IMAGES" "$EPOCHS" "$LR" "$PROBE_IMAGES" "$RUNS" <<'PYEOF'
import json, os, sys
import numpy as np
out, seeds, images, epochs, lr, probe_images, runs = sys.argv[1:]
seeds = seeds.split()

def load(prefix):
    c = json.load(open(prefix + ".clusters.json"))
    p = json.load(open(prefix + ".probe.json"))["results"]
    return c["nmi"], {r["layer"]: r["top1"] for r in p}

got = {(m, s): load(os.path.join(out, "scores", f"{m}-{s}")) for m in ("deepercluster", "random") for s in seeds}
layers = list(got[("deepercluster", seeds[0])][1])
def cells(m, s):
    nmi, probe = got[(m, s)]
    return [nmi] + [probe[l] for l in layers]
def ms(v):
    v = np.asarray(v, float)
    return f"{v.mean():.4f} ± {v.std(ddof=1):.4f}" if len(v) > 1 else f"{v.mean():.4f}"

print(f"\nDeeperCluster, the default command on {images if images != '0' else 'all 60,000'} Fashion-MNIST images"
      f" ({epochs if epochs != '0' else 'the default'} epochs{', --lr ' + lr if lr else ''}), against the random"
      f" vgg-s32 of the same seed; seeds {' '.join(seeds)}. NMI: final layer, mean of {runs} k-means clusterings"
      f" (k = 10) of the test images; probe: {probe_images if probe_images != '0' else 'all'} labelled training"
      " images, top-1 on the test images.\n")
print("| network | NMI | " + " | ".join(f"probe, {l}" for l in layers) + " |")
print("|---|---|" + "---|" * len(layers))
for m in ("deepercluster", "random"):
    for s in seeds:
        print(f"| {m}, seed {s} | " + " | ".join(f"{v:.4f}" for v in cells(m, s)) + " |")
tr = np.array([cells("deepercluster", s) for s in seeds])
rd = np.array([cells("random", s) for s in seeds])
print("| **deepercluster, mean ± sd** | " + " | ".join(ms(tr[:, j]) for j in range(tr.shape[1])) + " |")
print("| **random, mean ± sd** | " + " | ".join(ms(rd[:, j]) for j in range(rd.shape[1])) + " |")
print("| margin (seed for seed) | " + " | ".join(ms(tr[:, j] - rd[:, j]) for j in range(tr.shape[1])) + " |")
print()
nmi = tr[:, 0].mean()
print(f"target NMI >= 0.65: {'met' if nmi >= 0.65 else 'NOT met'} (mean {nmi:.4f})")
margins = tr[:, 1:].mean(0) - rd[:, 1:].mean(0)
short = [l for l, m in zip(layers, margins) if round(m, 6) < 0.01]  # as printed, not float noise
print(f"target every probe >= random + 1 point: {'met' if not short else 'NOT met'} "
      f"(margins in points: {', '.join(f'{l} {m * 100:+.2f}' for l, m in zip(layers, margins))})")
PYEOF
