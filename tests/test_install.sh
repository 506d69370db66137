#!/usr/bin/env bash
# make install into a scratch prefix, then the installed library used as a
# library user would: every public header compiles alone (C11 and C++17),
# examples/cluster_features.c builds with pkg-config against the shared and
# the static library, and its features and clusters equal the program's.
. "$(dirname "$0")/lib.sh" install
ROOT=${DC_TEST_ROOT:?}
BDIR=$(dirname "$BIN")
case "$(basename "$BDIR")" in asan) MODE=asan; SAN="-fsanitize=address,undefined" ;; *) MODE=release; SAN="" ;; esac
P=$TMP/prefix
command -v pkg-config >/dev/null || skip "pkg-config not installed"

# The nested make must not join the test run's job server.
if env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$ROOT" install BUILD=$MODE B="$BDIR" PREFIX="$P" \
    >"$TMP/install.log" 2>&1; then ok; else cat "$TMP/install.log"; bad "make install failed"; fi
VERSION=$("$BIN" --version | awk '{print $2}')
for f in bin/deepercluster lib/libdeepercluster.a lib/libdeepercluster.so.$VERSION lib/pkgconfig/deepercluster.pc; do
  [ -f "$P/$f" ] && ok || bad "$f not installed"
done
[ "$(readlink "$P/lib/libdeepercluster.so")" = "libdeepercluster.so.${VERSION%%.*}" ] &&
  [ "$(readlink "$P/lib/libdeepercluster.so.${VERSION%%.*}")" = "libdeepercluster.so.$VERSION" ] && ok ||
  bad "shared library links: $(ls -l "$P"/lib/libdeepercluster.so*)"
[ "$(ls "$ROOT"/include/dc/*.h | wc -l)" -eq "$(ls "$P"/include/dc/*.h | wc -l)" ] && ok || bad "headers not all installed"
# One prefix: every symbol the shared library exports is dc_… (OpenMP's
# named critical sections aside).
other=$(nm -D --defined-only "$P/lib/libdeepercluster.so.$VERSION" | awk '{print $3}' |
  grep -v -e '^dc_' -e '^\.gomp_critical_user_dc_' | head -5)
[ -z "$other" ] && ok || bad "exported symbols without the dc_ prefix: $other"
"$P/bin/deepercluster" --version | grep -q "$VERSION" && ok || bad "installed program does not run"
export PKG_CONFIG_PATH="$P/lib/pkgconfig"
[ "$(pkg-config --modversion deepercluster)" = "$VERSION" ] && ok || bad "pkg-config --modversion"
CFLAGS=$(pkg-config --cflags deepercluster)

