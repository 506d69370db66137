#!/usr/bin/env bash
# test_cli.sh — the command-line contract: help, version, exit status 2 with
# a one-line message for every usage error, and `inspect` on each format.
# Needs DC_TEST_BIN (set by tests/run.sh).
set -u
BIN=${DC_TEST_BIN:?run through tests/run.sh}
TMP=${DC_TEST_TMP:-/tmp}/cli.$$
mkdir -p "$TMP"
pass=0; fail=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }

# expect STATUS PATTERN -- ARGS...: exit status and a grep pattern on
# stdout+stderr; usage errors must also be a single line on stderr.
expect() {
  local want=$1 pat=$2; shift 3
  local out rc
  out=$("$BIN" "$@" 2>"$TMP/err"); rc=$?
  local err; err=$(cat "$TMP/err")
  [ "$rc" -eq "$want" ] && ok || bad "deepercluster $* exited $rc, expected $want ($err)"
  if [ -n "$pat" ]; then
    printf '%s\n%s\n' "$out" "$err" | grep -qE -- "$pat" && ok || bad "deepercluster $*: no '$pat' in: $out $err"
  fi
  if [ "$want" -eq 2 ] && [ "$#" -gt 0 ] && [ "$1" != "" ]; then
    [ "$(printf '%s' "$err" | wc -l)" -le 1 ] && [ -n "$err" ] && ok || bad "deepercluster $*: usage error is not one line: $err"
  fi
}

expect 0 '^usage: deepercluster <command>' -- --help
expect 0 'inspect' -- -h
expect 0 '^deepercluster [0-9]+\.[0-9]+\.[0-9]+$' -- --version
expect 0 'usage: deepercluster inspect' -- inspect --help
expect 0 'usage: deepercluster inspect' -- help inspect
expect 2 'usage:' --
expect 2 "unknown command 'frobnicate'" -- frobnicate
expect 2 "unknown option '--frob'" -- --frob
expect 2 "unknown command 'nope'" -- help nope
expect 2 "deepercluster inspect: unknown option '--bogus'" -- inspect --bogus x
expect 2 "deepercluster inspect: --rows: 'abc' is not an integer" -- inspect --rows abc x
expect 2 "deepercluster inspect: --rows: -3 is out of range" -- inspect --rows -3 x
expect 2 "deepercluster inspect: --rows: '1.5' is not an integer" -- inspect --rows 1.5 x
expect 2 "deepercluster inspect: --rows needs a value" -- inspect x --rows
expect 2 "expected one FILE" -- inspect
expect 2 "unexpected argument 'b'" -- inspect a b

# inspect on real files of each format, and on broken ones (exit 1, message).
printf '{"epoch": 3, "lr": 0.05}' > "$TMP/c.json"
expect 0 '"epoch":[[:space:]]*3' -- inspect "$TMP/c.json"
expect 0 'npy F32 \(2, 3, 4\)' -- inspect "$DC_TEST_ROOT/tests/fixtures/io/f32_v2.npy"
expect 0 'min -3  max 8.5' -- inspect "$DC_TEST_ROOT/tests/fixtures/io/f32_v1.npy"
expect 0 '\[1\] 3 3.5 4' -- inspect --rows 2 "$DC_TEST_ROOT/tests/fixtures/io/f32_v1.npy"
expect 1 "f64.npy: dtype '<f8' is not supported" -- inspect "$DC_TEST_ROOT/tests/fixtures/io/f64.npy"
expect 1 'cannot open' -- inspect "$TMP/absent.npy"
head -c 100 "$DC_TEST_ROOT/tests/fixtures/io/f32_v1.npy" > "$TMP/trunc.npy"
expect 1 'trunc.npy: truncated' -- inspect "$TMP/trunc.npy"
printf 'garbage' > "$TMP/garbage.bin"
expect 1 'not a .npy, safetensors or JSON file' -- inspect "$TMP/garbage.bin"

rm -rf "$TMP"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
