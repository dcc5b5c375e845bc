#!/usr/bin/env bash
# The docker-compose deployment (docker/docker-compose.yml) against a real dockerd, end to end:
#   1. with HARNESS_IMAGE_TAG unset, the file's images are the project version's;
#   2. `up --scale agent=3` (the repository owned by a non-root uid, the controller run as it):
#      the agents register as agent-1..3, finish 9 items submitted with harnessctl in the
#      controller container, the results land on harness/<item> with the notes the items wrote,
#      and everything in the repository still belongs to its owner;
#   3. the --repo variant (docker-compose.repo.yml) recreates every agent container: new
#      containers, the same ids agent-1..3 (each its replica number), 3 more items done from
#      linked worktrees of the mounted repository;
#   4. `down -v` leaves no container, network or volume of the project;
#   5. the compose block of docs/CONTAINERS.md runs as the doc writes it.
# Waits poll an observable state with a deadline; no fixed sleeps.
#
# Skips (exit 0, saying so) unless HARNESS_DOCKER_TESTS is set; scripts/test.sh sets it once
# docker/build-images.sh has built the images (and with CI=true a docker that cannot run fails
# there). Installs docker-compose with apt-get when it is missing, as build-images.sh does
# docker.io. Images: harness-{controller,agent}:$HARNESS_IMAGE_TAG (default: the project version).
# The compose project is named harness-compose-test-<pid>-<random>: only its own containers,
# networks and volumes are touched and removed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
log() { printf 'compose_test: %s\n' "$*" >&2; }

if [[ -z "${HARNESS_DOCKER_TESTS:-}" ]]; then
  log "skipped: HARNESS_DOCKER_TESTS is not set (needs dockerd and the images: docker/build-images.sh)"
  exit 0
fi

