#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite in four configurations:
#   gcc     g++ 12, release (-O3, the build a user's first `cmake -DCMAKE_BUILD_TYPE=Release`
#           makes): the tests, tools and examples, and the two benchmarks the floors check
#           runs (benchmarks/check.sh; the others are defined, built when named:
#           STOREWATCH_DEFAULT_BENCHMARKS); also the packaging tests (install, vcpkg port,
#           Conan recipe, consumer projects, pkg-config) and the doxygen run
#   asan    clang 16 -O0 with AddressSanitizer + UndefinedBehaviorSanitizer (with assertions:
#           the debug checks the release build compiles out run here); also every
#           benchmark, run as a smoke test
#   tsan    clang 16 -O0 with ThreadSanitizer: the tests and the tool with clang
#   fuzz    the libFuzzer targets (tests/fuzz/run.sh, clang), each for $STOREWATCH_FUZZ_SECONDS
#           (default 10) seconds after replaying its corpus
# Why this split: g++ -O3 is where g++ 12's flow-based false positives appear
# (-Wrestrict, GCC bug 105651), and CI used to build g++ only at -O0, so a
# user's first Release build could fail while CI was green. A separate g++
# release configuration would have compiled every test a fourth time, so gcc
# moved from debug to release and took over the clang release configuration's
# tools, examples and benchmarks: each test is still compiled three times, the
# examples and benchmarks once instead of twice, which pays for g++ -O3
# taking longer per file than -O0. clang compiles the tests and the tool
# twice (asan, tsan) and the fuzz targets; its warnings come from the front
# end, so -O0 and -O1 see what -O3 would. The examples are not compiled
# with clang in CI (the pkg-config packaging test compiles one example and
# the S3 consumer with clang++). g++ compiles everything else once, at -O3,
# and runs every test built so, except the benchmarks: at -O3 the ten
# took some 570 job-seconds of a 1160 s build, the largest part after the
# tests, so since 2026-12-05 the ASan build compiles them (some 300
# job-seconds there, with the precompiled header) and smoke-runs them under the
# sanitizers, and g++ -O3 builds only the two whose ratios the floors check
# holds (a g++-only compile error in another benchmark shows only when one
# builds it: `cmake --build build/gcc --target loop_stall`).
# Build time is most of a run, so: the test files are compiled in groups, one
# program per group (tests/CMakeLists.txt, storewatch_test_group), which
# instantiates the library's coroutines once per group instead of once per
# file, and the tool's four source files are one unity build (g++ -O3: 116 s
# of CPU against 204 s one by one; clang -O0 with the precompiled header: 19
# against 39 s); the ASan build is clang -O0 with line tables only (g++ -O0 -g1 with
# ASan, which it was until 2026-12, took 2.2 times clang's CPU time per file:
# 109 s against 50 s for the S3 client contract tests, and the ASan build was
# 655 s of a 3070 s CI run; g++ -O1 took 2.4 times -O0); the TSan build is
# clang -O0 too, with line tables only (-gline-tables-only: 39 s against 54 s
# with full -g): at -O1 the core tests took 135 s of CPU to compile against
# 46 s at -O0, and the TSan build was 515 s of a 2948 s run; its tests run
# slower at -O0 (the core, store, model, CLI and system tests 369 s of CPU
# against 287 s, measured side by side on a loaded machine). Both leave out the
# examples and the tests that run storewatch processes against the S3 server
# (the in-process S3 tests stay). In those two the tests and the tool use
# precompiled headers (STOREWATCH_PRECOMPILE_HEADERS, cmake/storewatch-pch.cmake):
# about 10 s of CPU less per source file with clang -O0 (the core tests 42 ->
# 32 s), on some 20 files per build. Not in the gcc build: with the header,
# g++ 12 -O3 reports false -Wstringop-overflow on "literal" + std::string in
# the core tests (the family of GCC bug 105651) that the same file compiled
# without it does not (not even with -Wsystem-headers): the header changes
# what g++ inlines, and the gcc build is the one that checks what a user's
# Release build sees. While one configuration's tests run, the next one
# builds in the background at nice 19 (its output in build/NAME-build.log,
# printed when its turn comes): the tests leave part of the cores idle. The
# fuzz targets run two at a time. Under the sanitizers the random soaks and
# the fault sweeps run shorter than in the gcc build, which runs them whole:
# the access model makes 4,000 operations (STOREWATCH_MODEL_OPS, 10,000 by
# default); the crash soak runs 40 rounds and the CLI's tail-across-SIGKILL
# test's writer publishes 40 events (STOREWATCH_SOAK_ROUNDS, 120); and the
# S3 sweeps that fail or lose the response to each request of an operation
# in turn (s3_fault_test, s3_response_lost_test, s3_compaction_test) take
# every third request, and always the first and the last
# (STOREWATCH_FAULT_STRIDE=3, 1 by default; tests/common/sizing.hpp), each
# mode of an operation from another third.
# The S3 tests start s3rver (scripts/s3-server.sh) as a CTest fixture.
# All with -Wall -Wextra -Wpedantic -Werror (STOREWATCH_WERROR=ON, which a
# plain build from a clone leaves off). Name configurations to run only those:
#   scripts/test.sh gcc tsan
set -uo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh || exit 1

