#!/usr/bin/env bash
# test_fewlabels.sh — scripts/fewlabels.sh (issue 28's few-label table) at
# a tiny size: it pre-trains each seed, fine-tunes the pre-trained and the
# random network, prints one row per labels/mode with mean ± sd as the
# result files say; a second invocation reuses them, and with the result
# files alone (the pre-training runs gone) it prints the same table
# without training.
. "$(dirname "$0")/lib.sh" fewlabels
need_fmnist
ROOT=${DC_TEST_ROOT:?run through tests/run.sh}
PY=/usr/bin/python3
export OMP_NUM_THREADS=2
# tiny labelled folders (100 training images, 10 per class; 60 test images)
labelled_folders "$TMP/d"
args=(BIN=$BIN PY=$PY OUT=$TMP/f TRAIN=$TMP/d/probe TEST=$TMP/d/test IMAGES=100 EPOCHS=1 SEEDS="31 7" LABELS=2
      MODES=all CROPS=1 FT_LR=0.05 FT_EPOCHS=20)
env "${args[@]}" bash "$ROOT/scripts/fewlabels.sh" >"$TMP/table.md" 2>"$TMP/err" && ok || bad "fewlabels.sh failed: $(tail -3 "$TMP/err")"
grep -qx '| labels per class | mode | pre-trained | scratch | difference | epochs | rates chosen (pre / scratch) |' \
  "$TMP/table.md" && ok || bad "table header: $(grep '^| labels' "$TMP/table.md")"
[ -e "$TMP/f/deepercluster-31/checkpoint.safetensors" ] && [ -e "$TMP/f/deepercluster-7/checkpoint.safetensors" ] \
  && ok || bad "no pre-training runs"
# the row follows from the result files
$PY - "$TMP/f" "$TMP/table.md" <<'PYEOF' >"$TMP/check" 2>&1 && ok || bad "table against results: $(cat "$TMP/check")"
import json, sys
import numpy as np
d, table = sys.argv[1], open(sys.argv[2]).read()
get = lambda tag: [json.load(open(f"{d}/lr0.05-{tag}-all-2-{s}.json")) for s in (31, 7)]
pre, scr = get("pre"), get("scratch")
for r in pre + scr:
    assert r["labelled"] == 20 and r["lr"] == 0.05 and r["crops"] == 1 and r["epochs"] == 20, r
assert pre[0]["weights"].endswith("deepercluster-31") and scr[1]["weights"] == "random:vgg-s32", (pre[0], scr[1])
ms = lambda v: f"{np.mean(v):.4f} ± {np.std(v, ddof=1):.4f}"
diff = [a["top1"] - b["top1"] for a, b in zip(pre, scr)]
row = (f"| 2 | all | {ms([r['top1'] for r in pre])} | {ms([r['top1'] for r in scr])} | {ms(diff)} | "
       f"{pre[0]['epochs']} | 0.05,0.05 / 0.05,0.05 |")
assert row in table, (row, table)
print("ok")
PYEOF
# a second invocation reuses everything: the same table, nothing run
env "${args[@]}" bash "$ROOT/scripts/fewlabels.sh" >"$TMP/table2.md" 2>"$TMP/err2" && ok || bad "second run failed"
cmp -s "$TMP/table.md" "$TMP/table2.md" && ok || bad "the second run's table differs"
grep -q "== pre-training\|== fine-tuning" "$TMP/err2" && bad "the second run trained again" || ok
# ten test crops on the same runs: every finished fine-tuning re-scored, none trained, the results kept apart
env "${args[@]}" CROPS=10 bash "$ROOT/scripts/fewlabels.sh" >"$TMP/table10.md" 2>"$TMP/err10" && ok \
  || bad "CROPS=10 failed: $(tail -3 "$TMP/err10")"
grep -q "== pre-training" "$TMP/err10" && bad "CROPS=10 pre-trained again" || ok
grep -q "(10 test crops)" "$TMP/table10.md" && grep -q '^| 2 | all |' "$TMP/table10.md" && ok \
  || bad "CROPS=10 table: $(cat "$TMP/table10.md")"
[ "$(grep -l "the fine-tuning was done" "$TMP/f"/*-c10.json.log | wc -l)" = 4 ] && ok \
  || bad "CROPS=10: not every fine-tuning was re-scored without training"
cmp -s "$TMP/table.md" "$TMP/table2.md" && [ -s "$TMP/f/lr0.05-pre-all-2-31.json" ] && ok || bad "CROPS=10 touched the 1-crop results"
# HEAD_FIRST=1: mode all with --head-first 1, kept apart (hf-…); a finished
# classifier-mode run of the seed (rate chosen: ft-…) is its first stage, not trained again
env "${args[@]}" SEEDS=31 MODES=classifier FT_LR= bash "$ROOT/scripts/fewlabels.sh" >"$TMP/tablec.md" 2>"$TMP/errc" && ok \
  || bad "MODES=classifier failed: $(tail -3 "$TMP/errc")"
