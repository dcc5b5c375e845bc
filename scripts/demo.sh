#!/usr/bin/env bash
# The README's run command: installs what is needed, builds, and runs the embedded default: a
# small demo repository, a local controller with its own state dir, three agents (two with a
# worktree of the repository, one without: it gets the base and sends its result over the
# controller's gRPC connection), and a demo queue of items whose "agent command" is a small
# script (swap in `claude -p {prompt}` for the real thing). Prints each harness/<item> branch
# with its author.
#
#   bash scripts/demo.sh            # everything (build on first run)
#   HARNESS_DEMO_ITEMS=30 bash scripts/demo.sh
#
# Everything it starts is stopped by pid on exit; the demo folder is kept for a look around.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
items=${HARNESS_DEMO_ITEMS:-12}
demo=${HARNESS_DEMO_DIR:-$repo/demo}

bash scripts/install-deps.sh
echo "==> building (Release) in build/"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target controller agentd harnessctl

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
cat >"$demo/harness.yaml" <<YAML
harness:
  listen: 127.0.0.1:0
  state_dir: state
  parallel_agents: 3
  repo:
    path: repo
  agent:
    command: ["$demo/agent.sh"]
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

echo "==> 3 agents: agent-1 and agent-2 with worktrees of the repository, agent-3 with none"
for i in 1 2; do
  build/agentd/agentd --id "agent-$i" --controller "$addr" --workdir "$demo/agent-$i" \
    --repo "$demo/repo" >"$demo/agent-$i.log" 2>&1 &
  pids+=($!)
done
build/agentd/agentd --id agent-3 --controller "$addr" --workdir "$demo/agent-3" \
  >"$demo/agent-3.log" 2>&1 &
pids+=($!)

echo "==> submitting $items items"
build/client/harnessctl submit --file "$demo/items.json" >/dev/null

while :; do
  json=$(build/client/harnessctl status --json)
  done_n=$(echo "$json" | sed -n 's/.*"done": *\([0-9]*\).*/\1/p')
  echo "    $done_n/$items done"
  [ "$done_n" -ge "$items" ] && break
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
echo "demo folder: $demo (controller log, agent logs, state dir)"
