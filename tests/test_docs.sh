#!/usr/bin/env bash
# test_docs.sh — the documentation cannot drift from the program: the
# reference in docs/cli.md is each command's --help as the program prints
# it (scripts/gen_cli_doc.sh rewrites it), every page the README links
# exists, and the README stays a front door (under 250 lines).
. "$(dirname "$0")/lib.sh" docs
cd "$DC_TEST_ROOT" || exit 1
want=$(bash scripts/gen_cli_doc.sh "$BIN" -)
have=$(sed -n '/<!-- help:begin/,/<!-- help:end -->/p' docs/cli.md)
[ -n "$have" ] && [ "$want" = "$have" ] && ok ||
  bad "docs/cli.md's --help reference differs from the program's: run scripts/gen_cli_doc.sh; $(diff <(echo "$want") <(echo "$have") | head -5)"
# every option of every command is in the reference (a check on the check)
for cmd in train features kmeans; do
  for opt in $("$BIN" $cmd --help | grep -oE '^  --[a-z-]+' | tr -d ' '); do
    grep -q -- "$opt" docs/cli.md && ok || bad "docs/cli.md does not mention $cmd $opt"
  done
done
for page in $(grep -oE 'docs/[a-z-]+\.(md|png)' README.md | sort -u); do
  [ -s "$page" ] && ok || bad "README links $page, which is missing"
done
# the README's first two commands: the main job and the tests (.ci/run runs the latter)
grep -qE '^bash scripts/main_job.sh +# main job$' README.md && ok || bad "README: no '# main job' command line"
grep -qE '^[^#].*# tests$' README.md && ok || bad "README: no '# tests' command line (.ci/run needs it)"
# scripts/margins.sh (the main job's last table) reads what eval --json writes
if [ -e /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
  T=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
  for s in 1 2; do
    "$BIN" eval clusters --weights random:vgg-s32 --data "$T" --max-images 200 --seed $s --restarts 1 --json "$TMP/c$s.json" >/dev/null 2>&1 \
      && ok || bad "eval clusters --json failed"
  done
  out=$(bash scripts/margins.sh "k-means NMI" "$TMP/c1.json" "$TMP/c2.json" "again" "$TMP/c2.json" "$TMP/c1.json")
  a=$(sed -n 's/^\t"nmi":\t\(.*\),$/\1/p' "$TMP/c1.json"); b=$(sed -n 's/^\t"nmi":\t\(.*\),$/\1/p' "$TMP/c2.json")
  want=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%+9.4f", a - b }')
  echo "$out" | grep -qF -- "$want" && ok || bad "margins.sh: no margin $want in: $out"
  echo "$out" | grep -q "not ahead of the random one on: " && ok || bad "margins.sh: the row behind is not named: $out"
  bash scripts/margins.sh x "$TMP/c1.json" "$TMP/none.json" >/dev/null 2>"$TMP/err"; [ $? = 2 ] && grep -q none.json "$TMP/err" \
    && ok || bad "margins.sh: a missing file is not an error naming it"
fi
n=$(wc -l < README.md)
[ "$n" -le 250 ] && ok || bad "README.md has $n lines: keep it the front door (details go to docs/)"
summary
