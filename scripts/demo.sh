#!/usr/bin/env bash
# Sets up, builds and runs the examples: a co_await loop and callback listeners.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --demo
cmake -S . -B build/demo -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DSTOREWATCH_BUILD_TESTS=OFF -DSTOREWATCH_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build build/demo

echo "== examples/await_loop: a co_await loop over an event stream"
build/demo/examples/await_loop
echo
echo "== examples/callback_listeners: the reference system's three listeners"
build/demo/examples/callback_listeners "build/demo/audit.log"
