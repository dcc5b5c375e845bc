#!/usr/bin/env bash
# Runs the libFuzzer targets of fuzz/ (docs/FUZZING.md), one after the other, each for a set time
# over its committed seed corpus (fuzz/corpus/NAME/) plus a working corpus it grows in
# WORK_DIR/NAME/ (never in the repository). Fails on the first target that finds anything: a crash,
# an ASan/UBSan report, a leak (LeakSanitizer stays on), a timeout or running out of memory;
# the reproducer is WORK_DIR/NAME-crash-..., -leak-..., -timeout-... or -oom-....
#
#   bash scripts/fuzz.sh BUILD_DIR [NAME...]     # every target when no NAME is given
# Environment:
#   HARNESS_FUZZ_SECONDS=N   seconds per target (default 20: the smoke of scripts/test.sh)
#   HARNESS_FUZZ_WORK=DIR    working corpora and reproducers (default BUILD_DIR/fuzz-work)
# Prints one line per target: its time, runs, libFuzzer's cov:/ft: at the start (INITED, the
# seeds alone) and at the end, and when cov: last grew (the plateau, in seconds, estimated from
# the run number at a steady rate).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:?usage: scripts/fuzz.sh BUILD_DIR [NAME...]}
shift
seconds=${HARNESS_FUZZ_SECONDS:-20}
work=${HARNESS_FUZZ_WORK:-$build/fuzz-work}
targets=("$@")
if ((${#targets[@]} == 0)); then
  for d in "$repo"/fuzz/corpus/*/; do targets+=("$(basename "$d")"); done
fi
mkdir -p "$work"
export ASAN_OPTIONS="detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$repo/scripts/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

for name in "${targets[@]}"; do
  bin=$build/fuzz/${name}_fuzz
  if [[ ! -x $bin ]]; then
    echo "fuzz: no target $bin (build it: cmake --build $build --target harness_fuzz)" >&2
    exit 2
  fi
  mkdir -p "$work/$name"
  log=$work/$name.log
  started=$SECONDS
  # stdin from /dev/null: nothing under test may wait on a terminal. A run that outlives its
  # time by 2 minutes is killed (a hang libFuzzer's own -timeout could not catch).
  # The target's scratch folder (state dirs, repositories): on tmpfs when there is one, and
  # removed here, also after a crash (the target's own cleanup runs only at a normal exit).
  scratch=$(mktemp -d /dev/shm/harness-fuzz-run.XXXXXX 2>/dev/null || mktemp -d)
  rc=0
  HARNESS_FUZZ_SCRATCH=$scratch timeout -s KILL $((seconds + 120)) "$bin" -max_total_time="$seconds" -timeout=20 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/$name-" \
    "$work/$name" "$repo/fuzz/corpus/$name" </dev/null >"$log" 2>&1 || rc=$?
  rm -rf "$scratch"
  start_cov=$(grep -m1 -o 'INITED cov: [0-9]* ft: [0-9]*' "$log" | sed 's/INITED //' || true)
  end_cov=$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -o 'cov: [0-9]* ft: [0-9]*' || true)
  runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  took=$((SECONDS - started))
  # The run number of the last line whose cov: is higher than every line before it.
  last_gain=$(awk '/^#[0-9]+/ { n = substr($1, 2) + 0
      for (i = 1; i < NF; i++) if ($i == "cov:") { c = $(i + 1) + 0; if (c > best) { best = c; at = n } } }
    END { print at + 0 }' "$log")
  plateau="?"
  if [[ $runs =~ ^[0-9]+$ ]] && ((runs > 0)); then plateau=$((took * last_gain / runs)); fi
  printf 'fuzz: %-14s %4ds  runs %-9s start %-22s end %-22s cov last grew at ~%ss\n' "$name" \
    "$took" "$runs" "${start_cov:-?}" "${end_cov:-?}" "$plateau"
  if ((rc != 0)); then
    echo "fuzz: $name FAILED (exit $rc); the log is $log:" >&2
    grep -E -A30 '^==[0-9]+==|^SUMMARY|fuzz harness|state dir fuzz|pack fixture' "$log" | head -60 >&2
    exit 1
  fi
done
