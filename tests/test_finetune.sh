#!/usr/bin/env bash
# test_finetune.sh — `deepercluster eval finetune` on tiny labelled folders
# (scripts/make_corpora.py's probe and test sets): the loss goes down in
# both modes; the labelled subset is balanced, seeded and its held-out part
# inside it; a stopped run resumes to the same bytes; the JSON, eval.jsonl
# and report conventions; multi-label targets (BCE, mAP); bad input gets a
# clear error and a usage exit.
. "$(dirname "$0")/lib.sh" finetune
need_fmnist
ROOT=${DC_TEST_ROOT:?run through tests/run.sh}
PY=/usr/bin/python3
export OMP_NUM_THREADS=2
labelled_folders "$TMP/d"
D=$TMP/d
FT=("$BIN" eval finetune --train "$D/probe" --test "$D/test" --crops 1 --device cpu)

# the loss goes down, both modes (a fixed rate: no choosing)
for mode in classifier all; do
  lr=0.1; [ $mode = classifier ] && lr=0.5 # a random body under N(0, 0.01) layers, halved 15 times
  "${FT[@]}" --weights random:vgg-s32 --mode $mode --labels-per-class 6 --epochs 12 --lr $lr --batch-size 30 \
    --out "$TMP/$mode" --json "$TMP/$mode.json" >"$TMP/$mode.log" 2>&1 || bad "$mode: $(tail -2 "$TMP/$mode.log")"
  $PY - "$TMP/$mode/finetune.jsonl" "$TMP/$mode.json" <<'PYEOF' && ok || bad "$mode: the loss did not go down"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 12 and all(r["phase"] == "train" for r in rows), rows
first, last = rows[0]["loss"], min(r["loss"] for r in rows[-3:])
print(f"loss {first:.4f} -> {last:.4f}")
assert last < first - 0.02, (first, last)
res = json.load(open(sys.argv[2]))
assert res["protocol"] == "finetune" and res["labelled"] == 60 and res["held_out"] == 0 and res["epochs"] == 12
assert res["device"] == "cpu", res["device"]
assert 0 <= res["top1"] <= 1 and res["results"][0]["layer"].endswith("6 per class")
PYEOF
done

# the subset: 8 per class, 1 of them held out per class, seeded
for s in 1 1 2; do
  "${FT[@]}" --weights random:vgg-s32 --labels-per-class 8 --epochs 1 --seed $s --out "$TMP/subset$s.$RANDOM" \
    >"$TMP/sub.log" 2>&1 || bad "subset seed $s: $(tail -2 "$TMP/sub.log")"
done
$PY - "$TMP" "$D/probe" <<'PYEOF' && ok || bad "labelled subset"
import glob, os, sys
import numpy as np
tmp, probe = sys.argv[1], sys.argv[2]
# the folder's images in the reader's order (sorted paths), their classes from the sub-folders
files = sorted(glob.glob(os.path.join(probe, "*", "*.png")))
cls = np.array([int(os.path.basename(os.path.dirname(f))[5:]) for f in files])
runs = {}
for d in filter(os.path.isdir, glob.glob(os.path.join(tmp, "subset*"))):
    lab, hold = np.load(os.path.join(d, "labelled.npy")), np.load(os.path.join(d, "held_out.npy"))
    assert np.bincount(cls[lab], minlength=10).tolist() == [8] * 10, np.bincount(cls[lab])
    assert np.bincount(cls[hold], minlength=10).tolist() == [1] * 10, np.bincount(cls[hold])
    assert set(hold) <= set(lab) and len(set(lab)) == len(lab)
    runs.setdefault(os.path.basename(d).split(".")[0], []).append(sorted(lab))
assert len(runs["subset1"]) == 2 and runs["subset1"][0] == runs["subset1"][1], "the same seed chose differently"
assert runs["subset1"][0] != runs["subset2"][0], "another seed chose the same subset"
PYEOF

