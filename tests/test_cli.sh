#!/usr/bin/env bash
# test_cli.sh — the command-line contract: help, version, exit status 2 with
# a one-line message for every usage error, and `inspect` on each format.
# Needs DC_TEST_BIN (set by tests/run.sh).
. "$(dirname "$0")/lib.sh" cli

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

# kmeans and metrics on three well-separated blobs (tools/gen_cluster_fixtures.py).
F=$DC_TEST_ROOT/tests/fixtures/cluster
expect 0 'usage: deepercluster kmeans' -- kmeans --help
expect 0 'hierarchical k-means: 120 points, d=4, 3 super-clusters x 2' -- kmeans --in "$F/blobs_x.npy" --k 6 --super-clusters 3 --pca 4 --out "$TMP/a2.npy" --centroids "$TMP/c2.npy" --pca-out "$TMP/p.safetensors"
expect 0 'npy I32 \(120, 2\)' -- inspect "$TMP/a2.npy"
expect 0 'npy F32 \(3, 2, 4\)' -- inspect "$TMP/c2.npy"
expect 0 'meta format = deepercluster-pca' -- inspect "$TMP/p.safetensors"
expect 0 'super +1\.0000 +1\.0000 +1\.0000 +1\.0000' -- metrics --pred "$TMP/a2.npy" --labels "$F/blobs_y.npy" --json "$TMP/m.json"
expect 0 '"nmi":' -- inspect "$TMP/m.json"
expect 0 'k-means: 120 points, d=8, k=5' -- kmeans --in "$F/blobs_x.npy" --k 5 --out "$TMP/a1.npy" --seed 3 --threads 1 --dim_pca 0
expect 0 'clusters ' -- metrics --pred "$TMP/a1.npy" --labels "$F/blobs_y64.npy"
# the same seed gives the same assignment; the original's spellings work
"$BIN" kmeans --in "$F/blobs_x.npy" --nmb_cluster 5 --out "$TMP/a1b.npy" --seed 3 --threads 2 >/dev/null 2>&1
cmp -s "$TMP/a1.npy" "$TMP/a1b.npy" && ok || bad "kmeans: same seed, different threads, different output"
# usage errors: exit 2, one line
expect 2 "deepercluster kmeans: --k: 'abc' is not an integer" -- kmeans --in x.npy --out y.npy --k abc
expect 2 "deepercluster kmeans: --k: -3 is out of range \(must be at least 1\)" -- kmeans --in x.npy --out y.npy --k -3
expect 2 "deepercluster kmeans: --niter: 'nan' is not an integer" -- kmeans --in x.npy --out y.npy --k 3 --niter nan
expect 2 "missing required option --in" -- kmeans --k 3 --out y.npy
expect 2 "--k 10 is not a multiple of --super-clusters 4" -- kmeans --in "$F/blobs_x.npy" --out "$TMP/z.npy" --k 10 --super-clusters 4
expect 2 "--pca 9 is larger than the feature dimension 8" -- kmeans --in "$F/blobs_x.npy" --out "$TMP/z.npy" --k 2 --pca 9
expect 2 "deepercluster kmeans: --device gpu: expected auto, cpu, cuda or cuda:N" -- kmeans --in "$F/blobs_x.npy" --out "$TMP/z.npy" --k 2 --device gpu
# --device cuda where there is no GPU (or no CUDA build): one line saying what to do, exit 1, nothing written
if ! nvidia-smi -L >/dev/null 2>&1; then
  expect 1 "no GPU engine: rebuild with .make CUDA=1.|no NVIDIA driver is installed|no CUDA GPU is visible" -- \
    kmeans --in "$F/blobs_x.npy" --out "$TMP/z.npy" --k 2 --device cuda
  [ ! -e "$TMP/z.npy" ] && ok || bad "kmeans --device cuda without a GPU wrote $TMP/z.npy"
fi
# bad files: exit 1 naming the file; nothing written
expect 1 "blobs_y.npy: wrong dtype I32, expected F32" -- kmeans --in "$F/blobs_y.npy" --out "$TMP/z.npy" --k 2
expect 1 "absent.npy: cannot open" -- kmeans --in "$TMP/absent.npy" --out "$TMP/z.npy" --k 2
# a float32 (2, 2) matrix holding a NaN, written by hand
{ printf '\x93NUMPY\x01\x00\x76\x00'; printf "%-117s\n" "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }";
  printf '\x00\x00\x80\x3f\x00\x00\xc0\x7f\x00\x00\x00\x00\x00\x00\x00\x40'; } > "$TMP/nan.npy"
