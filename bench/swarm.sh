#!/usr/bin/env bash
# Benchmark of the swarm launcher (`agent.launcher: swarm`) on the 2-node swarm of
# docker/swarm.sh (run `docker/swarm.sh up` first; root). The controller runs in node 1's
# network namespace on 10.231.0.1, as in tests/integration/swarm_agents_test.cc. Two figures,
# one JSON line each on stdout (everything else on stderr):
#
#   start  task start -> first lease. Per trial: one pending item, then `harnessctl scale 1`
#          (the clock starts just before it, bash $EPOCHREALTIME); the figure is the item's
#          first attempt's start (the controller's stamp of the grant) minus that. Steps from
#          the controller's log: scale -> the task handed to the pool (`started agent-1 ... as
#          swarm task`), -> the agent registered, -> the lease. Then `scale 0` and the next
#          trial waits until the service has no task running.
#            {"bench":"swarm_start","trials":T,"min_s":..,"median_s":..,"max_s":..,
#             "samples_s":[..],"median_steps_ms":{"task":..,"registered":..,"lease":..}}
#   kill   `docker kill` of the container of the agent that holds an item -> the item running
#          elsewhere. 2 agents (one per node); an item whose command sleeps; the holder's
#          container is killed through its node's daemon (the clock starts just before); the
#          figure is the start of the item's next attempt minus that. Then the item is
#          cancelled and the next trial waits until 2 agents are idle again.
#            {"bench":"swarm_kill","trials":T,"min_s":..,"median_s":..,"max_s":..,
#             "samples_s":[..]}
#
# usage: bench/swarm.sh --build DIR [--trials T] [--image IMG] [--restart-delay S] [--keep]
#   --build DIR        a build tree holding controller/controller and client/harnessctl
#   --trials T         trials of each figure (default 5)
#   --image IMG        the agent image loaded on both nodes (default harness-agent:<version>)
#   --restart-delay S  agent_restart_delay (default 2)
#   --keep             keep the temp dir (config, state, log) and print its path
# The controller is started here and ended by its pid (SIGTERM: the service's replicas drop to
# 0), and the service is removed at the end. No timed assertions: this measures.
set -euo pipefail

prog=bench/swarm.sh
root=$(cd "$(dirname "$0")/.." && pwd)
log() { echo "$prog: $*" >&2; }
die() { log "$*"; exit 1; }

build="" trials=5 image="" restart_delay=2 keep=0
while (($#)); do
  case "$1" in
    --build) build=$(cd "$2" && pwd); shift 2 ;;
    --trials) trials=$2; shift 2 ;;
    --image) image=$2; shift 2 ;;
    --restart-delay) restart_delay=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,33s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) die "unknown argument $1" ;;
  esac
done
[[ -n "$build" ]] || die "--build DIR is required"
if [[ -z "$image" ]]; then
  image="harness-agent:$(sed -n 's/^project(harness VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")"
fi
node1=/run/harness-swarm/node1.sock
[[ -S "$node1" ]] || die "no swarm: run docker/swarm.sh up first"
py=/usr/bin/python3
tmp=$(mktemp -d /tmp/harness-bench-swarm.XXXXXX)
service="hbench-$$"
ctl_pid=""