# choosing the rate: the mode's rate × {0.1, 1, 10} on the held-out part,
# a decade past an edge while the best sits there (6 at most), then the best
check_choice() { # finetune.jsonl, result JSON, the mode's rate, epochs
  $PY -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
res, base, epochs = json.load(open(sys.argv[2])), float(sys.argv[3]), int(sys.argv[4])
inf = float("inf")
tried = [(r["lr"], r["held_out_top1"], r["held_out_loss"] if r["held_out_loss"] >= 0 else inf)
         for r in rows if "held_out_top1" in r]
key = lambda t: (t[1], -t[2], -t[0])  # the score, then the lower loss, then the smaller rate
close = lambda a, b: abs(a - b) <= 1e-12 * abs(b)
want = [base / 10, base, base * 10]
assert len(tried) >= 3 and all(close(t[0], w) for t, w in zip(tried, want)), tried
for q in range(3, 7):  # the rule, replayed from the scores
    sofar = tried[:q]
    best = max(sofar, key=key)
    lo, hi = min(t[0] for t in sofar), max(t[0] for t in sofar)
    alone = sum(t[1:] == best[1:] for t in sofar) == 1
    nxt = None if q == 6 or best[1] < 0 or not alone else hi * 10 if best[0] == hi else lo / 10 if best[0] == lo else None
    if nxt is None:
        assert len(tried) == q, (q, tried)
        break
    assert len(tried) > q and close(tried[q][0], nxt), (q, nxt, tried)
best = max(tried, key=key)
assert res["lr"] == best[0] and res["held_out_top1"] == best[1] and res["held_out"] == 10, (res, best)
assert [r["lr"] for r in rows if r["phase"] == "train"] == [best[0]] * epochs
print(len(tried))
' "$@"
}
"${FT[@]}" --weights random:vgg-s32 --labels-per-class 5 --epochs 2 --out "$TMP/choose" --json "$TMP/choose.json" \
  >"$TMP/choose.log" 2>&1 || bad "choosing: $(tail -2 "$TMP/choose.log")"
check_choice "$TMP/choose/finetune.jsonl" "$TMP/choose.json" 0.003 2 >"$TMP/n" && ok \
  || bad "the rate was not chosen on the held-out part by the widening grid"
# one epoch of a re-initialised classifier over a random body: every rate
# scores chance on the held-out part, the largest moves the loss most, so the
# best sits at the top edge and the grid must widen past 0.03
"${FT[@]}" --weights random:vgg-s32 --labels-per-class 5 --epochs 1 --out "$TMP/widen" --json "$TMP/widen.json" \
  >"$TMP/widen.log" 2>&1 || bad "widening: $(tail -2 "$TMP/widen.log")"
n=$(check_choice "$TMP/widen/finetune.jsonl" "$TMP/widen.json" 0.003 1) && [ "$n" -gt 3 ] && ok \
  || bad "the grid did not widen past its top edge ($n rates tried): $(grep held-out "$TMP/widen.log" | tail -4)"
# the choice resumes: killed while trying the rates, the same command ends
# with the uninterrupted run's state and lines
for stop in TERM:8 KILL:11; do # about the fourth and fifth rates (each ~2.5 s here)
  sig=${stop%:*} out=$TMP/widen-${stop%:*}
  "${FT[@]}" --weights random:vgg-s32 --labels-per-class 5 --epochs 1 --out "$out" >"$out.log" 2>&1 &
  pid=$!
  sleep "${stop#*:}"
  kill -$sig $pid 2>/dev/null
  wait $pid 2>/dev/null
  "${FT[@]}" --weights random:vgg-s32 --labels-per-class 5 --epochs 1 --out "$out" >>"$out.log" 2>&1 \
    || bad "resuming the choice after SIG$sig: $(tail -2 "$out.log")"
  cmp -s "$TMP/widen/finetune.safetensors" "$out/finetune.safetensors" \
    && cmp -s <(cut -d, -f1-6 "$TMP/widen/finetune.jsonl") <(cut -d, -f1-6 "$out/finetune.jsonl") && ok \
    || bad "SIG$sig while choosing the rate, resumed: not the uninterrupted run's state and lines"
done

# resume: stopped by SIGTERM, re-run, the same state bytes as an uninterrupted run
ARGS=(--weights random:vgg-s32 --mode all --labels-per-class 6 --epochs 6 --lr 0.05 --batch-size 20)
"${FT[@]}" "${ARGS[@]}" --out "$TMP/ref" >"$TMP/ref.log" 2>&1 || bad "reference run: $(tail -2 "$TMP/ref.log")"
for delay in 2; do
  out=$TMP/stop$delay
  "${FT[@]}" "${ARGS[@]}" --out "$out" >"$out.log" 2>&1 &
  pid=$!
  sleep $delay
  kill -TERM $pid 2>/dev/null
  wait $pid; rc=$?
  [ $rc -eq 0 ] || [ $rc -eq 130 ] && ok || bad "SIGTERM at ${delay}s: exit $rc: $(tail -2 "$out.log")"
  [ $rc -eq 0 ] || grep -q "resumes it" "$out.log" && ok || bad "SIGTERM at ${delay}s: no resume hint"
  "${FT[@]}" "${ARGS[@]}" --out "$out" >>"$out.log" 2>&1 || bad "resume after ${delay}s: $(tail -2 "$out.log")"
  same_finetune "$TMP/ref" "$out" "stopped at ${delay}s (exit $rc) and resumed"
