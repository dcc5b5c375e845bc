#!/usr/bin/env bash
# Benchmark of the managed pool with `agent.launcher: docker`: the real controller (on the host,
# from the build tree) starting real agentd in containers of the harness-agent image on the local
# Docker daemon. The container counterpart of bench/pool.sh. Two modes, each printing one JSON
# line on stdout (everything else goes to stderr):
#
#   start   a container's start -> its agent's first lease. One controller with parallel_agents
#           0; per trial: submit one item (its command, `echo $EPOCHREALTIME`, notes when it
#           ran), then `harnessctl scale 1`; the figure is the lease's grant (the attempt's
#           started_at, the controller's CLOCK_REALTIME) - the moment before the scale. Medians
#           of the steps, from the controller's log: scale -> the container was created and
#           started ("started agent-1 ... in container"); -> the agent registered; -> the lease
#           was granted; -> the item's command ran (its own stamp, in the attempt's log tail).
#           Then `scale 0`, and the next trial waits until the container is gone.
#             {"bench":"containers_start","trials":T,"min_s":..,"median_s":..,"max_s":..,
#              "samples_s":[..],"median_steps_ms":{..}}
#   kill    `docker kill` of a working agent's container -> its item's command running on
#           another agent. N agents (default 3); per trial: submit one item whose first attempt
#           execs `sleep 1000` and whose later ones echo $EPOCHREALTIME; once `sleep 1000` runs
#           in the holder's container (GET /containers/{id}/top), wait 0.1-0.9 s, then POST
#           /containers/{id}/kill?signal=KILL (curl on the daemon's socket: no CLI start-up in
#           the figure). The figure is attempt 2's stamp - the moment before the kill (one clock:
#           containers share the host's kernel). Medians of the steps: kill -> the controller saw
#           the container's end; -> the lease ended; -> the next agent got the lease; -> the
#           command ran. The next trial waits until all N agents are idle again.
#             {"bench":"containers_kill","agents":N,"trials":T,"min_s":..,"median_s":..,..}
#
# usage: bench/containers.sh --build DIR MODE [options]
#
#   --build DIR          a build tree holding controller/controller and client/harnessctl
#   MODE                 start | kill
#   --image IMAGE        the agent image (default harness-agent:<project version>; build it with
#                        docker/build-images.sh)
#   --socket PATH        the daemon's unix socket (default /var/run/docker.sock)
#   --agents N           kill: pool size (default 3)
#   --trials T           trials (default 10)
#   --restart-delay S    agent_restart_delay (default 1: the killed slot is back sooner; the
#                        figures do not depend on it)
#   --timeout S          give up on any one wait after S seconds (default 120)
#   --keep               keep the temp dir (config, state dir, logs) and print its path
#
# Processes: the controller is started here (setsid) and gets SIGTERM at the end and on any exit
# (Ctrl-C included), which stops its containers; any container still labelled with its
# controller id 15 s later is removed, by id. Nothing else on the daemon is touched. No timed
# assertions: this measures, it does not judge.
set -euo pipefail

prog=bench/containers.sh
usage() { sed -n '28,40s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }
bad_usage() { echo "$prog: $*" >&2; echo "usage: $prog --build DIR start|kill [options] (--help)" >&2; exit 2; }
log() { echo "$prog: $*" >&2; }
die() { echo "$prog: error: $*" >&2; exit 1; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
version=$(sed -n 's/^project(harness VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
build="" mode="" image="harness-agent:$version" socket=/var/run/docker.sock agents=3 trials=10
restart_delay=1 timeout_s=120 keep=0
need_value() { [ $# -ge 2 ] || bad_usage "$1 needs a value"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --build) need_value "$@"; build=$2; shift 2 ;;
    --image) need_value "$@"; image=$2; shift 2 ;;
    --socket) need_value "$@"; socket=$2; shift 2 ;;
    --agents) need_value "$@"; agents=$2; shift 2 ;;
    --trials) need_value "$@"; trials=$2; shift 2 ;;
    --restart-delay) need_value "$@"; restart_delay=$2; shift 2 ;;
    --timeout) need_value "$@"; timeout_s=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) usage; exit 0 ;;
    start|kill) [ -z "$mode" ] || bad_usage "one mode only"; mode=$1; shift ;;
    *) bad_usage "unknown argument \"$1\"" ;;
  esac
