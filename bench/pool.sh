#!/usr/bin/env bash
# Benchmark of the managed pool on its production path: the real controller launching real
# agentd processes itself (`agent.launcher: process`). Three modes, each printing one JSON line
# per figure on stdout (everything else goes to stderr):
#
#   recovery  kill -9 of the agentd that holds an item -> another launched agent has started
#             the item's command again. Per trial: submit one long item (its command appends
#             "$EPOCHREALTIME agent item attempt pid" to a marker file, then execs sleep 1000),
#             wait for its start marker, kill -9 the holder's agentd (pid from
#             <state>/agents/<agent>/pid), wait for the marker of attempt 2 on another agent.
#             The figure is marker time - kill time (both CLOCK_REALTIME, bash $EPOCHREALTIME),
#             what a user feels. From the logs, the median of each step: kill -> the controller
#             saw the exit; -> the lease ended; -> the next agent got the lease; -> the command
#             started. Then the item is cancelled and the next trial waits until every slot has
#             an idle agent again (the killed slot restarts after agent_restart_delay;
#             coordinator.max_agent_failures is raised to 1000 so that the slots keep respawning).
#               {"bench":"pool_recovery","agents":N,"trials":T,"min_s":..,"median_s":..,
#                "max_s":..,"samples_s":[..],"median_steps_ms":{..},"orphans":0,..}
#   scaling   for each size N: a controller with parallel_agents N (stagger 0) and the command
#             `/bin/sleep S`; once all N agents are registered and idle, K x N items are
#             submitted in one `harnessctl submit --file`; the clock runs from just before the
#             submit to the controller's own stamp of the last item done (max updated_at of the
#             items, CLOCK_REALTIME like the start). ideal = K x S; efficiency = ideal / seconds.
#               {"bench":"pool_scaling","agents":N,"items":M,"seconds":..,"ideal_s":..,
#                "efficiency":..,"items_per_s":..,"startup_s":..,..}
#   idle      N launched agents (default 50, stagger 0), all registered and idle, left alone
#             for a settle time, then for S seconds (default 60): the controller's CPU
#             (utime + stime from /proc/PID/stat, as % of one core), its VmRSS and threads, and
#             each agentd's VmRSS (median, min, max), PSS and RssAnon (medians) and CPU (sum
#             over all agents, % of one core).
#               {"bench":"pool_idle","agents":N,"heartbeat_s":H,"controller_cpu_pct":..,
#                "controller_rss_kb":..,"agentd_rss_kb_median":..,..}
#
# usage: bench/pool.sh --build DIR MODE [options]
#
#   --build DIR          a build tree holding controller/controller, agentd/agentd, client/harnessctl
#   MODE                 recovery | scaling | idle
#   --agents LIST        recovery: pool size (default 3); scaling: sizes, e.g. "1 3 5 10"
#                        (default); idle: pool size (default 50)
#   --trials T           recovery: kills (default 10)
#   --restart-delay S    recovery: agent_restart_delay (default 10, the config's default)
#   --per-agent K        scaling: items per agent (default 10)
#   --work-s S           scaling: seconds each item sleeps (default 1)
#   --heartbeat S        idle: heartbeat_interval (default 5, the config's default)
#   --seconds S          idle: the measured window (default 60)
#   --settle S           idle: wait after all agents are idle, before measuring (default 10)
#   --timeout S          give up on any one wait after S seconds (default 300)
#   --keep               keep the temp dir (configs, state dirs, logs) and print its path
#
# Processes: each controller is started here (setsid, its own session); the agentd processes
# are launched by it, and their pids are read from their pid files as they appear. At the end of
# each run and on any exit (Ctrl-C included) the controller gets SIGTERM; anything started here
# or by it (controller, agentd, the item commands whose pids the markers name) still alive 15 s
# later gets SIGKILL, by pid. No timed assertions: this measures, it does not judge.
set -euo pipefail