done

# a finished job with other --crops: scored again, nothing trained, the state untouched
cp "$TMP/ref/finetune.safetensors" "$TMP/ref.before"; cp "$TMP/ref/finetune.jsonl" "$TMP/ref.jsonl.before"
for crops in 10 1; do
  "$BIN" eval finetune --train "$D/probe" --test "$D/test" --device cpu "${ARGS[@]}" --crops $crops --out "$TMP/ref" \
    --json "$TMP/rescore$crops.json" >"$TMP/rescore$crops.log" 2>&1 || bad "re-scoring with $crops crops: $(tail -2 "$TMP/rescore$crops.log")"
done
grep -q "the fine-tuning was done; scoring it" "$TMP/rescore10.log" && ! grep -q "training: lr" "$TMP/rescore10.log" && ok \
  || bad "a finished job with --crops 10 trained again: $(grep -c 'epoch' "$TMP/rescore10.log") epoch lines"
cmp -s "$TMP/ref.before" "$TMP/ref/finetune.safetensors" && cmp -s "$TMP/ref.jsonl.before" "$TMP/ref/finetune.jsonl" && ok \
  || bad "re-scoring changed the job's state or lines"
$PY - "$TMP/rescore10.json" "$TMP/rescore1.json" "$TMP/ref/finetune.jsonl" <<'PYEOF' && ok || bad "the re-scored results"
import json, sys
r10, r1 = (json.load(open(p)) for p in sys.argv[1:3])
last = [json.loads(l) for l in open(sys.argv[3])][-1]
assert r10["crops"] == 10 and r1["crops"] == 1 and r10["epochs"] == r1["epochs"] == 6, (r10, r1)
assert r10["loss"] == r1["loss"] == last["loss"] and r10["lr"] == r1["lr"] == 0.05, (r10["loss"], r1["loss"], last)
print(f"re-scored: top-1 {r1['top1']:.4f} (centre crop), {r10['top1']:.4f} (ten crops)")
PYEOF

# a run directory records its result in eval.jsonl; the report shows it beside the scratch baseline
"$BIN" train --data "$D/balanced" --out "$TMP/run" --epochs 1 --seed 3 >"$TMP/run.log" 2>&1 || bad "train: $(tail -2 "$TMP/run.log")"
"${FT[@]}" --weights "$TMP/run" --labels-per-class 5 --epochs 2 --lr 0.01 >"$TMP/rec.log" 2>&1 || bad "run: $(tail -2 "$TMP/rec.log")"
"${FT[@]}" --weights random:vgg-s32 --labels-per-class 5 --epochs 2 --lr 0.01 --record "$TMP/run" >>"$TMP/rec.log" 2>&1 \
  || bad "baseline: $(tail -2 "$TMP/rec.log")"
[ "$(grep -c '"protocol":"finetune"' "$TMP/run/eval.jsonl")" = 2 ] && ok || bad "eval.jsonl: $(cat "$TMP/run/eval.jsonl")"
"$BIN" report --run "$TMP/run" --out "$TMP/report.html" >/dev/null 2>&1 || bad "report failed"
grep -q "classifier, 5 per class" "$TMP/report.html" && ok || bad "the report has no fine-tuning row"

# --head-first (LP-FT): the classifier-mode job in OUT/head first — the
# same bytes as that job run alone — then every layer from its classifier;
# killed in either stage, the same command ends with the uninterrupted bytes
HF=(--weights "$TMP/run" --labels-per-class 6 --epochs 5 --batch-size 20)
"${FT[@]}" "${HF[@]}" --mode all --head-first 1 --lr 0.05 --out "$TMP/hf" --json "$TMP/hf.json" >"$TMP/hf.log" 2>&1 \
  || bad "--head-first: $(tail -2 "$TMP/hf.log")"
"${FT[@]}" "${HF[@]}" --mode classifier --out "$TMP/hf-alone" >"$TMP/hf-alone.log" 2>&1 || bad "classifier job: $(tail -2 "$TMP/hf-alone.log")"
"${FT[@]}" "${HF[@]}" --mode all --lr 0.05 --out "$TMP/hf-plain" >"$TMP/hf-plain.log" 2>&1 || bad "plain job: $(tail -2 "$TMP/hf-plain.log")"
cmp -s "$TMP/hf/head/finetune.safetensors" "$TMP/hf-alone/finetune.safetensors" \
  && cmp -s "$TMP/hf/head/finetune.jsonl" "$TMP/hf-alone/finetune.jsonl" && ok \
  || bad "--head-first's first stage is not the classifier-mode job's bytes"
