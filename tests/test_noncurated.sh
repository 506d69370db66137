#!/usr/bin/env bash
# test_noncurated.sh — the non-curated benchmark (scripts/noncurated.sh,
# issue 24) at a tiny size: the corpora are what scripts/make_corpora.py
# promises (the long-tail profile, an equal share per class in `balanced`,
# 15% junk in `wild`, the probe and test sets in class folders, the same
# bytes from the same seed), and the benchmark trains, scores and prints its
# table of mean ± sd over two seeds, a row per corpus and method and one for
# the random network.
. "$(dirname "$0")/lib.sh" noncurated
need_fmnist
ROOT=${DC_TEST_ROOT:?run through tests/run.sh}
PY=/usr/bin/python3
$PY -c 'import numpy' 2>/dev/null || skip "python3-numpy missing (bash scripts/setup.sh)"
export OMP_NUM_THREADS=2

# the corpora, twice from one seed
for d in a b; do
  $PY "$ROOT/scripts/make_corpora.py" "$TMP/$d" --seed 3 --scale 0.02 --test 100 --probe 50 >/dev/null 2>"$TMP/err" \
    && ok || bad "make_corpora.py failed: $(tail -3 "$TMP/err")"
done
(cd "$TMP/a" && find . -type f -exec sha256sum {} + | sort -k2) >"$TMP/a.sum"
(cd "$TMP/b" && find . -type f -exec sha256sum {} + | sort -k2) >"$TMP/b.sum"
cmp -s "$TMP/a.sum" "$TMP/b.sum" && ok || bad "the same seed wrote different corpora"
$PY - "$TMP/a" <<'PYEOF' >"$TMP/facts" 2>&1 && ok || bad "corpora: $(cat "$TMP/facts")"
import json, os, sys
d = sys.argv[1]
info = json.load(open(os.path.join(d, "corpora.json")))
lt, bal, wild = info["longtail"], info["balanced"], info["wild"]
assert lt["per_class"] == [max(1, round(120 * 0.01 ** (c / 9))) for c in range(10)], lt["per_class"]
assert lt["n"] == sum(lt["per_class"]) == bal["n"]
assert max(bal["per_class"]) - min(bal["per_class"]) <= 1 and sum(bal["per_class"]) == bal["n"]
junk = sum(wild["junk"].values())
assert wild["n"] == lt["n"] + junk and abs(junk / wild["n"] - 0.15) < 0.01, (junk, wild["n"])
assert len(wild["junk"]) == 6 and min(wild["junk"].values()) >= junk // 6
for name, n in (("longtail", lt["n"]), ("balanced", bal["n"]), ("wild", wild["n"])):
    files = os.listdir(os.path.join(d, name))
    assert len(files) == n and all(f.endswith(".png") for f in files), name
for name, n, per in (("probe", 50, 5), ("test", 100, None)):
    classes = sorted(os.listdir(os.path.join(d, name)))
    counts = [len(os.listdir(os.path.join(d, name, c))) for c in classes]
    assert classes == [f"class{c:02d}" for c in range(10)] and sum(counts) == n, (name, classes, counts)
    assert per is None or counts == [per] * 10, counts
print("ok")
PYEOF

# the benchmark on one corpus, two methods, two seeds
BIN=$BIN PY=$PY OUT=$TMP/nc SCALE=0.02 EPOCHS=1 SEEDS="31 7" CORPORA="wild" \
  METHODS="deepercluster deepcluster" TEST_IMAGES=100 PROBE_IMAGES=50 CORPUS_SEED=3 \
  bash "$ROOT/scripts/noncurated.sh" >"$TMP/table.md" 2>"$TMP/err" && ok || bad "noncurated.sh failed: $(tail -3 "$TMP/err")"
grep -qx '| corpus: method | NMI | ARI | ACC | best conv NMI (layer) | probe, conv1 | probe, conv2 | probe, conv3 | probe, conv4 | probe, conv5 | probe, conv6 | probe, final |' "$TMP/table.md" \
  && ok || bad "table header: $(grep '^| corpus' "$TMP/table.md")"
ms='-?[01]\.[0-9]{4} ± [01]\.[0-9]{4}'
for r in "wild: deepercluster" "wild: deepcluster" "random network"; do
  grep -qE "^\| $r \| ($ms) \| ($ms) \| ($ms) \| ($ms) \(conv[0-9](×2)?(, conv[0-9])?\)( \| ($ms)){7} \|$" "$TMP/table.md" \
    && ok || bad "row $r: $(grep "^| $r " "$TMP/table.md")"
done
grep -q "seeds 31 7 (mean ± sd)" "$TMP/table.md" && grep -q "wild 349" "$TMP/table.md" \
  && ok || bad "no settings line: $(grep Corpora "$TMP/table.md")"
for s in 31 7; do
  [ -e "$TMP/nc/runs/wild-deepcluster-$s/checkpoint.safetensors" ] && ok || bad "no run wild-deepcluster-$s"
  $PY -c 'import json,sys; assert json.load(open(sys.argv[1]))["epoch_size"] == int(sys.argv[2])' \
    "$TMP/nc/runs/wild-deepcluster-$s/config.json" 349 2>/dev/null && ok || bad "deepcluster's epoch is not the corpus's size"
done
# a second invocation reuses the runs and scores: the same table, nothing retrained
BIN=$BIN PY=$PY OUT=$TMP/nc SCALE=0.02 EPOCHS=1 SEEDS="31 7" CORPORA="wild" \
  METHODS="deepercluster deepcluster" TEST_IMAGES=100 PROBE_IMAGES=50 CORPUS_SEED=3 \
  bash "$ROOT/scripts/noncurated.sh" >"$TMP/table2.md" 2>"$TMP/err2" && ok || bad "second run failed"
cmp -s "$TMP/table.md" "$TMP/table2.md" && ok || bad "the second run's table differs"
grep -q "== training\|== scoring" "$TMP/err2" && bad "the second run retrained or rescored" || ok
# scores without their runs (as committed ones copied in): the same table, nothing trained
rm -rf "$TMP/nc/runs"
BIN=$BIN PY=$PY OUT=$TMP/nc SCALE=0.02 EPOCHS=1 SEEDS="31 7" CORPORA="wild" \
  METHODS="deepercluster deepcluster" TEST_IMAGES=100 PROBE_IMAGES=50 CORPUS_SEED=3 \
  bash "$ROOT/scripts/noncurated.sh" >"$TMP/table3.md" 2>"$TMP/err3" && ok || bad "third run failed: $(tail -3 "$TMP/err3")"
cmp -s "$TMP/table.md" "$TMP/table3.md" && ok || bad "the table from the scores alone differs"
grep -q "== training\|== scoring" "$TMP/err3" && bad "the runs were trained again though scored" || ok
summary
