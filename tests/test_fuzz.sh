#!/usr/bin/env bash
# test_fuzz.sh — replays the fuzzing corpus (fuzz/corpus/<reader>/*: seeds
# and inputs libFuzzer found interesting) through every file reader; under
# the sanitizer build any out-of-bounds access or undefined behaviour fails.
set -u
B=$(dirname "$DC_TEST_BIN")
R="$B/fuzz/fuzz_replay"
pass=0; fail=0
for k in npy safetensors idx cifar list pack image; do
  files=("$DC_TEST_ROOT/fuzz/corpus/$k"/*)
  if out=$("$R" $k "${files[@]}" 2>&1); then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $k: $out" >&2; fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
