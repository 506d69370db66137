#!/usr/bin/env bash
# test_quality.sh — scripts/quality.sh (docs/results.md's comparison of the three
# methods, a random network and raw pixels) end to end at a tiny size: it
# trains the three runs and prints the Markdown table, a row per network
# with NMI/ARI/ACC and the probe of every layer (raw pixels: the last).
. "$(dirname "$0")/lib.sh" quality
need_fmnist
ROOT=${DC_TEST_ROOT:?run through tests/run.sh}
export OMP_NUM_THREADS=2
BIN=$BIN OUT=$TMP/q IMAGES=128 EPOCHS=1 PROBE_IMAGES=100 TEST_IMAGES=100 \
  bash "$ROOT/scripts/quality.sh" >"$TMP/table.md" 2>"$TMP/err" && ok || bad "quality.sh failed: $(tail -3 "$TMP/err")"
grep -qx '| features | NMI | ARI | ACC | probe, conv1 | probe, conv2 | probe, conv3 | probe, conv4 | probe, conv5 | probe, conv6 | probe, final |' "$TMP/table.md" \
  && ok || bad "table header: $(grep '^| features' "$TMP/table.md")"
num='0\.[0-9]{4}|1\.0000|-0\.[0-9]{4}'
for m in deepercluster deepcluster rotnet random; do
  grep -qE "^\| $m( \| ($num)){10} \|$" "$TMP/table.md" && ok || bad "row $m: $(grep "^| $m " "$TMP/table.md")"
  [ -e "$TMP/q/$m/checkpoint.safetensors" ] || [ $m = random ] && ok || bad "no run $m"
done
grep -qE "^\| pixels( \| ($num)){3}( \| –){6} \| ($num) \|$" "$TMP/table.md" && ok || bad "row pixels: $(grep '^| pixels' "$TMP/table.md")"
grep -q "128 training images, 1 epochs" "$TMP/table.md" && ok || bad "no settings line"
summary
