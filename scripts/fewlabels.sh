#!/usr/bin/env bash
# Transfer with few labels (issue 28): Fashion-MNIST test accuracy after
# fine-tuning (eval finetune) from a network pre-trained without labels
# against the same network trained from scratch (random:vgg-s32), at
# LABELS labelled images per class, in each of MODES (classifier: the body
# frozen; all: every layer), for every seed — the pre-training, the labelled
# subset and the fine-tuning all seeded by it. Prints a Markdown table of
# mean ± sd; runs and results stay in $OUT (re-running reuses them).
#
#   bash scripts/fewlabels.sh                                 # the default run (60,000 images, 6 epochs) per seed
#   IMAGES=12000 EPOCHS=4 LR=0.02 bash scripts/fewlabels.sh   # the main job's pre-training
# Other settings: METHOD (deepercluster; or deepcluster, rotnet — each in its
# own OUT: the result files do not name the method, and one fine-tuned from
# another method's pre-training is refused), LABELS
# ("10 100"; 0: every labelled image, "all" in the table), MODES
# ("classifier all"), SEEDS ("31 7 11"), CROPS (10; results of other than
# the centre crop are named …-c<CROPS>.json, and a finished fine-tuning is
# re-scored with them, not trained again), DEVICE (the
# --device of the pre-training and the fine-tunings; default: auto),
# FT_LR (a fixed fine-tuning rate instead of the choice on held-out
# images; its runs are kept apart, named lr<FT_LR>-…), FT_EPOCHS (the
# fine-tuning's epochs; default: 50,000 images' worth, 10 to 200), TRAIN
# and TEST (other labelled data than Fashion-MNIST's training and test
# sets: IDX, CIFAR or class folders; TRAIN is also what pre-trains),
# HEAD_FIRST=1 (mode all with --head-first 1, LP-FT: the classifier first
# trained over the frozen body as the classifier mode trains it; its runs
# are kept apart, named hf-…, and a finished classifier-mode run of the
# same seed, labels and FT_EPOCHS (ft-…) is copied in as its first stage).
# METHOD=deepcluster sees as many samples per epoch as the others
# (--epoch-size: IMAGES, or the number of TRAIN's images; EPOCH_SIZE sets
# it where TRAIN is neither IDX nor an image folder): its own default is a
# quarter of that (N/4, the original's size per super-class).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-./build/release/deepercluster}
PY=${PY:-/usr/bin/python3}
OUT=${OUT:-runs/fewlabels}
SEEDS=${SEEDS:-31 7 11}
LABELS=${LABELS:-10 100}
MODES=${MODES:-classifier all}
METHOD=${METHOD:-deepercluster}
IMAGES=${IMAGES:-0}
EPOCHS=${EPOCHS:-0}
LR=${LR:-}
CROPS=${CROPS:-10}
FT_LR=${FT_LR:-}
DEVICE=${DEVICE:-}
P=$([ -n "$FT_LR" ] && echo "lr$FT_LR" || echo ft)
HEAD_FIRST=${HEAD_FIRST:-0}
[ "$HEAD_FIRST" = 1 ] && P=hf-$P
X=$([ "$CROPS" = 1 ] || echo "-c$CROPS") # results of ten crops kept apart; the run directory is shared (a finished one is re-scored)
[ -x "$BIN" ] || make -j2
FT_EPOCHS=${FT_EPOCHS:-}
D=/usr/share/datasets/fashion-mnist
TRAIN=${TRAIN:-$D/train-images-idx3-ubyte.gz}
TEST=${TEST:-$D/t10k-images-idx3-ubyte.gz}
[ -e "$TRAIN" ] || { echo "fewlabels.sh: $TRAIN missing (bash scripts/setup.sh installs Fashion-MNIST)" >&2; exit 1; }
[ -e "$TEST" ] || { echo "fewlabels.sh: $TEST missing (bash scripts/setup.sh installs Fashion-MNIST)" >&2; exit 1; }
mkdir -p "$OUT"
extra=()
if [ "$METHOD" = deepcluster ]; then
  es=${EPOCH_SIZE:-$IMAGES}
  if [ "$es" = 0 ]; then
    es=$("$PY" - "$TRAIN" <<'PYEOF'
import gzip, os, sys
p = sys.argv[1]
if os.path.isdir(p):
    print(sum(f.lower().endswith((".png", ".jpg", ".jpeg")) for _, _, fs in os.walk(p) for f in fs))
else:
    with (gzip.open if p.endswith(".gz") else open)(p, "rb") as f:
        h = f.read(8)
    print(int.from_bytes(h[4:8], "big") if len(h) == 8 and h[:2] == b"\0\0" and h[3] >= 1 else 0)
PYEOF
) || es=0
    [ "$es" -gt 0 ] || { echo "fewlabels.sh: cannot count the images of $TRAIN (neither IDX nor an image folder): set EPOCH_SIZE to their number, the samples per epoch of METHOD=deepcluster" >&2; exit 1; }
  fi
  [ "$es" -ge 128 ] || es=128 # one batch at least, as the others' epochs
  extra=(--epoch-size "$es")
