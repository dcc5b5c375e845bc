#!/usr/bin/env bash
# Benchmark of whole real agents: one controller and N agentd processes on this host, M items
# submitted at once, timed until the controller reports all of them done. Prints one JSON line
# on stdout (everything else goes to stderr):
#
#   {"bench":"agents","agents":N,"items":M,"work":"sleep:1","repo":"none","seconds":..,
#    "items_per_s":..,"ideal_s":..,"efficiency":..,"controller_peak_rss_kb":..,
#    "cpu_ms_per_item":..,"timed_items":..,"item_ms":..,"command_ms":..,"beyond_command_ms":..}
#
# usage: bench/agents.sh --build DIR [--agents N] [--items M] [--work true|sleep:S]
#                        [--repo none|local|controller] [--source REPO] [--timeout S] [--keep]
#
#   --build DIR    a build tree holding controller/controller, agentd/agentd, client/harnessctl
#   --agents N     agentd processes to start (default 4)
#   --items M      items to submit, in one `harnessctl submit --file` call (default 100)
#   --work W       the agent command: `true` runs /bin/true, `sleep:S` runs /bin/sleep S
#                  (default true). It is the controller's agent.command (harness.yaml).
#   --repo R       none: the controller has no repository; items run in <workdir>/work and
#                  complete without a commit (default).
#                  local: a small git repository made here; the controller's repo.path and
#                  every agent's --repo (linked worktrees, no transfer).
#                  controller: the same repository for the controller, agents without --repo
#                  (each agent's clone gets the base from the controller with FetchBase).
#   --source REPO  with --repo local or controller: use this existing repository (e.g.
#                  git_bench's DIR/src, base branch main) instead of a small one made here.
#                  Items that change nothing add no commit to it.
#   --timeout S    give up on any one step (start-up, the run) after S seconds (default 600)
#   --keep         keep the temp dir (config, state dir, logs, work dirs) and print its path
#
# Timing: from just before the submit until the last item was recorded done (the largest
# updated_at of the done items, from `harnessctl items --json`); the figure includes the submit
# call. The run is followed on one `harnessctl status --watch --json` stream started beforehand.
# ideal_s, for sleep:S, is ceil(M/N)*S (every agent busy all the time, no overhead);
# efficiency = ideal_s / seconds. For `true` both are null. controller_peak_rss_kb is the
# controller's VmHWM (/proc/PID/status) when all items are done: its peak resident set.
# cpu_ms_per_item: the CPU time (user + system) of the controller, the agents and the
# commands they ran (reaped children), from just before the submit to the end, per item.
# Per item, from the agents' own log lines (mean over the items that completed, timed_items):
# item_ms from "acquired" to "completed", command_ms the command's own time (the "ran" of its
# "command exited" line: from its start to its exit), beyond_command_ms the difference: what an
# item costs beyond its command (work dir and worktree preparation, the process start, the
# commit check, the report and its commit round), free of the run-to-run spread of the
# command itself, which on a slow machine swamps a difference of throughputs.
#
# Everything started here is stopped with SIGTERM by pid (a second SIGTERM after 10 s, SIGKILL
# after 20 s for anything still running) and the temp dir is removed on any exit, Ctrl-C included.
set -euo pipefail

prog=bench/agents.sh
usage() { sed -n '9,27s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }
bad_usage() { echo "$prog: $*" >&2; echo "usage: $prog --build DIR [--agents N] [--items M] [--work true|sleep:S] [--repo none|local|controller] [--source REPO] [--timeout S] [--keep]" >&2; exit 2; }
log() { echo "$prog: $*" >&2; }
die() { echo "$prog: error: $*" >&2; exit 1; }

build="" agents=4 items=100 work=true repo_mode=none source="" timeout_s=600 keep=0
need_value() { [ $# -ge 2 ] || bad_usage "$1 needs a value"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --build) need_value "$@"; build=$2; shift 2 ;;
    --agents) need_value "$@"; agents=$2; shift 2 ;;
    --items) need_value "$@"; items=$2; shift 2 ;;
    --work) need_value "$@"; work=$2; shift 2 ;;
    --repo) need_value "$@"; repo_mode=$2; shift 2 ;;
    --source) need_value "$@"; source=$2; shift 2 ;;
    --timeout) need_value "$@"; timeout_s=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) bad_usage "unknown argument \"$1\"" ;;
  esac
