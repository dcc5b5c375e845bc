#!/usr/bin/env bash
# Prints the text of the block in a doc marked `<!-- doc: ci ID -->`, so the CI test that runs a
# doc's command runs the very text the reader sees (docs/DOC_COMMANDS.md has the conventions).
# Usage: doc_block.sh DOC.md ID
set -euo pipefail
if (($# != 2)); then
  echo "usage: doc_block.sh DOC.md ID" >&2
  exit 2
fi
doc=$1 id=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
blocks=$(mktemp -d)
trap 'rm -rf "$blocks"' EXIT
awk -v out="$blocks" -f "$here/doc_blocks.awk" "$doc"
found=0
for meta in "$blocks"/*.meta; do
  [[ -e "$meta" ]] || continue
  note=$(sed -n 's/^note=//p' "$meta")
  if [[ "$note" =~ ^ci[[:space:]]+([^[:space:]]+) && "${BASH_REMATCH[1]}" == "$id" ]]; then
    cat "${meta%.meta}.body"
    found=$((found + 1))
  fi
done
if ((found != 1)); then
  echo "doc_block.sh: $doc has $found blocks marked \`ci $id\` (want exactly 1)" >&2
  exit 1
fi