prog=bench/pool.sh
usage() { sed -n '34,48s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }
bad_usage() { echo "$prog: $*" >&2; echo "usage: $prog --build DIR recovery|scaling|idle [options] (--help)" >&2; exit 2; }
log() { echo "$prog: $*" >&2; }
die() { echo "$prog: error: $*" >&2; exit 1; }

build="" mode="" agents_arg="" trials=10 restart_delay=10 per_agent=10 work_s=1 heartbeat=5
seconds=60 settle=10 timeout_s=300 keep=0
need_value() { [ $# -ge 2 ] || bad_usage "$1 needs a value"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --build) need_value "$@"; build=$2; shift 2 ;;
    --agents) need_value "$@"; agents_arg=$2; shift 2 ;;
    --trials) need_value "$@"; trials=$2; shift 2 ;;
    --restart-delay) need_value "$@"; restart_delay=$2; shift 2 ;;
    --per-agent) need_value "$@"; per_agent=$2; shift 2 ;;
    --work-s) need_value "$@"; work_s=$2; shift 2 ;;
    --heartbeat) need_value "$@"; heartbeat=$2; shift 2 ;;
    --seconds) need_value "$@"; seconds=$2; shift 2 ;;
    --settle) need_value "$@"; settle=$2; shift 2 ;;
    --timeout) need_value "$@"; timeout_s=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) usage; exit 0 ;;
    recovery|scaling|idle) [ -z "$mode" ] || bad_usage "one mode only"; mode=$1; shift ;;
    *) bad_usage "unknown argument \"$1\"" ;;
  esac
done
[ -n "$build" ] || bad_usage "--build DIR is required"
[ -n "$mode" ] || bad_usage "a mode is required: recovery, scaling or idle"
int_ok() { [[ $2 =~ ^[0-9]+$ ]] && [ "$2" -ge "$3" ] || bad_usage "$1 must be an integer >= $3, got \"$2\""; }
num_ok() { [[ $2 =~ ^[0-9]+(\.[0-9]+)?$ ]] || bad_usage "$1 must be a number of seconds, got \"$2\""; }
case "$mode" in
  recovery) agents_arg=${agents_arg:-3}; int_ok --agents "$agents_arg" 2 ;;
  scaling) agents_arg=${agents_arg:-"1 3 5 10"}; for n in $agents_arg; do int_ok --agents "$n" 1; done ;;
  idle) agents_arg=${agents_arg:-50}; int_ok --agents "$agents_arg" 1 ;;
esac
int_ok --trials "$trials" 1; int_ok --per-agent "$per_agent" 1; int_ok --seconds "$seconds" 1
int_ok --timeout "$timeout_s" 1; int_ok --settle "$settle" 0
num_ok --restart-delay "$restart_delay"; num_ok --work-s "$work_s"; num_ok --heartbeat "$heartbeat"

[ -d "$build" ] || die "build dir \"$build\" does not exist"
build=$(cd "$build" && pwd)
controller_bin=$build/controller/controller
agentd_bin=$build/agentd/agentd
harnessctl_bin=$build/client/harnessctl
for b in "$controller_bin" "$agentd_bin" "$harnessctl_bin"; do
  [ -x "$b" ] || die "missing binary $b (build it: cmake --build $build --target controller agentd harnessctl)"
done
command -v jq >/dev/null || die "jq is needed (apt-get install -y jq)"
[ -n "${EPOCHREALTIME:-}" ] || die "bash 5 or later is needed (\$EPOCHREALTIME)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/harness-bench-pool.XXXXXX") || die "cannot make a temp dir"
if command -v git >/dev/null && git -C "$tmp" rev-parse --git-dir >/dev/null 2>&1; then
  die "the temp dir $tmp is inside a git repository; set TMPDIR to a folder outside one"
fi

# --- processes ----------------------------------------------------------------------------------
controller_pid=""   # the running controller, started here
run_dir=""          # the running controller's folder (config, state, logs)
extra_pids=()       # agentd and command pids seen during the run (launched by the controller)

# The agentd pids of the pool from their pid files (pid= lines).
agentd_pids() {
  local f
  for f in "$run_dir"/state/agents/*/pid; do
    [ -f "$f" ] && sed -n 's/^pid=//p' "$f"
  done
  return 0
}
remember_agentds() { local p; for p in $(agentd_pids); do extra_pids+=("$p"); done; }
# A pid still running the program $2 (guards against a reused pid).
# is_running PID BINARY: PID is alive and runs BINARY (a path, or a name on PATH), whatever
# path its command line used.
is_running() {
  [ -n "$1" ] || return 1
  local want=$2
  [[ "$want" == */* ]] || want=$(command -v "$want") || return 1
  [ "$(readlink -f "/proc/$1/exe" 2>/dev/null)" = "$(readlink -f "$want")" ]
}

