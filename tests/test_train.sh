#!/usr/bin/env bash
# test_train.sh — `deepercluster train` end to end on a tiny slice of
# Fashion-MNIST: options validated before any work, the three methods run
# and write the run directory, the loss goes down, and a run interrupted by
# SIGTERM (checkpoint, then exit) or SIGKILL (at any moment) and resumed ends
# with weights bit-identical to an uninterrupted run.
. "$(dirname "$0")/lib.sh" train
need_fmnist
DATA=$FMNIST/train-images-idx3-ubyte.gz
export OMP_NUM_THREADS=2
TINY=(--data "$DATA" --max-images 256 --batch-size 8 --niter 3)

expect_fail() { # STATUS PATTERN ARGS...
  local want=$1 pat=$2; shift 2
  "$BIN" train "$@" >"$TMP/out" 2>&1; local rc=$?
  [ "$rc" -eq "$want" ] && ok || bad "train $* exited $rc, expected $want: $(cat "$TMP/out")"
  grep -qE -- "$pat" "$TMP/out" && ok || bad "train $*: no '$pat' in: $(cat "$TMP/out")"
}
expect_fail 2 "--k 15 is not a multiple of the 2 super-clusters" "${TINY[@]}" --out "$TMP/v1" --k 15
expect_fail 2 "--super-classes 6 is not a multiple of 4" "${TINY[@]}" --out "$TMP/v2" --super-classes 6
expect_fail 2 "--k 1000 is larger than the 256 images" "${TINY[@]}" --out "$TMP/v3" --k 1000
expect_fail 2 "--lr: 'nan' is not a finite number" "${TINY[@]}" --out "$TMP/v4" --lr nan
expect_fail 2 "--method: 'simclr' is not one of" "${TINY[@]}" --out "$TMP/v5" --method simclr
expect_fail 2 "--dim-pca 1024 is larger than the vgg-s32 feature dimension 512" "${TINY[@]}" --out "$TMP/v6" --dim-pca 1024
expect_fail 1 "cannot open" --data "$TMP/absent.idx" --out "$TMP/v7"
expect_fail 2 "missing required option --out" --data "$DATA"
# a network too large for this machine's memory: refused before anything is
# filled or written, with the batch size that fits
expect_fail 2 "vgg16 with --batch-size 100000 .* needs about [0-9.]+ GiB of memory .* use --batch-size [0-9]+ or less" \
  "${TINY[@]}" --out "$TMP/v8" --arch vgg16 --batch-size 100000
# --device: a name that is none is a usage error; a GPU asked for where
# there is none (no CUDA in the build, no driver, no card): one line saying
# what to do, exit 1, nothing written (a machine with a GPU runs tests/gpu)
expect_fail 2 "--device gpu: expected auto, cpu, cuda or cuda:N" "${TINY[@]}" --out "$TMP/v9" --device gpu
expect_fail 2 "--precision: 'fp16' is not one of" "${TINY[@]}" --out "$TMP/v10" --precision fp16
gone="v9 v10"
if ! nvidia-smi -L >/dev/null 2>&1; then
  expect_fail 1 "no GPU engine: rebuild with .make CUDA=1.|no NVIDIA driver is installed|no CUDA GPU is visible" \
    "${TINY[@]}" --out "$TMP/v11" --device cuda
  "$BIN" features --weights random:vgg-s32 --data "$DATA" --max-images 8 --device cuda:0 --out "$TMP/v12.npy" \
    >"$TMP/out" 2>&1; rc=$?
  [ $rc -eq 1 ] && grep -qE "no GPU engine|no NVIDIA driver|no CUDA GPU" "$TMP/out" && ok ||
    bad "features --device cuda:0 without a GPU: exit $rc: $(cat "$TMP/out")"
  gone="$gone v11 v12.npy"
fi
for v in v1 v2 v3 v4 v5 v6 v7 v8 $gone; do [ ! -e "$TMP/$v" ] && ok || bad "a rejected run created $TMP/$v"; done

# the three methods run and fill the run directory
for m in deepercluster deepcluster rotnet; do
  karg=(--k 16); [ $m = deepercluster ] || karg=() # deepcluster: k from the data
  if "$BIN" train "${TINY[@]}" --method $m --out "$TMP/$m" --epochs 2 "${karg[@]}" >"$TMP/$m.log" 2>&1; then ok
  else bad "method $m failed: $(tail -3 "$TMP/$m.log")"; fi
  for f in config.json log.txt stats.jsonl checkpoint.safetensors checkpoint.json skipped.tsv assignments/epoch-000.npy assignments/epoch-000.tsv; do
    [ -e "$TMP/$m/$f" ] && ok || bad "$m: no $f"
  done
  [ "$(grep -c '"type":"epoch"' "$TMP/$m/stats.jsonl")" -eq 2 ] && ok || bad "$m: expected 2 epoch lines in stats.jsonl"
  grep -q '"loss_super"' "$TMP/$m/stats.jsonl" && grep -q '"prec_sub"' "$TMP/$m/stats.jsonl" && grep -q '"nmi_prev"' "$TMP/$m/stats.jsonl" && ok || bad "$m: stats keys missing"