fi
# A result file names the weights it fine-tuned; one of another pre-training
# (OUT shared by two METHODs: the file names do not say the method) is
# refused, never reported under this one's name. Compared by the last path
# part, so results copied from another OUT (docs/fewlabels/scores) count.
check_weights() {
  local got
  got=$(sed -n 's/^[[:space:]]*"weights":[[:space:]]*"\(.*\)",\{0,1\}$/\1/p' "$1" | head -1)
  [ "${got##*/}" = "${2##*/}" ] && return 0
  echo "fewlabels.sh: $1 holds a fine-tuning of '$got', not of '$2': give each pre-training (METHOD) its own OUT" >&2
  exit 1
}
for s in $SEEDS; do
  run=$OUT/$METHOD-$s
  missing=0 # fine-tunings of this seed without their result (none: no pre-training needed)
  for n in $LABELS; do for mode in $MODES; do for tag in pre scratch; do
    j=$OUT/$P-$tag-$mode-$n-$s$X.json
    if [ -s "$j" ]; then check_weights "$j" "$([ $tag = pre ] && echo "$run" || echo random:vgg-s32)"; else missing=1; fi
  done; done; done
  if [ $missing = 1 ] && ! grep -q '"type":"done"\|done:' "$run/log.txt" 2>/dev/null; then
    echo "== pre-training $METHOD, seed $s" >&2
    "$BIN" train --data "$TRAIN" --out "$run" --method "$METHOD" --seed "$s" --max-images "$IMAGES" \
      --epochs "$EPOCHS" "${extra[@]}" ${LR:+--lr "$LR"} ${DEVICE:+--device "$DEVICE"} >"$run.log" 2>&1 || { tail -3 "$run.log" >&2; exit 1; }
  fi
  for n in $LABELS; do
    for mode in $MODES; do
      for w in "$run" random:vgg-s32; do
        tag=$([ "$w" = "$run" ] && echo pre || echo scratch)
        j=$OUT/$P-$tag-$mode-$n-$s$X.json
        [ -s "$j" ] && continue
        echo "== fine-tuning ($mode, $n labels per class) from $w, seed $s" >&2
        hf=()
        if [ "$HEAD_FIRST" = 1 ] && [ "$mode" = all ]; then
          hf=(--head-first 1)
          # the first stage is the classifier-mode job: a finished one is reused
          cls=$OUT/ft-$tag-classifier-$n-$s
          [ -s "$cls$X.json" ] && [ -d "$cls" ] && { [ -z "$FT_EPOCHS" ] || grep -q "\"epochs\":[[:space:]]*$FT_EPOCHS,\$" "$cls$X.json"; } && [ ! -e "$OUT/$P-$tag-$mode-$n-$s/head" ] \
            && mkdir -p "$OUT/$P-$tag-$mode-$n-$s" && cp -r "$cls" "$OUT/$P-$tag-$mode-$n-$s/head"
        fi
        "$BIN" eval finetune --weights "$w" --train "$TRAIN" --test "$TEST" --mode "$mode" --labels-per-class "$n" "${hf[@]}" \
          --seed "$s" --crops "$CROPS" ${FT_LR:+--lr "$FT_LR"} ${DEVICE:+--device "$DEVICE"} ${FT_EPOCHS:+--epochs "$FT_EPOCHS"} --out "$OUT/$P-$tag-$mode-$n-$s" --json "$j.tmp" >"$j.log" 2>&1 \
          || { tail -3 "$j.log" >&2; exit 1; }
        mv "$j.tmp" "$j"
      done
    done
  done
done
where="Fashion-MNIST"; what="the 10,000 test images"
[ "$TRAIN$TEST" = "$D/train-images-idx3-ubyte.gz$D/t10k-images-idx3-ubyte.gz" ] || where="$TRAIN" what="$TEST"
$PY - "$OUT" "$SEEDS" "$LABELS" "$MODES" "$METHOD" "$IMAGES" "$EPOCHS" "$CROPS" "$P" "$where" "$what" "$X" <<'PYEOF'
import json, os, sys
import numpy as np
out, seeds, labels, modes, method, images, epochs, crops, prefix, where, what, suffix = sys.argv[1:]
seeds, labels, modes = seeds.split(), labels.split(), modes.split()
def ms(v):
    v = np.asarray(v, float)
    return f"{v.mean():.4f} ± {v.std(ddof=1):.4f}" if len(v) > 1 else f"{v.mean():.4f}"
print(f"\nFine-tuning on {where} ({crops} test crops); pre-training: {method}, "
      f"{images if images != '0' else 'all 60,000' if where == 'Fashion-MNIST' else 'all'} images, {epochs if epochs != '0' else 'the default'} epochs; "
      f"seeds {' '.join(seeds)} (mean ± sd of top-1 on {what})"
      f"{'; mode all with --head-first 1 (the classifier first trained over the frozen body)' if prefix.startswith('hf-') else ''}.\n")
print("| labels per class | mode | pre-trained | scratch | difference | epochs | rates chosen (pre / scratch) |")
print("|---|---|---|---|---|---|---|")
for n in labels:
    for mode in modes:
        get = lambda tag: [json.load(open(os.path.join(out, f"{prefix}-{tag}-{mode}-{n}-{s}{suffix}.json"))) for s in seeds]
        pre, scr = get("pre"), get("scratch")
        diff = [a["top1"] - b["top1"] for a, b in zip(pre, scr)]
        rates = lambda rs: ",".join(f"{r['lr']:g}" for r in rs)
        print(f"| {n if n != '0' else 'all'} | {mode} | {ms([r['top1'] for r in pre])} | {ms([r['top1'] for r in scr])} | {ms(diff)} | "
              f"{pre[0]['epochs']} | {rates(pre)} / {rates(scr)} |")
PYEOF