stop_controller() {
  [ -n "$controller_pid" ] || return 0
  remember_agentds
  kill -TERM "$controller_pid" 2>/dev/null || true
  local start=$SECONDS
  while kill -0 "$controller_pid" 2>/dev/null && [ $((SECONDS - start)) -lt 15 ]; do sleep 0.05; done
  if kill -0 "$controller_pid" 2>/dev/null; then
    log "warning: controller pid $controller_pid still running 15 s after SIGTERM: SIGKILL"
    kill -KILL "$controller_pid" 2>/dev/null || true
  fi
  local rc=0; wait "$controller_pid" 2>/dev/null || rc=$?
  [ $rc = 0 ] || log "warning: controller pid $controller_pid exited with status $rc"
  controller_pid=""
  local p
  for p in "${extra_pids[@]}"; do
    if is_running "$p" "$agentd_bin" || is_running "$p" "sleep"; then
      log "warning: pid $p ($(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)) outlived the controller: SIGKILL"
      kill -KILL "$p" 2>/dev/null || true
    fi
  done
  extra_pids=()
}
failed=0
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ $rc = 0 ] || failed=1
  stop_controller
  if [ $failed = 1 ] && [ -n "$run_dir" ] && [ -d "$run_dir" ]; then
    [ -s "$run_dir/controller.log" ] && { log "--- last lines of the controller's log:"; tail -n 15 "$run_dir/controller.log" >&2; }
  fi
  if [ $keep = 1 ]; then log "kept $tmp"; else rm -rf "$tmp"; fi
  exit $rc
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

hctl() { "$harnessctl_bin" --controller "$addr" "$@"; }

# start_controller NAME AGENTS COMMAND_YAML [EXTRA_HARNESS_YAML]: a controller on 127.0.0.1:0
# with its state under $tmp/NAME, launching AGENTS agentd processes with no stagger.
start_controller() {
  run_dir=$tmp/$1
  mkdir -p "$run_dir"
  cat >"$run_dir/harness.yaml" <<YAML
harness:
  listen: 127.0.0.1:0
  state_dir: $run_dir/state
  parallel_agents: $2
  agent_startup_stagger: 0
  agent_restart_delay: ${restart_delay}
  agent:
    launcher: process
    binary: $agentd_bin
    command: $3
  health_check:
    heartbeat_interval: $heartbeat
${4:-}
YAML
  # setsid: a Ctrl-C reaches only this script, which then stops the controller (and so its agents).
  local detach=()
  command -v setsid >/dev/null && detach=(setsid)
  t_spawn=$EPOCHREALTIME
  "${detach[@]}" "$controller_bin" --config "$run_dir/harness.yaml" \
    >"$run_dir/controller.out" 2>"$run_dir/controller.log" &
  controller_pid=$!
  local start=$SECONDS
  while ! [ -s "$run_dir/state/controller.addr" ]; do
    kill -0 "$controller_pid" 2>/dev/null || die "the controller exited at start: $(tail -n 3 "$run_dir/controller.log")"
    [ $((SECONDS - start)) -lt "$timeout_s" ] || die "the controller did not listen within $timeout_s s"
    sleep 0.02
  done
  addr=$(cat "$run_dir/state/controller.addr")
  log "controller pid $controller_pid on $addr, $2 agents, state $run_dir/state"
}