done
# the .tsv beside the .npy: a header, then index, super, sub for each image in order
A=$TMP/deepercluster/assignments/epoch-000
head -1 "$A.tsv" | grep -qx $'index\tsuper\tsub' && [ "$(wc -l < "$A.tsv")" -eq 257 ] \
  && [ "$(sed -n 2p "$A.tsv" | cut -f1)" = 0 ] && [ "$(tail -1 "$A.tsv" | cut -f1)" = 255 ] && ok || bad "assignments .tsv: $(head -3 "$A.tsv")"
"$BIN" inspect "$A.npy" | grep -q 'npy I32 (256, 2)' && ok || bad "assignments .npy: $("$BIN" inspect "$A.npy" | head -1)"
grep -qE '"method":[[:space:]]*"deepcluster"' "$TMP/deepcluster/config.json" && grep -qE '"super_classes":[[:space:]]*1,' "$TMP/deepcluster/config.json" && ok || bad "deepcluster config"
# the default k: a power of two with about 150 images or more per cluster (256 images: 2)
grep -qE '"k":[[:space:]]*2,' "$TMP/deepcluster/config.json" && ok || bad "deepcluster default k: $(grep -o '"k":[^,]*' "$TMP/deepcluster/config.json")"
# the default PCA dimension: a sixteenth of vgg-s32's 512 features
grep -qE '"dim_pca":[[:space:]]*32,' "$TMP/deepercluster/config.json" && ok || bad "default dim_pca: $(grep -o '"dim_pca":[^,]*' "$TMP/deepercluster/config.json")"
grep -qE '"super_classes":[[:space:]]*4,' "$TMP/rotnet/config.json" && grep -qE '"k":[[:space:]]*1,' "$TMP/rotnet/config.json" && ok || bad "rotnet config"
"$BIN" inspect "$TMP/deepercluster/assignments/epoch-000.npy" | grep -q 'npy I32 (256, 2)' && ok || bad "assignments shape"

# resuming with settings the checkpoint pins: refused, naming each difference
expect_fail 2 "k: 16 in the run, 32 now; crop: 0.5 in the run, default now" "${TINY[@]}" --out "$TMP/deepercluster" \
  --epochs 2 --k 32 --crop-min-scale 0.08
# with others (more epochs, another rate): logged, a "resume" line in
# stats.jsonl, config.json rewritten with the options in force
"$BIN" train "${TINY[@]}" --out "$TMP/deepercluster" --epochs 3 --k 16 --lr 0.03 >"$TMP/more.log" 2>&1 || bad "resume with --epochs 3 --lr 0.03 failed: $(tail -2 "$TMP/more.log")"
grep -q "resuming with other options than the run's config.json: lr 0.03 (was 0.05), epochs 3 (was 2)" "$TMP/more.log" && ok || bad "no note of the changed options: $(grep -i resum "$TMP/more.log")"
grep -qx '{"type":"resume","epoch":2,"step":0,"changed":{"lr":{"was":0.05,"now":0.03},"epochs":{"was":2,"now":3}}}' "$TMP/deepercluster/stats.jsonl" \
  && ok || bad "stats.jsonl resume line: $(grep resume "$TMP/deepercluster/stats.jsonl")"
grep -qE '"lr":[[:space:]]*0.03,' "$TMP/deepercluster/config.json" && grep -qE '"epochs":[[:space:]]*3,' "$TMP/deepercluster/config.json" \
  && ok || bad "config.json not rewritten: $(grep -E '"(lr|epochs)"' "$TMP/deepercluster/config.json")"
[ "$(grep -c '"type":"epoch"' "$TMP/deepercluster/stats.jsonl")" -eq 3 ] && ok || bad "resumed to 3 epochs: $(grep -c '"type":"epoch"' "$TMP/deepercluster/stats.jsonl") epoch lines"
"$BIN" train "${TINY[@]}" --out "$TMP/deepercluster" --epochs 3 --k 16 --lr 0.03 >"$TMP/same.log" 2>&1 || bad "re-running a finished run failed"
[ "$(grep -c '"type":"resume"' "$TMP/deepercluster/stats.jsonl")" -eq 1 ] && ok || bad "a resume with the same options added a resume line"

