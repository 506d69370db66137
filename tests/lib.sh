# tests/lib.sh — what the shell tests share, sourced first by each:
#   . "$(dirname "$0")/lib.sh" NAME
# sets BIN (the program under test) and TMP (a scratch folder of its own),
# counts checks with ok / bad MESSAGE, and ends with summary, the line
# tests/run.sh reads; skip REASON ends a test that cannot run here.
set -u
BIN=${DC_TEST_BIN:?run through tests/run.sh}
TMP=${DC_TEST_TMP:-/tmp}/${1:?lib.sh: name the test}.$$
mkdir -p "$TMP"
pass=0; fail=0
FMNIST=/usr/share/datasets/fashion-mnist
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
skip() { echo "SKIP: $*"; echo "0 passed, 0 failed"; exit 0; }
need_fmnist() {
  [ -e "$FMNIST/train-images-idx3-ubyte.gz" ] || skip "$FMNIST not installed (apt-get install dataset-fashion-mnist)"
}
summary() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; }
# labelled_folders DIR: tiny labelled class folders from Fashion-MNIST
# (scripts/make_corpora.py): DIR/probe, 100 training images, 10 per class,
# and DIR/test, 60 test images; python3-numpy needed (the test skips
# without it); a failure ends the test.
labelled_folders() {
  /usr/bin/python3 -c 'import numpy' 2>/dev/null || skip "python3-numpy missing (bash scripts/setup.sh)"
  /usr/bin/python3 "${DC_TEST_ROOT:?run through tests/run.sh}/scripts/make_corpora.py" "$1" --scale 0.02 --test 60 \
    --probe 100 >/dev/null 2>"$TMP/make_corpora.err" \
    || { bad "make_corpora.py: $(tail -2 "$TMP/make_corpora.err")"; summary; exit 1; }
}
# signals_resume REF.hash "DELAYS" TRAIN_ARGS...: for SIGTERM and SIGKILL,
# at each delay (seconds) into `train TRAIN_ARGS --out …`, stop the run,
# run the same command again, and check that it ends with the checkpoint
# hashes of REF.hash (an uninterrupted run's); SIGTERM must exit 130 with a
# resume hint and a checkpoint when it lands before the end.
signals_resume() {
  local ref=$1 delays=$2; shift 2
  local sig delay out pid rc
  for sig in TERM KILL; do
    for delay in $delays; do
      out="$TMP/r-$sig-$delay"
      "$BIN" train "$@" --out "$out" >"$out.log" 2>&1 &
      pid=$!
      sleep "$delay"
      kill -$sig $pid 2>/dev/null
      wait $pid 2>/dev/null; rc=$?
      if [ $sig = TERM ] && [ $rc -ne 0 ]; then
        [ $rc -eq 130 ] && ok || bad "SIGTERM: exit $rc, expected 130: $(tail -2 "$out.log")"
        grep -q "resume" "$out.log" && ok || bad "SIGTERM: no resume hint"
        [ -e "$out/checkpoint.safetensors" ] && ok || bad "SIGTERM: no checkpoint"
      fi
      echo "SIG$sig at ${delay}s: exit $rc ($(cat "$out/stats.jsonl" 2>/dev/null | grep -c '"type":"epoch"') epochs done)"
      "$BIN" train "$@" --out "$out" >>"$out.log" 2>&1 || bad "resume after SIG$sig at ${delay}s failed: $(tail -3 "$out.log")"
      "$BIN" inspect --hash "$out/checkpoint.safetensors" | grep ' hash ' > "$out.hash"
      cmp -s "$ref" "$out.hash" && ok || bad "SIG$sig at ${delay}s: resumed weights differ from the uninterrupted run"
    done
  done
}
# same_finetune REF OUT WHAT: an `eval finetune --out OUT` ends with the
# uninterrupted run's (REF's) state bytes and per-epoch lines (their first
# five fields: the timings differ).
same_finetune() {
  cmp -s "$1/finetune.safetensors" "$2/finetune.safetensors" && ok \
    || bad "$3: the state differs from the uninterrupted run's"
  cmp -s <(cut -d, -f1-5 "$1/finetune.jsonl") <(cut -d, -f1-5 "$2/finetune.jsonl") && ok \
    || bad "$3: finetune.jsonl differs from the uninterrupted run's"
}