expect 0 'non-finite 1' -- inspect "$TMP/nan.npy"
expect 1 "NaN or infinite value at row 0, column 1" -- kmeans --in "$TMP/nan.npy" --out "$TMP/z.npy" --k 2
[ ! -e "$TMP/z.npy" ] && ok || bad "kmeans wrote an output after an error"
# features over --memory-mb: read from the file a block at a time, the
# whitened rows and the super-clusters' members through scratch files
# (removed after): the same bytes as in memory. The blobs repeated 2^11
# times: 245,760 x 8 float32, 7.5 MB.
tail -c +129 "$F/blobs_x.npy" > "$TMP/d.bin"
for _ in $(seq 11); do cat "$TMP/d.bin" "$TMP/d.bin" > "$TMP/d2.bin"; mv "$TMP/d2.bin" "$TMP/d.bin"; done
{ printf '\x93NUMPY\x01\x00\x76\x00'; printf "%-117s\n" "{'descr': '<f4', 'fortran_order': False, 'shape': (245760, 8), }";
  cat "$TMP/d.bin"; } > "$TMP/big.npy"
mkdir -p "$TMP/scratch"
for args in "--k 6 --super-clusters 3 --pca 8" "--k 5 --pca 6" "--k 9 --super-clusters 3"; do
  "$BIN" kmeans --in "$TMP/big.npy" $args --out "$TMP/m0.npy" --centroids "$TMP/c0.npy" >/dev/null 2>&1 && ok || bad "kmeans $args in memory"
  "$BIN" kmeans --in "$TMP/big.npy" $args --out "$TMP/m1.npy" --centroids "$TMP/c1.npy" --memory-mb 1 --scratch "$TMP/scratch" \
    >/dev/null 2>"$TMP/ooc.err" && ok || bad "kmeans $args --memory-mb 1: $(tail -2 "$TMP/ooc.err")"
  grep -q "over the memory budget of 1 MB: read a block at a time" "$TMP/ooc.err" && ok || bad "kmeans $args: not streamed"
  cmp -s "$TMP/m0.npy" "$TMP/m1.npy" && cmp -s "$TMP/c0.npy" "$TMP/c1.npy" && ok || bad "kmeans $args: --memory-mb 1 changed the result"
  [ -z "$(ls -A "$TMP/scratch")" ] && ok || bad "kmeans $args: scratch files left: $(ls "$TMP/scratch")"
done
grep -q "level-2 k-means 1/3: .* members, over the memory budget: in the scratch file $TMP/scratch/level2" "$TMP/ooc.err" \
  && ok || bad "level 2 did not go through a scratch file: $(cat "$TMP/ooc.err")"
"$BIN" kmeans --in "$TMP/big.npy" --k 5 --pca 6 --out "$TMP/m1.npy" --memory-mb 1 --scratch "$TMP/scratch" 2>&1 | grep -q "whitened features: .* in the scratch file" \
  && ok || bad "the whitened features did not go through a scratch file"
expect 1 "absent/whitened\..*: cannot" -- kmeans --in "$TMP/big.npy" --k 5 --pca 6 --out "$TMP/m2.npy" --memory-mb 1 --scratch "$TMP/absent"
[ ! -e "$TMP/m2.npy" ] && ok || bad "kmeans wrote an output after a scratch error"
expect 1 "labels must be integers" -- metrics --pred "$TMP/a1.npy" --labels "$F/blobs_x.npy"
{ printf '\x93NUMPY\x01\x00\x76\x00'; printf "%-117s\n" "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }";
  printf '\x01\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00'; } > "$TMP/three.npy"
expect 1 "has 120 rows but .* has 3" -- metrics --pred "$TMP/a1.npy" --labels "$TMP/three.npy"
expect 1 "i64_v1.npy: label -5 at index 0 is negative" -- metrics --pred "$TMP/a1.npy" --labels "$DC_TEST_ROOT/tests/fixtures/io/i64_v1.npy"
expect 2 "missing required option --labels" -- metrics --pred "$TMP/a1.npy"

rm -rf "$TMP"
summary
