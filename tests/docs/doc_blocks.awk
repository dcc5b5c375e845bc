# Splits a Markdown file into its fenced blocks for the docs runner (tests/docs/doc_commands.sh).
# For block N it writes OUT/N.body (the text, the opening fence's indent removed) and OUT/N.meta:
#   line=<line of the opening fence>  info=<info string>  note=<the `<!-- doc: ... -->` comment on
#   the line right before the fence, without the markers, or empty>
# A fence with no info string is written with info= (the runner refuses it).
# Usage: awk -v out=DIR -f doc_blocks.awk FILE.md
function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
BEGIN { n = 0; inside = 0; prev = "" }
{
  line = $0
  if (!inside) {
    if (match(line, /^ *(```+|~~~+)/)) {
      head = substr(line, RSTART, RLENGTH)
      fence_indent = length(head) - length(trim(head))
      fence = trim(head)
      info = trim(substr(line, RSTART + RLENGTH))
      note = ""
      p = trim(prev)
      if (p ~ /^<!-- *doc:.*-->$/) {
        note = p
        sub(/^<!-- *doc: */, "", note)
        sub(/ *-->$/, "", note)
      }
      n++
      open_line = FNR
      body = sprintf("%s/%03d.body", out, n)
      printf "" > body
      meta = sprintf("%s/%03d.meta", out, n)
      printf "line=%d\ninfo=%s\nnote=%s\n", FNR, info, note > meta
      close(meta)
      inside = 1
    }
  } else {
    stripped = line
    if (substr(stripped, 1, fence_indent) ~ /^ *$/) stripped = substr(stripped, fence_indent + 1)
    t = trim(stripped)
    if (index(t, fence) == 1 && t ~ /^(`+|~+)$/ && length(t) >= length(fence)) {
      close(body)
      inside = 0
    } else {
      print stripped >> body
    }
  }
  prev = line
}
END {
  if (inside) { printf "unclosed fence opened at line %d\n", open_line > "/dev/stderr"; exit 1 }
}
