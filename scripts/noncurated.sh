#!/usr/bin/env bash
# The non-curated benchmark (issue 24): does DeeperCluster learn good
# features from a raw, uncurated collection, where DeepCluster degrades and
# RotNet ignores the images' statistics? Builds three corpora from the
# Fashion-MNIST training images (scripts/make_corpora.py: `balanced`,
# `longtail` — class sizes 6000 down to 60 — and `wild` — longtail plus 15%
# junk: noise, blank images, one image repeated hundreds of times, inverted
# and rotated copies, drawn shapes), each an image folder; trains
# DeeperCluster, DeepCluster and RotNet on each with the same budget (same
# network, EPOCHS epochs of the corpus's size in samples, defaults
# otherwise) for every seed; scores every network and the random network on
# the balanced test set: k-means (k = 10) NMI/ARI/ACC of the final features
# and of the best conv layer, and the linear probe on every layer trained on
# 10,000 balanced labelled images kept out of the corpora. Prints a Markdown
# table of mean ± standard deviation over the seeds; runs and scores stay in
# $OUT (re-running reuses them: a network with its scores is not trained
# again, so scores copied into $OUT/scores, e.g. the committed ones of
# docs/noncurated/, are reused with their corpora in $OUT/data).
#
# Full size (3 corpora x 3 methods x 3 seeds, 12,408-14,598 images,
# 6 epochs): roughly 10 minutes per network on 2 cores. Smaller:
#   SCALE=0.2 EPOCHS=3 SEEDS="31 7" bash scripts/noncurated.sh
# On a GPU (a CUDA=1 build): DEVICE=cuda BIN=build/bundle/deepercluster
# bash scripts/noncurated.sh trains and extracts features there.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-./build/release/deepercluster}
PY=${PY:-/usr/bin/python3}
OUT=${OUT:-runs/noncurated}
SEEDS=${SEEDS:-31 7 11}
EPOCHS=${EPOCHS:-6}
SCALE=${SCALE:-1}               # corpus class sizes times SCALE
CORPORA=${CORPORA:-balanced longtail wild}
METHODS=${METHODS:-deepercluster deepcluster rotnet}
TEST_IMAGES=${TEST_IMAGES:-10000}
PROBE_IMAGES=${PROBE_IMAGES:-10000}
CORPUS_SEED=${CORPUS_SEED:-0}
DEV=(); [ -n "${DEVICE:-}" ] && DEV=(--device "$DEVICE")
[ -x "$BIN" ] || make -j2
[ -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] ||
  { echo "noncurated.sh: Fashion-MNIST missing (bash scripts/setup.sh installs it)" >&2; exit 1; }
D=$OUT/data
want="seed $CORPUS_SEED scale $SCALE test $TEST_IMAGES probe $PROBE_IMAGES"
if [ "$(cat "$D/settings" 2>/dev/null)" != "$want" ]; then
  echo "== building the corpora ($want)" >&2
  rm -rf "$D"
  $PY scripts/make_corpora.py "$D" --seed "$CORPUS_SEED" --scale "$SCALE" --test "$TEST_IMAGES" \
    --probe "$PROBE_IMAGES" >/dev/null
  echo "$want" >"$D/settings"
fi
size() { $PY -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]]['n'])" "$D/corpora.json" "$1"; }

# scores of one network into $2.clusters.json (eval clusters --layer all)
# and $2.probe.json (eval linear --layer all)
score() {
  local weights=$1 out=$2 seed=$3
  [ -s "$out.probe.json" ] && return 0
  echo "== scoring $weights (seed $seed)" >&2
  "$BIN" eval clusters --weights "$weights" --data "$D/test" --layer all --seed "$seed" "${DEV[@]}" --json "$out.clusters.tmp" \
    >"$out.log" 2>&1 || { tail -3 "$out.log" >&2; exit 1; }
  "$BIN" eval linear --weights "$weights" --train "$D/probe" --test "$D/test" --seed "$seed" --layer all "${DEV[@]}" \
    --json "$out.probe.tmp" >>"$out.log" 2>&1 || { tail -3 "$out.log" >&2; exit 1; }
  mv "$out.clusters.tmp" "$out.clusters.json"
  mv "$out.probe.tmp" "$out.probe.json"
}