version=$(sed -n 's/^project(harness VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
tag=${HARNESS_IMAGE_TAG:-$version}
compose_files=(-f "$root/docker/docker-compose.yml")
repo_variant=(-f "$root/docker/docker-compose.yml" -f "$root/docker/docker-compose.repo.yml")

if ! command -v docker-compose >/dev/null; then
  log "installing docker-compose"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
fi
docker info >/dev/null 2>&1 || { log "FAIL: no docker daemon answers (docker/dockerd.sh start)"; exit 1; }
for image in "harness-controller:$tag" "harness-agent:$tag"; do
  docker image inspect "$image" >/dev/null 2>&1 ||
    { log "FAIL: image $image missing (HARNESS_IMAGE_TAG=$tag docker/build-images.sh)"; exit 1; }
done

work=$(mktemp -d /tmp/harness-compose-test.XXXXXX)
project="harness-compose-test-$$-$RANDOM"
owner=4242  # the repository's owner: not root
export HARNESS_REPO="$work/repo" HARNESS_CONFIG="$work/harness.yaml" HARNESS_IMAGE_TAG="$tag"
export HARNESS_UID=$owner HARNESS_GID=$owner
unset HARNESS_PORT HARNESS_AGENT_IMAGE

dc() { docker-compose "${files[@]}" -p "$project" "$@"; }
files=("${compose_files[@]}")
finished=0
cleanup() {
  local rc=$?
  if ((rc != 0 || !finished)); then
    log "FAILED; the project's last logs:"
    dc logs --no-color --tail 40 >&2 2>&1 || true
  fi
  files=("${repo_variant[@]}")
  dc down -v --remove-orphans -t 20 >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { log "FAIL: $*"; exit 1; }

# wait_until SECONDS WHAT COMMAND...: polls COMMAND every 0.5 s until it succeeds.
wait_until() {
  local limit=$1 what=$2
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@"; do
    ((SECONDS < deadline)) || fail "no $what within $limit s"
    sleep 0.5
  done
}

ctl() { dc exec -T controller harnessctl "$@"; }
status_json() { ctl status --json 2>/dev/null; }
# py EXPR: evaluates EXPR with s = the status JSON on stdin.
py() { /usr/bin/python3 -c "import json, sys; s = json.load(sys.stdin); print($1)"; }

# --- 1. the images default to the project version ---------------------------------------------
config=$(env -u HARNESS_IMAGE_TAG docker-compose "${compose_files[@]}" -p "$project" config)
for image in "harness-controller:$version" "harness-agent:$version"; do
  grep -q "image: $image\$" <<<"$config" ||
    fail "with HARNESS_IMAGE_TAG unset, docker-compose.yml does not use $image (the project version)"
done
log "ok: images default to the project version $version"

# --- 2. up --scale agent=3, 9 items -----------------------------------------------------------
git init -q -b main "$work/repo"
printf '# compose test\n' >"$work/repo/README.md"
git -C "$work/repo" add -A
git -C "$work/repo" -c user.name=Test -c user.email=test@example.com commit -q -m base
chown -R "$owner:$owner" "$work/repo"
# The agent command: sh expands the variables, not this script.
# shellcheck disable=SC2016
sed 's|^\(    command: \).*|\1["sh", "-c", "echo \\"$HARNESS_AGENT_ID did $HARNESS_ITEM_ID\\" > note-$HARNESS_ITEM_ID.txt"]|' \
  "$root/docker/compose/harness.yaml" >"$work/harness.yaml"
# shellcheck disable=SC2016
grep -q 'note-\$HARNESS_ITEM_ID' "$work/harness.yaml" || fail "could not set agent.command in $work/harness.yaml"

items_json() {  # items_json PREFIX N
  local i sep=""
  printf '['
  for ((i = 1; i <= $2; i++)); do
    printf '%s{"id": "%s-%d", "title": "compose item %d", "prompt": "item %d"}' "$sep" "$1" "$i" "$i" "$i"
    sep=","
  done
  printf ']'
}
agents_healthy() {  # agents_healthy IDS: exactly these agents are registered, all healthy
  local got
  got=$(status_json | py '",".join(sorted(a["id"] for a in s["agents"] if a["health"] == "healthy"))') || return 1
  [[ "$got" == "$1" ]]
}
items_done() {  # items_done N: N items done; fails the test at once if any failed or parked
  local q
  q=$(status_json | py '"%d %d" % (s["queue"]["done"], s["queue"]["failed"] + s["queue"]["parked"])') || return 1
  [[ "${q#* }" == 0 ]] || fail "items failed or parked: $(ctl items 2>&1)"
  [[ "${q% *}" == "$1" ]]
}
check_results() {  # check_results PREFIX N
  local i author note
  for ((i = 1; i <= $2; i++)); do
    author=$(git -c safe.directory='*' -C "$work/repo" log -1 --format=%an "harness/$1-$i") ||
      fail "no branch harness/$1-$i"
    [[ "$author" =~ ^"Harness Agent agent-"[123]$ ]] || fail "harness/$1-$i was written by \"$author\""
    note=$(git -c safe.directory='*' -C "$work/repo" show "harness/$1-$i:note-$1-$i.txt") ||
      fail "harness/$1-$i has no note-$1-$i.txt"
    [[ "$note" == "${author#Harness Agent } did $1-$i" ]] || fail "note-$1-$i.txt reads \"$note\""
  done
}

dc up -d --scale agent=3 >/dev/null 2>&1 || { dc up -d --scale agent=3; fail "docker-compose up failed"; }
wait_until 60 "answer from the controller" status_json >/dev/null
wait_until 60 "agents agent-1,agent-2,agent-3 healthy" agents_healthy agent-1,agent-2,agent-3
log "ok: 3 replicas registered as agent-1..3"
items_json c 9 | ctl submit --file /dev/stdin >/dev/null
wait_until 180 "9 items done" items_done 9
check_results c 9
bad=$(find "$work/repo" ! -user "$owner" -print -quit)
[[ -z "$bad" ]] || fail "files in the repository not owned by uid $owner: $bad"
log "ok: 9 items done, results on harness/c-1..9, repository still owned by uid $owner"

# --- 3. the --repo variant: every agent recreated, same ids -----------------------------------
before=$(dc ps -q agent | sort)
files=("${repo_variant[@]}")
dc up -d --scale agent=3 >/dev/null 2>&1 || { dc up -d --scale agent=3; fail "docker-compose up (--repo variant) failed"; }
after=$(dc ps -q agent | sort)
[[ $(wc -l <<<"$after") == 3 ]] || fail "$(wc -l <<<"$after") agent containers after the recreation, not 3"
[[ -z "$(comm -12 <(echo "$before") <(echo "$after"))" ]] || fail "an agent container was not recreated"
# (The logs are read whole before grep: `docker logs | grep -q` fails under pipefail when grep
# stops reading early.)
registered() { grep -q "registered with the controller" <<<"$(docker logs "$1" 2>&1)"; }
for c in $after; do
  n=$(docker inspect -f '{{index .Config.Labels "com.docker.compose.container-number"}}' "$c")
  wait_until 60 "registration of the recreated replica $n" registered "$c"
  logs=$(docker logs "$c" 2>&1)
  grep -q "harness-agent-start: agent id agent-$n from replica $n " <<<"$logs" ||
    fail "replica $n did not take the id agent-$n: $(head -n 2 <<<"$logs")"
  grep -q "starting as agent agent-$n: .*, repo /repo," <<<"$logs" ||
    fail "replica $n does not run with --repo /repo: $(head -n 2 <<<"$logs")"
done
wait_until 60 "agents agent-1,agent-2,agent-3 healthy after the recreation" agents_healthy agent-1,agent-2,agent-3
log "ok: recreated containers kept the ids agent-1..3 (now with --repo /repo)"
items_json r 3 | ctl submit --file /dev/stdin >/dev/null
wait_until 180 "12 items done" items_done 12
check_results r 3
bad=$(find "$work/repo" ! -user "$owner" -print -quit)
[[ -z "$bad" ]] || fail "files in the repository not owned by uid $owner after --repo agents: $bad"
log "ok: 3 more items done by agents with --repo"

# --- 4. down -v leaves nothing of the project -------------------------------------------------
finished=1
dc down -v --remove-orphans -t 20 >/dev/null 2>&1 || fail "docker-compose down failed"
label="label=com.docker.compose.project=$project"
left="$(docker ps -aq --filter "$label")$(docker network ls -q --filter "$label")$(docker volume ls -q --filter "$label")"
[[ -z "$left" ]] || fail "left behind after down -v: $left"
log "ok: down -v removed the project's containers, network and volume"

# --- 5. docs/CONTAINERS.md's compose block, as the doc writes it ------------------------------
# Run from the harness checkout with HOME holding the doc's ~/src/myrepo, and nothing of this
# script's environment; its project (myproject) is taken down with its volume afterwards.
doc_home="$work/doc-home"
git init -q -b main "$doc_home/src/myrepo"
printf '# my repo\n' >"$doc_home/src/myrepo/README.md"
git -C "$doc_home/src/myrepo" add -A
git -C "$doc_home/src/myrepo" -c user.name=Test -c user.email=test@example.com commit -q -m base
block=$(bash "$root/tests/docs/doc_block.sh" "$root/docs/CONTAINERS.md" compose)
doc_down() {
  (cd "$root" && HARNESS_REPO="$doc_home/src/myrepo" \
    docker-compose -f docker/docker-compose.yml -p myproject down -v -t 20 >/dev/null 2>&1) || true
}
trap 'doc_down; cleanup' EXIT
out=$(cd "$root" && env -u HARNESS_REPO -u HARNESS_CONFIG -u HARNESS_UID -u HARNESS_GID \
  HOME="$doc_home" timeout 300 bash -euo pipefail -c "$block" 2>&1) ||
  { printf '%s\n' "$out" >&2; fail "the compose block of docs/CONTAINERS.md failed"; }
grep -q "Queue: 1 total" <<<"$out" || { printf '%s\n' "$out" >&2; fail "the doc's status shows no item"; }
log "ok: docs/CONTAINERS.md's compose block ran as written"
doc_down
log "PASS"
