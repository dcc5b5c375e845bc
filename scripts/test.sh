#!/usr/bin/env bash
# The single test command: installs the build dependencies, then five passes:
#   release   Release build with warnings as errors (build/), every test
#   clang     clang build with -Wthread-safety -Werror (build-clang/): checks the ABSL_GUARDED_BY
#             etc. annotations, which gcc ignores. Compiles and links everything, runs no test:
#             the analysis is done at compile time, and every test already runs twice with gcc.
#             Measured from cold (no ccache, empty build-clang/), 2 cores shared with other
#             work (load 3-4): 202 s (configure 1 s, build 201 s; 264 s of CPU).
#   plain     `cmake -S . -B build-plain` with CMake's default generator (Unix Makefiles) and the
#             targets of generated code built: the plain build a user runs works, not only
#             Ninja. Always from an empty folder: 26 s.
#   asan      AddressSanitizer + UndefinedBehaviorSanitizer build (build-asan/), every test
#   fuzz      clang build of the libFuzzer targets of fuzz/ (build-fuzz/, HARNESS_FUZZ=ON; only
#             the targets and the libraries they need), then each target for 20 s over its
#             committed corpus (scripts/fuzz.sh); any crash, sanitizer report or leak fails.
#             See docs/FUZZING.md.
#
#   bash scripts/test.sh                  # everything
#   bash scripts/test.sh -R LeaseTable    # extra arguments go to both ctest runs
#   HARNESS_ONLY=clang bash scripts/test.sh   # one pass (deps are still checked)
#
# Environment:
#   HARNESS_ONLY=PASS       run only that pass: release, clang, plain, asan or fuzz
#   HARNESS_SKIP_RELEASE=1  skip the release pass
#   HARNESS_SKIP_ASAN=1     skip the sanitizer pass
#   HARNESS_SKIP_CLANG=1    skip the clang thread-safety pass (machines without clang)
#   HARNESS_SKIP_PLAIN=1    skip the default-generator build check
#   HARNESS_SKIP_FUZZ=1     skip the fuzz smoke (machines without clang)
#   HARNESS_FUZZ_SECONDS=N  seconds per fuzz target in the fuzz pass (default 20)
#   HARNESS_SKIP_DEPS=1     skip scripts/install-deps.sh (non-Debian machines)
#   HARNESS_SKIP_DOCKER=1   no docker daemon and images: the container tests and
#                           tests/containers/compose_test.sh skip (release pass)
#   HARNESS_SKIP_SWARM=1    no 2-node swarm (docker/swarm.sh): the swarm tests skip (release pass)
#   HARNESS_JOBS=N          build parallelism (default: nproc)
# Prints a timing summary at the end, also when a step fails.
set -euo pipefail

case "${HARNESS_ONLY:-}" in
  "" | release | clang | plain | asan | fuzz) ;;
  *)
    echo "HARNESS_ONLY must be release, clang, plain, asan or fuzz, not \"$HARNESS_ONLY\"" >&2
    exit 2
    ;;
esac

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
# The 2-node swarm of the release pass is taken down however the run ends.
swarm_formed=0
on_exit() {
  local rc=$?
  if ((swarm_formed)); then
    echo
    echo "==> swarm: down"
    bash docker/swarm.sh down || true
  fi
  (exit "$rc")
  print_summary
}
trap on_exit EXIT

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

# run_doc_block DOC ID [VAR=VALUE...]: runs the block of DOC marked `<!-- doc: ci ID -->` as it
# is written there (tests/docs/doc_block.sh reads it out), from the repository's root.
run_doc_block() {
  local text
  text=$(bash tests/docs/doc_block.sh "$1" "$2") || return 1
  echo "$text" | sed 's/^/    $ /'
  env "${@:3}" bash -euo pipefail -c "$text"
}

# docker/README.md's blocks: a daemon, the images from this build, an extended agent image.
docker_images() {
  run_doc_block docker/README.md docker-daemon &&
    run_doc_block docker/README.md docker-images &&
    run_doc_block docker/README.md docker-extend
}

