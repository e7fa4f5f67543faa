#!/usr/bin/env bash
# Sets up, builds and runs the two-user demo: Bob listens in one process while
# Alice, in another, creates a file, shares it with him and deletes it.
# Then the co_await and callback examples run against the in-memory source.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --demo
cmake -S . -B build/demo -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DSTOREWATCH_BUILD_TESTS=OFF -DSTOREWATCH_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build build/demo

bin=build/demo/examples
root=build/demo/store
rm -rf "$root"
mkdir -p "$root"
bob_log=build/demo/bob.log

# Waits (up to 20 s) until the file $1 contains the text $2.
wait_for() {
  for _ in $(seq 200); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "demo: gave up waiting for '$2' in $1" >&2
  return 1
}

echo "== two users: bob_listener (background) and alice_sender, store in $root"
"$bin/bob_listener" --root "$root" >"$bob_log" 2>&1 &
bob=$!
trap 'kill $bob 2>/dev/null || true' EXIT
wait_for "$bob_log" "is listening"
"$bin/alice_sender" --root "$root" --pause 2
wait_for "$bob_log" "received DELETE"
kill -TERM "$bob"
wait "$bob"
trap - EXIT
echo "-- Bob's output:"
cat "$bob_log"

echo
echo "== examples/await_loop: a co_await loop over an event stream"
"$bin/await_loop"
echo
echo "== examples/callback_listeners: audit logger, security monitor, counters"
"$bin/callback_listeners" build/demo/audit.log
