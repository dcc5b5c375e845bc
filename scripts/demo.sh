#!/usr/bin/env bash
# The README's run command: installs what is needed, builds, and runs the embedded default.
# Until the controller lands (issue 3) the default is the durable core on its own: a demo queue
# in a local state dir, worked by threads, killed mid-run and recovered, with its figures.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target store_bench crash_worker
state=${HARNESS_DEMO_STATE:-$repo/state-demo}
rm -rf "$state"
echo "== 16 threads x 5000 items through the durable queue (group commit on and off)"
build/bench/store_bench --threads 16 --items 5000 --mode on --dir /tmp
build/bench/store_bench --threads 16 --items 500 --mode off --dir /tmp
echo "== a worker doing random operations on $state, killed with SIGKILL after 1 s, then recovered"
build/tests/bin/crash_worker "$state" 1 4 >"$state.log" 2>&1 &
pid=$!
sleep 1
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
echo "acknowledged operations before the kill: $(grep -vc READY "$state.log")"
build/tests/bin/crash_worker "$state" 2 1 >"$state.log2" 2>&1 &
pid=$!
sleep 0.3
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
echo "recovered and continued: $(grep -c . "$state.log2") more operations acknowledged"
rm -rf "$state" "$state.log" "$state.log2"