env "${args[@]}" SEEDS=31 HEAD_FIRST=1 bash "$ROOT/scripts/fewlabels.sh" >"$TMP/tablehf.md" 2>"$TMP/errhf" && ok \
  || bad "HEAD_FIRST=1 failed: $(tail -3 "$TMP/errhf")"
$PY - "$TMP/f" "$TMP/tablehf.md" <<'PYEOF' >"$TMP/check" 2>&1 && ok || bad "HEAD_FIRST=1: $(cat "$TMP/check")"
import json, sys
d, table = sys.argv[1], open(sys.argv[2]).read()
for tag in ("pre", "scratch"):
    r, c = json.load(open(f"{d}/hf-lr0.05-{tag}-all-2-31.json")), json.load(open(f"{d}/ft-{tag}-classifier-2-31.json"))
    assert r["head_first"] == 1 and r["lr"] == 0.05 and r["head_lr"] == c["lr"], (r, c)
    assert "the first stage was done" in open(f"{d}/hf-lr0.05-{tag}-all-2-31.json.log").read(), tag
    assert f"| 2 | all | {r['top1']:.4f} |" in table or tag == "scratch", table
assert "--head-first 1" in table, table
print("ok")
PYEOF
cmp -s "$TMP/table.md" <(env "${args[@]}" bash "$ROOT/scripts/fewlabels.sh" 2>/dev/null) && ok || bad "HEAD_FIRST=1 touched the other results"
# another METHOD into the same OUT: its results would bear the same names, so the
# other pre-training's are refused before anything is trained, and kept
env "${args[@]}" METHOD=rotnet bash "$ROOT/scripts/fewlabels.sh" >"$TMP/tabler.md" 2>"$TMP/errr" \
  && bad "METHOD=rotnet into deepercluster's OUT succeeded: $(cat "$TMP/tabler.md")" || ok
grep -q "lr0.05-pre-all-2-31.json holds a fine-tuning of '.*deepercluster-31', not of '.*rotnet-31'" "$TMP/errr" && ok \
  || bad "METHOD=rotnet: no error naming the result file: $(cat "$TMP/errr")"
grep -q "== pre-training\|== fine-tuning" "$TMP/errr" && bad "METHOD=rotnet trained before refusing" || ok
[ ! -e "$TMP/f/rotnet-31" ] && cmp -s "$TMP/table.md" <(env "${args[@]}" bash "$ROOT/scripts/fewlabels.sh" 2>/dev/null) && ok \
  || bad "METHOD=rotnet left a run or touched the results"
# METHOD=deepcluster (one super-class) sees as many samples per epoch as
# DeeperCluster (8 super-classes): its --epoch-size is the image count
env "${args[@]}" OUT="$TMP/fd" METHOD=deepcluster SEEDS=31 bash "$ROOT/scripts/fewlabels.sh" >"$TMP/tabled.md" 2>"$TMP/errd" && ok \
  || bad "METHOD=deepcluster failed: $(tail -3 "$TMP/errd")"
samples() { sed -n 's/.* \([0-9]*\) super-classes .* epochs of \([0-9]*\) images per super-class.*/\1 \2/p' "$1" | awk '{print $1 * $2}'; }
[ "$(samples "$TMP/fd/deepcluster-31.log")" = 128 ] && [ "$(samples "$TMP/f/deepercluster-31.log")" = 128 ] && ok \
  || bad "samples per epoch: deepcluster $(samples "$TMP/fd/deepcluster-31.log"), deepercluster $(samples "$TMP/f/deepercluster-31.log")"
# … and where the images cannot be counted, it asks for EPOCH_SIZE before training
printf '%s\n' "$TMP"/d/probe/*/* >"$TMP/list.txt"
env "${args[@]}" OUT="$TMP/fe" METHOD=deepcluster SEEDS=31 IMAGES=0 TRAIN="$TMP/list.txt" bash "$ROOT/scripts/fewlabels.sh" \
  >/dev/null 2>"$TMP/erre" && bad "an uncountable TRAIN was accepted" || ok
grep -q "cannot count the images of .*list.txt .*set EPOCH_SIZE" "$TMP/erre" && [ ! -e "$TMP/fe/deepcluster-31" ] && ok \
  || bad "uncountable TRAIN: $(cat "$TMP/erre")"
# the result files alone (as committed in docs/fewlabels/scores/): no pre-training
rm -rf "$TMP/f"/deepercluster-*
env "${args[@]}" bash "$ROOT/scripts/fewlabels.sh" >"$TMP/table3.md" 2>"$TMP/err3" && ok || bad "results-only run failed"
cmp -s "$TMP/table.md" "$TMP/table3.md" && ok || bad "the results-only table differs"
grep -q "== pre-training\|== fine-tuning" "$TMP/err3" && bad "the results-only run trained" || ok
summary
