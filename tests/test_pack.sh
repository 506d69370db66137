#!/usr/bin/env bash
# test_pack.sh — `deepercluster pack`: a pack reads as its source (IDX and
# an image folder with broken files; one shard or several), so features and
# a whole training run are bit-identical; resizing; refusals; damaged packs
# rejected with the file and the problem named.
. "$(dirname "$0")/lib.sh" pack
export OMP_NUM_THREADS=2
hashes() { "$BIN" inspect --hash "$1" | grep ' hash '; }
same_features() { # SRC PACK LAYER ARGS...
  local src=$1 pk=$2 layer=$3; shift 3
  "$BIN" features --weights random:vgg-s32 --data "$src" --layer "$layer" --out "$TMP/a.npy" --labels-out "$TMP/al.npy" "$@" >/dev/null 2>&1
  "$BIN" features --weights random:vgg-s32 --data "$pk" --layer "$layer" --out "$TMP/b.npy" --labels-out "$TMP/bl.npy" "$@" >/dev/null 2>&1
  [ -s "$TMP/a.npy" ] && [ "$(hashes "$TMP/a.npy")" = "$(hashes "$TMP/b.npy")" ] && [ "$(hashes "$TMP/al.npy")" = "$(hashes "$TMP/bl.npy")" ]
}
FOLDER=$DC_TEST_ROOT/tests/fixtures/images/folder
"$BIN" pack --data "$FOLDER" --out "$TMP/f" >"$TMP/f.log" 2>&1 && ok || bad "pack of a folder: $(cat "$TMP/f.log")"
grep -q "11 images (11 stored as their files, 0 resized)" "$TMP/f.log" && ok || bad "folder pack: $(tail -1 "$TMP/f.log")"
[ "$(grep -c '^skipped ' "$TMP/f.log")" -eq 4 ] && ok || bad "the 4 broken files are not listed"
same_features "$FOLDER" "$TMP/f" conv2 && ok || bad "folder pack: features or labels differ from the folder's"
"$BIN" pack --data "$FOLDER" --out "$TMP/f" >"$TMP/f2.log" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "already holds a pack" "$TMP/f2.log" && ok || bad "packing over a pack: exit $rc"
"$BIN" pack --data "$FOLDER" --out "$TMP/r" --max-side 40 >"$TMP/r.log" 2>&1 && grep -q ", [1-9][0-9]* resized)" "$TMP/r.log" \
  && ok || bad "resizing: $(tail -1 "$TMP/r.log")"
"$BIN" features --weights random:vgg-s32 --data "$TMP/r" --out "$TMP/r.npy" >/dev/null 2>&1 && ok || bad "reading a resized pack"
DATA=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
if [ -e "$DATA" ]; then
  "$BIN" pack --data "$DATA" --out "$TMP/i" --max-images 3000 --shard-mb 1 >"$TMP/i.log" 2>&1 && ok || bad "IDX pack: $(cat "$TMP/i.log")"
  grep -q "3000 images (0 stored as their files, 0 resized), 2.4 MB in 3 shards" "$TMP/i.log" && ok || bad "IDX pack: $(tail -1 "$TMP/i.log")"
  same_features "$DATA" "$TMP/i" final --max-images 3000 && ok || bad "IDX pack: features or labels differ"
  # a whole training run: the same weights from the pack as from the file
  RUN=(--max-images 256 --batch-size 8 --niter 3 --epochs 1 --k 16 --seed 2)
  "$BIN" train --data "$DATA" "${RUN[@]}" --out "$TMP/t1" >/dev/null 2>&1
  "$BIN" train --data "$TMP/i" "${RUN[@]}" --out "$TMP/t2" >"$TMP/t2.log" 2>&1 && ok || bad "training on a pack: $(tail -2 "$TMP/t2.log")"
  [ -s "$TMP/t1/checkpoint.safetensors" ] && [ "$(hashes "$TMP/t1/checkpoint.safetensors")" = "$(hashes "$TMP/t2/checkpoint.safetensors")" ] \
    && ok || bad "training on the pack gave other weights than on the IDX file"
  grep -q "NMI" "$TMP/t2/log.txt" && ok || bad "the pack's labels were not used for the clustering report"
  # damage: truncated index, wrong magic, an entry past its shard
  cp -r "$TMP/i" "$TMP/d1"; truncate -s 1000 "$TMP/d1/index.dcpack"
  "$BIN" features --weights random:vgg-s32 --data "$TMP/d1" --out "$TMP/x.npy" >"$TMP/d1.log" 2>&1; rc=$?
  [ $rc -eq 1 ] && grep -q "index.dcpack: 3000 images announced, the index holds 29" "$TMP/d1.log" && ok || bad "truncated index: exit $rc $(cat "$TMP/d1.log")"
  cp -r "$TMP/i" "$TMP/d2"; printf 'XX' | dd of="$TMP/d2/index.dcpack" bs=1 seek=0 conv=notrunc 2>/dev/null
  "$BIN" features --weights random:vgg-s32 --data "$TMP/d2" --out "$TMP/x.npy" >"$TMP/d2.log" 2>&1; rc=$?
  [ $rc -eq 1 ] && grep -q "not a deepercluster pack index" "$TMP/d2.log" && ok || bad "bad magic: exit $rc $(cat "$TMP/d2.log")"
  cp -r "$TMP/i" "$TMP/d3"; printf '\377\377\377' | dd of="$TMP/d3/index.dcpack" bs=1 seek=$((64 + 32 * 5 + 2)) conv=notrunc 2>/dev/null
  "$BIN" features --weights random:vgg-s32 --data "$TMP/d3" --out "$TMP/x.npy" >"$TMP/d3.log" 2>&1; rc=$?
  [ $rc -eq 1 ] && grep -q "image 5: bytes past the shard's end" "$TMP/d3.log" && ok || bad "entry past its shard: exit $rc $(cat "$TMP/d3.log")"
  cp -r "$TMP/i" "$TMP/d4"; rm "$TMP/d4/shard-00002.bin"
  "$BIN" features --weights random:vgg-s32 --data "$TMP/d4" --out "$TMP/x.npy" >"$TMP/d4.log" 2>&1; rc=$?
  [ $rc -eq 1 ] && grep -q "shard-00002.bin" "$TMP/d4.log" && ok || bad "missing shard: exit $rc $(cat "$TMP/d4.log")"
fi
rm -rf "$TMP"
summary
