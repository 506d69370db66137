#!/usr/bin/env bash
# test_finetune_gpu.sh — `eval finetune --device cuda` end to end: both
# modes on the GPU in fp32 follow the CPU's per-epoch losses and test
# accuracy, the result names the card, the same command gives the same
# bytes, a run killed by SIGKILL or stopped by SIGTERM resumes to the
# uninterrupted run's state, the rate is chosen on the GPU as on the CPU,
# --head-first's two stages follow the CPU's, and a device that is not
# there is refused. Data: the first 3,000 images
# of Fashion-MNIST (or DC_GPU_DATA, IDX with its labels) packed, for
# training and testing alike (mechanics, not a result).
. "$(dirname "$0")/../lib.sh" finetune_gpu
DATA=${DC_GPU_DATA:-$FMNIST/train-images-idx3-ubyte.gz}
[ -e "$DATA" ] || skip "no data: $DATA (install dataset-fashion-mnist or set DC_GPU_DATA)"
"$BIN" pack --data "$DATA" --max-images 3000 --out "$TMP/pk" >"$TMP/pack.log" 2>&1 \
  || { bad "pack: $(tail -2 "$TMP/pack.log")"; summary; exit 1; }
FT=("$BIN" eval finetune --weights random:vgg-s32 --train "$TMP/pk" --test "$TMP/pk" --crops 1 --precision fp32 --seed 3)

# CPU against GPU, both modes: the same job, losses per epoch and top-1 close
# (the whole network for fewer steps: training batch norm and ReLU ties let
# rounding differences grow step by step)
for mode in classifier all; do
  lr=0.3 tol=1e-3 top=0.01 ep=8; [ $mode = all ] && lr=0.05 tol=1e-2 top=0.02 ep=3
  ARGS=(--mode $mode --labels-per-class 20 --epochs $ep --lr $lr --batch-size 50)
  for dev in cpu cuda; do
    s=$(date +%s.%N)
    "${FT[@]}" "${ARGS[@]}" --device $dev --out "$TMP/$mode-$dev" --json "$TMP/$mode-$dev.json" >"$TMP/$mode-$dev.log" 2>&1 \
      || bad "$mode on $dev: $(tail -2 "$TMP/$mode-$dev.log")"
    echo "$mode on $dev: $(awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s"
  done
  python3 - "$TMP/$mode-cpu" "$TMP/$mode-cuda" $tol $top $ep <<'PY' && ok || bad "$mode: the GPU's fine-tuning is not the CPU's"
import json, sys
cpu, gpu, tol, top, ep = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
rows = lambda d: [json.loads(l) for l in open(d + "/finetune.jsonl")]
a, b = rows(cpu), rows(gpu)
ra, rb = json.load(open(cpu + ".json")), json.load(open(gpu + ".json"))
worst = max(abs(x["loss"] - y["loss"]) / abs(x["loss"]) for x, y in zip(a, b))
print(f"{cpu.split('/')[-1]}: losses {[round(r['loss'], 4) for r in a]} (CPU), {[round(r['loss'], 4) for r in b]} (GPU), "
      f"largest relative difference {worst:.2g}; top-1 {ra['top1']:.4f} (CPU), {rb['top1']:.4f} (GPU); {rb['device']}")
assert len(a) == len(b) == ep, (len(a), len(b))
assert ra["device"] == "cpu" and rb["device"].startswith("cuda:0: "), (ra["device"], rb["device"])
assert worst < tol, worst
assert abs(ra["top1"] - rb["top1"]) <= top, (ra["top1"], rb["top1"])
assert b[-1]["loss"] < b[0]["loss"], "the loss did not go down on the GPU"
PY
done

# the same command on the GPU again: the same bytes
"${FT[@]}" --mode all --labels-per-class 20 --epochs 3 --lr 0.05 --batch-size 50 --device cuda --out "$TMP/all-again" \
  >"$TMP/again.log" 2>&1 || bad "second GPU run: $(tail -2 "$TMP/again.log")"
cmp -s "$TMP/all-cuda/finetune.safetensors" "$TMP/all-again/finetune.safetensors" && ok \
  || bad "two GPU runs of the same fine-tuning differ"

