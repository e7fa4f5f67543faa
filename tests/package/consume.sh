#!/usr/bin/env bash
# Builds and runs the co_await and callback examples (or those of them
# STOREWATCH_CONSUMER_EXAMPLES names) as a project outside storewatch's tree would:
#   consume.sh find_package     PREFIX WORK CXX s3|no-s3|core [redis|no-redis]
#                                                          find_package(storewatch) from PREFIX,
#                                                          which must have (s3) or lack (no-s3)
#                                                          storewatch::s3; with it, the S3 program too;
#                                                          core: PREFIX has it, but the consumer uses
#                                                          the core alone with OpenSSL, pugixml and
#                                                          libcurl hidden (and hiredis not looked for);
#                                                          redis: PREFIX must have storewatch::redis,
#                                                          and the Redis program is built too;
#                                                          no-redis (the default): it must lack it
#   consume.sh pkg_config       PREFIX WORK CXX [s3|no-s3 [redis|no-redis]]
#                                                          the compiler flags from PREFIX's storewatch.pc;
#                                                          s3: also the S3 program from storewatch-s3.pc;
#                                                          redis: the Redis program from storewatch-redis.pc
#   consume.sh add_subdirectory -      WORK CXX            storewatch's source tree vendored
# STOREWATCH_CONSUMER_EXAMPLES (environment; find_package mode): which of the
# two examples to build, as a CMake list, or "none" (default: both).
set -euo pipefail
mode=$1 prefix=$2 work=$3 cxx=$4 s3=${5:-} redis=${6:-no-redis}
case $redis in
  redis) expect_redis=ON ;;
  no-redis) expect_redis=OFF ;;
  *) echo "consume.sh: redis or no-redis after s3, not '$redis'" >&2; exit 2 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
examples=$here/../../examples
rm -rf "$work"
mkdir -p "$work"

case $mode in
  find_package)
    case $s3 in
      s3) expect_s3=ON ;;
      no-s3) expect_s3=OFF ;;
      core) expect_s3=CORE ;;
      *) echo "consume.sh: find_package needs s3, no-s3 or core after CXX, not '$s3'" >&2; exit 2 ;;
    esac
    cmake -S "$here/$mode" -B "$work" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_PREFIX_PATH="$prefix" \
      -DSTOREWATCH_EXPECT_S3=$expect_s3 -DSTOREWATCH_EXPECT_REDIS=$expect_redis \
      ${STOREWATCH_CONSUMER_EXAMPLES:+"-DSTOREWATCH_CONSUMER_EXAMPLES=$STOREWATCH_CONSUMER_EXAMPLES"}
    cmake --build "$work"
    ;;
  add_subdirectory)
    cmake -S "$here/$mode" -B "$work" -G Ninja -DCMAKE_CXX_COMPILER="$cxx"
    cmake --build "$work"
    ;;
  pkg_config)
    export PKG_CONFIG_PATH=$prefix/share/pkgconfig
    # "pkg-config packages|define or -|program using them" (the CMake
    # consumers build both examples; with both components, one program
    # uses both, as in find_package/CMakeLists.txt)
    programs=("storewatch|-|$examples/await_loop.cpp")
    if [[ $s3 == s3 && $redis == redis ]]; then
      programs+=("storewatch-s3 storewatch-redis|-DSTOREWATCH_CONSUMER_REDIS|$here/find_package/s3_consumer.cpp")
    elif [[ $s3 == s3 ]]; then
      programs+=("storewatch-s3|-|$here/find_package/s3_consumer.cpp")
    elif [[ $redis == redis ]]; then
      programs+=("storewatch-redis|-|$here/find_package/redis_consumer.cpp")
    fi
    for program in "${programs[@]}"; do
      IFS='|' read -r packages define source <<<"$program"
      [[ $define == - ]] && define=""
      # shellcheck disable=SC2046,SC2086 # pkg-config's output and $packages are lists
      "$cxx" -std=c++20 -Wall -Wextra -Wpedantic -Werror $define $(pkg-config --cflags $packages) \
        "$source" -o "$work/$(basename "$source" .cpp)" $(pkg-config --libs $packages)
    done
    ;;
  *) echo "consume.sh: unknown mode '$mode'" >&2; exit 2 ;;
esac

cd "$work"
for program in await_loop callback_listeners consumer_await consumer_callbacks core_consumer s3_consumer redis_consumer; do
  if [[ -x $program ]]; then
    echo "== running $program"
    ./"$program"
  fi
done
