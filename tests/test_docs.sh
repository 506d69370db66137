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
n=$(wc -l < README.md)
[ "$n" -le 250 ] && ok || bad "README.md has $n lines: keep it the front door (details go to docs/)"
summary
