#!/usr/bin/env bash
# Builds harness's container images offline (no image registry is used or needed):
#
#   harness-base:bookworm-<hash>   a Debian 12 rootfs made with debootstrap (variant minbase) from
#                                  Debian's packages, plus git, ca-certificates, tini and the
#                                  shared libraries harness's binaries need, `docker import`ed
#   harness-agent:<version>        base + agentd, harnessctl and harness-agent-start (agentd with
#                                  an id per replica, for docker-compose); tini is the entrypoint,
#                                  so a SIGTERM to the container reaches agentd (agent.Dockerfile)
#   harness-controller:<version>   base + controller and harnessctl (docker/controller.Dockerfile)
#
# <version> is the project version from CMakeLists.txt (HARNESS_IMAGE_TAG overrides it). The
# binaries come from the build tree (default ./build; build the targets agentd, controller and
# harnessctl first). The debootstrap rootfs is cached as a tarball in <build>/docker-cache/, keyed
# by the package list, so a second run only rebuilds the two small images (seconds). Packages are
# fetched from the Debian mirror apt is configured with (/etc/apt/sources.list*).
#
# With --example, also harness-agent-example:<version>: the agent image extended with a Debian
# package (jq) through docker/agent-extend.Dockerfile, as a user would add their agent CLI; the
# container tests run an item with it. It fetches jq from the Debian mirror (host network).
#
# Usage: docker/build-images.sh [--build-dir DIR] [--rebuild-rootfs] [--example]
# Needs root (debootstrap), and installs docker.io and debootstrap with apt-get when missing.
# Starts dockerd (docker/dockerd.sh start) when no daemon answers, and leaves it running
# (docker/dockerd.sh stop ends it). See docker/README.md.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build_dir="$root/build"
rebuild_rootfs=0
example=0
while (($#)); do
  case "$1" in
    --build-dir) build_dir=$(cd "$2" && pwd); shift 2 ;;
    --rebuild-rootfs) rebuild_rootfs=1; shift ;;
    --example) example=1; shift ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "build-images.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