done
[ -n "$build" ] || bad_usage "--build DIR is required"
[[ $agents =~ ^[1-9][0-9]{0,3}$ ]] || bad_usage "--agents must be an integer 1-9999, got \"$agents\""
[[ $items =~ ^[1-9][0-9]{0,6}$ ]] || bad_usage "--items must be an integer 1-9999999, got \"$items\""
[[ $timeout_s =~ ^[1-9][0-9]*$ ]] || bad_usage "--timeout must be a positive integer (seconds), got \"$timeout_s\""
sleep_s=""
case "$work" in
  true) command_yaml='["/bin/true"]' ;;
  sleep:*)
    sleep_s=${work#sleep:}
    [[ $sleep_s =~ ^[0-9]+(\.[0-9]+)?$ ]] || bad_usage "--work sleep:S needs S in seconds (e.g. sleep:1 or sleep:0.5), got \"$work\""
    command_yaml="[\"/bin/sleep\", \"$sleep_s\"]" ;;
  *) bad_usage "--work must be true or sleep:S, got \"$work\"" ;;
esac
case "$repo_mode" in none|local|controller) ;; *) bad_usage "--repo must be none, local or controller, got \"$repo_mode\"" ;; esac
if [ -n "$source" ]; then
  [ "$repo_mode" != none ] || bad_usage "--source needs --repo local or controller"
  [ -d "$source" ] || bad_usage "--source \"$source\" is not a folder"
  source=$(cd "$source" && pwd)
fi

[ -d "$build" ] || die "build dir \"$build\" does not exist"
build=$(cd "$build" && pwd)
controller_bin=$build/controller/controller
agentd_bin=$build/agentd/agentd
harnessctl_bin=$build/client/harnessctl
for b in "$controller_bin" "$agentd_bin" "$harnessctl_bin"; do
  [ -x "$b" ] || die "missing binary $b (build it: ninja -C $build controller agentd harnessctl)"