done
[ -n "$build" ] || bad_usage "--build DIR is required"
[ -n "$mode" ] || bad_usage "a mode is required: start or kill"
int_ok() { [[ $2 =~ ^[0-9]+$ ]] && [ "$2" -ge "$3" ] || bad_usage "$1 must be an integer >= $3, got \"$2\""; }
int_ok --agents "$agents" 2; int_ok --trials "$trials" 1; int_ok --timeout "$timeout_s" 1
[[ $restart_delay =~ ^[0-9]+(\.[0-9]+)?$ ]] || bad_usage "--restart-delay must be a number of seconds"

[ -d "$build" ] || die "build dir \"$build\" does not exist"
build=$(cd "$build" && pwd)
controller_bin=$build/controller/controller
harnessctl_bin=$build/client/harnessctl
for b in "$controller_bin" "$harnessctl_bin"; do
  [ -x "$b" ] || die "missing binary $b (build it: cmake --build $build --target controller harnessctl)"
done
for t in jq curl; do command -v $t >/dev/null || die "$t is needed (apt-get install -y $t)"; done
[ -n "${EPOCHREALTIME:-}" ] || die "bash 5 or later is needed (\$EPOCHREALTIME)"
# The Engine API, unversioned paths (the daemon's own version), on its socket.
api() { curl -sS --unix-socket "$socket" "$@"; }
api "http://localhost/_ping" >/dev/null 2>&1 || die "no docker daemon answers on $socket (docker/dockerd.sh start)"
[ "$(api -o /dev/null -w '%{http_code}' "http://localhost/images/$image/json")" = 200 ] ||
  die "image $image is missing (docker/build-images.sh)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/harness-bench-containers.XXXXXX") || die "cannot make a temp dir"

# --- processes ----------------------------------------------------------------------------------
controller_pid="" run_dir="" ctl_id=""
# Ids of the containers labelled with this controller's id (running or not).
our_containers() {
  [ -n "$ctl_id" ] || return 0
  api -G "http://localhost/containers/json" --data-urlencode all=1 \
    --data-urlencode "filters={\"label\":[\"harness.controller=$ctl_id\"]}" | jq -r '.[].Id'
}
stop_controller() {
  [ -n "$controller_pid" ] || return 0
  kill -TERM "$controller_pid" 2>/dev/null || true
  local start=$SECONDS
  while kill -0 "$controller_pid" 2>/dev/null && [ $((SECONDS - start)) -lt 15 ]; do sleep 0.05; done
  if kill -0 "$controller_pid" 2>/dev/null; then
    log "warning: controller pid $controller_pid still running 15 s after SIGTERM: SIGKILL"
    kill -KILL "$controller_pid" 2>/dev/null || true
  fi
  wait "$controller_pid" 2>/dev/null || true
  controller_pid=""
  local c
  for c in $(our_containers); do
    log "warning: container ${c:0:12} outlived the controller: removed"
    api -X DELETE "http://localhost/containers/$c?force=1" >/dev/null || true
  done
}
failed=0
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ $rc = 0 ] || failed=1
  stop_controller
  if [ $failed = 1 ] && [ -n "$run_dir" ] && [ -s "$run_dir/controller.log" ]; then
    log "--- last lines of the controller's log:"; tail -n 15 "$run_dir/controller.log" >&2
  fi
  if [ $keep = 1 ]; then log "kept $tmp"; else rm -rf "$tmp"; fi
  exit $rc
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

hctl() { "$harnessctl_bin" --controller "$addr" "$@"; }

# start_controller NAME AGENTS COMMAND_YAML: a controller on 127.0.0.1:0 (the containers use the
# host's network) with its state under $tmp/NAME.
start_controller() {
  run_dir=$tmp/$1
  mkdir -p "$run_dir"
  cat >"$run_dir/harness.yaml" <<YAML
harness:
  listen: 127.0.0.1:0
  state_dir: $run_dir/state
  parallel_agents: $2
  agent_startup_stagger: 0
  agent_restart_delay: $restart_delay
  agent:
    launcher: docker
    docker:
      socket: $socket
      image: $image
    command: $3
  coordinator:
    max_agent_failures: 1000
YAML
  local detach=()
  command -v setsid >/dev/null && detach=(setsid)
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
  ctl_id=$(cat "$run_dir/state/controller.id")
  log "controller pid $controller_pid on $addr (id $ctl_id), $2 agents of $image"
}