$PY - "$TMP/hf.json" "$TMP/hf/head/finetune.jsonl" "$TMP/hf/finetune.jsonl" "$TMP/hf-plain/finetune.jsonl" <<'PYEOF' \
  && ok || bad "--head-first: results and lines"
import json, sys
res = json.load(open(sys.argv[1]))
head, hf, plain = ([json.loads(l) for l in open(p)] for p in sys.argv[2:5])
chosen = [r for r in head if "held_out_top1" in r]
assert len(chosen) >= 3 and [r["lr"] for r in head if r["phase"] == "train"] == [res["head_lr"]] * 5, head
assert res["head_first"] == 1 and res["lr"] == 0.05 and "head_held_out_top1" in res, res
assert res["layer"] == "all, head first, 6 per class" and res["mode"] == "all", res
assert [r["phase"] for r in hf] == ["train"] * 5 and all(r["lr"] <= 0.05 for r in hf), hf
# the first stage's classifier is where the second starts: its first epoch is
# not the re-initialised classifier's (the plain job's, from the same seed)
assert hf[0]["loss"] != plain[0]["loss"], (hf[0], plain[0])
print(f"head rate {res['head_lr']:g}; first epoch of every layer: loss {hf[0]['loss']:.4f} "
      f"(from a re-initialised classifier: {plain[0]['loss']:.4f})")