# the loss goes down (rotation prediction, no re-clustering)
"$BIN" train "${TINY[@]}" --method rotnet --out "$TMP/learn" --epochs 4 --lr 0.05 >"$TMP/learn.log" 2>&1 || bad "rotnet 4 epochs failed"
first=$(grep '"type":"epoch"' "$TMP/learn/stats.jsonl" | head -1 | sed 's/.*"loss":\([0-9.e+-]*\).*/\1/')
last=$(grep '"type":"epoch"' "$TMP/learn/stats.jsonl" | tail -1 | sed 's/.*"loss":\([0-9.e+-]*\).*/\1/')
awk -v a="$first" -v b="$last" 'BEGIN{exit !(b < a)}' && ok || bad "loss did not go down: $first -> $last"

# resume: uninterrupted vs SIGTERM vs SIGKILL at some moment, same weights
RUN=("${TINY[@]}" --epochs 3 --reassignment 2 --k 16 --seed 5 --dim-pca 24)
"$BIN" train "${RUN[@]}" --out "$TMP/full" >"$TMP/full.log" 2>&1 || bad "uninterrupted run failed"
"$BIN" inspect --hash "$TMP/full/checkpoint.safetensors" | grep ' hash ' > "$TMP/full.hash"
[ -s "$TMP/full.hash" ] && ok || bad "no hashes"
# loader workers: the same batches, so the same weights
"$BIN" train "${RUN[@]}" --workers 3 --out "$TMP/workers" >"$TMP/workers.log" 2>&1 || bad "--workers 3 failed: $(tail -2 "$TMP/workers.log")"
"$BIN" inspect --hash "$TMP/workers/checkpoint.safetensors" | grep ' hash ' > "$TMP/workers.hash"
cmp -s "$TMP/full.hash" "$TMP/workers.hash" && ok || bad "--workers 3 gave other weights than --workers 0"
grep -q '"data_wait_s":' "$TMP/workers/stats.jsonl" && ok || bad "no data_wait_s in stats.jsonl"
# --warm-restart 1: a run stopped between clusterings (2 epochs, then 3)
# starts the next k-means from the same centroids as an uninterrupted one
"$BIN" train "${RUN[@]}" --warm-restart 1 --out "$TMP/warm" >"$TMP/warm.log" 2>&1 || bad "warm restart: $(tail -2 "$TMP/warm.log")"
"$BIN" train "${RUN[@]}" --warm-restart 1 --epochs 2 --out "$TMP/warm2" >"$TMP/warm2.log" 2>&1 &&
  "$BIN" train "${RUN[@]}" --warm-restart 1 --out "$TMP/warm2" >>"$TMP/warm2.log" 2>&1 || bad "warm restart, resumed: $(tail -2 "$TMP/warm2.log")"
h1=$("$BIN" inspect --hash "$TMP/warm/checkpoint.safetensors" | grep ' hash ')
h2=$("$BIN" inspect --hash "$TMP/warm2/checkpoint.safetensors" | grep ' hash ')
[ -n "$h1" ] && [ "$h1" = "$h2" ] && ok || bad "--warm-restart 1: the resumed run's weights differ from the uninterrupted run's"
cmp -s "$TMP/warm/assignments/epoch-002.npy" "$TMP/warm2/assignments/epoch-002.npy" && ok ||
  bad "--warm-restart 1: the resumed run's second clustering differs"
signals_resume "$TMP/full.hash" "3 6" "${RUN[@]}"
# --lr-schedule cosine with a warm-up: the rate a function of the step
# (stats.jsonl: 4 steps an epoch, warm-up 6 steps: 0.05/6 first, then the
# half cosine over epochs 1.5..3), other weights than the constant rate's,
# and a run stopped at any moment resumes onto the same curve, same bits
COS=("${RUN[@]}" --lr-schedule cosine --warmup-epochs 1.5)
expect_fail 2 "--warmup-epochs 4 is longer than the run's 3 epochs" "${RUN[@]}" --warmup-epochs 4 --out "$TMP/v13"
expect_fail 2 "--lr-schedule: 'step' is not one of" "${RUN[@]}" --lr-schedule step --out "$TMP/v14"
[ ! -e "$TMP/v13" ] && [ ! -e "$TMP/v14" ] && ok || bad "a rejected schedule created its run directory"
"$BIN" train "${COS[@]}" --out "$TMP/cos" >"$TMP/cos.log" 2>&1 || bad "cosine run failed: $(tail -2 "$TMP/cos.log")"
"$BIN" inspect --hash "$TMP/cos/checkpoint.safetensors" | grep ' hash ' > "$TMP/cos.hash"
[ -s "$TMP/cos.hash" ] && ! cmp -s "$TMP/cos.hash" "$TMP/full.hash" && ok || bad "the cosine schedule left the weights of the constant rate"
grep -qE '"lr_schedule":[[:space:]]*"cosine",' "$TMP/cos/config.json" && grep -qE '"warmup_epochs":[[:space:]]*1.5,' "$TMP/cos/config.json" \
  && grep -qE '"lr_schedule":[[:space:]]*"constant",' "$TMP/full/config.json" && ok || bad "config.json: no schedule recorded"