# Number of agents in state idle, and of pool slots running, in a status document.
count_idle() { { grep -o '"state": *"idle"' <<<"$1" || true; } | wc -l; }
count_running_slots() { local p=${1#*\"pool\"}; { grep -o '"state": *"running"' <<<"$p" || true; } | wc -l; }

# wait_idle N: until N agents are idle and N slots running (the controller's view).
wait_idle() {
  local n=$1 start=$SECONDS json idle=0 slots=0 last=-1
  while :; do
    kill -0 "$controller_pid" 2>/dev/null || die "the controller exited: $(tail -n 3 "$run_dir/controller.log")"
    if json=$(hctl status --json 2>/dev/null); then
      idle=$(count_idle "$json"); slots=$(count_running_slots "$json")
      [ "$idle" -ge "$n" ] && [ "$slots" -ge "$n" ] && break
    fi
    [ $((SECONDS - start)) -lt "$timeout_s" ] || die "only $idle of $n agents idle ($slots slots running) after $timeout_s s"
    if [ "$idle" != "$last" ] && [ $((SECONDS - start)) -ge 2 ]; then log "agents idle: $idle/$n"; last=$idle; fi
    sleep 0.05
  done
  remember_agentds
}

# ISO-8601 UTC stamp of a log line (I 2026-11-30T03:00:33.943Z ...) -> epoch seconds.
log_epoch() { date -u -d "$(sed -E 's/^. ([0-9T:.-]+)Z.*/\1/; s/T/ /' <<<"$1")" +%s.%N; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) * 1000 }'; }
# stats of numbers on stdin, one a line: "min median max"
stats() { sort -g | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%s %s %s", v[1], m, v[NR] }'; }
median() { stats | awk '{ print $2 }'; }

# --- recovery -----------------------------------------------------------------------------------
run_recovery() {
  local n=$agents_arg
  local markers=$tmp/recovery/markers
  mkdir -p "$tmp/recovery"; : >"$markers"
  # The command notes its start (no fork: bash's own clock), then becomes a long sleep.
  local cmd
  cmd="[\"/bin/bash\", \"-c\", \"echo \\\"\$EPOCHREALTIME \$HARNESS_AGENT_ID \$HARNESS_ITEM_ID \$HARNESS_ATTEMPT \$\$\\\" >> $markers; exec /bin/sleep 1000\"]"
  # Each slot dies again and again here: the failure threshold (3 deaths in 10 min by default)
  # would stop its respawning after the third.
  start_controller recovery "$n" "$cmd" $'  coordinator:\n    max_agent_failures: 1000'
  wait_idle "$n"
  log "$n agents idle in $(ms "$t_spawn" "$EPOCHREALTIME") ms from the controller's spawn"
  local samples=() s_seen=() s_ended=() s_granted=() s_started=() orphans=0 trial
  for trial in $(seq 1 "$trials"); do
    wait_idle "$n"
    local id=rec-$trial
    hctl submit --title "recovery $trial" --prompt p --id "$id" --max-attempts 100 >/dev/null
    local line1="" start=$SECONDS
    while [ -z "$line1" ]; do
      line1=$(grep " $id 1 " "$markers" || true)
      [ $((SECONDS - start)) -lt "$timeout_s" ] || die "item $id did not start within $timeout_s s"
      [ -n "$line1" ] || sleep 0.01
    done
    local holder cmd_pid
    read -r _ holder _ _ cmd_pid <<<"$line1"
    local pid
    pid=$(sed -n 's/^pid=//p' "$run_dir/state/agents/$holder/pid")
    is_running "$pid" "$agentd_bin" || die "pid $pid of $holder is not an agentd"
    sleep "0.$((RANDOM % 9 + 1))"   # 0.1-0.9 s into the item: off any heartbeat's phase
    local t_kill=$EPOCHREALTIME
    kill -KILL "$pid"
    local line2="" start=$SECONDS
    while [ -z "$line2" ]; do
      line2=$(grep " $id 2 " "$markers" || true)
      [ $((SECONDS - start)) -lt "$timeout_s" ] || die "item $id did not start again within $timeout_s s of the kill"
      [ -n "$line2" ] || sleep 0.005
    done
    local t_start taker
    read -r t_start taker _ _ _ <<<"$line2"
    local lat
    lat=$(awk -v a="$t_kill" -v b="$t_start" 'BEGIN { printf "%.4f", b - a }')
    samples+=("$lat")
    # The steps, from the logs (stamps in ms).
    local clog=$run_dir/controller.log
    local seen ended granted
    seen=$(grep -m1 "$holder (slot [0-9]*, pid $pid) killed by signal 9" "$clog" || true)
    ended=$(grep -m1 "item expired item=$id .*reason=\"its agent died" "$clog" || true)
    granted=$(grep -m1 "item granted item=$id agent=$taker .*attempt=2" "$clog" || true)
    if [ -n "$seen" ] && [ -n "$ended" ] && [ -n "$granted" ]; then
      local e_seen e_ended e_granted
      e_seen=$(log_epoch "$seen"); e_ended=$(log_epoch "$ended"); e_granted=$(log_epoch "$granted")
      s_seen+=("$(ms "$t_kill" "$e_seen")"); s_ended+=("$(ms "$e_seen" "$e_ended")")
      s_granted+=("$(ms "$e_ended" "$e_granted")"); s_started+=("$(ms "$e_granted" "$t_start")")
      log "trial $trial: $holder killed -> $taker started the item in $(ms "$t_kill" "$t_start") ms" \
          "(exit seen ${s_seen[-1]}, lease ended +${s_ended[-1]}, granted +${s_granted[-1]}, command +${s_started[-1]})"
    else
      log "trial $trial: $holder killed -> $taker started the item in $(ms "$t_kill" "$t_start") ms (steps not found in the logs)"
    fi
    # The killed agent's command must be gone with it (PR_SET_PDEATHSIG); give it a moment.
    local k
    for k in $(seq 1 20); do is_running "$cmd_pid" sleep || break; sleep 0.05; done
    if is_running "$cmd_pid" sleep; then orphans=$((orphans + 1)); log "pid $cmd_pid of the killed agent's command survived"; extra_pids+=("$cmd_pid"); fi
    read -r _ _ _ _ cmd_pid <<<"$line2"
    extra_pids+=("$cmd_pid")
    hctl cancel "$id" --reason "bench trial over" >/dev/null
  done
  stop_controller
  local st
  st=$(printf '%s\n' "${samples[@]}" | stats)
  local steps="null"
  if [ ${#s_seen[@]} -gt 0 ]; then
    steps=$(printf '{"exit_seen":%s,"lease_ended":%s,"granted":%s,"command_started":%s}' \
      "$(printf '%s\n' "${s_seen[@]}" | median)" "$(printf '%s\n' "${s_ended[@]}" | median)" \
      "$(printf '%s\n' "${s_granted[@]}" | median)" "$(printf '%s\n' "${s_started[@]}" | median)")
  fi
  read -r mn md mx <<<"$st"
  printf '{"bench":"pool_recovery","agents":%d,"trials":%d,"restart_delay_s":%s,"min_s":%s,"median_s":%s,"max_s":%s,"samples_s":[%s],"median_steps_ms":%s,"steps_found":%d,"orphans":%d}\n' \
    "$n" "$trials" "$restart_delay" "$mn" "$md" "$mx" "$(IFS=,; echo "${samples[*]}")" "$steps" "${#s_seen[@]}" "$orphans"
}

# --- scaling ------------------------------------------------------------------------------------
run_scaling() {
  local n
  for n in $agents_arg; do
    local m=$((n * per_agent))
    start_controller "scaling-$n" "$n" "[\"/bin/sleep\", \"$work_s\"]"
    wait_idle "$n"
    local startup
    startup=$(awk -v a="$t_spawn" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
    local k
    {
      printf '[\n'
      for k in $(seq 1 "$m"); do
        local sep=,; [ "$k" = "$m" ] && sep=""
        printf '{"id":"s-%d","title":"t","prompt":"p"}%s\n' "$k" "$sep"
      done
      printf ']\n'
    } >"$run_dir/items.json"
    local t0=$EPOCHREALTIME
    hctl submit --file "$run_dir/items.json" >/dev/null
    local start=$SECONDS json done_n=0 t_polled
    while :; do
      if json=$(hctl status --json 2>/dev/null); then
        t_polled=$EPOCHREALTIME
        done_n=$(jq '.queue.done' <<<"$json")
        [ "$done_n" -ge "$m" ] && break
        local bad
        bad=$(jq '.queue.failed + .queue.parked + .queue.cancelled' <<<"$json")
        [ "$bad" = 0 ] || die "$bad item(s) failed, parked or cancelled"
      fi
      [ $((SECONDS - start)) -lt "$timeout_s" ] || die "not all items done within $timeout_s s ($done_n/$m)"
      sleep 0.05
    done
    local last_ms
    last_ms=$(hctl items --state "done" --json | jq '[.. | objects | .updated_at_unix_ms? // empty] | max')
    # Items each agent took, from the controller's grants: "min max".
    local spread a
    spread=$(for a in "$run_dir"/state/agents/*/; do
      a=$(basename "$a")
      grep -c "item granted item=s-[^ ]* agent=$a " "$run_dir/controller.log" || true
    done | stats)
    local fewest most
    read -r fewest _ most <<<"$spread"
    stop_controller
    awk -v t0="$t0" -v last_ms="$last_ms" -v tp="$t_polled" -v n="$n" -v m="$m" -v s="$work_s" \
        -v k="$per_agent" -v up="$startup" -v few="$fewest" -v most="$most" 'BEGIN {
      secs = last_ms / 1000 - t0
      ideal = k * s
      printf "{\"bench\":\"pool_scaling\",\"agents\":%d,\"items\":%d,\"work_s\":%s,", n, m, s
      printf "\"seconds\":%.3f,\"ideal_s\":%.3f,\"efficiency\":%.4f,\"items_per_s\":%.3f,", secs, ideal, ideal / secs, m / secs
      printf "\"seconds_polled\":%.3f,\"items_per_agent_min\":%d,\"items_per_agent_max\":%d,\"startup_s\":%s}\n", tp - t0, few, most, up
    }'
  done
}

# --- idle ---------------------------------------------------------------------------------------
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
run_idle() {
  local n=$agents_arg
  start_controller "idle-$n" "$n" '["/bin/true"]'
  wait_idle "$n"
  local startup
  startup=$(awk -v a="$t_spawn" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
  local pids
  mapfile -t pids < <(agentd_pids)
  [ ${#pids[@]} -eq "$n" ] || die "${#pids[@]} pid files for $n agents"
  log "$n agents idle in $startup s; settling $settle s, then measuring $seconds s"
  sleep "$settle"
  local hz p
  hz=$(getconf CLK_TCK)
  local c0 a0=0 c1 a1=0 t0 t1
  t0=$EPOCHREALTIME; c0=$(cpu_ticks "$controller_pid")
  for p in "${pids[@]}"; do a0=$((a0 + $(cpu_ticks "$p"))); done
  sleep "$seconds"
  t1=$EPOCHREALTIME; c1=$(cpu_ticks "$controller_pid")
  for p in "${pids[@]}"; do a1=$((a1 + $(cpu_ticks "$p"))); done
  local crss threads arss
  crss=$(rss_kb "$controller_pid")
  threads=$(awk '/^Threads:/ { print $2 }' "/proc/$controller_pid/status")
  arss=$(for p in "${pids[@]}"; do rss_kb "$p"; done | stats)
  # RSS counts the shared libraries' pages in every agentd; PSS shares them out, and the
  # anonymous part is each agentd's own.
  local apss aanon
  apss=$(for p in "${pids[@]}"; do awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup"; done | median)
  aanon=$(for p in "${pids[@]}"; do awk '/^RssAnon:/ { print $2 }' "/proc/$p/status"; done | median)
  local json alive
  json=$(hctl status --json)
  alive=$(count_idle "$json")
  stop_controller
  read -r amin amed amax <<<"$arss"
  awk -v n="$n" -v hb="$heartbeat" -v c="$((c1 - c0))" -v a="$((a1 - a0))" -v hz="$hz" -v t0="$t0" -v t1="$t1" \
      -v crss="$crss" -v th="$threads" -v amin="$amin" -v amed="$amed" -v amax="$amax" -v up="$startup" \
      -v idle="$alive" -v apss="$apss" -v aanon="$aanon" 'BEGIN {
    w = t1 - t0
    printf "{\"bench\":\"pool_idle\",\"agents\":%d,\"heartbeat_s\":%s,\"window_s\":%.1f,", n, hb, w
    printf "\"controller_cpu_pct\":%.2f,\"controller_rss_kb\":%d,\"controller_threads\":%d,", c / hz / w * 100, crss, th
    printf "\"agentd_rss_kb_median\":%d,\"agentd_rss_kb_min\":%d,\"agentd_rss_kb_max\":%d,", amed, amin, amax
    printf "\"agentd_pss_kb_median\":%d,\"agentd_anon_kb_median\":%d,", apss, aanon
    printf "\"agentds_cpu_pct_sum\":%.2f,\"idle_at_end\":%d,\"startup_s\":%s}\n", a / hz / w * 100, idle, up
  }'
}

case "$mode" in
  recovery) run_recovery ;;
  scaling) run_scaling ;;
  idle) run_idle ;;
esac