done
command -v python3 >/dev/null || die "python3 is needed (to pick a free port)"
if [ "$repo_mode" != none ]; then command -v git >/dev/null || die "git is needed for --repo $repo_mode"; fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/harness-bench-agents.XXXXXX") || die "cannot make a temp dir"
pids=()          # agents first, the controller last (stopped in that order)
controller_pid=""
stop_all() {
  local all=("${pids[@]}") pid
  [ -n "$controller_pid" ] && all+=("$controller_pid")
  [ ${#all[@]} -gt 0 ] || return 0
  # Agents first: idle ones exit at once; then the controller (nothing left to tell).
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  stop_wait "${pids[@]}"
  if [ -n "$controller_pid" ]; then
    kill -TERM "$controller_pid" 2>/dev/null || true
    stop_wait "$controller_pid"
  fi
  pids=() controller_pid=""
}
# Waits for the pids (already sent SIGTERM): a second SIGTERM after 10 s (agentd: stop the
# item at once), SIGKILL after 20 s. Warns about any exit status other than 0.
stop_wait() {
  local pid start=$SECONDS second=0 rc
  while :; do
    local alive=()
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive+=("$pid"); done
    [ ${#alive[@]} -eq 0 ] && break
    if [ $((SECONDS - start)) -ge 20 ]; then
      log "warning: pid(s) ${alive[*]} still running 20 s after SIGTERM: SIGKILL"
      for pid in "${alive[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
      break
    elif [ $second = 0 ] && [ $((SECONDS - start)) -ge 10 ]; then
      log "pid(s) ${alive[*]} still running 10 s after SIGTERM: a second SIGTERM"
      for pid in "${alive[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
      second=1
    fi
    sleep 0.05
  done
  for pid in "$@"; do
    rc=0; wait "$pid" 2>/dev/null || rc=$?
    [ $rc = 0 ] || log "warning: pid $pid exited with status $rc after SIGTERM"
  done
}
watch_pid=""
stop_watch() {
  [ -n "$watch_pid" ] || return 0
  kill -TERM "$watch_pid" 2>/dev/null || true
  wait "$watch_pid" 2>/dev/null || true
  watch_pid=""
}
failed=0
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ $rc = 0 ] || failed=1
  stop_watch
  stop_all
  if [ $failed = 1 ] && [ -d "$tmp" ]; then
    local f
    for f in "$tmp"/controller.log "$tmp"/agent-1.log; do
      [ -s "$f" ] && { log "--- last lines of ${f#"$tmp"/}:"; tail -n 15 "$f" >&2; }
    done
  fi
  if [ $keep = 1 ]; then log "kept $tmp"; else rm -rf "$tmp"; fi
  exit $rc
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

now() { date +%s.%N; }
elapsed_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# --- the repository (local, controller) -----------------------------------------------------
repo_yaml=""
if [ -n "$source" ]; then
  repo_yaml=$'  repo:\n    path: '"$source"$'\n    base_branch: main\n'
elif [ "$repo_mode" != none ]; then
  r=$tmp/repo
  git init -q "$r" && git -C "$r" symbolic-ref HEAD refs/heads/main
  mkdir -p "$r/src" "$r/docs"
  printf '# Bench project\n' >"$r/README.md"
  printf 'build/\n*.log\n' >"$r/.gitignore"
  for k in 1 2 3 4 5 6 7 8; do printf 'int f%d(int x) { return x + %d; }\n' "$k" "$k" >"$r/src/f$k.c"; done
  printf 'notes\n' >"$r/docs/notes.md"
  git -C "$r" add -A
  git -C "$r" -c user.name=Bench -c user.email=bench@example.com commit -q -m "bench base"
  repo_yaml=$'  repo:\n    path: repo\n'
elif command -v git >/dev/null && git -C "$tmp" rev-parse --git-dir >/dev/null 2>&1; then
  # The controller's default repo.path "." would find that repository.
  die "the temp dir $tmp is inside a git repository; set TMPDIR to a folder outside one"
fi

# The controller and the agents run in sessions of their own (setsid), so that a Ctrl-C reaches
# only this script, which then stops them in order: agents first, the controller last.
detach=()
command -v setsid >/dev/null && detach=(setsid)

# --- the controller ---------------------------------------------------------------------------
hctl() { "$harnessctl_bin" --controller "127.0.0.1:$port" "$@"; }
port=""
for attempt in 1 2 3 4 5; do
  port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])') \
    || die "cannot pick a free port with python3"
  rm -rf "$tmp/state"
  cat >"$tmp/harness.yaml" <<YAML
harness:
  listen: 127.0.0.1:$port
  state_dir: state
  parallel_agents: 0
${repo_yaml}  agent:
    launcher: none
    command: $command_yaml
YAML
  "${detach[@]}" "$controller_bin" --config "$tmp/harness.yaml" \
    >"$tmp/controller.out" 2>"$tmp/controller.log" &
  controller_pid=$!
  start=$SECONDS
  while ! [ -s "$tmp/state/controller.addr" ]; do
    kill -0 "$controller_pid" 2>/dev/null || break
    [ $((SECONDS - start)) -lt "$timeout_s" ] || die "the controller did not start listening within $timeout_s s"
    sleep 0.05
  done
  [ -s "$tmp/state/controller.addr" ] && break
  rc=0; wait "$controller_pid" || rc=$?
  controller_pid=""
  if grep -qiE 'address|bind|in use' "$tmp/controller.log" && [ $attempt -lt 5 ]; then
    log "port $port taken before the controller bound it; another one"
    continue
  fi
  die "the controller exited with status $rc at start: $(tail -n 3 "$tmp/controller.log")"
done
log "controller pid $controller_pid on 127.0.0.1:$port, repo $repo_mode, work $work, temp dir $tmp"

# --- the agents -------------------------------------------------------------------------------
agent_args=()
[ "$repo_mode" = local ] && agent_args=(--repo "${source:-$tmp/repo}")
for i in $(seq 1 "$agents"); do
  "${detach[@]}" "$agentd_bin" --id "bench-$i" --controller "127.0.0.1:$port" --workdir "$tmp/work-$i" \
    "${agent_args[@]}" >"$tmp/agent-$i.log" 2>&1 &
  pids+=($!)
done
t_agents=$(now)
start=$SECONDS
last=-1
while :; do
  for i in "${!pids[@]}"; do
    kill -0 "${pids[$i]}" 2>/dev/null ||
      die "agent bench-$((i + 1)) exited at start: $(tail -n 3 "$tmp/agent-$((i + 1)).log")"
  done
  json=$(hctl status --json 2>/dev/null) || json=""
  a=${json#*\"agents\"}; a=${a%%\"queue\"*}
  ready=$(grep -o '"state": *"idle"' <<<"$a" | wc -l) || true
  [ "$ready" -ge "$agents" ] && break
  [ $((SECONDS - start)) -lt "$timeout_s" ] || die "only $ready of $agents agents idle after $timeout_s s"
  if [ "$ready" != "$last" ] && [ $((SECONDS - start)) -ge 1 ]; then log "agents idle: $ready/$agents"; last=$ready; fi
  sleep 0.1
done
log "$agents agents registered and idle in $(elapsed_since "$t_agents") s"

# --- the items --------------------------------------------------------------------------------
{
  printf '[\n'
  for k in $(seq 1 "$items"); do
    sep=,; [ "$k" = "$items" ] && sep=""
    printf '{"id":"b-%d","title":"t","prompt":"p"}%s\n' "$k" "$sep"
  done
  printf ']\n'
} >"$tmp/items.json"

# One field of the "queue" object of a status document.
# (0 when absent; tolerant of the spacing: "done": 3 or "done":3.)
qfield() {
  local q=${1#*\"queue\"}
  q=${q%%\}*}
  case "$q" in *\""$2"\":*) ;; *) echo 0; return ;; esac
  q=${q#*\""$2"\":}
  q=${q#"${q%%[! ]*}"}
  q=${q%%[!0-9]*}
  echo "${q:-0}"
}

# The run is followed on one WatchStatus stream (a JSON line every 100 ms from one harnessctl
# started before the clock starts), not by a harnessctl process per poll: 20 of those a second
# cost about 13 % of this 2-core machine, taken from the agents being measured.
# Only the "queue" object of each line reaches bash (it reads a pipe a byte at a time).
mkfifo "$tmp/watch.fifo"
"$harnessctl_bin" --controller "127.0.0.1:$port" status --watch --json --interval 0.1 \
  >"$tmp/watch.fifo" 2>"$tmp/watch.err" &
watch_pid=$!
exec {watch_fd}< <(grep --line-buffered -o '"queue": *{[^}]*}' <"$tmp/watch.fifo")
IFS= read -r -t "$timeout_s" -u "$watch_fd" json || die "harnessctl status --watch printed nothing: $(cat "$tmp/watch.err")"

# CPU time (user + system, with that of reaped children: the agents' commands) of the
# controller and the agents, in clock ticks.
cpu_ticks() {
  local pid sum=0 f
  for pid in "$controller_pid" "${pids[@]}"; do
    f=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    f=${f##*) }   # the fields after the command name; utime is the 12th of them
    read -r -a fields <<<"$f"
    sum=$((sum + fields[11] + fields[12] + fields[13] + fields[14]))
  done
  echo "$sum"
}
cpu0=$(cpu_ticks)
t0=$(now)
hctl submit --file "$tmp/items.json" >"$tmp/submit.out" 2>"$tmp/submit.err" ||
  die "harnessctl submit --file failed: $(cat "$tmp/submit.err")"
t_submit=$(now)
log "submitted $items items in $(awk -v a="$t0" -v b="$t_submit" 'BEGIN { printf "%.3f", b - a }') s"

start=$SECONDS
last_report=$SECONDS
while :; do
  IFS= read -r -t 5 -u "$watch_fd" json ||
    die "the status stream ended or went quiet for 5 s: $(cat "$tmp/watch.err")"
  done_n=$(qfield "$json" "done")
  [ "$done_n" -ge "$items" ] && break
  bad=$(( $(qfield "$json" failed) + $(qfield "$json" parked) + $(qfield "$json" cancelled) ))
  if [ "$bad" -gt 0 ]; then
    hctl items --state parked >&2 2>/dev/null || true
    hctl items --state failed >&2 2>/dev/null || true
    die "$bad item(s) failed, parked or cancelled: done can never reach $items"
  fi
  if [ $((SECONDS - last_report)) -ge 1 ]; then
    last_report=$SECONDS
    log "$(elapsed_since "$t0") s: done $done_n/$items | pending $(qfield "$json" pending) | leased $(qfield "$json" leased)"
  fi
  [ $((SECONDS - start)) -lt "$timeout_s" ] || die "not all items done within $timeout_s s ($done_n/$items)"
  for i in "${!pids[@]}"; do
    kill -0 "${pids[$i]}" 2>/dev/null ||
      die "agent bench-$((i + 1)) exited during the run: $(tail -n 3 "$tmp/agent-$((i + 1)).log")"
  done
done
t1=$(now)  # the line showing all done arrived (the end if the items' times cannot be read)
stop_watch
# The end is the moment the last item was recorded done (its updated_at, the controller's clock
# on this host), not when the status line showing it arrived (up to 100 ms later).
last_ms=$(hctl items --state done --json 2>/dev/null |
  grep -o '"updated_at_unix_ms": *[0-9]*' | awk -F: '{ v = $2 + 0; if (v > m) m = v } END { printf "%.0f\n", m }') ||
  last_ms=0
if [ "$last_ms" -gt 0 ]; then
  t1=$(awk -v ms="$last_ms" -v t1="$t1" 'BEGIN { e = ms / 1000; printf "%.3f", (e < t1 ? e : t1) }')
fi
log "all $items items done"
peak_kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/$controller_pid/status" 2>/dev/null) || peak_kb=""
cpu1=$(cpu_ticks)
cpu_ms=$(awk -v a="$cpu0" -v b="$cpu1" -v hz="$(getconf CLK_TCK)" -v m="$items" \
  'BEGIN { printf "%.3f", (b - a) * 1000 / hz / m }')

# "I 2026-12-01T06:35:30.257Z acquired item b-150 (lease 150) over ...", "... item b-150 (lease
# 150): command exited with status 0 (ran 0.004 s)", "... item b-150 (lease 150): completed ...".
phases=$(awk '
  function secs(ts,  p) { split(substr(ts, 12, 12), p, ":"); return p[1] * 3600 + p[2] * 60 + p[3] }
  $3 == "acquired" && $4 == "item" { k = $5 " " $7; sub(/\)$/, "", k); acq[k] = secs($2); next }
  $3 != "item" { next }
  { k = $4 " " $6; sub(/\):$/, "", k) }
  $7 == "command" && match($0, /\(ran [0-9.]+ s\)$/) {
    r = substr($0, RSTART + 5); sub(/ s\)$/, "", r); ran[k] = r + 0; next }
  $7 == "completed" { done[k] = secs($2) }
  END {
    for (k in done) if ((k in acq) && (k in ran)) { n++; item += done[k] - acq[k]; cmd += ran[k] }
    if (n == 0) { printf "\"timed_items\":0,\"item_ms\":null,\"command_ms\":null,\"beyond_command_ms\":null"; exit }
    printf "\"timed_items\":%d,\"item_ms\":%.3f,\"command_ms\":%.3f,\"beyond_command_ms\":%.3f",
      n, 1000 * item / n, 1000 * cmd / n, 1000 * (item - cmd) / n
  }' "$tmp"/agent-*.log)

awk -v t0="$t0" -v t1="$t1" -v n="$agents" -v m="$items" -v work="$work" -v repo="$repo_mode" \
    -v s="$sleep_s" -v peak="${peak_kb:-null}" -v phases="$phases" -v cpu="$cpu_ms" 'BEGIN {
  secs = t1 - t0
  if (secs <= 0) secs = 1e-9
  ideal = "null"; eff = "null"
  if (s != "") {
    per = int((m + n - 1) / n)
    ideal = sprintf("%.3f", per * s)
    eff = sprintf("%.3f", per * s / secs)
  }
  printf "{\"bench\":\"agents\",\"agents\":%d,\"items\":%d,\"work\":\"%s\",\"repo\":\"%s\",", n, m, work, repo
  printf "\"seconds\":%.3f,\"items_per_s\":%.2f,\"ideal_s\":%s,\"efficiency\":%s,", secs, m / secs, ideal, eff
  printf "\"controller_peak_rss_kb\":%s,\"cpu_ms_per_item\":%s,%s}\n", peak, cpu, phases
}'
