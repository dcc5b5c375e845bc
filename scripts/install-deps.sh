#!/usr/bin/env bash
# Installs the Debian (12, bookworm) packages harness needs to build and test.
#
# Idempotent: if every package is already installed (checked with dpkg-query) it does nothing,
# not even `apt-get update`. Otherwise it runs `apt-get update` and installs only the missing
# ones with `--no-install-recommends`. Runs as root directly, or through sudo otherwise.
# Not for other distributions: there, install the equivalents yourself and run
# scripts/test.sh with HARNESS_SKIP_DEPS=1.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  clang
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libgit2-dev libyaml-cpp-dev libgtest-dev libgmock-dev
  libcurl4-openssl-dev nlohmann-json3-dev
  libjemalloc-dev  # the controller's allocator
  libcpp-httplib-dev prometheus
  python3-grpcio python3-grpc-tools grpc-proto
  systemd openssl  # tests/deploy: systemd-analyze verify and security; make-certs.sh
  chromium fonts-dejavu-core  # tests/integration/dashboard_test: a real (headless) browser
  gnuplot-nox  # bench/scaling.sh's plot (docs/PERFORMANCE.md runs it)
)

log() { printf 'install-deps: %s\n' "$*"; }

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  log "dpkg-query/apt-get not found: this script supports Debian only." >&2
  log "install these (or their equivalents) yourself: ${packages[*]}" >&2
  exit 1
fi

missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  if [[ "$status" != "install ok installed" ]]; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  log "all ${#packages[@]} packages already installed; nothing to do"
  exit 0
fi

if ((EUID == 0)); then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  log "not root and sudo not found: cannot install ${missing[*]}" >&2
  exit 1
fi

log "missing ${#missing[@]} of ${#packages[@]} packages: ${missing[*]}"
log "running: ${as_root[*]:+${as_root[*]} }apt-get update"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
log "running: ${as_root[*]:+${as_root[*]} }apt-get install -y --no-install-recommends ${missing[*]}"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y --no-install-recommends "${missing[@]}"
log "done"
