#!/usr/bin/env bash
# test_mpi.sh — the communication module and distributed k-means under
# mpirun with 2 and 4 ranks (oversubscribed on this 2-core machine), and a
# failing rank bringing the whole job down with its message, quickly.
set -u
B=$(dirname "$DC_TEST_BIN")
PROG="$B/tests/test_comm"
pass=0; fail=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
if ! command -v mpirun >/dev/null; then
  echo "SKIP: mpirun not installed (apt-get install openmpi-bin)"; echo "0 passed, 0 failed"; exit 0
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=0  # OpenMPI's own allocations
export OMP_NUM_THREADS=1
out=$(mpirun --oversubscribe -np 1 "$PROG" 2>&1)
if ! grep -q "backend mpi" <<<"$out"; then
  echo "SKIP: this build has no MPI ($(head -1 <<<"$out"))"; echo "0 passed, 0 failed"; exit 0
fi
for np in 2 4; do
  out=$(timeout 300 mpirun --oversubscribe -np $np "$PROG" 2>&1); rc=$?
  [ $rc -eq 0 ] && ok || bad "mpirun -np $np exited $rc: $out"
  grep -q "backend mpi, $np ranks" <<<"$out" && ok || bad "-np $np: $out"
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' <<<"$out")
  [ -n "$line" ] && [ "${line#*, }" = "0 failed" ] && ok || bad "-np $np: $line"
done
start=$(date +%s)
out=$(DC_TEST_ABORT=1 timeout 60 mpirun --oversubscribe -np 3 "$PROG" 2>&1); rc=$?
took=$(( $(date +%s) - start ))
[ $rc -ne 0 ] && [ $rc -ne 124 ] && ok || bad "a failing rank: exit $rc"
grep -q "rank 1: injected failure" <<<"$out" && ok || bad "no message from the failing rank: $out"
[ $took -le 15 ] && ok || bad "the job took ${took}s to stop"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
