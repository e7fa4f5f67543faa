#!/usr/bin/env bash
# Configures, builds and installs storewatch as README.md's "Installed with
# CMake" does, but without the S3 store and the Redis hints: the
# header-only core alone.
#   install_without_s3.sh SOURCE BUILD PREFIX CXX
# Tests, examples, benchmarks and the tool are off, so nothing is compiled
# (the tests need S3). OpenSSL, pugixml and libcurl are disabled: the
# configure fails if a build without S3 looks for them.
set -euo pipefail
source=$1 build=$2 prefix=$3 cxx=$4
rm -rf "$build" "$prefix"
cmake -S "$source" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=Release \
  -DSTOREWATCH_BUILD_S3=OFF -DSTOREWATCH_BUILD_REDIS=OFF -DSTOREWATCH_BUILD_TESTS=OFF -DSTOREWATCH_BUILD_EXAMPLES=OFF \
  -DSTOREWATCH_BUILD_BENCHMARKS=OFF -DSTOREWATCH_BUILD_TOOLS=OFF \
  -DCMAKE_DISABLE_FIND_PACKAGE_OpenSSL=ON -DCMAKE_DISABLE_FIND_PACKAGE_pugixml=ON -DCMAKE_DISABLE_FIND_PACKAGE_CURL=ON
cmake --build "$build"
cmake --install "$build" --prefix "$prefix"
