#!/usr/bin/env bash
# Sets up, builds and runs the two-user demo: Bob listens in one process while
# Alice, in another, creates a file, shares it with him and deletes it.
# Then the co_await and callback examples run against the in-memory source.
#
#   scripts/demo.sh        all of that, with the store in a local folder
#   scripts/demo.sh --s3   then the two-user demo once more against S3: it starts
#                          s3rver (scripts/s3-server.sh; needs Node.js >= 20 and
#                          npm), uses the store s3://storewatch-test/demo, shows
#                          `storewatch stats` for it, and stops the server on exit.
#   scripts/demo.sh --s3 --hints
#                          the S3 demo with wake-up hints: it also starts a
#                          redis-server (scripts/redis-server.sh; Debian's
#                          redis-server package), Bob polls at the default 5 s
#                          and is woken by Alice's hints; each of his lines says
#                          how long after the event he printed it.
set -euo pipefail
cd "$(dirname "$0")/.."

with_s3=false
with_hints=false
case "${1:-} ${2:-}" in
  " ") ;;
  "--s3 ") with_s3=true ;;
  "--s3 --hints" | "--hints --s3") with_s3=true with_hints=true ;;
  *)
    echo "usage: scripts/demo.sh [--s3 [--hints]]" >&2
    exit 2
    ;;
esac
if $with_hints && ! command -v "${STOREWATCH_REDIS_SERVER:-redis-server}" >/dev/null; then
  echo "demo: --hints needs redis-server (Debian: apt-get install redis-server)" >&2
  exit 1
fi

scripts/setup.sh --demo
cmake_s3=()
if $with_s3; then cmake_s3=(-DSTOREWATCH_BUILD_S3=ON); fi  # in case an older build/demo has it off
if $with_hints; then cmake_s3+=(-DSTOREWATCH_BUILD_REDIS=ON); fi
cmake -S . -B build/demo -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DSTOREWATCH_BUILD_TESTS=OFF -DSTOREWATCH_BUILD_BENCHMARKS=OFF "${cmake_s3[@]}" >/dev/null
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

# Waits (up to 20 s) until a client of the Redis server at
# $STOREWATCH_REDIS_URL subscribes to the channel $1 (bash's /dev/tcp: the
# reply to PUBSUB NUMSUB is *2, $<length>, the channel, :<subscribers>).
wait_for_subscriber() {
  local port=${STOREWATCH_REDIS_URL##*:} reply line
  port=${port%%/*}
  for _ in $(seq 200); do
    if { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
      printf 'PUBSUB NUMSUB %s\r\n' "$1" >&3
      reply=()
      for _ in 1 2 3 4; do
        IFS= read -r -t 2 line <&3 || break
        reply+=("${line%$'\r'}")
      done
      exec 3<&- 3>&-
      [[ ${reply[3]:-} == :[1-9]* ]] && return 0
    fi
    sleep 0.1
  done
  echo "demo: gave up waiting for a subscriber to $1" >&2
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

if ! $with_s3; then
  exit 0
fi

echo
echo "== two users against S3: s3rver (scripts/s3-server.sh) and the store s3://storewatch-test/demo"
# Our own server, state and bucket, whatever the caller's environment says.
unset STOREWATCH_S3_ENDPOINT STOREWATCH_S3_LOCAL_SERVER
export STOREWATCH_S3_STATE_DIR=$PWD/build/demo/s3rver STOREWATCH_S3_PORT=0 STOREWATCH_S3_BUCKET=storewatch-test
bob=""
stop_servers() {
  if [[ -n $bob ]]; then kill "$bob" 2>/dev/null || true; fi
  scripts/s3-server.sh stop 2>/dev/null || true
  if $with_hints; then scripts/redis-server.sh stop 2>/dev/null || true; fi
}
trap stop_servers EXIT
s3_env=$(scripts/s3-server.sh start)
eval "$s3_env"  # AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, STOREWATCH_S3_ENDPOINT
store=s3://$STOREWATCH_S3_BUCKET/demo
s3_options=(--store "$store" --endpoint "$STOREWATCH_S3_ENDPOINT")
s3_bob_log=build/demo/bob-s3.log
s3_checkpoint=build/demo/bob-s3.checkpoint
rm -f "$s3_checkpoint"

if $with_hints; then
  echo "== with wake-up hints: redis-server (scripts/redis-server.sh)"
  export STOREWATCH_REDIS_STATE_DIR=$PWD/build/demo/redis STOREWATCH_REDIS_PORT=0
  redis_env=$(scripts/redis-server.sh start)
  eval "$redis_env"  # STOREWATCH_REDIS_URL
  hint_options=(--hints "$STOREWATCH_REDIS_URL")
  # Bob polls at the default interval (5 s); Alice's hints wake him at once.
  bob_interval=()
else
  # S3 has no change notifications: Bob polls, every 200 ms here.
  hint_options=()
  bob_interval=(--interval 0.2)
fi
"$bin/bob_listener" "${s3_options[@]}" "${hint_options[@]}" --checkpoint "$s3_checkpoint" "${bob_interval[@]}" \
  >"$s3_bob_log" 2>&1 &
bob=$!
wait_for "$s3_bob_log" "is listening"
if $with_hints; then
  # A SHARE before Bob's subscription would only wait for his next poll.
  wait_for_subscriber storewatch:hints:bob123
fi
"$bin/alice_sender" "${s3_options[@]}" "${hint_options[@]}" --pause 2
wait_for "$s3_bob_log" "received DELETE"
kill -TERM "$bob"
wait "$bob"
bob=""
echo "-- Bob's output:"
cat "$s3_bob_log"
if $with_hints; then
  share_delay=$(sed -n 's/.* received SHARE: .* (\([0-9-]*\) ms after it happened)$/\1/p' "$s3_bob_log")
  echo "-- Bob printed Alice's SHARE ${share_delay:-?} ms after it happened, polling every 5 s: the hint woke him"
fi
echo "-- storewatch ${s3_options[*]} stats"
build/demo/tools/storewatch "${s3_options[@]}" stats
