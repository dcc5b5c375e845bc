#!/usr/bin/env bash
# The README's run command: installs what is needed, builds, and runs the embedded default: a
# small demo repository, a local controller with its own state dir that launches and keeps its
# own pool of agents (`agent.launcher: process`: two at first, scaled to four half way, and
# back to one at the end), and a demo queue of items whose "agent command" is a small script
# (swap in `claude -p {prompt}` for the real thing). Launched agents get the base and send
# their results over the controller's gRPC connection. Prints each harness/<item> branch with
# its author.
#
#   bash scripts/demo.sh            # everything (build on first run)
#   bash scripts/demo.sh --launcher docker   # each agent in its own container (agent.launcher:
#                                   # docker): starts dockerd if none answers, builds the images
#                                   # from build/ (docker/build-images.sh; root); see docs/CONTAINERS.md
#   HARNESS_DEMO_ITEMS=30 bash scripts/demo.sh
#
# Everything it starts is stopped by pid on exit (the controller stops the agents it launched,
# containers included); the demo folder is kept for a look around.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
items=${HARNESS_DEMO_ITEMS:-16}
demo=${HARNESS_DEMO_DIR:-$repo/demo}
launcher=process
while (($#)); do
  case "$1" in
    --launcher)
      [[ $# -ge 2 ]] || { echo "demo.sh: --launcher needs process or docker" >&2; exit 2; }
      launcher=$2
      shift 2
      ;;
    --launcher=*) launcher=${1#--launcher=}; shift ;;
    -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown argument $1 (usage: demo.sh [--launcher process|docker])" >&2; exit 2 ;;
  esac
done
case "$launcher" in
  process | docker) ;;
  *) echo "demo.sh: --launcher must be process or docker, not \"$launcher\"" >&2; exit 2 ;;
esac

bash scripts/install-deps.sh
echo "==> building (Release) in build/"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target controller agentd harnessctl
image=""
if [[ "$launcher" == docker ]]; then
  version=$(sed -n 's/^project(harness VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
  image="harness-agent:${HARNESS_IMAGE_TAG:-$version}"
  echo "==> docker: a daemon and the agent image $image"
  bash docker/dockerd.sh start
  # Always from the binaries just built (a few seconds when nothing changed: the rootfs and
  # docker's layers are cached), so the containers never run an older agentd than the host's.
  bash docker/build-images.sh --build-dir build
fi

rm -rf "$demo"
mkdir -p "$demo"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

echo "==> demo repository $demo/repo"
git init -q -b main "$demo/repo"
printf '# Demo project\n' >"$demo/repo/README.md"
printf 'build/\n*.log\n' >"$demo/repo/.gitignore"
git -C "$demo/repo" add -A
git -C "$demo/repo" -c user.name=Demo -c user.email=demo@example.com commit -q -m "demo base"

cat >"$demo/agent.sh" <<'SH'
#!/bin/sh
# Demo agent: "works" on the item for a moment and leaves a note in the repository.
sleep 0.3
mkdir -p notes
echo "$HARNESS_AGENT_ID did $HARNESS_ITEM_ID: $(cat "$HARNESS_PROMPT_FILE")" | tee "notes/$HARNESS_ITEM_ID.md"
echo "scratch" > build.log   # ignored: never committed
SH
chmod +x "$demo/agent.sh"
if [[ "$launcher" == process ]]; then
  agent_yaml="    launcher: process           # agentd processes under state/agents/<agent>/
    command: [\"$demo/agent.sh\"]"
else
  # The containers do not see the host's files: the same script, inline (sh -c).
  agent_yaml="    launcher: docker            # one container per agent: harness-<controller id>-agent-N
    docker:
      image: $image
    command:
      - sh
      - -c
      - |
$(sed 's/^/        /' "$demo/agent.sh")"
fi
cat >"$demo/harness.yaml" <<YAML
harness:
  listen: 127.0.0.1:0
  state_dir: state
  parallel_agents: 2            # the pool the controller launches and keeps
  agent_startup_stagger: 0.5
  agent_restart_delay: 1
  repo:
    path: repo
  agent:
$agent_yaml
  health_check:
    heartbeat_interval: 1
    heartbeat_timeout: 5
    lease_ttl: 5
YAML
{
  echo "["
  for i in $(seq 1 "$items"); do
    sep=","; [ "$i" = "$items" ] && sep=""
    echo "  {\"id\": \"demo-$i\", \"title\": \"demo item $i\", \"prompt\": \"step $i of the demo\", \"priority\": $((i % 3))}$sep"
  done
  echo "]"
} >"$demo/items.json"

echo "==> controller (state dir $demo/state)"
build/controller/controller --config "$demo/harness.yaml" >"$demo/controller.out" 2>"$demo/controller.log" &
pids+=($!)
for _ in $(seq 1 100); do [ -s "$demo/state/controller.addr" ] && break; sleep 0.1; done
addr=$(cat "$demo/state/controller.addr")
export HARNESS_CONTROLLER=$addr
echo "    listening on $addr"

echo "==> submitting $items items"
build/client/harnessctl submit --file "$demo/items.json" >/dev/null

done_count() {
  build/client/harnessctl status --json | sed -n 's/.*"done": *\([0-9]*\).*/\1/p'
}
scaled=0
while :; do
  done_n=$(done_count)
  echo "    $done_n/$items done"
  [ "$done_n" -ge "$items" ] && break
  if [ "$scaled" = 0 ] && [ "$done_n" -ge $((items / 4)) ]; then
    echo "==> harnessctl scale 4 (the controller launches two more agents)"
    build/client/harnessctl scale 4
    scaled=1
  fi
  sleep 1
done
echo
build/client/harnessctl status
echo
build/client/harnessctl items
echo
build/client/harnessctl show demo-1
echo
echo "==> result branches (set by the controller; agents never write them)"
git -C "$demo/repo" for-each-ref refs/heads/harness \
  --format='%(refname:short)  %(authorname) %(authoremail)  %(subject)'
echo
echo "==> harnessctl scale 1 (the surplus is drained: each agent finishes its item and exits)"
build/client/harnessctl scale 1
for _ in $(seq 1 100); do
  slots=$(build/client/harnessctl status --json | grep -o '"slot":' | wc -l)
  [ "$slots" -le 1 ] && break
  sleep 0.2
done
build/client/harnessctl status
echo
echo "demo folder: $demo (controller log, agent logs under state/agents/, state dir)"