lrs=$(grep '"type":"epoch"' "$TMP/cos/stats.jsonl" | sed 's/.*"lr_first":\([0-9.e+-]*\),"lr_last":\([0-9.e+-]*\).*/\1 \2/' | tr '\n' ' ')
awk -v s="$lrs" 'BEGIN { split(s, v, " "); pi = atan2(0, -1)
  w[1] = 0.05 / 6; w[2] = 0.05 * 4 / 6; w[3] = 0.05 * 5 / 6; w[4] = 0.05 * 0.5 * (1 + cos(pi * 0.25 / 1.5))
  w[5] = 0.05 * 0.5 * (1 + cos(pi * 0.5 / 1.5)); w[6] = 0.05 * 0.5 * (1 + cos(pi * 1.25 / 1.5))
  for (i = 1; i <= 6; i++) if (v[i] == "" || (v[i] - w[i]) ^ 2 > 1e-20) exit 1 }' && ok || bad "cosine: lr_first/lr_last per epoch: $lrs"
signals_resume "$TMP/cos.hash" "4" "${COS[@]}"
# a second signal stops at once (killed by it); a command that does not
# checkpoint (features) gets the signal's default action
"$BIN" train "${RUN[@]}" --out "$TMP/twice" >"$TMP/twice.log" 2>&1 &
pid=$!
sleep 2; kill -INT $pid; kill -TERM $pid  # two kinds: they cannot merge
wait $pid; rc=$?
[ $rc -eq 143 ] && ok || bad "SIGINT then SIGTERM: exit $rc: $(tail -2 "$TMP/twice.log")"
"$BIN" features --weights random:vgg-s32 --data "$DATA" --out "$TMP/sigf.npy" >"$TMP/sigf.log" 2>&1 &
pid=$!
sleep 1; kill -INT $pid
wait $pid; rc=$?
[ $rc -eq 130 ] && ok || bad "features after SIGINT: exit $rc, expected 130 (killed by SIGINT)"
[ ! -e "$TMP/sigf.npy" ] && ok || bad "features killed by SIGINT left $TMP/sigf.npy"
# the same for the commands that only run the network forward
"$BIN" features --weights random:vgg16 --data "$DATA" --max-images 4 --batch-size 4096 --out "$TMP/big.npy" >"$TMP/big.log" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -qE "vgg16 for batches of 4096 images needs [0-9.]+ GiB of memory.*batches of at most [0-9]+ \(--batch-size\)" "$TMP/big.log" \
  && ok || bad "features with an over-large batch: exit $rc: $(cat "$TMP/big.log")"
[ ! -e "$TMP/big.npy" ] && ok || bad "a refused features run wrote $TMP/big.npy"
# evaluation of the run and of the random baseline (contract keys, eval.jsonl)
TEST=${DATA/train-images/t10k-images}
EV=(--max-images 300 --threads 2)
"$BIN" eval clusters --weights "$TMP/full" --data "$TEST" "${EV[@]}" --json "$TMP/ec.json" >"$TMP/ec.out" 2>&1 && ok || bad "eval clusters: $(tail -2 "$TMP/ec.out")"
grep -qE '^final +0\.[0-9]{4} ' "$TMP/ec.out" && ok || bad "eval clusters table: $(cat "$TMP/ec.out")"
for key in nmi ari acc layer; do grep -q "\"$key\"" "$TMP/ec.json" && ok || bad "eval clusters JSON has no $key"; done
# more neighbours or clusters than images: refused before any feature is computed
"$BIN" eval knn --weights "$TMP/full" --train "$TEST" --test "$TEST" --max-images 10 >"$TMP/ek.out" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q -- "--k 20 is more than the 10 training images (set --k to at most 10)" "$TMP/ek.out" \
  && ! grep -q "^layer" "$TMP/ek.out" && ! grep -q "features:" "$TMP/ek.out" && ok || bad "knn with k > n: exit $rc: $(cat "$TMP/ek.out")"
"$BIN" eval clusters --weights "$TMP/full" --data "$TEST" --max-images 6 >"$TMP/ek.out" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "k = 10, the number of classes, is more than the 6 images" "$TMP/ek.out" && ok || bad "clusters with k > n: exit $rc: $(cat "$TMP/ek.out")"
# the whitening dimension: the run's (config.json), the preset's, raw pixels, or --pca
want=$(grep -oE '"dim_pca":[[:space:]]*[0-9]+' "$TMP/full/config.json" | grep -oE '[0-9]+$')
grep -qE "\"pca\":[[:space:]]*$want([,}]|\$)" "$TMP/ec.json" && ok || bad "eval clusters of the run: pca $want expected in $(cat "$TMP/ec.json")"
"$BIN" eval clusters --weights pixels --data "$TEST" "${EV[@]}" --json "$TMP/ep.json" >/dev/null 2>&1 \
  && grep -qE '"pca":[[:space:]]*0([,}]|$)' "$TMP/ep.json" && ok || bad "pixels: raw features expected: $(cat "$TMP/ep.json")"