log() { printf 'build-images: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
((EUID == 0)) || die "must run as root (debootstrap and the docker socket need it)"

version=$(sed -n 's/^project(harness VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
tag=${HARNESS_IMAGE_TAG:-$version}
[[ -n "$tag" ]] || die "cannot read the project version from $root/CMakeLists.txt"
suite=bookworm
cache="$build_dir/docker-cache"
mkdir -p "$cache"
export DOCKER_BUILDKIT=0  # the classic builder: FROM a local image, no registry lookups

# --- tools -----------------------------------------------------------------------------------
need=()
command -v dockerd >/dev/null || need+=(docker.io containerd runc)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v curl >/dev/null || need+=(curl)
if ((${#need[@]})); then
  log "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
"$here/dockerd.sh" start

# --- binaries and the packages their libraries come from --------------------------------------
declare -A bins=(
  [agentd]="$build_dir/agentd/agentd"
  [controller]="$build_dir/controller/controller"
  [harnessctl]="$build_dir/client/harnessctl"
)
for name in "${!bins[@]}"; do
  [[ -x "${bins[$name]}" ]] || die "${bins[$name]} missing: cmake --build $build_dir --target agentd controller harnessctl"
done

# The Debian package owning a file; Debian 12 is merged-/usr, but dpkg may record /lib paths.
owner() {
  local f=$1 p
  p=$(dpkg-query -S "$f" 2>/dev/null || dpkg-query -S "${f#/usr}" 2>/dev/null) ||
    die "no Debian package owns $f (needed by a harness binary)"
  printf '%s\n' "${p%%:*}"
}
lib_packages=$(
  for b in "${bins[@]}"; do
    ldd "$b" | awk '/=> \//{print $3}'
  done | sort -u | while read -r lib; do owner "$(readlink -f "$lib")"; done | sort -u | tr '\n' ' '
)
packages="git ca-certificates tini $lib_packages"
key=$(printf '%s %s\n' "$suite" "$packages" | sha256sum | cut -c1-12)
rootfs_tar="$cache/rootfs-$suite-$key.tar"
base_image="harness-base:$suite-$key"

# --- the rootfs (cached) ----------------------------------------------------------------------
mirror() {
  # The first URI apt uses for the suite itself (deb822 .sources or one-line .list files).
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    awk -v s="$suite" '
      /^$/ {if (u != "" && ok) {print u; done=1; exit} u=""; ok=0}
      /^URIs:/ {u=$2}
      /^Suites:/ {for (i = 2; i <= NF; i++) if ($i == s) ok=1}
      END {if (!done && u != "" && ok) print u}' "$f"
  done
  { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true; } |
    awk -v s="$suite" '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i == s) {print (substr($2,1,1) == "[" ? $3 : $2); break}}'
}
if ((rebuild_rootfs)) || [[ ! -s "$rootfs_tar" ]]; then
  url=$(mirror | head -n1 || true)
  [[ -n "$url" ]] || die "no Debian mirror for $suite in /etc/apt/sources.list*"
  dir="$cache/rootfs-$suite-$key.d"
  rm -rf "$dir"
  log "debootstrap $suite (minbase + ${packages}) into $dir"
  start=$SECONDS
  debootstrap --variant=minbase --include="${packages// /,}" "$suite" "$dir" "$url" \
    >"$cache/debootstrap.log" 2>&1 || { tail -n 30 "$cache/debootstrap.log" >&2; die "debootstrap failed (log $cache/debootstrap.log)"; }
  # Smaller image: no downloaded .debs or package lists (apt-get update restores the lists).
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/var/log/*.log
  tar -C "$dir" --numeric-owner -cf "$rootfs_tar.tmp" .
  mv "$rootfs_tar.tmp" "$rootfs_tar"
  rm -rf "$dir"
  log "rootfs $rootfs_tar built in $((SECONDS - start)) s"
else
  log "rootfs cached: $rootfs_tar"
fi

if ! docker image inspect "$base_image" >/dev/null 2>&1; then
  log "docker import $rootfs_tar as $base_image"
  docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' "$rootfs_tar" "$base_image" >/dev/null
else
  log "$base_image already imported"
fi

# --- the agent and controller images ----------------------------------------------------------
# Files of docker/ an image copies beside the binaries (name in the context -> source).
declare -A files=(
  [harness-agent-start]="$here/harness-agent-start.sh"
)
build_image() {  # build_image NAME DOCKERFILE BINARY_OR_FILE...
  local name=$1 dockerfile=$2
  shift 2
  local ctx="$cache/context-$name"
  rm -rf "$ctx"
  mkdir -p "$ctx"
  cp "$dockerfile" "$ctx/Dockerfile"
  local b
  for b in "$@"; do cp "${bins[$b]:-${files[$b]}}" "$ctx/$b"; done
  local out
  out=$(docker build -q --build-arg "BASE=$base_image" --build-arg "VERSION=$version" \
    -t "$name:$tag" "$ctx" 2>&1) || { printf '%s\n' "$out" >&2; die "docker build of $name:$tag failed"; }
  rm -rf "$ctx"
  log "built $name:$tag"
}
build_image harness-agent "$here/agent.Dockerfile" agentd harnessctl harness-agent-start
build_image harness-controller "$here/controller.Dockerfile" controller harnessctl
docker run --rm --network none "harness-agent:$tag" agentd --version >/dev/null ||
  die "harness-agent:$tag cannot run agentd --version"
built="$base_image, harness-agent:$tag, harness-controller:$tag"
if ((example)); then
  out=$(docker build -q --network host -f "$here/agent-extend.Dockerfile" \
    --build-arg "AGENT_IMAGE=harness-agent:$tag" --build-arg PACKAGES=jq \
    -t "harness-agent-example:$tag" "$here" 2>&1) ||
    { printf '%s\n' "$out" >&2; die "docker build of harness-agent-example:$tag failed"; }
  docker run --rm --network none "harness-agent-example:$tag" jq --version >/dev/null ||
    die "harness-agent-example:$tag cannot run jq"
  log "built harness-agent-example:$tag (harness-agent + jq)"
  built+=", harness-agent-example:$tag"
fi
log "done: $built"
