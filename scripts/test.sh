#!/usr/bin/env bash
# The single test command: installs the build dependencies, then builds and runs every test
# twice: a Release build with warnings as errors (build/), and an AddressSanitizer +
# UndefinedBehaviorSanitizer build (build-asan/).
#
#   bash scripts/test.sh                  # everything
#   bash scripts/test.sh -R LeaseTable    # extra arguments go to both ctest runs
#
# Environment:
#   HARNESS_SKIP_ASAN=1   skip the sanitizer pass
#   HARNESS_SKIP_DEPS=1   skip scripts/install-deps.sh (non-Debian machines)
#   HARNESS_JOBS=N        build parallelism (default: nproc)
# Prints a timing summary at the end, also when a step fails.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
jobs=${HARNESS_JOBS:-$(nproc)}
ctest_args=("$@")

summary=()
current=""
step_started=$SECONDS
started=$SECONDS

print_summary() {
  local rc=$?
  echo
  echo "== timing summary =="
  local line
  for line in "${summary[@]}"; do
    echo "  $line"
  done
  if ((rc != 0)) && [[ -n "$current" ]]; then
    printf '  %-34s FAILED after %ds\n' "$current" $((SECONDS - step_started))
  fi
  printf '  %-34s %5ds\n' "total" $((SECONDS - started))
  if ((rc == 0)); then echo "== PASS =="; else echo "== FAIL (exit $rc) =="; fi
}
trap print_summary EXIT

# step NAME COMMAND...: runs COMMAND, announcing it and recording how long it took.
step() {
  current=$1
  shift
  step_started=$SECONDS
  echo
  echo "==> $current: $*"
  "$@"
  summary+=("$(printf '%-34s %5ds' "$current" $((SECONDS - step_started)))")
  current=""
}

if [[ "${HARNESS_SKIP_DEPS:-0}" == 1 ]]; then
  echo "==> dependencies: skipped (HARNESS_SKIP_DEPS=1)"
else
  step "dependencies" bash scripts/install-deps.sh
fi

# Release pass: what users run; warnings are errors.
step "release: configure" cmake -S . -B build -G Ninja \
  -DCMAKE_BUILD_TYPE=Release -DHARNESS_WERROR=ON -DHARNESS_SANITIZE=OFF
step "release: build" cmake --build build -j "$jobs"
step "release: test" ctest --test-dir build --output-on-failure -j2 "${ctest_args[@]}"

# Sanitizer pass: ASan (with leak detection) and UBSan; any report fails the test. Warnings
# are already enforced by the Release pass, and GCC's sanitizer instrumentation raises false
# -Wmaybe-uninitialized/-Wstringop-* positives, so -Werror stays off here.
if [[ "${HARNESS_SKIP_ASAN:-0}" == 1 ]]; then
  echo
  echo "==> sanitizers: skipped (HARNESS_SKIP_ASAN=1)"
else
  step "asan: configure" cmake -S . -B build-asan -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHARNESS_SANITIZE=ON -DHARNESS_WERROR=OFF
  step "asan: build" cmake --build build-asan -j "$jobs"
  step "asan: test" env \
    ASAN_OPTIONS="detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
    LSAN_OPTIONS="suppressions=$repo/scripts/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}" \
    UBSAN_OPTIONS="print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}" \
    ctest --test-dir build-asan --output-on-failure -j2 "${ctest_args[@]}"
fi