cleanup() {
  if [[ -n "$ctl_pid" ]] && kill -0 "$ctl_pid" 2>/dev/null; then
    kill -TERM "$ctl_pid"
    for _ in $(seq 1 200); do kill -0 "$ctl_pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$ctl_pid" 2>/dev/null && kill -KILL "$ctl_pid"
  fi
  docker -H "unix://$node1" service rm "$service" >/dev/null 2>&1 || true
  if ((keep)); then log "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

git init -q -b main "$tmp/repo"
echo base >"$tmp/repo/README.md"
git -C "$tmp/repo" add -A
git -C "$tmp/repo" -c user.name=B -c user.email=b@t commit -qm base

start_controller() {  # target, command (JSON list)
  cat >"$tmp/h.yaml" <<EOF
harness:
  listen: 10.231.0.1:0
  state_dir: $tmp/state
  parallel_agents: $1
  agent_startup_stagger: 0
  agent_restart_delay: $restart_delay
  health_check:
    heartbeat_interval: 0.5
    heartbeat_timeout: 4
    lease_ttl: 6
  coordinator:
    max_agent_failures: 1000
  agent:
    launcher: swarm
    command: $2
    docker:
      socket: $node1
      image: $image
    swarm:
      service: $service
  repo:
    path: $tmp/repo
EOF
  rm -rf "$tmp/state"
  setsid nsenter --net=/var/run/netns/harness-swarm-node1 "$build/controller/controller" \
    --config "$tmp/h.yaml" --insecure >"$tmp/controller.log" 2>&1 </dev/null &
  ctl_pid=$!
  for _ in $(seq 1 200); do
    addr=$(sed -n 's/^listening on //p' "$tmp/controller.log")
    [[ -n "$addr" ]] && break
    sleep 0.1
  done
  [[ -n "$addr" ]] || die "the controller did not start: $(tail -5 "$tmp/controller.log")"
}

stop_controller() {
  kill -TERM "$ctl_pid"
  for _ in $(seq 1 600); do kill -0 "$ctl_pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$ctl_pid" 2>/dev/null && kill -KILL "$ctl_pid"
  ctl_pid=""
  docker -H "unix://$node1" service rm "$service" >/dev/null 2>&1 || true
}

ctl() { "$build/client/harnessctl" --controller "$addr" "$@"; }
# A field of `harnessctl show ID --json`, by a Python expression on `i`.
item() { ctl show "$1" --json | "$py" -c "import json,sys; i=json.load(sys.stdin); print($2)"; }
wait_for() {  # seconds, a condition (evaluated again each time)
  local limit=$1 t0=$SECONDS
  shift
  until eval "$1"; do
    ((SECONDS - t0 < limit)) || return 1
    sleep 0.05
  done
}
attempts() { item "$1" "len(i['attempts'])"; }
state() { item "$1" "i['state']"; }
healthy() {
  ctl agents --json |
    "$py" -c 'import json,sys; print(sum(1 for a in json.load(sys.stdin)["agents"] if a.get("health") == "healthy"))'
}
running_tasks() {
  docker -H "unix://$node1" service ps "$service" --filter desired-state=running \
    --format '{{.CurrentState}}' 2>/dev/null | grep -c '^Running' || true
}
stats() {  # name, then samples in seconds on stdin; extra JSON appended from $extra
  "$py" -c '
import json, statistics, sys
name, extra = sys.argv[1], json.loads(sys.argv[2])
s = [float(x) for x in sys.stdin.read().split()]
out = {"bench": name, "trials": len(s), "min_s": round(min(s), 3),
       "median_s": round(statistics.median(s), 3), "max_s": round(max(s), 3),
       "samples_s": [round(x, 3) for x in s]}
out.update(extra)
print(json.dumps(out))' "$1" "$2"
}
ms_of() {  # the log's timestamp of the first line matching $2 after line $1, in unix ms
  tail -n +"$1" "$tmp/controller.log" | grep -m1 -- "$2" | cut -d' ' -f2 |
    "$py" -c 'import sys, datetime; t=sys.stdin.read().strip(); print(int(datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()*1000) if t else "")'
}

# --- start -> first lease -----------------------------------------------------------------
log "start: $trials trials ($image, service $service)"
start_controller 0 '["/bin/sh", "-c", "true"]'
: >"$tmp/start.samples"
: >"$tmp/start.steps"
for t in $(seq 1 "$trials"); do
  ctl submit --title "s$t" --prompt p --id "s$t" >/dev/null
  line=$(($(wc -l <"$tmp/controller.log") + 1))
  t0=$EPOCHREALTIME
  ctl scale 1 >/dev/null
  wait_for 120 '(($(attempts "s$t") >= 1))' || die "s$t never leased"
  lease_ms=$(item "s$t" "i['attempts'][0]['started_at_unix_ms']")
  t0_ms=$("$py" -c "print(int($t0*1000))")
  echo "scale=3; ($lease_ms - $t0_ms) / 1000" | bc >>"$tmp/start.samples"
  task_ms=$(ms_of "$line" "as swarm task")
  reg_ms=$(ms_of "$line" "agent registered agent=agent-1 ")
  echo "$((task_ms - t0_ms)) $((reg_ms - task_ms)) $((lease_ms - reg_ms))" >>"$tmp/start.steps"
  log "  trial $t: $(tail -1 "$tmp/start.samples") s (task/registered/lease ms: $(tail -1 "$tmp/start.steps"))"
  wait_for 60 '[[ $(state "s$t") == done ]]' || die "s$t not done"
  ctl scale 0 >/dev/null
  wait_for 120 '(($(running_tasks) == 0))' || die "the task of slot 1 did not end"
done
steps=$("$py" -c '
import json, statistics, sys
rows = [list(map(int, l.split())) for l in open(sys.argv[1]) if l.strip()]
print(json.dumps({"median_steps_ms": {k: statistics.median(r[i] for r in rows)
                  for i, k in enumerate(["task", "registered", "lease"])}}))' "$tmp/start.steps")
stats swarm_start "$steps" <"$tmp/start.samples"
stop_controller

# --- docker kill -> the item running elsewhere ---------------------------------------------
log "kill: $trials trials"
start_controller 2 '["/bin/sh", "-c", "sleep 1000"]'
: >"$tmp/kill.samples"
for t in $(seq 1 "$trials"); do
  wait_for 120 '(($(running_tasks) == 2))' || die "2 tasks do not run"
  wait_for 60 '(($(healthy) >= 2))' || die "2 agents are not healthy"
  ctl submit --title "k$t" --prompt p --id "k$t" >/dev/null
  wait_for 60 '(($(attempts "k$t") >= 1))' || die "k$t never leased"
  holder=$(item "k$t" "i['attempts'][0]['agent']")
  slot=${holder#agent-}
  # The holder's task: its node and container, from the manager; killed through that node.
  read -r node container < <(docker -H "unix://$node1" inspect \
    "$(docker -H "unix://$node1" service ps "$service" --filter desired-state=running -q --no-trunc |
      while read -r id; do
        [[ "$(docker -H "unix://$node1" inspect "$id" --format '{{.Slot}}')" == "$slot" ]] && echo "$id"
      done | head -1)" --format '{{.NodeID}} {{.Status.ContainerStatus.ContainerID}}')
  sock=$node1
  [[ "$(docker -H "unix://$node1" node inspect "$node" --format '{{.Status.Addr}}')" == 10.231.0.2 ]] &&
    sock=/run/harness-swarm/node2.sock
  t0=$EPOCHREALTIME
  docker -H "unix://$sock" kill "$container" >/dev/null
  wait_for 120 '(($(attempts "k$t") >= 2))' || die "k$t did not run again"
  next_ms=$(item "k$t" "i['attempts'][1]['started_at_unix_ms']")
  echo "scale=3; ($next_ms - $("$py" -c "print(int($t0*1000))")) / 1000" | bc >>"$tmp/kill.samples"
  log "  trial $t: $holder on $sock killed; item running again after $(tail -1 "$tmp/kill.samples") s"
  ctl cancel "k$t" >/dev/null
done
stats swarm_kill '{}' <"$tmp/kill.samples"
stop_controller
