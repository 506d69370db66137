#!/usr/bin/env bash
# gen_cli_doc.sh — writes every command's --help into docs/cli.md between
# its markers, so the reference cannot drift from the program
# (tests/test_docs.sh fails when the two differ).
#   scripts/gen_cli_doc.sh [BIN] [FILE]   (defaults: build/release/deepercluster, docs/cli.md)
#   scripts/gen_cli_doc.sh BIN -          the section alone, to stdout
set -euo pipefail
BIN=${1:-build/release/deepercluster}
FILE=${2:-docs/cli.md}
section() {
  echo '<!-- help:begin (scripts/gen_cli_doc.sh writes this section) -->'
  for cmd in "" train features "eval clusters" "eval knn" "eval linear" "eval finetune" kmeans metrics pack report inspect; do
    echo
    echo "### \`deepercluster${cmd:+ $cmd} --help\`"
    echo
    echo '```'
    # shellcheck disable=SC2086
    "$BIN" $cmd --help
    echo '```'
  done
  echo '<!-- help:end -->'
}
if [ "$FILE" = - ]; then section; exit 0; fi
tmp=$(mktemp)
section > "$tmp.sec"
awk -v sec="$tmp.sec" '
  /<!-- help:begin/ { while ((getline l < sec) > 0) print l; skip = 1; next }
  /<!-- help:end -->/ { skip = 0; next }
  !skip { print }' "$FILE" > "$tmp"
mv "$tmp" "$FILE"
rm -f "$tmp.sec"
