#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite in four configurations:
#   gcc     g++ 12, debug; also the packaging tests (install, vcpkg port, Conan
#           recipe, consumer projects) and the doxygen run
#   clang   clang 16, release: the tools, examples and benchmarks, with the
#           benchmarks run as smoke tests (the tests build with clang in tsan)
#   asan    g++ 12 -O1 with AddressSanitizer + UndefinedBehaviorSanitizer
#   tsan    clang 16 -O1 with ThreadSanitizer
# The sanitizer builds use -O1 (g++ takes 2.5 times as long at -O2 with ASan)
# and leave out the examples, which gcc and clang build, and the tests that
# run storewatch processes against the S3 server (the in-process S3 tests
# stay): each sanitized file costs about a minute of the 2-core CI machine.
# The S3 tests start s3rver (scripts/s3-server.sh) as a CTest fixture.
# g++ 12 at -O1 with ASan warns -Wmismatched-new-delete on Asio's coroutine
# frames (GCC bug 109224, a false positive): off in that build.
#   fuzz    the libFuzzer targets (tests/fuzz/run.sh), each for $STOREWATCH_FUZZ_SECONDS
#           (default 10) seconds after replaying its corpus
# All with -Wall -Wextra -Wpedantic -Werror. Name configurations to run only those:
#   scripts/test.sh gcc tsan
set -uo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh || exit 1

configs=("$@")
if ((${#configs[@]} == 0)); then configs=(gcc clang asan tsan fuzz); fi

configure() {
  local name=$1
  local dir=build/$name
  case $name in
    gcc) cmake -S . -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=Debug -DSTOREWATCH_TEST_PACKAGING=ON \
           -DSTOREWATCH_BUILD_BENCHMARKS=OFF ;;
    clang) cmake -S . -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER=clang++-16 -DCMAKE_BUILD_TYPE=Release \
             -DSTOREWATCH_BUILD_TESTS=OFF ;;
    asan) cmake -S . -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=Debug \
            -DCMAKE_CXX_FLAGS="-O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -Wno-mismatched-new-delete" \
            -DSTOREWATCH_BUILD_BENCHMARKS=OFF -DSTOREWATCH_BUILD_EXAMPLES=OFF -DSTOREWATCH_TEST_S3_PROCESSES=OFF ;;
    tsan) cmake -S . -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER=clang++-16 -DCMAKE_BUILD_TYPE=Debug \
            -DCMAKE_CXX_FLAGS="-O1 -fsanitize=thread" -DSTOREWATCH_BUILD_BENCHMARKS=OFF \
            -DSTOREWATCH_BUILD_EXAMPLES=OFF -DSTOREWATCH_TEST_S3_PROCESSES=OFF ;;
    *) echo "test.sh: unknown configuration '$name' (gcc, clang, asan, tsan, fuzz)" >&2; return 2 ;;
  esac >/dev/null
}

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1

passed=0
failed=0
status=0
for name in "${configs[@]}"; do
  if [[ $name == fuzz ]]; then
    echo "== fuzz: build and run each target for ${STOREWATCH_FUZZ_SECONDS:-10} s"
    log=build/fuzz-run.log
    mkdir -p build
    tests/fuzz/run.sh "${STOREWATCH_FUZZ_SECONDS:-10}" 2>&1 | tee "$log" | grep -v '^\['
    result=${PIPESTATUS[0]}
    ok=$(awk '/^fuzz_/ && NF == 4 && $4 == 0' "$log" | wc -l)
    bad=$(awk '/^fuzz_/ && NF == 4 && $4 != 0' "$log" | wc -l)
    passed=$((passed + ok))
    failed=$((failed + bad))
    if ((result != 0)); then
      status=1
      ((bad == 0)) && failed=$((failed + 1))  # the build itself failed
    fi
    continue
  fi
  echo "== $name: configure and build"
  if ! configure "$name" || ! cmake --build "build/$name"; then
    echo "== $name: build FAILED"
    status=1
    failed=$((failed + 1))
    continue
  fi
  echo "== $name: ctest"
  log=build/$name/ctest.log
  ctest --test-dir "build/$name" --output-on-failure -j2 2>&1 | tee "$log"
  result=${PIPESTATUS[0]}
  total=$(sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' "$log" | tail -1)
  bad=$(sed -n 's/.* \([0-9]*\) tests failed out of.*/\1/p' "$log" | tail -1)
  if [[ -z "$total" || $result -ne 0 && "${bad:-0}" == 0 ]]; then
    echo "== $name: ctest did not report a result"
    status=1
    failed=$((failed + 1))
    continue
  fi
  passed=$((passed + total - bad))
  failed=$((failed + bad))
  if ((result != 0)); then status=1; fi
done

echo
echo "configurations: ${configs[*]}"
echo "total: $passed passed, $failed failed"
exit $status