"$BIN" eval clusters --weights random:vgg-s32 --data "$TEST" "${EV[@]}" --pca 8 --restarts 3 --json "$TMP/e8.json" >/dev/null 2>&1 \
  && grep -qE '"pca":[[:space:]]*8([,}]|$)' "$TMP/e8.json" && ok || bad "--pca 8: $(cat "$TMP/e8.json")"
# --layer all: every layer's clusters from one pass, the rows of the one-layer runs
"$BIN" eval clusters --weights random:vgg-s32 --data "$TEST" "${EV[@]}" --pca 8 --restarts 3 --layer all \
  --json "$TMP/eall.json" >"$TMP/eall.out" 2>&1 && ok || bad "eval clusters --layer all: $(tail -2 "$TMP/eall.out")"
[ "$(grep -cE '^(conv[0-9]|final) ' "$TMP/eall.out")" -eq 7 ] && ok || bad "clusters, all: expected 7 rows: $(cat "$TMP/eall.out")"
"$BIN" eval clusters --weights random:vgg-s32 --data "$TEST" "${EV[@]}" --pca 8 --restarts 3 --layer conv3 >"$TMP/e3.out" 2>&1
grep -x "$(grep '^conv3 ' "$TMP/e3.out")" "$TMP/eall.out" >/dev/null && grep -x "$(grep '^final ' "$TMP/eall.out")" <(grep '^final ' \
  <("$BIN" eval clusters --weights random:vgg-s32 --data "$TEST" "${EV[@]}" --pca 8 --restarts 3 2>/dev/null)) >/dev/null \
  && ok || bad "clusters, all: conv3 or final differ from their own runs"
# --runs: the mean and sd of the clusterings from seeds S, S+1, S+2, each what its seed alone gives
# (a run's weights: with random:<preset> the seed also draws the network)
"$BIN" eval clusters --weights "$TMP/full" --data "$TEST" "${EV[@]}" --pca 8 --restarts 2 --runs 3 --seed 5 \
  --json "$TMP/eruns.json" >"$TMP/eruns.out" 2>&1 && ok || bad "eval clusters --runs 3: $(tail -2 "$TMP/eruns.out")"
jnum() { grep -oE "\"$1\":[[:space:]]*[-0-9.e+]+" "$2" | head -1 | grep -oE '[-0-9.e+]+$'; }
for t in 5 6 7; do
  "$BIN" eval clusters --weights "$TMP/full" --data "$TEST" "${EV[@]}" --pca 8 --restarts 2 --seed $t \
    --json "$TMP/eseed$t.json" >/dev/null 2>&1 || bad "eval clusters --seed $t"
done
awk -v m="$(jnum nmi "$TMP/eruns.json")" -v sd="$(jnum nmi_sd "$TMP/eruns.json")" -v a="$(jnum nmi "$TMP/eseed5.json")" \
  -v b="$(jnum nmi "$TMP/eseed6.json")" -v c="$(jnum nmi "$TMP/eseed7.json")" -v r="$(jnum runs "$TMP/eruns.json")" 'BEGIN {
  mu = (a + b + c) / 3; s = sqrt(((a - mu)^2 + (b - mu)^2 + (c - mu)^2) / 2)
  exit !(r == 3 && (m - mu)^2 < 1e-16 && (sd - s)^2 < 1e-16) }' && ok \
  || bad "--runs 3: $(cat "$TMP/eruns.json") against single runs $(jnum nmi "$TMP/eseed5.json") $(jnum nmi "$TMP/eseed6.json") $(jnum nmi "$TMP/eseed7.json")"
grep -qE '^final +0\.[0-9]{4} ±0\.[0-9]{4} ' "$TMP/eruns.out" && grep -q "NMI ± sd" "$TMP/eruns.out" && ok || bad "--runs table: $(cat "$TMP/eruns.out")"
[ "$(jnum runs "$TMP/eseed5.json")" = 1 ] && ! grep -q nmi_sd "$TMP/eseed5.json" && ok || bad "one run: runs 1 and no sd expected: $(cat "$TMP/eseed5.json")"
"$BIN" eval clusters --weights random:vgg-s32 --data "$TEST" --runs 0 >"$TMP/r0.out" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q -- "--runs" "$TMP/r0.out" && ok || bad "--runs 0: exit $rc: $(cat "$TMP/r0.out")"
"$BIN" eval clusters --weights random:vgg-s32 --data "$TEST" --restarts 0 >"$TMP/r0.out" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q -- "--restarts" "$TMP/r0.out" && ok || bad "--restarts 0: exit $rc: $(cat "$TMP/r0.out")"
grep -q '"protocol":"clusters"' "$TMP/full/eval.jsonl" && ok || bad "no line in RUN/eval.jsonl"
"$BIN" eval knn --weights random:vgg-s32 --train "$DATA" --test "$TEST" "${EV[@]}" --json "$TMP/ek.json" >"$TMP/ek.out" 2>&1 && ok || bad "eval knn: $(tail -2 "$TMP/ek.out")"
grep -q '"top1"' "$TMP/ek.json" && ok || bad "eval knn JSON has no top1"
"$BIN" eval linear --weights "$TMP/full/checkpoint.safetensors" --train "$DATA" --test "$TEST" "${EV[@]}" --layer all --epochs 2 \
  --json "$TMP/el.json" >"$TMP/el.out" 2>&1 && ok || bad "eval linear: $(tail -2 "$TMP/el.out")"
