#!/usr/bin/env bash
# test_python.sh — the Python package (python/deepercluster) against the
# program, with the library of the build under test: tests/python/ under
# pytest (Debian's python3-numpy and python3-pytest; the PyTorch check
# skipped, saying so, without python3-torch), then `pip install ./python`
# offline into a scratch folder and the installed package imported.
. "$(dirname "$0")/lib.sh" python
need_fmnist
cd "$DC_TEST_ROOT" || exit 1
PY=/usr/bin/python3
$PY -c 'import numpy, pytest' 2>/dev/null || skip "Debian's python3-numpy and python3-pytest are not installed (scripts/setup.sh)"
B=$(dirname "$BIN")
LIBSO=$(ls "$B"/libdeepercluster.so.*.*.* 2>/dev/null | head -1)
[ -n "$LIBSO" ] || { bad "no libdeepercluster.so in $B"; summary; exit; }
export DEEPERCLUSTER_LIB=$(realpath "$LIBSO") OMP_NUM_THREADS=2
sel=() want=15
case "$B" in
  *asan*) # the interpreter is not built with the sanitizers: load their runtimes first; the
    # library's calls from Python checked, not the slow end-to-end runs (the release build's)
    export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
    export ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0
    sel=(-k "not ctrl_c and not pytorch") want=13
    echo "under the sanitizers: every test but the Ctrl-C and PyTorch ones (run by the release build)" ;;
esac
PYTHONPATH=$PWD/python PYTHONDONTWRITEBYTECODE=1 DC_TEST_BIN=$(realpath "$BIN") \
  $PY -m pytest -q -p no:cacheprovider -rs --basetemp="$TMP/pytest" "${sel[@]}" tests/python >"$TMP/pytest.log" 2>&1
rc=$?
tail -4 "$TMP/pytest.log"
if [ $rc -eq 0 ]; then ok; else bad "pytest: exit $rc: $(grep -E '^(FAILED|ERROR)|Error' "$TMP/pytest.log" | head -8)"; fi
passed=$(grep -oE '[0-9]+ passed' "$TMP/pytest.log" | grep -oE '[0-9]+' || echo 0)
[ "${passed:-0}" -ge $want ] && ok || bad "pytest passed $passed tests, expected at least $want"
unset LD_PRELOAD
# pip install ./python, offline, without a build step; then import it from there
rm -rf "$TMP/site"
if $PY -m pip --version >/dev/null 2>&1; then
  cp -r python "$TMP/src"
  $PY -m pip install -q --no-deps --no-index --no-build-isolation --target "$TMP/site" "$TMP/src" >"$TMP/pip.log" 2>&1 &&
    ok || bad "pip install ./python failed: $(tail -3 "$TMP/pip.log")"
  v=$(cd "$TMP" && PYTHONPATH="$TMP/site" $PY -c 'import deepercluster as d; print(d.version(), d.__file__)' 2>&1)
  case "$v" in "0.1.0 $TMP/site/deepercluster/__init__.py") ok ;; *) bad "the installed package: $v" ;; esac
else
  echo "SKIP: pip (Debian's python3-pip) is not installed: pip install ./python not checked"
fi
rm -rf "$TMP"
summary
