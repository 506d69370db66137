#!/usr/bin/env bash
# test_targets.sh — scripts/targets.sh (issue 24's feature-quality targets:
# the default run against the random network of each seed) at a tiny size:
# it trains and scores each seed, prints a row per seed and network, the
# mean ± sd rows and the margins, and says "met" or "NOT met" for each
# target as the scores themselves say; a second invocation reuses it all.
. "$(dirname "$0")/lib.sh" targets
need_fmnist
ROOT=${DC_TEST_ROOT:?run through tests/run.sh}
PY=/usr/bin/python3
$PY -c 'import numpy' 2>/dev/null || skip "python3-numpy missing (bash scripts/setup.sh)"
export OMP_NUM_THREADS=2
args=(BIN=$BIN PY=$PY OUT=$TMP/t IMAGES=128 EPOCHS=1 SEEDS="31 7" TEST_IMAGES=100 PROBE_IMAGES=100 RUNS=2)
env "${args[@]}" bash "$ROOT/scripts/targets.sh" >"$TMP/table.md" 2>"$TMP/err" && ok || bad "targets.sh failed: $(tail -3 "$TMP/err")"
grep -qx '| network | NMI | probe, conv1 | probe, conv2 | probe, conv3 | probe, conv4 | probe, conv5 | probe, conv6 | probe, final |' "$TMP/table.md" \
  && ok || bad "table header: $(grep '^| network' "$TMP/table.md")"
num='-?[01]\.[0-9]{4}'
for r in "deepercluster, seed 31" "deepercluster, seed 7" "random, seed 31" "random, seed 7"; do
  grep -qE "^\| $r( \| $num){8} \|$" "$TMP/table.md" && ok || bad "row $r: $(grep "^| $r " "$TMP/table.md")"
done
for r in '\*\*deepercluster, mean ± sd\*\*' '\*\*random, mean ± sd\*\*' 'margin \(seed for seed\)'; do
  grep -qE "^\| $r( \| $num ± [01]\.[0-9]{4}){8} \|$" "$TMP/table.md" && ok || bad "row $r: $(grep "^| ${r:0:6}" "$TMP/table.md")"
done
[ -e "$TMP/t/deepercluster-31/checkpoint.safetensors" ] && ok || bad "no run deepercluster-31"
# the figures and verdicts follow from the score files
$PY - "$TMP/t/scores" "$TMP/table.md" <<'PYEOF' >"$TMP/check" 2>&1 && ok || bad "table against scores: $(cat "$TMP/check")"
import json, sys
import numpy as np
d, table = sys.argv[1], open(sys.argv[2]).read()
def load(m, s):
    c = json.load(open(f"{d}/{m}-{s}.clusters.json"))
    assert c["runs"] == 2, c["runs"]
    p = {r["layer"]: r["top1"] for r in json.load(open(f"{d}/{m}-{s}.probe.json"))["results"]}
    return [c["nmi"]] + [p[l] for l in ("conv1", "conv2", "conv3", "conv4", "conv5", "conv6", "final")]
tr = np.array([load("deepercluster", s) for s in (31, 7)])
rd = np.array([load("random", s) for s in (31, 7)])
row = "| deepercluster, seed 7 | " + " | ".join(f"{v:.4f}" for v in tr[1]) + " |"
assert row in table, row
diff = tr - rd
cell = f"{diff[:, 7].mean():.4f} ± {diff[:, 7].std(ddof=1):.4f}"
assert f"| margin (seed for seed) |" in table and cell in table.split("margin (seed for seed)")[1].splitlines()[0], cell
nmi_met = tr[:, 0].mean() >= 0.65
assert f"target NMI >= 0.65: {'met' if nmi_met else 'NOT met'} (mean {tr[:, 0].mean():.4f})" in table
probe_met = all(round(m, 6) >= 0.01 for m in tr[:, 1:].mean(0) - rd[:, 1:].mean(0))
assert f"target every probe >= random + 1 point: {'met' if probe_met else 'NOT met'} " in table
print("ok")
PYEOF
# a second invocation reuses the runs and scores: the same table, nothing retrained or rescored
env "${args[@]}" bash "$ROOT/scripts/targets.sh" >"$TMP/table2.md" 2>"$TMP/err2" && ok || bad "second run failed"
cmp -s "$TMP/table.md" "$TMP/table2.md" && ok || bad "the second run's table differs"
grep -q "== training\|== scoring" "$TMP/err2" && bad "the second run retrained or rescored" || ok
summary