mkdir -p "$OUT/runs" "$OUT/scores"
for c in $CORPORA; do
  n=$(size "$c")
  for s in $SEEDS; do
    for m in $METHODS; do
      r=$OUT/runs/$c-$m-$s
      extra=(); [ "$m" = deepcluster ] && extra=(--epoch-size "$n")  # N samples per epoch, as the others
      [ -s "$OUT/scores/$c-$m-$s.probe.json" ] && continue   # scored already (the run may be gone)
      if ! grep -q "\"epoch\":$((EPOCHS - 1))," "$r/stats.jsonl" 2>/dev/null; then
        echo "== training $m on $c ($n images), seed $s" >&2
        "$BIN" train --data "$D/$c" --out "$r" --method "$m" --epochs "$EPOCHS" --seed "$s" "${extra[@]}" "${DEV[@]}" \
          >"$r.train.log" 2>&1 || { tail -3 "$r.train.log" >&2; exit 1; }
      fi
      score "$r" "$OUT/scores/$c-$m-$s" "$s"
    done
  done
done
for s in $SEEDS; do score random:vgg-s32 "$OUT/scores/random-$s" "$s"; done

# the table: mean ± sd over the seeds
$PY - "$OUT" "$EPOCHS" "$SEEDS" "$CORPORA" "$METHODS" <<'PYEOF'
import json, os, sys
import numpy as np
out, epochs, seeds, corpora, methods = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split(), sys.argv[5].split()
info = json.load(open(os.path.join(out, "data", "corpora.json")))

def load(prefix):
    rows = json.load(open(prefix + ".clusters.json"))["results"]
    final = next(r for r in rows if r["layer"] == "final")
    conv = [r for r in rows if r["layer"] != "final"]
    best = max(conv, key=lambda r: r["nmi"]) if conv else None
    probe = {r["layer"]: r["top1"] for r in json.load(open(prefix + ".probe.json"))["results"]}
    return final, best, probe

def ms(v):
    v = np.asarray(v, float)
    return f"{v.mean():.4f} ± {v.std(ddof=1):.4f}" if len(v) > 1 else f"{v.mean():.4f}"

def row(name, prefixes):
    got = [load(p) for p in prefixes]
    layers = list(got[0][2])
    bests = {}
    for g in got:
        if g[1]:
            bests[g[1]["layer"]] = bests.get(g[1]["layer"], 0) + 1
    best_layers = ", ".join(f"{l}×{k}" if k > 1 else l for l, k in sorted(bests.items()))
    cells = [ms([g[0][k] for g in got]) for k in ("nmi", "ari", "acc")]
    cells.append(ms([g[1]["nmi"] for g in got if g[1]]) + f" ({best_layers})")
    cells += [ms([g[2][l] for g in got]) for l in layers]
    return layers, f"| {name} | " + " | ".join(cells) + " |"

lines = []
layers = None
for c in corpora:
    for m in methods:
        layers, r = row(f"{c}: {m}", [os.path.join(out, "scores", f"{c}-{m}-{s}") for s in seeds])
        lines.append(r)
lines.append(row("random network", [os.path.join(out, "scores", f"random-{s}") for s in seeds])[1])
sizes = ", ".join(f"{c} {info[c]['n']:,}" for c in corpora)
print(f"\nCorpora (images): {sizes}; {epochs} epochs of each corpus's size in samples for every method; "
      f"seeds {' '.join(seeds)} (mean ± sd); evaluated on {info['test']:,} Fashion-MNIST test images, "
      f"the probe trained on {info['probe']:,} balanced labelled training images.\n")
print("| corpus: method | NMI | ARI | ACC | best conv NMI (layer) | " + " | ".join(f"probe, {l}" for l in layers) + " |")
print("|---|---|---|---|---|" + "---|" * len(layers))
print("\n".join(lines))
PYEOF