configs=("$@")
if ((${#configs[@]} == 0)); then configs=(gcc asan tsan fuzz); fi

configure() {
  local name=$1
  local dir=build/$name
  case $name in
    gcc) cmake -S . -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=Release -DSTOREWATCH_WERROR=ON \
           -DSTOREWATCH_TEST_PACKAGING=ON -DSTOREWATCH_DEFAULT_BENCHMARKS="stream_throughput;journal_catchup" ;;
    asan) cmake -S . -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER=clang++-16 -DCMAKE_BUILD_TYPE=Debug -DSTOREWATCH_WERROR=ON -DSTOREWATCH_PRECOMPILE_HEADERS=ON \
            -DCMAKE_CXX_FLAGS="-O0 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" \
            -DCMAKE_CXX_FLAGS_DEBUG=-gline-tables-only \
            -DSTOREWATCH_BUILD_BENCHMARKS=ON -DSTOREWATCH_BUILD_EXAMPLES=OFF -DSTOREWATCH_TEST_S3_PROCESSES=OFF ;;
    tsan) cmake -S . -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER=clang++-16 -DCMAKE_BUILD_TYPE=Debug -DSTOREWATCH_WERROR=ON -DSTOREWATCH_PRECOMPILE_HEADERS=ON \
            -DCMAKE_CXX_FLAGS="-O0 -fsanitize=thread" -DCMAKE_CXX_FLAGS_DEBUG=-gline-tables-only \
            -DSTOREWATCH_BUILD_BENCHMARKS=OFF \
            -DSTOREWATCH_BUILD_EXAMPLES=OFF -DSTOREWATCH_TEST_S3_PROCESSES=OFF ;;
    *) echo "test.sh: unknown configuration '$name' (gcc, asan, tsan, fuzz)" >&2; return 2 ;;
  esac >/dev/null
}

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1

# Builds configuration $1: configures and builds it; for fuzz, builds the
# targets (tests/fuzz/run.sh --build-only; run.sh configures its own build,
# and CI turns STOREWATCH_WERROR on there).
build() {
  local name=$1
  if [[ $name == fuzz ]]; then
    CI=${CI:-true} tests/fuzz/run.sh --build-only
  else
    configure "$name" && cmake --build "build/$name"
  fi
}

# While one configuration's tests run, the next one builds in the
# background at nice 19: the tests leave about a quarter of the two cores
# idle (waiting on timers, fsyncs and child processes; ASan's ctest used
# 470 s of CPU in a 614 core-second window), and the build takes only what
# they leave. Its output goes to build/NAME-build.log, printed when its turn
# comes. pids of those builds by configuration:
declare -A background=()
build_in_background() {
  local name=$1
  mkdir -p build
  (
    renice -n 19 -p "$BASHPID" >/dev/null
    build "$name"
  ) >"build/$name-build.log" 2>&1 &
  background[$name]=$!
}

passed=0
failed=0
status=0
# what failed, by configuration, repeated at the end where a log's tail shows it
failures=()
for i in "${!configs[@]}"; do
  name=${configs[$i]}
  next=${configs[$((i + 1))]:-}
  if [[ -n ${background[$name]:-} ]]; then
    echo "== $name: configure and build (at nice 19, while the previous configuration's tests ran)"
    wait "${background[$name]}"
    built=$?
    grep -v '^\[' "build/$name-build.log"
  else
    echo "== $name: configure and build"
    build "$name"
    built=$?
  fi
  if ((built != 0)); then
    echo "== $name: build FAILED"
    status=1
    failed=$((failed + 1))
    failures+=("$name: the build (log: build/$name-build.log)")
    continue
  fi
  if [[ -n $next ]]; then build_in_background "$next"; fi
  if [[ $name == fuzz ]]; then
    echo "== fuzz: run each target for ${STOREWATCH_FUZZ_SECONDS:-10} s"
    log=build/fuzz-run.log
    CI=${CI:-true} tests/fuzz/run.sh "${STOREWATCH_FUZZ_SECONDS:-10}" 2>&1 | tee "$log" | grep -v '^\['
    result=${PIPESTATUS[0]}
    ok=$(awk '/^fuzz_/ && NF == 4 && $4 == 0' "$log" | wc -l)
    bad=$(awk '/^fuzz_/ && NF == 4 && $4 != 0' "$log" | wc -l)
    passed=$((passed + ok))
    failed=$((failed + bad))
    while read -r target; do
      failures+=("fuzz: $target found a crash (log: $log)")
    done < <(awk '/^fuzz_/ && NF == 4 && $4 != 0 {print $1}' "$log")
    if ((result != 0)); then
      status=1
      ((bad == 0)) && failed=$((failed + 1))  # run.sh itself failed
      failures+=("fuzz: tests/fuzz/run.sh exited with $result (log: $log)")
    fi
    continue
  fi
  echo "== $name: ctest"
  log=build/$name/ctest.log
  soak=()
  if [[ $name != gcc ]]; then soak=(STOREWATCH_MODEL_OPS=4000 STOREWATCH_SOAK_ROUNDS=40 STOREWATCH_FAULT_STRIDE=3); fi
  env "${soak[@]}" ctest --test-dir "build/$name" --output-on-failure -j2 2>&1 | tee "$log"
  result=${PIPESTATUS[0]}
  total=$(sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' "$log" | tail -1)
  bad=$(sed -n 's/.* \([0-9]*\) tests failed out of.*/\1/p' "$log" | tail -1)
  if [[ -z "$total" || $result -ne 0 && "${bad:-0}" == 0 ]]; then
    echo "== $name: ctest did not report a result"
    status=1
    failed=$((failed + 1))
    failures+=("$name: ctest did not report a result (log: $log)")
    continue
  fi
  passed=$((passed + total - bad))
  failed=$((failed + bad))
  if ((result != 0)); then status=1; fi
  while IFS= read -r line; do
    failures+=("$name: ${line#"${line%%[![:space:]]*}"}")
  done < <(sed -n '/^The following tests FAILED:/,/^Errors while running CTest/{/^[[:space:]]*[0-9]* - /p}' "$log")
done

echo
echo "configurations: ${configs[*]}"
echo "total: $passed passed, $failed failed"
for line in "${failures[@]}"; do echo "  failed: $line"; done
exit $status
