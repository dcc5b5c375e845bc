#!/usr/bin/env bash
# A 2-node Docker Swarm on one machine, for the swarm launcher's tests and benchmark:
#
#   docker/swarm.sh up       form it (about a minute) and load the agent image on both nodes
#   docker/swarm.sh down     end its daemons (by their pid files) and remove the namespaces,
#                            the data roots and the host's leg; safe to run twice, or after a
#                            failed `up`
#   docker/swarm.sh status   the nodes as the manager sees them
#
# Layout (see docs/LAUNCHERS.md, "Swarm"): three network namespaces, harness-swarm-br (a bridge)
# joining harness-swarm-node1 (10.231.0.1) and harness-swarm-node2 (10.231.0.2), plus a leg of
# the host (10.231.0.254), so that a test in the host namespace reaches a controller listening
# on 10.231.0.1. Each node runs its own dockerd (and its own containerd) started with
# `nsenter --net=/var/run/netns/NODE dockerd --data-root ... --exec-root ... -H unix://...`
# (`ip netns exec` remounts /sys and dockerd then fails with "Devices cgroup isn't mounted"):
#   unix:///run/harness-swarm/node1.sock   the manager (swarm init --advertise-addr 10.231.0.1)
#   unix:///run/harness-swarm/node2.sock   a worker (swarm join)
# Containers with host networking live in their node's namespace, so an agent on node 2 dials
# the controller over the bridge like one on another host would. The agent image (default
# harness-agent:<HARNESS_IMAGE_TAG or the project version>; HARNESS_SWARM_IMAGES="img:tag ..."
# to choose) is `docker save`d from the main daemon (/var/run/docker.sock, left alone
# otherwise: build the images there first with docker/build-images.sh) and loaded on each node:
# no registry is involved, so services use the image as it is on each node.
#
# Needs root. The main dockerd and its containers are never touched.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
run=/run/harness-swarm
data=/var/lib/harness-swarm
nodes=(node1 node2)
br_ns=harness-swarm-br
host_if=hsw-host
host_ip=10.231.0.254
main_socket=${HARNESS_DOCKER_SOCKET:-/var/run/docker.sock}

