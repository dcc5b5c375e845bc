#!/usr/bin/env bash
# The chaos soak at length (docs/CHAOS.md): builds the soak and the binaries it drives in a
# Release build dir, then runs it for the given minutes and keeps its output and summary.
#
#   bash tests/chaos/soak.sh                 # 10 minutes, a seed from the clock
#   bash tests/chaos/soak.sh --minutes 60 --seed 42 --out /tmp/soak-60
#
# Options: --minutes M (default 10), --seed N (default: the clock; the run prints it, and the
# same seed replays the same fault schedule, though not the same timing), --agents N (8),
# --build-dir DIR (build), --out DIR (default soak-<UTC time>/ under the build dir: log and
# summary). Needs root (it mounts a small tmpfs for the state dir).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
minutes=10 seed="" agents=8 build="$repo/build" out=""
while (($#)); do
  case "$1" in
    --minutes) minutes=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --agents) agents=$2; shift 2 ;;
    --build-dir) build=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "soak.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$minutes" =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "soak.sh: --minutes must be a number" >&2; exit 2; }
if ((EUID != 0)); then
  echo "soak.sh: needs root (the state dir is put on a small tmpfs it fills)" >&2
  exit 2
fi
out=${out:-$build/soak-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"

if [[ ! -f "$build/CMakeCache.txt" ]]; then
  cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
cmake --build "$build" -j"$(nproc)" --target chaos_soak_test controller agentd harnessctl

seconds=$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 }')
echo "chaos soak: $minutes min, $agents agents; output in $out"
# The run's folder (controller logs, the repository, the side effects) is kept for a post-mortem;
# the state dir itself is on the tmpfs, gone with it.
HARNESS_KEEP_TEMP=1 HARNESS_CHAOS_SECONDS=$seconds HARNESS_CHAOS_AGENTS=$agents HARNESS_CHAOS_SEED=$seed \
  HARNESS_CHAOS_REPORT="$out/summary.txt" \
  "$build/tests/bin/chaos_soak_test" 2>&1 | tee "$out/soak.log"
exit "${PIPESTATUS[0]}"