# killed or stopped mid-run, resumed: the uninterrupted run's state and lines
ARGS=(--mode all --labels-per-class 100 --epochs 30 --lr 0.05 --batch-size 50 --device cuda)
"${FT[@]}" "${ARGS[@]}" --out "$TMP/ref" >"$TMP/ref.log" 2>&1 || bad "reference run: $(tail -2 "$TMP/ref.log")"
for sig in KILL TERM; do
  out=$TMP/stop-$sig
  "${FT[@]}" "${ARGS[@]}" --out "$out" >"$out.log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do # until a few epochs are written (at most a minute)
    [ "$(cat "$out/finetune.jsonl" 2>/dev/null | wc -l)" -ge 4 ] && break
    sleep 0.1
  done
  kill -$sig $pid 2>/dev/null
  wait $pid; rc=$?
  echo "SIG$sig after $(cat "$out/finetune.jsonl" 2>/dev/null | wc -l) epochs: exit $rc"
  "${FT[@]}" "${ARGS[@]}" --out "$out" >>"$out.log" 2>&1 || bad "resume after SIG$sig: $(tail -2 "$out.log")"
  same_finetune "$TMP/ref" "$out" "SIG$sig and resumed on the GPU"
done

# the rate chosen on the held-out part, on the GPU as on the CPU
for dev in cpu cuda; do
  "${FT[@]}" --labels-per-class 10 --epochs 2 --batch-size 50 --device $dev --json "$TMP/choose-$dev.json" \
    >"$TMP/choose-$dev.log" 2>&1 || bad "choosing on $dev: $(tail -2 "$TMP/choose-$dev.log")"
done
python3 - "$TMP/choose-cpu.json" "$TMP/choose-cuda.json" <<'PY' && ok || bad "the GPU chose another rate"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
print(f"rate chosen: {a['lr']:g} (CPU), {b['lr']:g} (GPU); held-out top-1 {a['held_out_top1']:.3f}, {b['held_out_top1']:.3f}")
assert a["lr"] == b["lr"] and abs(a["held_out_top1"] - b["held_out_top1"]) <= 0.05, (a, b)
PY

# --head-first (LP-FT) on the GPU: the first stage's classifier goes to the
# device for the second; both stages follow the CPU's losses
for dev in cpu cuda; do
  "${FT[@]}" --mode all --head-first 1 --head-lr 0.3 --lr 0.05 --labels-per-class 20 --epochs 3 --batch-size 50 \
    --device $dev --out "$TMP/hf-$dev" --json "$TMP/hf-$dev.json" >"$TMP/hf-$dev.log" 2>&1 \
    || bad "--head-first on $dev: $(tail -2 "$TMP/hf-$dev.log")"
done
python3 - "$TMP/hf-cpu" "$TMP/hf-cuda" <<'PY' && ok || bad "--head-first: the GPU's stages are not the CPU's"
import json, sys
rows = lambda p: [json.loads(l)["loss"] for l in open(p)]
for stage, tol in (("head/finetune.jsonl", 1e-3), ("finetune.jsonl", 1e-2)):
    a, b = rows(sys.argv[1] + "/" + stage), rows(sys.argv[2] + "/" + stage)
    worst = max(abs(x - y) / abs(x) for x, y in zip(a, b))
    print(f"--head-first {stage}: losses {[round(x, 4) for x in a]} (CPU), {[round(x, 4) for x in b]} (GPU)")
    assert len(a) == len(b) == 3 and worst < tol, (a, b)
r = json.load(open(sys.argv[2] + ".json"))
assert r["head_first"] == 1 and r["head_lr"] == 0.3 and r["device"].startswith("cuda:0: "), r
PY

# a device that is not there: one line, exit 1, nothing written
"${FT[@]}" --labels-per-class 5 --epochs 1 --lr 0.1 --device cuda:7 --out "$TMP/nodev" >"$TMP/nodev.log" 2>&1; rc=$?
[ $rc -ne 0 ] && grep -qE "cuda:7: [0-9]+ CUDA devices? (is|are) visible" "$TMP/nodev.log" && ok \
  || bad "--device cuda:7: exit $rc: $(cat "$TMP/nodev.log")"
[ ! -e "$TMP/nodev" ] && ok || bad "--device cuda:7 created its --out directory"
summary