[ "$(grep -cE '^(conv[0-9]|final) ' "$TMP/el.out")" -eq 7 ] && ok || bad "eval linear: expected conv1..conv6 and final rows: $(cat "$TMP/el.out")"
grep -q '"top5"' "$TMP/el.json" && ok || bad "eval linear JSON has no top5"
# every layer from one forward pass, or (--memory-mb 1) one pass per layer: the same results
grep -q 'layers conv1 to final from one pass' "$TMP/el.out" && ok || bad "eval linear --layer all: not one pass"
"$BIN" eval linear --weights "$TMP/full/checkpoint.safetensors" --train "$DATA" --test "$TEST" "${EV[@]}" --layer all --epochs 2 \
  --memory-mb 1 --json "$TMP/el1.json" >"$TMP/el1.out" 2>&1 && ! grep -q 'from one pass' "$TMP/el1.out" \
  && cmp -s "$TMP/el.json" "$TMP/el1.json" && ok || bad "eval linear, a pass per layer: other results: $(cat "$TMP/el1.json")"
"$BIN" features --weights "$TMP/full" --data "$TEST" --layer conv2 --out "$TMP/f.npy" --labels-out "$TMP/y.npy" "${EV[@]}" >/dev/null 2>&1 && ok || bad "features failed"
"$BIN" inspect "$TMP/f.npy" | grep -q 'npy F32 (300, 9216)' && ok || bad "conv2 features: $("$BIN" inspect "$TMP/f.npy" | head -1)"
"$BIN" features --weights "$TMP/full" --data "$TEST" --layer conv9 --out "$TMP/g.npy" "${EV[@]}" >"$TMP/g.out" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q 'expected final or conv1 ... conv6' "$TMP/g.out" && ok || bad "bad layer name: exit $rc $(cat "$TMP/g.out")"
"$BIN" eval clusters --weights random:nope --data "$TEST" >"$TMP/g.out" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "unknown architecture 'nope'" "$TMP/g.out" && ok || bad "random:nope: exit $rc $(cat "$TMP/g.out")"
"$BIN" eval clusters --weights "$TMP/absent" --data "$TEST" >"$TMP/g.out" 2>"$TMP/g.err"; rc=$?
[ $rc -ne 0 ] && [ ! -s "$TMP/g.out" ] && grep -q 'no such run directory' "$TMP/g.err" && ok \
  || bad "eval of absent weights: exit $rc, stdout '$(cat "$TMP/g.out")', stderr '$(cat "$TMP/g.err")'"

# an image folder with broken files: trained on the good ones, the rest listed
FOLDER=$DC_TEST_ROOT/tests/fixtures/images/folder
"$BIN" train --data "$FOLDER" --out "$TMP/folder" --arch vgg-s32 --method rotnet --epochs 1 --batch-size 2 \
  >"$TMP/folder.log" 2>&1 && ok || bad "training on an image folder: $(tail -3 "$TMP/folder.log")"
[ "$(wc -l < "$TMP/folder/skipped.tsv")" -eq 5 ] && ok || bad "skipped.tsv: $(cat "$TMP/folder/skipped.tsv")"
grep -q "y_truncated.jpg	corrupt JPEG" "$TMP/folder/skipped.tsv" && ok || bad "skipped.tsv has no reason for the truncated JPEG"
A=$TMP/folder/assignments/epoch-000.tsv # image folders: the file, then super, sub
head -1 "$A" | grep -qx $'path\tsuper\tsub' && [ "$(wc -l < "$A")" -gt 1 ] \
  && [ "$(tail -n +2 "$A" | grep -cE $'/folder/(cats|dogs)/.+\\.(jpg|png)\t0\t0$')" -eq $(($(wc -l < "$A") - 1)) ] \
  && ! grep -q x_empty.jpg "$A" && ok || bad "assignments .tsv of an image folder: $(head -3 "$A")"