PYEOF
# stopped once the stage's first line is written: the first stage (its
# choice of the rate under way), the second (its first epoch done)
for stop in KILL:head/finetune.jsonl TERM:head/finetune.jsonl KILL:finetune.jsonl; do
  sig=${stop%%:*} at=${stop#*:} out=$TMP/hf-$sig-${stop//[^a-z]/}
  "${FT[@]}" "${HF[@]}" --mode all --head-first 1 --lr 0.05 --out "$out" >"$out.log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do [ -s "$out/$at" ] && break; sleep 0.1; done
  kill -$sig $pid 2>/dev/null
  wait $pid 2>/dev/null
  lines=$(cat "$out/head/finetune.jsonl" "$out/finetune.jsonl" 2>/dev/null | wc -l)
  "${FT[@]}" "${HF[@]}" --mode all --head-first 1 --lr 0.05 --out "$out" --json "$out.json" >>"$out.log" 2>&1 \
    || bad "--head-first after SIG$sig once $at was written: $(tail -2 "$out.log")"
  all=$(cat "$TMP/hf/head/finetune.jsonl" "$TMP/hf/finetune.jsonl" | wc -l)
  [ "$lines" -gt 0 ] && [ "$lines" -lt "$all" ] && grep -q "^.*resuming" "$out.log" \
    && cmp -s "$TMP/hf/head/finetune.safetensors" "$out/head/finetune.safetensors" \
    && cmp -s "$TMP/hf/finetune.safetensors" "$out/finetune.safetensors" \
    && cmp -s <(grep -v '"device"' "$TMP/hf.json") <(grep -v '"device"' "$out.json") && ok \
    || bad "--head-first: SIG$sig once $at was written ($lines of $all lines), resumed: not the uninterrupted run's bytes"
done

# multi-label data: targets from .npy files (tops, footwear, odd class; a few ignored), BCE and mAP
$PY - "$D" "$TMP" <<'PYEOF' || bad "could not write the multi-label targets"
import glob, os, sys
import numpy as np
d, tmp = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(0)
for name in ("probe", "test"):
    cls = np.array([int(os.path.basename(os.path.dirname(f))[5:]) for f in sorted(glob.glob(f"{d}/{name}/*/*.png"))])
    t = np.stack([np.isin(cls, [0, 2, 4, 6]), np.isin(cls, [5, 7, 9]), cls % 2 == 1], 1).astype(np.uint8)
    t[rng.random(t.shape) < 0.05] = 255
    np.save(f"{tmp}/{name}-multi.npy", t)
np.save(f"{tmp}/bad-rows.npy", np.zeros((7, 3), np.int32))
np.save(f"{tmp}/bad-value.npy", np.full((100, 3), 3, np.int32))
PYEOF
MULTI=(--train-labels "$TMP/probe-multi.npy" --test-labels "$TMP/test-multi.npy")
"${FT[@]}" --weights random:vgg-s32 --mode all "${MULTI[@]}" --epochs 10 --lr 0.05 --batch-size 25 --out "$TMP/multi" \
  --json "$TMP/multi.json" >"$TMP/multi.log" 2>&1 || bad "multi-label: $(tail -2 "$TMP/multi.log")"
$PY - "$TMP/multi/finetune.jsonl" "$TMP/multi.json" <<'PYEOF' && ok || bad "multi-label run"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 10 and "accuracy" not in rows[0]
print(f"multi-label loss {rows[0]['loss']:.4f} -> {rows[-1]['loss']:.4f}")
assert rows[-1]["loss"] < rows[0]["loss"] - 0.05, rows
res = json.load(open(sys.argv[2]))
assert 0 < res["map"] <= 1 and "top1" not in res and res["results"][0]["map"] == res["map"], res
PYEOF
grep -q "^final *0\.[0-9]\{4\}$" "$TMP/multi.log" && ok || bad "multi-label: no mAP line"

# bad input: a clear error naming the problem, the usage exit, nothing written over
err() { # expected-message args...
  local want=$1; shift
  "$BIN" eval finetune "$@" >"$TMP/bad.out" 2>"$TMP/bad.err"; local rc=$?
  [ $rc -eq 2 ] && grep -q -- "$want" "$TMP/bad.err" && ok || bad "'$*': exit $rc, $(cat "$TMP/bad.err") (wanted: $want)"
}
err "has no labels" --weights random:vgg-s32 --train "$D/balanced" --test "$D/test"
err "class 0 has only 10 training images" --weights random:vgg-s32 --train "$D/probe" --test "$D/test" --labels-per-class 11
mkdir -p "$TMP/half"; for c in 0 1 2 3 4; do cp -r "$D/probe/class0$c" "$TMP/half/"; done
err "class 5 (image" --weights random:vgg-s32 --train "$TMP/half" --test "$D/test"
err "give --lr, or more labels" --weights random:vgg-s32 --train "$D/probe" --test "$D/test" --labels-per-class 1
err "give one of them" --weights random:vgg-s32 --train "$D/probe" --test "$D/test" --labels-per-class 2 --label-fraction 0.5
err "both --train-labels and --test-labels" --weights random:vgg-s32 --train "$D/probe" --test "$D/test" --train-labels "$TMP/probe-multi.npy"
err "expected an array (100, classes)" --weights random:vgg-s32 --train "$D/probe" --test "$D/test" --train-labels "$TMP/bad-rows.npy" --test-labels "$TMP/test-multi.npy"
err "value 3 at image 0, class 0" --weights random:vgg-s32 --train "$D/probe" --test "$D/test" --train-labels "$TMP/bad-value.npy" --test-labels "$TMP/test-multi.npy"
err "needs single-label data" --weights random:vgg-s32 --train "$D/probe" --test "$D/test" "${MULTI[@]}" --labels-per-class 3
err "goes with --mode all" --weights random:vgg-s32 --train "$D/probe" --test "$D/test" --head-first 1
err "--head-lr 0.1: the rate of --head-first 1" --weights random:vgg-s32 --train "$D/probe" --test "$D/test" --mode all --head-lr 0.1
err "--mode" --weights random:vgg-s32 --train "$D/probe" --test "$D/test" --mode everything
# --device cuda where there is no GPU (or no CUDA build): one line saying why, exit 1, nothing written
if ! nvidia-smi -L >/dev/null 2>&1; then
  "$BIN" eval finetune --weights random:vgg-s32 --train "$D/probe" --test "$D/test" --device cuda --out "$TMP/nogpu" \
    >"$TMP/bad.out" 2>"$TMP/bad.err"; rc=$?
  [ $rc -eq 1 ] && grep -qE "no GPU engine: rebuild with .make CUDA=1.|no NVIDIA driver is installed|no CUDA GPU is visible" \
    "$TMP/bad.err" && ok || bad "--device cuda without a GPU: exit $rc, $(cat "$TMP/bad.err")"
  [ ! -e "$TMP/nogpu" ] && ok || bad "--device cuda without a GPU created its --out directory"
fi
cp "$TMP/ref/finetune.safetensors" "$TMP/ref.keep"
err "holds another fine-tuning job" --weights random:vgg-s32 --train "$D/probe" --test "$D/test" --labels-per-class 3 --out "$TMP/ref"
cmp -s "$TMP/ref.keep" "$TMP/ref/finetune.safetensors" && ok || bad "a refused job changed the directory's state"
err "holds another fine-tuning job" --weights random:vgg-s32 --train "$D/probe" --test "$D/test" --mode all --head-first 1 --out "$TMP/ref"
[ ! -e "$TMP/ref/head" ] && cmp -s "$TMP/ref.keep" "$TMP/ref/finetune.safetensors" && ok \
  || bad "--head-first on another job's directory: refused only after its first stage"
summary
