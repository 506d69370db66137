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