grep -q "4 broken files skipped" "$TMP/folder/log.txt" && grep -q "skipped .*x_empty.jpg: empty file" "$TMP/folder/log.txt" \
  && ok || bad "log.txt does not list the skipped files"

# every evaluation and the report on the other kinds of data: the image
# folder (classes from its sub-folders) and CIFAR binary batches
"$BIN" train --data "$FOLDER" --out "$TMP/folder-dc" --arch vgg-s32 --k 4 --super-classes 4 --epochs 1 --batch-size 2 \
  --niter 2 >"$TMP/fdc.log" 2>&1 && ok || bad "deepercluster on an image folder: $(tail -3 "$TMP/fdc.log")"
"$BIN" report --run "$TMP/folder-dc" >"$TMP/frep.log" 2>&1 && [ "$(grep -o '<img ' "$TMP/folder-dc/report.html" | wc -l)" -gt 0 ] \
  && ok || bad "report of a folder run: $(cat "$TMP/frep.log")"
CIFAR=$TMP/cifar.bin
for i in $(seq 0 39); do # 40 records: label, then the R, G, B planes; class l < 3 lights plane l, class 3 all three
  l=$((i % 4)); printf "\\$(printf %03o $l)"
  for p in 0 1 2; do
    v=$(( (l == 3 ? 100 : (p == l ? 200 : 0)) + i % 7 ))
    head -c 1024 /dev/zero | tr '\0' "\\$(printf %03o $v)"
  done
done > "$CIFAR"
[ "$(stat -c %s "$CIFAR")" -eq $((40 * 3073)) ] && ok || bad "the CIFAR fixture has $(stat -c %s "$CIFAR") bytes"
for src in "$FOLDER" "$CIFAR"; do
  EVS=(--threads 2 --json "$TMP/e.json")
  "$BIN" eval clusters --weights random:vgg-s32 --data "$src" "${EVS[@]}" >"$TMP/e.out" 2>&1 && grep -q '"nmi"' "$TMP/e.json" \
    && ok || bad "eval clusters on $src: $(tail -2 "$TMP/e.out")"
  "$BIN" eval knn --weights random:vgg-s32 --train "$src" --test "$src" --k 3 "${EVS[@]}" >"$TMP/e.out" 2>&1 \
    && grep -q '"top1"' "$TMP/e.json" && ok || bad "eval knn on $src: $(tail -2 "$TMP/e.out")"
  "$BIN" eval linear --weights random:vgg-s32 --train "$src" --test "$src" --layer conv2 --epochs 2 "${EVS[@]}" >"$TMP/e.out" 2>&1 \
    && grep -q '"top1"' "$TMP/e.json" && ok || bad "eval linear on $src: $(tail -2 "$TMP/e.out")"
  "$BIN" features --weights random:vgg-s32 --data "$src" --layer final --out "$TMP/f.npy" >"$TMP/e.out" 2>&1 \
    && ok || bad "features on $src: $(tail -2 "$TMP/e.out")"
done
"$BIN" eval linear --weights pixels --train "$CIFAR" --test "$CIFAR" --json "$TMP/e.json" >"$TMP/e.out" 2>&1 \
  && grep -qE '"top1":[[:space:]]*1,' "$TMP/e.json" && ok || bad "raw pixels of 4 colour classes are not separated: $(cat "$TMP/e.out")"
# the probe records how it was trained; --average 0 (the last iterate) is the old probe, 2 is no choice
grep -qE '"averaged":[[:space:]]*1,' "$TMP/e.json" && grep -qE '"probe_epochs":[[:space:]]*10,' "$TMP/e.json" \
  && ok || bad "eval linear JSON does not record the averaged 10-epoch probe: $(cat "$TMP/e.json")"
"$BIN" eval linear --weights pixels --train "$CIFAR" --test "$CIFAR" --average 0 --epochs 3 --json "$TMP/e.json" >"$TMP/e.out" 2>&1 \
  && grep -qE '"averaged":[[:space:]]*0,' "$TMP/e.json" && grep -qE '"probe_epochs":[[:space:]]*3,' "$TMP/e.json" \
  && ok || bad "eval linear --average 0 --epochs 3: $(cat "$TMP/e.out")"
"$BIN" eval linear --weights pixels --train "$CIFAR" --test "$CIFAR" --average 2 >"$TMP/e.out" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q -- "--average" "$TMP/e.out" && ok || bad "eval linear --average 2: exit $rc $(cat "$TMP/e.out")"
"$BIN" eval knn --weights pixels --train "$FOLDER" --test "$FOLDER" --k 3 >"$TMP/e.out" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "needs images of one size" "$TMP/e.out" && ok || bad "pixels of mixed sizes: exit $rc $(cat "$TMP/e.out")"

