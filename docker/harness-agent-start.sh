#!/bin/sh
# harness-agent-start: runs agentd with an agent id that is unique and stable per replica when
# the orchestrator starting the container cannot template one (docker-compose v1's
# `--scale agent=N`, plain `docker run`). Installed in the agent image as
# /usr/local/bin/harness-agent-start; the arguments are agentd's (e.g. --controller HOST:PORT).
#
# The id, first that applies:
#   1. --id on the command line: agentd runs as given;
#   2. HARNESS_AGENT_ID in the environment (Swarm's agent-{{.Task.Slot}}, Kubernetes' pod name);
#   3. the replica number from the container's own name, found by a reverse DNS lookup of its
#      address on a user-defined docker network: docker's embedded DNS (127.0.0.11) answers
#      `<project>_agent_3.<network>` for replica 3 of service agent (compose v2: `-agent-3`),
#      which gives `agent-3` (HARNESS_AGENT_ID_PREFIX replaces "agent");
#   4. the container's hostname (unique; stable only if the hostname is set, e.g. `hostname:`).
# The docker launcher does not use this script: it passes `agentd --id agent-N` itself.
set -eu

for arg in "$@"; do
  case "$arg" in
    --id | --id=*) exec agentd "$@" ;;
  esac
done
if [ -n "${HARNESS_AGENT_ID:-}" ]; then
  exec agentd --id "$HARNESS_AGENT_ID" "$@"
fi

prefix=${HARNESS_AGENT_ID_PREFIX:-agent}
id=""
how=""
ip=$(hostname -i 2>/dev/null | awk '{print $1}') || ip=""
# The embedded DNS knows the container once it is attached; ask a few times (5 s at most).
tries=0
while [ -n "$ip" ] && [ "$tries" -lt 20 ]; do
  name=$(getent -s dns hosts "$ip" 2>/dev/null | awk '{print $2; exit}') || name=""
  if [ -n "$name" ]; then
    short=${name%%.*}
    number=${short##*[_-]}
    case "$number" in
      "" | *[!0-9]*) how="reverse DNS of $ip gave \"$name\", which ends in no replica number" ;;
      *) id="$prefix-$number" how="replica $number (reverse DNS of $ip: $name)" ;;
    esac
    break
  fi
  tries=$((tries + 1))
  sleep 0.25
done
if [ -z "$id" ]; then
  id=$(hostname)
  how="the hostname (${how:-no reverse DNS name for ${ip:-this container}}): not stable across re-creation unless set"
fi
echo "harness-agent-start: agent id $id from $how" >&2
exec agentd --id "$id" "$@"