# Each header on its own, in C and in C++ (extern "C", no C-only types).
for h in "$P"/include/dc/*.h; do
  n=dc/$(basename "$h")
  echo "#include <$n>" | cc -std=c11 -Wall -Wextra -Werror -pedantic $CFLAGS -fsyntax-only -x c - 2>"$TMP/h.err" &&
    ok || { cat "$TMP/h.err"; bad "$n does not compile alone as C11"; }
  echo "#include <$n>" | c++ -std=c++17 -Wall -Wextra -Werror $CFLAGS -fsyntax-only -x c++ - 2>"$TMP/h.err" &&
    ok || { cat "$TMP/h.err"; bad "$n does not compile as C++17"; }
done
printf '#include <dc/nn.h>\n#include <cstring>\nint main(void) {\n  return dc_preset_find("vgg-s32") && !std::strcmp(dc_version(), DC_VERSION_STRING) ? 0 : 1;\n}\n' >"$TMP/cxx.cc"
c++ $SAN "$TMP/cxx.cc" $CFLAGS $(pkg-config --libs deepercluster) -Wl,-rpath,"$P/lib" -o "$TMP/cxx" 2>"$TMP/cxx.err" &&
  "$TMP/cxx" && ok || { cat "$TMP/cxx.err"; bad "a C++ program does not link and run against the library"; }

# The example, against the shared library, then the static one.
EX=$ROOT/examples/cluster_features.c
cc -std=c11 -Wall -Wextra -Werror $SAN "$EX" $CFLAGS $(pkg-config --libs deepercluster) -Wl,-rpath,"$P/lib" \
  -o "$TMP/ex_shared" 2>"$TMP/ex.err" && ok || { cat "$TMP/ex.err"; bad "example does not build (shared)"; }
ldd "$TMP/ex_shared" 2>/dev/null | grep -q "libdeepercluster.so.${VERSION%%.*} => $P/lib/" && ok ||
  bad "example not linked to the installed shared library"
cc -std=c11 -Wall -Wextra -Werror $SAN "$EX" $CFLAGS -fopenmp $(pkg-config --static --libs deepercluster | sed 's/-ldeepercluster/-l:libdeepercluster.a/') \
  -o "$TMP/ex_static" 2>"$TMP/ex.err" && ok || { cat "$TMP/ex.err"; bad "example does not build (static)"; }
ldd "$TMP/ex_static" 2>/dev/null | grep -q libdeepercluster && bad "static example uses the shared library" || ok

# A trained network's features and clusters: the example equals the program.
D=$ROOT/tests/fixtures/images/folder
"$BIN" train --data "$D" --out "$TMP/run" --arch vgg-s32 --epochs 1 --k 4 --super-classes 4 --batch-size 2 \
  --threads 2 >"$TMP/train.log" 2>&1 || { cat "$TMP/train.log"; bad "train"; }
W=$TMP/run/checkpoint.safetensors
"$BIN" features --weights "$W" --data "$D" --out "$TMP/cli.npy" >/dev/null 2>&1 || bad "features"
"$BIN" eval clusters --weights "$W" --data "$D" --k 2 >"$TMP/cli.txt" 2>/dev/null || bad "eval clusters"
want=$(awk '$1 == "final" {printf "NMI %s ARI %s ACC %s", $2, $3, $4}' "$TMP/cli.txt")
for kind in shared static; do
  "$TMP/ex_$kind" "$W" "$D" "$TMP/$kind.npy" final 2 >"$TMP/$kind.txt" 2>&1 || { cat "$TMP/$kind.txt"; bad "example ($kind) failed"; }
  cmp -s "$TMP/cli.npy" "$TMP/$kind.npy" && ok || bad "example ($kind): features differ from deepercluster features"
  grep -q "k = 2: $want\$" "$TMP/$kind.txt" && [ -n "$want" ] && ok ||
    bad "example ($kind): '$(tail -1 "$TMP/$kind.txt")', eval clusters: '$want'"
done
"$TMP/ex_shared" "$W" "$D" "$TMP/x.npy" conv9 >"$TMP/err.txt" 2>&1
[ $? -eq 1 ] && grep -q "conv9: layer conv9: expected final or conv1 ... conv6" "$TMP/err.txt" && ok ||
  bad "example: unknown layer: $(cat "$TMP/err.txt")"

# Training through the library: the same run as the program's, to the bit.
cc -std=c11 -Wall -Wextra -Werror $SAN "$ROOT/examples/train_run.c" $CFLAGS $(pkg-config --libs deepercluster) \
  -Wl,-rpath,"$P/lib" -o "$TMP/ex_train" 2>"$TMP/ex.err" && ok || { cat "$TMP/ex.err"; bad "train_run does not build"; }
if [ -e "$FMNIST/train-images-idx3-ubyte.gz" ]; then
  T=$FMNIST/train-images-idx3-ubyte.gz
  OMP_NUM_THREADS=2 "$BIN" train --data "$T" --out "$TMP/tcli" --epochs 2 --max-images 128 >"$TMP/tcli.log" 2>&1 ||
    bad "train: $(tail -1 "$TMP/tcli.log")"
  OMP_NUM_THREADS=2 "$TMP/ex_train" "$T" "$TMP/tlib" 2 128 >"$TMP/tlib.log" 2>&1 || bad "train_run: $(tail -1 "$TMP/tlib.log")"
  h1=$("$BIN" inspect --hash "$TMP/tcli/checkpoint.safetensors" | grep ' hash ')
  h2=$("$BIN" inspect --hash "$TMP/tlib/checkpoint.safetensors" | grep ' hash ')
  [ -n "$h1" ] && [ "$h1" = "$h2" ] && ok || bad "train_run's checkpoint differs from train's: '$h1' / '$h2'"
  grep -q "the first image's 512 features begin" "$TMP/tlib.log" && ok || bad "train_run: $(tail -1 "$TMP/tlib.log")"
  "$TMP/ex_train" "$T" "$TMP/tlib3" -1 128 >"$TMP/bad.log" 2>&1; rc=$?
  [ $rc -eq 2 ] && grep -q "train_run: .*epochs" "$TMP/bad.log" && ok || bad "train_run with -1 epochs: exit $rc: $(cat "$TMP/bad.log")"
fi

# Weights that do not fit the data: the message names the run's architecture.
if [ -e "$FMNIST/t10k-images-idx3-ubyte.gz" ]; then
  "$BIN" features --weights "$W" --data "$FMNIST/t10k-images-idx3-ubyte.gz" --max-images 4 --out "$TMP/g.npy" \
    >"$TMP/g.log" 2>&1
  [ $? -ne 0 ] && grep -q "weights do not fit vgg-s32 with 1-channel input" "$TMP/g.log" && [ ! -e "$TMP/g.npy" ] && ok ||
    bad "RGB weights on grey images: $(tail -1 "$TMP/g.log")"
fi

# The smallest build the Makefile offers (no OpenMP, MPI or oneDNN; -O0,
# once, with the release tests) compiles, links and runs.
if [ "$MODE" = release ]; then
  if env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$ROOT" BUILD=debug B="$TMP/minimal" NO_OMP=1 NO_MPI=1 NO_DNNL=1 \
      "$TMP/minimal/deepercluster" >"$TMP/minimal.log" 2>&1 &&
      "$TMP/minimal/deepercluster" features --weights random:vgg-s32 --data "$D" --out "$TMP/min.npy" >/dev/null 2>&1; then ok
  else bad "make NO_OMP=1 NO_MPI=1 NO_DNNL=1: $(grep -m3 -E 'error|Error' "$TMP/minimal.log")"; fi
fi

# The Python package, copied out of the checkout (so no build tree is near),
# finds the installed library on the loader's path.
if [ $MODE = release ] && /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
  mkdir -p "$TMP/py" && cp -r "$ROOT/python/deepercluster" "$TMP/py/"
  got=$(cd "$TMP" && env -u DEEPERCLUSTER_LIB LD_LIBRARY_PATH="$P/lib" PYTHONPATH="$TMP/py" PYTHONDONTWRITEBYTECODE=1 \
    /usr/bin/python3 -c 'import deepercluster as d, os; print(d.version(), os.path.realpath(d.library_path) if "/" in d.library_path else d.library_path)' 2>&1)
  case "$got" in "$VERSION "*) ok ;; *) bad "the Python package with the installed library: $got" ;; esac
fi

# Staged for a package: files under DESTDIR, paths in them without it.
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$ROOT" install BUILD=$MODE B="$BDIR" PREFIX=/usr \
  DESTDIR="$TMP/stage" >/dev/null 2>&1
grep -qx 'prefix=/usr' "$TMP/stage/usr/lib/pkgconfig/deepercluster.pc" 2>/dev/null &&
  [ -x "$TMP/stage/usr/bin/deepercluster" ] && ok || bad "make install DESTDIR=… PREFIX=/usr"

env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$ROOT" uninstall BUILD=$MODE B="$BDIR" PREFIX="$P" >/dev/null 2>&1
[ -z "$(find "$P" -type f)" ] && ok || bad "make uninstall left $(find "$P" -type f | head -3)"
summary
