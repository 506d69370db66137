#!/usr/bin/env bash
# Runs every test program of a build directory and every tests/test_*.sh
# against its binary; prints each program's summary line and a total; exits
# non-zero if anything failed. Usage: tests/run.sh build/<mode>
set -u
shopt -s nullglob
B=${1:?usage: tests/run.sh BUILD_DIR}
export DC_TEST_BIN="$PWD/$B/deepercluster"
export DC_TEST_ROOT="$PWD"
export DC_TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/dctest.XXXXXX")
trap 'rm -rf "$DC_TEST_TMP"' EXIT
total_p=0; total_f=0; bad=()
t0=$(date +%s)
for t in "$B"/tests/test_* tests/test_*.sh; do
  [ -x "$t" ] || [ "${t##*.}" = sh ] || continue
  case "$t" in *.o|*.d) continue;; esac
  name=$(basename "$t")
  start=$EPOCHREALTIME
  if [ "${t##*.}" = sh ]; then out=$(bash "$t" 2>&1); rc=$?
  else out=$("$t" 2>&1); rc=$?; fi
  dur=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}')
  line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -1)
  if [ -z "$line" ]; then
    echo "$out"; echo "✗ $name: exited $rc without a summary line"; bad+=("$name"); continue
  fi
  p=${line%% passed*}; f=${line#*, }; f=${f%% failed*}
  total_p=$((total_p + p)); total_f=$((total_f + f))
  if [ "$rc" -ne 0 ] || [ "$f" -ne 0 ]; then
    echo "$out"; echo "✗ $name: $line (exit $rc)"; bad+=("$name")
  else
    printf '✓ %-28s %s  (%ss)\n' "$name" "$line" "$dur"
  fi
done
echo "$B: $total_p passed, $total_f failed, ${#bad[@]} programs failing, $(( $(date +%s) - t0 ))s"
[ ${#bad[@]} -eq 0 ]
