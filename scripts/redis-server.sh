#!/usr/bin/env bash
# Starts and stops a redis-server for the hint tests (storewatch::redis): on
# 127.0.0.1, with no persistence (--save '' --appendonly no), its files in a
# state folder of its own. Modelled on scripts/s3-server.sh.
#
#   redis_env=$(scripts/redis-server.sh start)   start it; print `export` lines
#   eval "$redis_env"                            (STOREWATCH_REDIS_URL)
#   scripts/redis-server.sh stop                 stop it (by its PID), remove its files
#   scripts/redis-server.sh env                  print the `export` lines again
#
# Settings (environment):
#   STOREWATCH_REDIS_PORT        unset or 0: a free port; any other value: exactly that
#                                (the outage tests restart a killed server on its port)
#   STOREWATCH_REDIS_STATE_DIR   where the PID, port and log live
#                                (default ${TMPDIR:-/tmp}/storewatch-redis)
#   STOREWATCH_REDIS_START_TIMEOUT  seconds to wait for it to answer PING (default 10)
#   STOREWATCH_REDIS_SERVER      the program (default: redis-server on PATH)
#
# The port is in $STOREWATCH_REDIS_STATE_DIR/redis.port (the CTest fixture
# redis_start/redis_stop and the tests use it). Only the `export` lines go to
# standard output; messages go to standard error.
set -euo pipefail

state_dir=${STOREWATCH_REDIS_STATE_DIR:-${TMPDIR:-/tmp}/storewatch-redis}
pid_file=$state_dir/redis.pid
port_file=$state_dir/redis.port
log_file=$state_dir/redis.log
start_timeout=${STOREWATCH_REDIS_START_TIMEOUT:-10}
server=${STOREWATCH_REDIS_SERVER:-redis-server}

usage() {
  echo "usage: scripts/redis-server.sh start|stop|env" >&2
  exit 2
}

# shellcheck source=server-lib.sh
script_name=redis-server.sh
source "$(dirname "${BASH_SOURCE[0]}")/server-lib.sh"

# The PID in the pid file, if that process is still our server (not a reused PID).
running_pid() { pid_from_file "$pid_file" redis-server; }

print_env() {
  printf 'export STOREWATCH_REDIS_URL=%q\n' "redis://127.0.0.1:$1/0"
}

# Whether the server on port $1 answers PING (bash's /dev/tcp: no redis-cli needed).
answers() {
  local reply
  { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
  printf 'PING\r\n' >&3
  IFS= read -r -t 2 reply <&3 || reply=
  exec 3<&- 3>&-
  [[ $reply == +PONG* ]]
}

# Starts the server on port $1 in the background; its PID in the pid file.
launch() {
  (
    cd "$state_dir"
    exec "$server" --bind 127.0.0.1 --port "$1" --save '' --appendonly no --dir "$state_dir" --daemonize no \
      --logfile ''
  ) </dev/null >"$log_file" 2>&1 &
  echo $! >"$pid_file"
}

# Waits until the server answers on port $1 (0), exits (1) or the timeout passes (2).
await_start() {
  local pid deadline=$((SECONDS + start_timeout))
  pid=$(<"$pid_file")
  while :; do
    alive "$pid" || return 1
    answers "$1" && return 0
    ((SECONDS < deadline)) || return 2
    sleep 0.05
  done
}

start() {
  local pid
  if pid=$(running_pid); then
    die "already running (pid $pid, port $(cat "$port_file" 2>/dev/null || echo '?')); run 'scripts/redis-server.sh stop' first"
  fi
  command -v "$server" >/dev/null || die "$server not found: install redis-server (scripts/setup.sh does)"
  local port=${STOREWATCH_REDIS_PORT:-0}
  if [[ ! $port =~ ^[0-9]+$ ]] || ((port > 65535)); then
    die "STOREWATCH_REDIS_PORT='$port' is not a port number"
  fi
  [[ $start_timeout =~ ^[0-9]+$ ]] || die "STOREWATCH_REDIS_START_TIMEOUT='$start_timeout' is not a number of seconds"
  mkdir -p "$state_dir"
  rm -f "$pid_file" "$port_file"

  # A given port is taken as it is; otherwise random ports until one is free
  # (redis-server's --port 0 means no TCP at all, so it cannot pick one).
  local tries=1 chosen=$port outcome
  ((port == 0)) && tries=20
  for ((i = 0; i < tries; i++)); do
    ((port == 0)) && chosen=$((20000 + RANDOM % 40000))
    launch "$chosen"
    outcome=0
    await_start "$chosen" || outcome=$?
    ((outcome == 0)) && break
    pid=$(<"$pid_file")
    kill "$pid" 2>/dev/null || true
    rm -f "$pid_file"
    if ((outcome == 2)); then
      cat "$log_file" >&2
      die "redis-server did not answer on port $chosen within ${start_timeout}s (log above)"
    fi
    grep -q 'Address already in use' "$log_file" || {
      cat "$log_file" >&2
      die "redis-server exited during start (log above)"
    }
  done
  ((outcome == 0)) || die "no free port found in $tries tries"
  echo "$chosen" >"$port_file"
  say "$("$server" --version | cut -d' ' -f1-3) running: pid $(<"$pid_file"), redis://127.0.0.1:$chosen, log $log_file"
  print_env "$chosen"
}

stop() {
  local pid
  if ! pid=$(running_pid); then
    rm -f "$pid_file" "$port_file"
    say "not running"
    return 0
  fi
  end_process "$pid"
  rm -f "$pid_file" "$port_file"
  say "stopped (pid $pid)"
}

case ${1:-} in
  start | stop) "$1" ;;
  env)
    running_pid >/dev/null || die "not running; run 'scripts/redis-server.sh start'"
    print_env "$(<"$port_file")"
    ;;
  *) usage ;;
esac