# wait_for DESCRIPTION COMMAND...: polls COMMAND every 20 ms until it succeeds.
wait_for() {
  local what=$1 start=$SECONDS
  shift
  until "$@"; do
    kill -0 "$controller_pid" 2>/dev/null || die "the controller exited: $(tail -n 3 "$run_dir/controller.log")"
    [ $((SECONDS - start)) -lt "$timeout_s" ] || die "$what: not within $timeout_s s"
    sleep 0.02
  done
}
idle_agents() { hctl status --json 2>/dev/null | jq '[.agents[] | select(.state == "idle" and .health == "healthy")] | length'; }
all_idle() { [ "$(idle_agents)" -ge "$1" ] && [ "$(our_containers | wc -l)" -eq "$1" ]; }
no_containers() { [ -z "$(our_containers)" ] && [ "$(hctl status --json | jq '.pool.slots | length')" = 0 ]; }
item_state() { hctl show "$1" --json | jq -r .state; }
item_is() { [ "$(item_state "$1")" = "$2" ]; }

# ISO-8601 UTC stamp of a log line (I 2026-11-30T03:00:33.943Z ...) -> epoch seconds.
log_epoch() { date -u -d "$(sed -E 's/^. ([0-9T:.-]+)Z.*/\1/; s/T/ /' <<<"$1")" +%s.%N; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) * 1000 }'; }
stats() { sort -g | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%s %s %s", v[1], m, v[NR] }'; }
median() { stats | awk '{ print $2 }'; }
# The stamp an item's command echoed (the last number in its attempt's log tail).
command_stamp() { hctl show "$1" --json | jq -r .log_tail | grep -Eo '^[0-9]+\.[0-9]+$' | tail -n1; }
attempt_started() { hctl show "$1" --json | jq -r ".attempts[$2].started_at_unix_ms / 1000"; }

# --- start --------------------------------------------------------------------------------------
run_start() {
  start_controller start 0 '["/bin/bash", "-c", "echo $EPOCHREALTIME"]'
  local samples=() s_started=() s_registered=() s_granted=() s_command=() trial
  for trial in $(seq 1 "$trials"); do
    wait_for "no container left" no_containers
    local id=start-$trial
    hctl submit --title "start $trial" --prompt p --id "$id" >/dev/null
    local lines_before
    lines_before=$(wc -l <"$run_dir/controller.log")
    local t0=$EPOCHREALTIME
    hctl scale 1 >/dev/null
    wait_for "item $id done" item_is "$id" done
    local granted cmd
    granted=$(attempt_started "$id" 0)
    cmd=$(command_stamp "$id")
    samples+=("$(awk -v a="$t0" -v b="$granted" 'BEGIN { printf "%.4f", b - a }')")
    local fresh started registered
    fresh=$(tail -n +"$((lines_before + 1))" "$run_dir/controller.log")
    started=$(grep -m1 "started agent-1 (slot 1) in container" <<<"$fresh" || true)
    registered=$(grep -m1 "agent registered agent=agent-1 " <<<"$fresh" || true)
    if [ -n "$started" ] && [ -n "$registered" ] && [ -n "$cmd" ]; then
      local e_started e_registered
      e_started=$(log_epoch "$started"); e_registered=$(log_epoch "$registered")
      s_started+=("$(ms "$t0" "$e_started")"); s_registered+=("$(ms "$e_started" "$e_registered")")
      s_granted+=("$(ms "$e_registered" "$granted")"); s_command+=("$(ms "$granted" "$cmd")")
      log "trial $trial: scale -> first lease $(ms "$t0" "$granted") ms (container started ${s_started[-1]}," \
          "registered +${s_registered[-1]}, lease +${s_granted[-1]}, command +${s_command[-1]})"
    else
      log "trial $trial: scale -> first lease $(ms "$t0" "$granted") ms (steps not found)"
    fi
    hctl scale 0 >/dev/null
  done
  stop_controller
  local mn md mx steps="null"
  read -r mn md mx <<<"$(printf '%s\n' "${samples[@]}" | stats)"
  if [ ${#s_started[@]} -gt 0 ]; then
    steps=$(printf '{"container_started":%s,"registered":%s,"lease_granted":%s,"command_ran":%s}' \
      "$(printf '%s\n' "${s_started[@]}" | median)" "$(printf '%s\n' "${s_registered[@]}" | median)" \
      "$(printf '%s\n' "${s_granted[@]}" | median)" "$(printf '%s\n' "${s_command[@]}" | median)")
  fi
  printf '{"bench":"containers_start","image":"%s","trials":%d,"min_s":%s,"median_s":%s,"max_s":%s,"samples_s":[%s],"median_steps_ms":%s,"steps_found":%d}\n' \
    "$image" "$trials" "$mn" "$md" "$mx" "$(IFS=,; echo "${samples[*]}")" "$steps" "${#s_started[@]}"
}

# --- kill ---------------------------------------------------------------------------------------
run_kill() {
  local n=$agents
  start_controller kill "$n" \
    '["/bin/bash", "-c", "if [ \"$HARNESS_ATTEMPT\" = 1 ]; then exec /bin/sleep 1000; fi; echo $EPOCHREALTIME"]'
  local samples=() s_seen=() s_ended=() s_granted=() s_command=() trial
  for trial in $(seq 1 "$trials"); do
    wait_for "$n agents idle" all_idle "$n"
    local id=kill-$trial
    hctl submit --title "kill $trial" --prompt p --id "$id" --max-attempts 100 >/dev/null
    local holder="" start=$SECONDS
    while [ -z "$holder" ] || [ "$holder" = null ]; do
      holder=$(hctl show "$id" --json | jq -r .agent)
      [ $((SECONDS - start)) -lt "$timeout_s" ] || die "item $id was not leased within $timeout_s s"
      sleep 0.01
    done
    local container="harness-$ctl_id-$holder" cid
    cid=$(api "http://localhost/containers/$container/json" | jq -r .Id)
    sleeping() { api "http://localhost/containers/$cid/top" | jq -e '[.Processes[] | .[-1] | select(test("sleep 1000"))] | length > 0' >/dev/null; }
    wait_for "the command of $id running in $container" sleeping
    local lines_before
    lines_before=$(wc -l <"$run_dir/controller.log")
    sleep "0.$((RANDOM % 9 + 1))"   # 0.1-0.9 s into the item: off any heartbeat's phase
    local t_kill=$EPOCHREALTIME
    api -X POST "http://localhost/containers/$cid/kill?signal=KILL" >/dev/null
    wait_for "item $id done again" item_is "$id" done
    local taker granted cmd
    taker=$(hctl show "$id" --json | jq -r '.attempts[-1].agent')
    granted=$(hctl show "$id" --json | jq -r '.attempts[-1].started_at_unix_ms / 1000')
    cmd=$(command_stamp "$id")
    [ -n "$cmd" ] || die "no stamp in the log of $id"
    samples+=("$(awk -v a="$t_kill" -v b="$cmd" 'BEGIN { printf "%.4f", b - a }')")
    local fresh seen ended
    fresh=$(tail -n +"$((lines_before + 1))" "$run_dir/controller.log")
    seen=$(grep -m1 "$holder (slot [0-9]*, container ${cid:0:12}) killed by signal 9" <<<"$fresh" || true)
    ended=$(grep -m1 "item expired item=$id .*reason=\"its agent died" <<<"$fresh" || true)
    if [ -n "$seen" ] && [ -n "$ended" ]; then
      local e_seen e_ended
      e_seen=$(log_epoch "$seen"); e_ended=$(log_epoch "$ended")
      s_seen+=("$(ms "$t_kill" "$e_seen")"); s_ended+=("$(ms "$e_seen" "$e_ended")")
      s_granted+=("$(ms "$e_ended" "$granted")"); s_command+=("$(ms "$granted" "$cmd")")
      log "trial $trial: $holder killed -> $taker ran the item in $(ms "$t_kill" "$cmd") ms" \
          "(end seen ${s_seen[-1]}, lease ended +${s_ended[-1]}, granted +${s_granted[-1]}, command +${s_command[-1]})"
    else
      log "trial $trial: $holder killed -> $taker ran the item in $(ms "$t_kill" "$cmd") ms (steps not found)"
    fi
  done
  stop_controller
  local mn md mx steps="null"
  read -r mn md mx <<<"$(printf '%s\n' "${samples[@]}" | stats)"
  if [ ${#s_seen[@]} -gt 0 ]; then
    steps=$(printf '{"end_seen":%s,"lease_ended":%s,"granted":%s,"command_ran":%s}' \
      "$(printf '%s\n' "${s_seen[@]}" | median)" "$(printf '%s\n' "${s_ended[@]}" | median)" \
      "$(printf '%s\n' "${s_granted[@]}" | median)" "$(printf '%s\n' "${s_command[@]}" | median)")
  fi
  printf '{"bench":"containers_kill","image":"%s","agents":%d,"trials":%d,"min_s":%s,"median_s":%s,"max_s":%s,"samples_s":[%s],"median_steps_ms":%s,"steps_found":%d}\n' \
    "$image" "$n" "$trials" "$mn" "$md" "$mx" "$(IFS=,; echo "${samples[*]}")" "$steps" "${#s_seen[@]}"
}

case "$mode" in
  start) run_start ;;
  kill) run_kill ;;
esac
