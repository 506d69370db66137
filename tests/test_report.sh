#!/usr/bin/env bash
# test_report.sh — `deepercluster report` on a tiny training run: the page
# is written, self-contained (no scripts, nothing fetched), holds the
# charts, the cluster browser with thumbnails that are real PNGs, the
# evaluations beside the random baseline and the configuration (with the
# options a resume changed); bad runs are refused; and headless Chromium
# renders it without console messages (skipped, with the reason, where
# Chromium is not installed).
. "$(dirname "$0")/lib.sh" report
need_fmnist
DATA=$FMNIST/train-images-idx3-ubyte.gz
TEST=$FMNIST/t10k-images-idx3-ubyte.gz
export OMP_NUM_THREADS=2
RUN=$TMP/run
"$BIN" train --data "$DATA" --max-images 256 --batch-size 8 --niter 3 --epochs 2 --reassignment 1 --k 16 --seed 3 \
  --out "$RUN" >"$TMP/train.log" 2>&1 && ok || bad "training: $(tail -3 "$TMP/train.log")"
"$BIN" eval clusters --weights "$RUN" --data "$TEST" --max-images 200 >/dev/null 2>&1 && ok || bad "eval of the run"
"$BIN" eval clusters --weights random:vgg-s32 --data "$TEST" --max-images 200 --record "$RUN" >/dev/null 2>&1 \
  && ok || bad "eval of the random baseline"
"$BIN" eval clusters --weights pixels --data "$TEST" --max-images 200 --record "$RUN" >"$TMP/px.out" 2>&1 \
  && grep -qE '^pixels +0\.[0-9]{4} ' "$TMP/px.out" && ok || bad "eval of the raw-pixel baseline: $(cat "$TMP/px.out")"
out=$("$BIN" report --run "$RUN" 2>&1) && ok || bad "report: $out"
H=$RUN/report.html
[ "$out" = "$H" ] && [ -s "$H" ] && ok || bad "report printed '$out'"
# self-contained: no scripts, nothing loaded from elsewhere
! grep -qi '<script' "$H" && ok || bad "the page has a script"
! grep -oE '(src|href)="[a-z]+:[^"]*' "$H" | grep -v '^src="data:image/png;base64,' | grep -q . && ok \
  || bad "the page links outside itself: $(grep -oE '(src|href)="[a-z]+:[^"]{0,40}' "$H" | grep -v data: | head -2)"
for id in curves sizes browser evals config; do grep -q "<section id=\"$id\">" "$H" && ok || bad "no section $id"; done
[ "$(grep -o '<svg' "$H" | wc -l)" -eq 6 ] && ok || bad "expected 6 charts, found $(grep -o '<svg' "$H" | wc -l)"
grep -q '<polyline' "$H" && grep -q '<rect class="bar"' "$H" && ok || bad "charts without lines or bars"
# 2 super-clusters x 6 sub-clusters x 8 nearest members
n=$(grep -o '<img ' "$H" | wc -l)
[ "$n" -eq 96 ] && ok || bad "expected 96 thumbnails, found $n"
grep -q 'sub-cluster [0-9]* · [0-9]* images · label [0-9], purity 0\.[0-9][0-9]' "$H" && ok || bad "no majority label / purity"
sig=$(grep -o 'src="data:image/png;base64,[^"]*' "$H" | head -1 | cut -d, -f2 | base64 -d 2>/dev/null | head -c 8 | od -An -tx1 | tr -d ' \n')
[ "$sig" = 89504e470d0a1a0a ] && ok || bad "the first thumbnail is not a PNG ($sig)"
grep -q '<td>clusters</td><td>final</td><td>nmi</td><td class="v">0\.[0-9]*</td><td class="v">0\.[0-9]*</td><td class="v">0\.[0-9]*</td>' "$H" \
  && ok || bad "no NMI row with the random and pixel baselines beside the run"
grep -q '<th>k</th><td>16</td>' "$H" && ok || bad "configuration table"
# options changed on resume: listed under the configuration
cp -r "$RUN" "$TMP/resumed"
"$BIN" train --data "$DATA" --max-images 256 --batch-size 8 --niter 3 --epochs 3 --reassignment 1 --k 16 --seed 3 \
  --lr 0.02 --out "$TMP/resumed" >"$TMP/resumed.log" 2>&1 && ok || bad "resumed training: $(tail -3 "$TMP/resumed.log")"
"$BIN" report --run "$TMP/resumed" >/dev/null 2>&1 && ok || bad "report of the resumed run"
grep -q '<li>resumed at epoch 2, step 0: lr 0.05 → 0.02, epochs 2 → 3</li>' "$TMP/resumed/report.html" && ok \
  || bad "no resume note: $(grep -A2 'Changed on resume' "$TMP/resumed/report.html")"
! grep -q 'Changed on resume' "$H" && ok || bad "a run never resumed lists changes"
# the images gone: still a page, without thumbnails, saying why
cp -r "$RUN" "$TMP/moved"
sed -i -E 's#"data":[[:space:]]*"[^"]*"#"data": "/nonexistent/images"#' "$TMP/moved/config.json"
"$BIN" report --run "$TMP/moved" >"$TMP/moved.log" 2>&1 && ok || bad "report without the images: $(cat "$TMP/moved.log")"
grep -q 'could not be opened' "$TMP/moved/report.html" && ! grep -q '<img ' "$TMP/moved/report.html" && ok \
  || bad "report without the images"
# refusals
"$BIN" report --run "$TMP" >"$TMP/e1" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q "is not a training run directory" "$TMP/e1" && ok || bad "a non-run: exit $rc $(cat "$TMP/e1")"
"$BIN" report --run "$RUN" --out /nonexistent/dir/r.html >"$TMP/e2" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q "/nonexistent/dir" "$TMP/e2" && ok || bad "unwritable --out: exit $rc $(cat "$TMP/e2")"
"$BIN" report >"$TMP/e3" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "missing required option --run" "$TMP/e3" && ok || bad "no --run: exit $rc $(cat "$TMP/e3")"
# a real browser
CHROME=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROME" ]; then
  echo "SKIP: Chromium rendering: chromium is not installed (apt-get install chromium; scripts/setup.sh does)"
else
  C=(timeout 120 "$CHROME" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$TMP/chrome")
  "${C[@]}" --enable-logging=stderr --v=0 --dump-dom "file://$H" >"$TMP/dom.html" 2>"$TMP/chrome.log" && ok \
    || bad "chromium --dump-dom failed: $(tail -3 "$TMP/chrome.log")"
  ! grep -q 'CONSOLE' "$TMP/chrome.log" && ok || bad "console messages: $(grep CONSOLE "$TMP/chrome.log" | head -3)"
  [ "$(grep -o '<svg' "$TMP/dom.html" | wc -l)" -eq 6 ] && [ "$(grep -o '<img ' "$TMP/dom.html" | wc -l)" -eq 96 ] && ok \
    || bad "the rendered page lacks charts or thumbnails"
  "${C[@]}" --window-size=1300,2400 --screenshot="$TMP/shot.png" "file://$H" >/dev/null 2>&1 && ok || bad "screenshot failed"
  sz=$(stat -c %s "$TMP/shot.png" 2>/dev/null || echo 0)
  [ "$sz" -gt 50000 ] && ok || bad "screenshot of $sz bytes"
  mkdir -p "$DC_TEST_ROOT/build" && cp "$TMP/shot.png" "$DC_TEST_ROOT/build/report-screenshot.png" 2>/dev/null
fi
rm -rf "$TMP"
summary