# a full disk (writes beyond 2 MB fail with EFBIG: RLIMIT_FSIZE, SIGXFSZ
# ignored): a clear error naming the file, exit 1, and the checkpoint that
# was there before is intact; the run resumes once there is room
cp -r "$TMP/full" "$TMP/fullcopy"
( trap '' XFSZ; ulimit -f 2048; exec "$BIN" train "${RUN[@]}" --epochs 4 --out "$TMP/fullcopy" ) >"$TMP/disk.log" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -qE "checkpoint.safetensors.*(File too large|No space)" "$TMP/disk.log" && ok \
  || bad "full disk: exit $rc: $(tail -2 "$TMP/disk.log")"
"$BIN" inspect --hash "$TMP/fullcopy/checkpoint.safetensors" | grep ' hash ' > "$TMP/disk.hash"
cmp -s "$TMP/full.hash" "$TMP/disk.hash" && ok || bad "the checkpoint was damaged by the failed write"
! ls -a "$TMP/fullcopy" | grep -q '\.tmp' && ok || bad "temporary files left: $(ls -a "$TMP/fullcopy")"
"$BIN" train "${RUN[@]}" --epochs 4 --out "$TMP/fullcopy" >>"$TMP/disk.log" 2>&1 && grep -q "resuming from" "$TMP/fullcopy/log.txt" \
  && ok || bad "no resume after the disk had room again: $(tail -2 "$TMP/disk.log")"
# a run directory that cannot be created
"$BIN" train "${RUN[@]}" --out /proc/version/run >"$TMP/nw.log" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q "/proc/version/run" "$TMP/nw.log" && ok || bad "uncreatable --out: exit $rc $(cat "$TMP/nw.log")"

# a checkpoint whose metadata was damaged (a key renamed, a number
# garbled; the header keeps its length): a clear error naming the key
for edit in 's/"epoch":"(\d+)"/"epocX":"$1"/' 's/"step":"(\d)"/"step":"x"/'; do
  rm -rf "$TMP/meta"; cp -r "$TMP/full" "$TMP/meta"
  perl -0777 -pi -e "$edit" "$TMP/meta/checkpoint.safetensors"
  key=$(echo "$edit" | sed 's/^s\/"\([a-z]*\)".*/\1/')
  "$BIN" train "${RUN[@]}" --out "$TMP/meta" >"$TMP/meta.log" 2>&1; rc=$?
  [ $rc -eq 1 ] && grep -q "checkpoint.safetensors: metadata '$key' is missing or not a number" "$TMP/meta.log" && ok \
    || bad "damaged checkpoint metadata ($key): exit $rc: $(tail -1 "$TMP/meta.log")"
done

# a run directory of other settings is refused, not overwritten
"$BIN" train "${RUN[@]}" --out "$TMP/full" --k 32 >"$TMP/o.log" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "holds a run with other settings" "$TMP/o.log" && ok || bad "other settings accepted (exit $rc)"

# features over --memory-mb (1,200 images x 512 values = 2.3 MB > 1 MB): the
# clustering's features and whitened rows go through scratch files in
# --scratch, removed after; the assignments, nearest members, PCA and
# weights are those of the run in memory
OOC=(--data "$DATA" --max-images 1200 --batch-size 8 --epoch-size 16 --niter 3 --epochs 1 --k 16 --seed 5 --dim-pca 256)
mkdir -p "$TMP/scr"
"$BIN" train "${OOC[@]}" --out "$TMP/m0" >"$TMP/m0.log" 2>&1 && ok || bad "train in memory: $(tail -3 "$TMP/m0.log")"
"$BIN" train "${OOC[@]}" --out "$TMP/m1" --memory-mb 1 --scratch "$TMP/scr" >"$TMP/m1.log" 2>&1 && ok \
  || bad "train --memory-mb 1: $(tail -3 "$TMP/m1.log")"
grep -q "2 MB of features, over the memory budget of 1 MB: in the scratch file $TMP/scr/features.scratch.npy" "$TMP/m1.log" \
  && ok || bad "train --memory-mb 1: the features were not streamed: $(grep -i clustering "$TMP/m1.log")"
grep -q "of whitened features: in the scratch file $TMP/scr/whitened.scratch.npy" "$TMP/m1.log" && ok \
  || bad "train --memory-mb 1: the whitened rows were not streamed"
for f in assignments/epoch-000.npy assignments/epoch-000-nearest.npy pca.safetensors checkpoint.safetensors; do
  cmp -s "$TMP/m0/$f" "$TMP/m1/$f" && ok || bad "train --memory-mb 1: $f differs from the run in memory"
done
[ -z "$(ls -A "$TMP/scr")" ] && ok || bad "scratch files left: $(ls "$TMP/scr")"
expect_fail 1 "absent/features.scratch.npy" "${OOC[@]}" --out "$TMP/m2" --memory-mb 1 --scratch "$TMP/absent"

rm -rf "$TMP"
summary
