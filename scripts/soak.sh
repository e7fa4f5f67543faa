#!/usr/bin/env bash
# The long crash soak, on demand (ctest runs a short one): three writer
# processes and a listener process with a checkpoint on one store, one of them
# SIGKILLed at a random moment each round and restarted; at the end every
# completed event must have been delivered, none twice after dedup by id, and
# repeats only within the checkpoint bound (tests/system/crash_soak_test.cpp).
#
#   scripts/soak.sh [ROUNDS] [gcc|asan]
#
# ROUNDS defaults to 1000 (a third to half a second each on a busy 2-core
# machine, growing slowly with the killed writers' folders: 500 rounds took
# 4 minutes, so count on 8-10 minutes). gcc (the default)
# builds g++ Debug in build/soak; asan builds g++ -O1 with AddressSanitizer
# and UndefinedBehaviorSanitizer in build/soak-asan, as scripts/test.sh does.
# Only the soak and its two helper programs are built. STOREWATCH_SOAK_BUILD=DIR
# uses (or makes) that build folder instead.
#
# It prints the seed first and a summary line last:
#   crash soak: rounds=R writer_kills=W listener_kills=L completed=C
#     delivered_unique=U lost=0 duplicates_after_dedup=0 repeats=P seed=S
# Environment: STOREWATCH_SOAK_SEED=S repeats a run's random choices (not the
# processes' timing); STOREWATCH_SOAK_DIR=DIR (new or empty) keeps the store,
# the checkpoint and every process's output there for a post-mortem.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-1000}
config=${2:-gcc}
if ! [[ $rounds =~ ^[0-9]+$ ]]; then
  echo "soak.sh: ROUNDS must be a number, not '$rounds'" >&2
  exit 2
fi

case $config in
  gcc) dir=build/soak
       flags=() ;;
  asan) dir=build/soak-asan
        flags=(-DCMAKE_CXX_FLAGS="-O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer") ;;
  *) echo "soak.sh: unknown configuration '$config' (gcc, asan)" >&2; exit 2 ;;
esac

dir=${STOREWATCH_SOAK_BUILD:-$dir}

if [[ ! -f $dir/CMakeCache.txt ]]; then
  cmake -S . -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=Debug \
    -DSTOREWATCH_BUILD_BENCHMARKS=OFF -DSTOREWATCH_BUILD_EXAMPLES=OFF "${flags[@]}" >/dev/null
fi
cmake --build "$dir" --target storewatch_system_tests storewatch_writer_process storewatch_listener_process

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
STOREWATCH_SOAK_ROUNDS=$rounds exec "$dir/tests/system/storewatch_system_tests" "[#crash_soak_test]"