if [[ "${HARNESS_SKIP_DEPS:-0}" == 1 ]]; then
  echo "==> dependencies: skipped (HARNESS_SKIP_DEPS=1)"
else
  step "dependencies" bash scripts/install-deps.sh
fi

# wanted PASS: whether to run a pass (HARNESS_ONLY, HARNESS_SKIP_<PASS>); says why not.
wanted() {
  local pass=$1 skip_var
  skip_var="HARNESS_SKIP_${1^^}"
  if [[ -n "${HARNESS_ONLY:-}" && "$HARNESS_ONLY" != "$pass" ]]; then
    return 1
  fi
  if [[ "${!skip_var:-0}" == 1 ]]; then
    echo
    echo "==> $pass: skipped ($skip_var=1)"
    return 1
  fi
  return 0
}

# ccache, where it is installed (scripts/install-deps.sh does not install it): a rebuild of the
# same sources, also from another clone (paths are taken relative to the repository), is then
# mostly cache hits. CCACHE_DISABLE=1 turns it off.
cache=()
if command -v ccache >/dev/null 2>&1; then
  cache=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
  export CCACHE_BASEDIR="$repo"
fi

# Release pass: what users run; warnings are errors.
if wanted release; then
  step "release: configure" cmake -S . -B build -G Ninja "${cache[@]}" \
    -DCMAKE_BUILD_TYPE=Release -DHARNESS_WERROR=ON -DHARNESS_SANITIZE=OFF
  step "release: build" cmake --build build -j "$jobs"
  # Containers: the docker launcher's tests need a daemon and the images, built from this
  # build's binaries (docker/build-images.sh installs docker.io and debootstrap and starts
  # dockerd when none answers; the Debian rootfs is cached in build/docker-cache/). In CI
  # (CI=true) docker that cannot run fails the run; elsewhere those tests then skip, saying why.
  docker_env=()
  if [[ "${HARNESS_SKIP_DOCKER:-0}" == 1 ]]; then
    echo
    echo "==> docker: skipped (HARNESS_SKIP_DOCKER=1): the container tests skip"
  elif [[ "${CI:-}" == true ]]; then
    step "docker: daemon and images (docker/README.md)" docker_images
    docker_env=(HARNESS_DOCKER_TESTS=1)
  elif step "docker: daemon and images (docker/README.md)" docker_images; then
    docker_env=(HARNESS_DOCKER_TESTS=1)
  else
    echo "==> docker: cannot run here; the container tests skip (with CI=true this fails the run)"
  fi
  # With docker, the container tests run after the rest, as docker/README.md's block shows them.
  docker_exclude=()
  ((${#docker_env[@]})) && docker_exclude=(-E Docker)
  step "release: test" env "${docker_env[@]}" ctest --test-dir build --output-on-failure -j2 \
    "${docker_exclude[@]}" "${ctest_args[@]}"
  if ((${#docker_env[@]})); then
    step "release: docker tests (docker/README.md)" run_doc_block docker/README.md docker-tests
    step "release: containers benchmark (docs/PERFORMANCE.md)" \
      run_doc_block docs/PERFORMANCE.md perf-containers
  fi
  # docker-compose (docker/docker-compose.yml) with the same images; skips itself, saying so,
  # without HARNESS_DOCKER_TESTS (installs docker-compose when missing).
  step "release: compose" env "${docker_env[@]}" bash tests/containers/compose_test.sh
  # The README's two commands: the second is this script; the first, the demo, runs here as the
  # README writes it.
  readme_first=$(bash tests/docs/doc_block.sh README.md readme-first-commands)
  if [[ "$(sed -n 2p <<<"$readme_first")" != "bash scripts/test.sh "* ]]; then
    echo "README.md's second command is not \"bash scripts/test.sh\": update scripts/test.sh" >&2
    exit 1
  fi
  step "release: the README's demo" bash -euo pipefail -c "$(sed -n 1p <<<"$readme_first")"
  # Swarm: the swarm launcher's tests need a 2-node swarm, formed on this machine from two more
  # dockerd in network namespaces (docker/swarm.sh; the main daemon is left alone) with the
  # agent image just built loaded on both, and taken down afterwards, also when a test fails:
  # docker/README.md's block, run as written there. A swarm that cannot form fails the run
  # (HARNESS_SKIP_SWARM=1 skips it where that is expected).
  if ((${#docker_env[@]} == 0)); then
    echo "==> swarm: skipped (no docker): the swarm tests skip"
  elif [[ "${HARNESS_SKIP_SWARM:-0}" == 1 ]]; then
    echo
    echo "==> swarm: skipped (HARNESS_SKIP_SWARM=1): the swarm tests skip"
  else
    swarm_formed=1
    step "swarm: up, tests, down (docker/README.md)" run_doc_block docker/README.md docker-swarm
    swarm_formed=0
  fi
fi

# Clang pass: -Wthread-safety checks the lock annotations; -Werror makes any finding (and any
# other clang warning) fail. Build type None: no -O, no -g, the fastest compile; nothing is run.
if wanted clang; then
  step "clang: configure" env CC=clang CXX=clang++ cmake -S . -B build-clang -G Ninja "${cache[@]}" \
    -DCMAKE_BUILD_TYPE=None -DHARNESS_WERROR=ON -DHARNESS_THREAD_SAFETY=ON
  step "clang: build" cmake --build build-clang -j "$jobs"
fi

# Plain pass: the default generator from an empty folder (a kept folder would hide an output
# folder that only an earlier run created). Only the targets of generated code are built.
if wanted plain; then
  rm -rf build-plain
  step "plain: configure" cmake -S . -B build-plain -DCMAKE_BUILD_TYPE=None
  step "plain: codegen build" cmake --build build-plain -j "$jobs" \
    --target harness_records harness_proto
fi

# Sanitizer pass: ASan (with leak detection) and UBSan; any report fails the test. Warnings
# are already enforced by the Release pass, and GCC's sanitizer instrumentation raises false
# -Wmaybe-uninitialized/-Wstringop-* positives, so -Werror stays off here.
if wanted asan; then
  # -g1: line tables only, all a sanitizer report's stack needs (file:line of each frame); full
  # debug info made this build about a fifth slower to compile and link (19.3 s -> 16.1 s for
  # controller/session_reactor.cc here).
  step "asan: configure" cmake -S . -B build-asan -G Ninja "${cache[@]}" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHARNESS_SANITIZE=ON -DHARNESS_WERROR=OFF \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG"
  step "asan: build" cmake --build build-asan -j "$jobs"
  step "asan: test" env \
    ASAN_OPTIONS="detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
    LSAN_OPTIONS="suppressions=$repo/scripts/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}" \
    UBSAN_OPTIONS="print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}" \
    ctest --test-dir build-asan --output-on-failure -j2 -LE '^docs$' "${ctest_args[@]}"
fi

# Fuzz pass: libFuzzer targets (clang, ASan+UBSan, leak checking on) built in their own folder,
# only them and the libraries they need; each runs HARNESS_FUZZ_SECONDS (20) over its committed
# seed corpus. A finding fails the run; its reproducer is in build-fuzz/fuzz-work/.
# The pass is docs/FUZZING.md's three blocks, read out of the doc and run as written there (ccache
# through CMake's CMAKE_<LANG>_COMPILER_LAUNCHER variables, which the doc's configure line reads).
if wanted fuzz; then
  fuzz_env=(HARNESS_FUZZ_SECONDS="${HARNESS_FUZZ_SECONDS:-20}")
  if ((${#cache[@]})); then
    fuzz_env+=(CMAKE_CXX_COMPILER_LAUNCHER=ccache CMAKE_C_COMPILER_LAUNCHER=ccache)
  fi
  step "fuzz: build and run (docs/FUZZING.md)" run_doc_block docs/FUZZING.md fuzz-pass "${fuzz_env[@]}"
  step "fuzz: longer run (docs/FUZZING.md)" run_doc_block docs/FUZZING.md fuzz-longer
  step "fuzz: by hand (docs/FUZZING.md)" run_doc_block docs/FUZZING.md fuzz-by-hand
fi
