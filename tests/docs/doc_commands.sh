#!/usr/bin/env bash
# The docs runner: runs every command shown in one doc (README.md or docs/*.md), in order, in a
# sandbox made for that doc: its own network namespace, a fresh git repository as the working
# folder, the build's binaries on PATH and a stand-in for the agent CLI. The conventions (the
# `<!-- doc: ... -->` notes that say how a block runs) are in docs/DOC_COMMANDS.md.
# Usage: doc_commands.sh BUILD_DIR SOURCE_DIR DOC.md     (exit 77: skipped, e.g. not root)
set -euo pipefail

if (($# != 3)); then
  echo "usage: doc_commands.sh BUILD_DIR SOURCE_DIR DOC.md" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
doc=$(cd "$(dirname "$3")" && pwd)/$(basename "$3")
docrel=${doc#"$src"/}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Its own network namespace: the docs' fixed ports (7070, 9100) are then this doc's alone; and
# its own mount namespace, for /etc/hosts below.
if [[ -z "${DOC_IN_NETNS:-}" ]]; then
  if ((EUID != 0)) || ! command -v unshare >/dev/null || ! command -v ip >/dev/null; then
    echo "SKIP: the docs runner needs root, unshare and ip for a network namespace"
    exit 77
  fi
  exec unshare --net --mount -- env DOC_IN_NETNS=1 bash "$0" "$@"
fi
ip link set lo up

T=$(mktemp -d /tmp/harness-doc.XXXXXX)
blocks=$T/blocks
mkdir -p "$blocks" "$T/bin" "$T/home" "$T/repo" "$T/run"
netns=$(readlink /proc/$$/ns/net)
chmod 755 "$T"  # `sudo -u harness controller ...` (docs/DEPLOY.md) runs the sandbox's binaries
# What a doc installs or changes in the system (`cmake --install`, `useradd`, /etc/harness) lands
# in overlays seen only by this doc's processes (the runner has its own mount namespace), and
# the docs' example host names are this namespace's loopback.
for d in /etc /usr/local /var/lib; do
  name=${d//\//_}
  mkdir -p "$T/overlay/$name/upper" "$T/overlay/$name/work"
  mount -t overlay "overlay$name" \
    -o "lowerdir=$d,upperdir=$T/overlay/$name/upper,workdir=$T/overlay/$name/work" "$d"
done
{
  cat /etc/hosts
  echo "127.0.0.1 controller.example"
} >"$T/hosts"
mount --bind "$T/hosts" /etc/hosts

# Ends every process left in this doc's network namespace (each one by its PID): background
# blocks first, gently, then whatever they started.
cleanup() {
  local rc=$? pid pids left deadline
  for pid in $(cat "$T/run/background" 2>/dev/null); do
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  deadline=$((SECONDS + 20))
  while ((SECONDS < deadline)); do
    left=0
    for pid in $(cat "$T/run/background" 2>/dev/null); do
      if kill -0 -- "-$pid" 2>/dev/null; then left=1; fi
    done
    ((left)) || break
    sleep 0.2
  done
  for pid in $(cat "$T/run/background" 2>/dev/null); do
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  pids=()
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    [[ "$pid" == "$$" ]] && continue
    [[ "$(readlink "$d/ns/net" 2>/dev/null)" == "$netns" ]] && pids+=("$pid")
  done
  if ((${#pids[@]})); then
    kill -TERM "${pids[@]}" 2>/dev/null || true
    sleep 1
    kill -KILL "${pids[@]}" 2>/dev/null || true
  fi
  # Whatever a doc mounted under the sandbox (a tmpfs to fill, ...), deepest first, then the
  # runner's own mounts.
  local m
  for m in $(awk -v t="$T" 'index($2, t "/") == 1 {print $2}' /proc/self/mounts | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  umount /etc/hosts 2>/dev/null || true
  umount /etc /usr/local /var/lib 2>/dev/null || true
  if [[ "${HARNESS_KEEP_TEMP:-0}" == 1 ]]; then
    echo "kept the sandbox: $T"
  else
    rm -rf "$T"
  fi
  exit "$rc"
}
trap cleanup EXIT

# The sandbox: the binaries by the names the docs use, a stand-in for `claude` (the default
# agent.command), and a repository that also links the harness checkout's folders, so both
# `build/client/harnessctl` and `scripts/make-certs.sh` work from it.
ln -s "$build/controller/controller" "$T/bin/controller"
ln -s "$build/agentd/agentd" "$T/bin/agentd"
ln -s "$build/client/harnessctl" "$T/bin/harnessctl"
cat >"$T/bin/claude" <<'STANDIN'
#!/usr/bin/env bash
# Stand-in for the agent CLI in the docs sandbox: says what it does, changes a file, exits 0.
prompt=""
while (($#)); do
  case "$1" in
    -p) prompt=${2:-}; shift 2 || shift ;;
    *) shift ;;
  esac
done
n=$(find . -maxdepth 1 -name 'agent-output-*.txt' | wc -l)
echo '{"type":"system","subtype":"init","model":"stand-in"}'
echo "reading the task: ${prompt:0:60}"
sleep 1
printf '%s\n' "$prompt" >"agent-output-$((n + 1)).txt"
echo "wrote agent-output-$((n + 1)).txt"
sleep 1
echo '{"type":"result","subtype":"success"}'
STANDIN
chmod +x "$T/bin/claude"
if ! command -v sudo >/dev/null; then  # the runner is root: sudo only changes the user, if asked
  cat >"$T/bin/sudo" <<'STANDIN'
#!/usr/bin/env bash
# Stand-in for sudo in the docs sandbox, which runs as root: `sudo [-u USER] CMD...`.
if [[ "${1:-}" == -u ]]; then
  user=$2
  shift 2
  exec runuser -u "$user" -- "$@"
fi
exec "$@"
STANDIN
  chmod +x "$T/bin/sudo"
fi
cat >"$T/home/.gitconfig" <<'GIT'
[user]
	name = Doc Reader
	email = reader@example.com
[init]
	defaultBranch = main
GIT
sandbox_env=(env -i "PATH=$T/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  "HOME=$T/home" "TERM=dumb" "LANG=C.UTF-8" "USER=${USER:-root}" "DOC_SANDBOX=$T")
for v in ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS; do
  [[ -n "${!v:-}" ]] && sandbox_env+=("$v=${!v}")
done
repo=$T/repo
(
  cd "$repo"
  "${sandbox_env[@]}" git init -q
  mkdir src
  echo "# a project" >README.md
  echo "hello" >src/hello.txt
  "${sandbox_env[@]}" git add README.md src/hello.txt
  "${sandbox_env[@]}" git commit -q -m "the project"
  ln -s "$build" build
  for d in scripts docker deploy config bench tests fuzz proto; do
    ln -s "$src/$d" "$d"
  done
  printf '%s\n' build scripts docker deploy config bench tests fuzz proto >>.git/info/exclude
)

counts_run=0 counts_background=0 counts_follow=0 counts_fails=0 counts_ci=0 counts_manual=0
counts_file=0
manuals=()

fail() {
  echo "FAIL: $*" >&2
  for pid in $(cat "$T/run/background" 2>/dev/null); do
    echo "--- the last lines of background block (pid $pid):" >&2
    tail -n 30 "$T/run/$pid.out" >&2 || true
  done
  exit 1
}

show() {  # show OUTPUT_FILE: the block's output, indented, at most 40 lines
  awk 'NR <= 40 {print "    | " $0}' "$1"
  local n
  n=$(wc -l <"$1")
  if ((n > 40)); then echo "    | ... ($((n - 40)) more lines)"; fi
}

block_dir=""   # where the current block runs: the sandbox's repository, or cwd="checkout"
in_sandbox() {  # in_sandbox CMD...: runs in the repository with the sandbox's environment
  (cd "${block_dir:-$repo}" && "${sandbox_env[@]}" "$@")
}

wait_for() {  # wait_for SECONDS CMD: until `bash -c CMD` exits 0
  local seconds=$1 cmd=$2 deadline=$((SECONDS + $1))
  until in_sandbox bash -c "$cmd" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then return 1; fi
    sleep 0.2
  done
}

note_value() {  # note_value NOTE KEY: the value of KEY="..." (\" inside) or KEY='...' in a note
  local re_d re_s="$2='([^']*)'" v
  re_d=$2'="(([^"\\]|\\.)*)"'
  if [[ "$1" =~ $re_d ]]; then
    v=${BASH_REMATCH[1]}
    printf '%s' "${v//\\\"/\"}"
    return 0
  fi
  if [[ "$1" =~ $re_s ]]; then printf '%s' "${BASH_REMATCH[1]}"; return 0; fi
  return 1
}

awk -v out="$blocks" -f "$here/doc_blocks.awk" "$doc"
echo "== $docrel"
for meta in "$blocks"/*.meta; do
  [[ -e "$meta" ]] || continue
  line=$(sed -n 's/^line=//p' "$meta")
  info=$(sed -n 's/^info=//p' "$meta")
  note=$(sed -n 's/^note=//p' "$meta")
  body=${meta%.meta}.body
  where="$docrel:$line"
  if [[ -z "$info" ]]; then
    fail "$where: a fence without an info string: \`\`\`sh for commands (they are run), \`\`\`text (or yaml, json, ...) for the rest"
  fi
  lang=${info%% *}
  kind=${note%% *}
  rest=""
  [[ "$note" == *" "* ]] && rest=${note#* }
  script=$blocks/$(basename "${meta%.meta}").sh
  case "$lang" in
    sh | bash | shell) cp "$body" "$script" ;;
    console) sed -n 's/^\$ //p' "$body" >"$script" ;;
    *) script="" ;;
  esac
  if [[ -z "$script" ]] && grep -q '^\$ ' "$body"; then
    fail "$where: a $lang block with \`\$ \` lines shows commands: make it a \`\`\`console block (its \`\$ \` lines are run)"
  fi
  if [[ -z "$script" || ! -s "$script" ]]; then
    if [[ "$kind" == file ]]; then
      name=${rest%% *}
      if [[ -z "$name" || "$name" == /* || "$name" == *..* ]]; then
        fail "$where: \`doc: file NAME\` needs a relative name without .., got \"$name\""
      fi
      mkdir -p "$(dirname "$repo/$name")"
      cp "$body" "$repo/$name"
      echo "-- $where: wrote $name"
      counts_file=$((counts_file + 1))
    elif [[ -n "$note" ]]; then
      fail "$where: the note \"$note\" is on a $lang block, which is not run (only sh and console blocks are)"
    fi
    continue
  fi
  if [[ -z "$kind" || "$kind" == *=* ]]; then kind=run; fi
  block_dir=""
  if cwd=$(note_value "$note" cwd); then
    [[ "$cwd" == checkout ]] || fail "$where: cwd=\"$cwd\": only cwd=\"checkout\" (the harness checkout) is known"
    block_dir=$src
  fi
  if wait_cmd=$(note_value "$note" wait); then
    echo "-- $where: waiting for: $wait_cmd"
    wait_for 120 "$wait_cmd" || fail "$where: still not true after 120 s: $wait_cmd"
  fi
  case "$kind" in
    ci)
      id=${rest%% *}
      [[ -n "$id" ]] || fail "$where: \`doc: ci ID\` needs an ID"
      callers=$(grep -rlF --exclude-dir=docs -- "doc_block.sh" "$src/tests" "$src/scripts" "$src/.ci" \
        "$src/docker" "$src/bench" 2>/dev/null || true)
      found=""
      for f in $callers; do
        if grep -F -- "$docrel" "$f" | grep -qw -- "$id"; then found=$f; fi
      done
      [[ -n "$found" ]] || fail "$where: marked \`ci $id\`, but no test or CI script calls doc_block.sh $docrel $id"
      echo "-- $where: run in CI by ${found#"$src"/}"
      counts_ci=$((counts_ci + 1))
      ;;
    manual)
      reason=$(note_value "$note" manual 2>/dev/null || true)
      [[ -n "$reason" ]] || reason=${rest#\"}
      reason=${reason%\"}
      [[ -n "$reason" ]] || fail "$where: \`doc: manual \"REASON\"\` needs its reason"
      echo "-- $where: not run: $reason"
      manuals+=("$where: $reason")
      counts_manual=$((counts_manual + 1))
      ;;
    run | fails)
      echo "-- $where: $kind"
      sed -e 's/^/    $ /' "$script"
      out=$blocks/$(basename "$script" .sh).out
      set +e
      limit=$(note_value "$note" timeout || echo 300)
      [[ "$limit" =~ ^[0-9]+$ ]] || fail "$where: timeout=\"$limit\" is not a number of seconds"
      in_sandbox timeout -k 10 "$limit" bash -euo pipefail "$script" >"$out" 2>&1
      rc=$?
      set -e
      show "$out"
      if [[ "$kind" == run && $rc -ne 0 ]]; then
        fail "$where: exited $rc (want 0)"
      fi
      if [[ "$kind" == fails && ($rc -eq 0 || $rc -eq 124) ]]; then
        fail "$where: exited $rc (want an error: a non-zero exit within $limit s)"
      fi
      [[ "$kind" == run ]] && counts_run=$((counts_run + 1)) || counts_fails=$((counts_fails + 1))
      ;;
    follow)
      seconds=${rest%% *}
      [[ "$seconds" =~ ^[0-9]+$ ]] || fail "$where: \`doc: follow SECONDS\`, got \"$rest\""
      echo "-- $where: follow for ${seconds}s"
      sed -e 's/^/    $ /' "$script"
      out=$blocks/$(basename "$script" .sh).out
      set +e
      in_sandbox timeout -k 5 "$seconds" bash -euo pipefail "$script" >"$out" 2>&1
      rc=$?
      set -e
      show "$out"
      if ((rc != 0 && rc != 124)); then fail "$where: exited $rc before it was ended"; fi
      [[ -s "$out" ]] || fail "$where: printed nothing in ${seconds}s"
      counts_follow=$((counts_follow + 1))
      ;;
    background)
      echo "-- $where: in the background"
      sed -e 's/^/    $ /' "$script"
      bg_out=$T/run/bg-$counts_background.out
      (cd "${block_dir:-$repo}" && exec setsid "${sandbox_env[@]}" bash -euo pipefail "$script") \
        >"$bg_out" 2>&1 &
      pid=$!
      ln -s "$bg_out" "$T/run/$pid.out"
      echo "$pid" >>"$T/run/background"
      ready=$(note_value "$note" ready || echo "harnessctl status")
      deadline=$((SECONDS + 60))
      until in_sandbox bash -c "$ready" >/dev/null 2>&1; do
        if ! kill -0 "$pid" 2>/dev/null; then
          show "$T/run/$pid.out"
          fail "$where: the background block ended before it was ready ($ready)"
        fi
        ((SECONDS < deadline)) || fail "$where: not ready after 60 s: $ready"
        sleep 0.2
      done
      echo "    (ready: $ready)"
      counts_background=$((counts_background + 1))
      ;;
    *)
      fail "$where: unknown note \"$note\" (run, background, follow N, fails, ci ID, manual \"REASON\", file NAME; wait=\"CMD\")"
      ;;
  esac
done
echo "== $docrel: $counts_run run, $counts_background in the background, $counts_follow followed," \
  "$counts_fails failing as shown, $counts_ci run by CI tests, $counts_file files written," \
  "$counts_manual not run"
for m in "${manuals[@]}"; do echo "   not run: $m"; done
