#!/usr/bin/env bash
# bundle.sh — packs a build for a machine without our Debian packages (a
# GPU node of a cluster): the program, the test and benchmark programs, and
# every shared library they link that is not the C library's or the GPU's
# (OpenBLAS, oneDNN, cJSON, libpng, libjpeg, zlib, OpenMP, MPI, libstdc++,
# …; never libcuda, libcudart, cuDNN, cuBLAS or NCCL, which must come from
# the node, matching its driver), with launchers that set the library path.
#
#   scripts/bundle.sh BUILD_DIR OUT.tar.xz        (make [CUDA=1] bundle)
#
# On the node: tar xf OUT.tar.xz; DIR/deepercluster train …   (or
# `. DIR/env.sh` first to run DIR/build/… directly). The node's cuDNN and
# cuBLAS are found by the dynamic loader as usual (LD_LIBRARY_PATH,
# ldconfig); env.sh adds their usual places when they exist.
set -euo pipefail
B=${1:?usage: bundle.sh BUILD_DIR OUT.tar.xz}
OUT=${2:?usage: bundle.sh BUILD_DIR OUT.tar.xz}
name=$(basename "$OUT" .tar.xz)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/$name
mkdir -p "$root/lib" "$root/build"
# the build directory's programs, in their layout (tests/run.sh takes it)
bins=()
while IFS= read -r f; do bins+=("$f"); done < <(find "$B" -maxdepth 3 -type f -perm -u+x \
  \( -name deepercluster -o -path "*/tests/test_*" -o -path "*/tests/gpu/test_*" -o -path "*/bench/bench_*" \
     -o -path "*/fuzz/fuzz_replay" \) ! -name "*.o" ! -name "*.d" | sort)
[ ${#bins[@]} -gt 0 ] || { echo "bundle: no programs in $B (build first)" >&2; exit 1; }
for f in "${bins[@]}"; do
  rel=${f#"$B"/}
  mkdir -p "$root/build/$(dirname "$rel")"
  cp -p "$f" "$root/build/$rel"
done
cp -p "$B"/libdeepercluster.so.* "$root/lib/" 2>/dev/null || true
# what the loader resolves for them, less the C library and the GPU stack
skip='^(linux-vdso|ld-linux|libc\.so|libstdc\+\+|libgcc_s|libm\.so|libpthread|libdl\.so|librt\.so|libresolv|libutil\.so|libcuda\.so|libcudart|libcudnn|libcublas|libnccl|libnvrtc|libnvJitLink|libcufft|libcurand|libcusolver|libcusparse|libnvidia)'
declare -A seen=()
for f in "${bins[@]}"; do
  while read -r lib _ path _; do
    [ -n "${path:-}" ] && [ -e "$path" ] || continue
    base=$(basename "$lib")
    [[ $base =~ $skip ]] && continue
    [ -n "${seen[$base]:-}" ] && continue
    seen[$base]=1
    cp -L "$path" "$root/lib/$base"
  done < <(ldd "$f" | grep '=> /')
done
cat > "$root/env.sh" <<'ENV'
# . env.sh — the bundle's libraries first, then the node's GPU libraries
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
extra=""
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu; do
  [ -d "$d" ] && extra="$extra:$d"
done
for f in $(find /usr /opt -name 'libcudnn.so.9' 2>/dev/null | head -3); do extra="$extra:$(dirname "$f")"; done
export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}$extra"
ENV
cat > "$root/deepercluster" <<'RUN'
#!/usr/bin/env bash
# the bundled program with its libraries
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/env.sh"
exec "$here/build/deepercluster" "$@"
RUN
chmod +x "$root/deepercluster"
git -C "$(dirname "$0")/.." describe --always --dirty > "$root/VERSION" 2>/dev/null || echo unknown > "$root/VERSION"
mkdir -p "$(dirname "$OUT")"
tar -C "$stage" -cJf "$OUT" "$name"
echo "bundle: $OUT ($(du -h "$OUT" | cut -f1)): ${#bins[@]} programs, $(ls "$root/lib" | wc -l) libraries"
ls "$root/lib" | tr '\n' ' '; echo