log() { printf 'swarm.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

ns_of() { echo "harness-swarm-$1"; }
ip_of() { echo "10.231.0.${1#node}"; }
sock_of() { echo "$run/$1.sock"; }
pid_of() { cat "$run/$1.pid" 2>/dev/null || true; }
dk() { local n=$1; shift; docker -H "unix://$(sock_of "$n")" "$@"; }

answers() {
  local s
  s=$(sock_of "$1")
  [[ -S "$s" ]] && [[ "$(curl -sS --max-time 5 --unix-socket "$s" http://localhost/_ping 2>/dev/null)" == OK ]]
}

images() {
  if [[ -n "${HARNESS_SWARM_IMAGES:-}" ]]; then
    echo "$HARNESS_SWARM_IMAGES"
  else
    local version
    version=$(sed -n 's/^project(harness VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
    echo "harness-agent:${HARNESS_IMAGE_TAG:-$version}"
  fi
}

network_up() {
  ip netns add "$br_ns"
  ip -n "$br_ns" link set lo up
  ip -n "$br_ns" link add br0 type bridge
  ip -n "$br_ns" link set br0 up
  local n ns
  for n in "${nodes[@]}"; do
    ns=$(ns_of "$n")
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip link add "hsw-$n" type veth peer name "hsw-$n-br"
    ip link set "hsw-$n" netns "$ns"
    ip link set "hsw-$n-br" netns "$br_ns"
    ip -n "$ns" link set "hsw-$n" name eth0
    ip -n "$ns" addr add "$(ip_of "$n")/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$br_ns" link set "hsw-$n-br" master br0
    ip -n "$br_ns" link set "hsw-$n-br" up
  done
  ip link add "$host_if" type veth peer name hsw-host-br
  ip link set hsw-host-br netns "$br_ns"
  ip -n "$br_ns" link set hsw-host-br master br0
  ip -n "$br_ns" link set hsw-host-br up
  ip addr add "$host_ip/24" dev "$host_if"
  ip link set "$host_if" up
}

daemon_up() {
  local n=$1 pid
  mkdir -p "$data/$n" "$run/$n.exec"
  echo '{}' >"$run/daemon.json"  # not /etc/docker/daemon.json: the main daemon's settings
  log "starting dockerd of $n ($(ip_of "$n"), log $run/$n.log)"
  setsid nsenter --net="/var/run/netns/$(ns_of "$n")" dockerd \
    --config-file "$run/daemon.json" --data-root "$data/$n" --exec-root "$run/$n.exec" \
    -H "unix://$(sock_of "$n")" --pidfile "$run/$n.pid" >>"$run/$n.log" 2>&1 </dev/null &
  for _ in $(seq 1 600); do
    if answers "$n"; then
      log "dockerd of $n (pid $(pid_of "$n")) answers on $(sock_of "$n")"
      return 0
    fi
    sleep 0.1
  done
  tail -n 20 "$run/$n.log" >&2
  die "dockerd of $n did not answer within 60 s"
}

up() {
  ((EUID == 0)) || die "must run as root"
  command -v dockerd >/dev/null || die "dockerd not found: apt-get install docker.io"
  if [[ -e "/var/run/netns/$br_ns" ]]; then
    if answers node1 && answers node2; then
      log "already up"
      status
      return 0
    fi
    log "a previous swarm is half there: taking it down first"
    down
  fi
  mkdir -p "$run" "$data"
  local imgs
  imgs=$(images)
  for img in $imgs; do
    docker -H "unix://$main_socket" image inspect "$img" >/dev/null 2>&1 ||
      die "image $img is not on the main daemon ($main_socket): run docker/build-images.sh first"
  done
  network_up
  for n in "${nodes[@]}"; do daemon_up "$n"; done
  log "swarm init on node1, join from node2"
  dk node1 swarm init --advertise-addr "$(ip_of node1)" --listen-addr "$(ip_of node1):2377" >/dev/null
  local token
  token=$(dk node1 swarm join-token -q worker)
  dk node2 swarm join --advertise-addr "$(ip_of node2)" --listen-addr "$(ip_of node2):2377" \
    --token "$token" "$(ip_of node1):2377" >/dev/null
  for img in $imgs; do
    log "loading $img on both nodes"
    docker -H "unix://$main_socket" save "$img" >"$run/image.tar"
    for n in "${nodes[@]}"; do dk "$n" load -i "$run/image.tar" >/dev/null; done
    rm -f "$run/image.tar"
  done
  for _ in $(seq 1 300); do
    if [[ "$(dk node1 node ls --format '{{.Status}}' | grep -c Ready)" == 2 ]]; then
      status
      return 0
    fi
    sleep 0.2
  done
  status
  die "the two nodes are not both Ready after 60 s"
}

down() {
  local n pid ns
  for n in "${nodes[@]}"; do
    ns=$(ns_of "$n")
    # A test may have frozen the node (SIGSTOP): a stopped daemon cannot hear SIGTERM.
    if [[ -e "/var/run/netns/$ns" ]]; then
      for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -CONT "$pid" 2>/dev/null || true; done
    fi
    pid=$(pid_of "$n")
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && [[ "$(cat /proc/"$pid"/comm)" == dockerd ]]; then
      log "stopping dockerd of $n (pid $pid)"
      kill -TERM "$pid"
      for _ in $(seq 1 400); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      if kill -0 "$pid" 2>/dev/null; then
        log "dockerd of $n (pid $pid) still runs after 40 s: SIGKILL"
        kill -KILL "$pid" || true
      fi
    fi
    # Whatever its daemon left in the namespace (a containerd, shims, containers) was started
    # by it: end those by pid.
    if [[ -e "/var/run/netns/$ns" ]]; then
      for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    fi
    rm -f "$run/$n.pid" "$run/$n.sock"
    # Mounts a killed daemon left behind (overlay layers, its exec root).
    { grep -oE " ($data/$n|$run/$n\.exec)[^ ]*" /proc/self/mounts || true; } | sort -r |
      while read -r m; do umount -l "$m" 2>/dev/null || true; done
  done
  for n in "${nodes[@]}"; do
    ns=$(ns_of "$n")
    [[ -e "/var/run/netns/$ns" ]] && ip netns del "$ns"
  done
  [[ -e "/var/run/netns/$br_ns" ]] && ip netns del "$br_ns"
  ip link del "$host_if" 2>/dev/null || true
  rm -rf "$data" "$run"
  log "down"
}

status() {
  if ! answers node1; then
    log "no swarm: node1's daemon does not answer on $(sock_of node1)"
    return 1
  fi
  dk node1 node ls --format '{{.Hostname}} {{.Status}} {{.Availability}} {{.ManagerStatus}}' |
    sed 's/^/swarm.sh: node /' >&2
  for n in "${nodes[@]}"; do
    log "$n: $(ip_of "$n"), socket $(sock_of "$n"), dockerd pid $(pid_of "$n"), images: $(dk "$n" images --format '{{.Repository}}:{{.Tag}}' | tr '\n' ' ')"
  done
}

case "${1:-}" in
  up) up ;;
  down) ((EUID == 0)) || die "must run as root"; down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
