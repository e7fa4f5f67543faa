# What scripts/s3-server.sh and scripts/redis-server.sh share: sourced, not run.
# They set script_name first: die and say start their messages with it.

die() {
  echo "$script_name: $*" >&2
  exit 1
}
say() { echo "$script_name: $*" >&2; }

# Whether a process is alive; a zombie counts as exited (it may wait a while to
# be reaped by init once the shell that started it has gone).
alive() {
  local state
  state=$(awk '/^State:/ { print $2 }' "/proc/$1/status" 2>/dev/null) || return 1
  [[ -n $state && $state != Z ]]
}

# The PID in the pid file $1, if that process is alive and its command line
# holds $2 (so a reused PID is not taken for the server).
pid_from_file() {
  [[ -f $1 ]] || return 1
  local pid
  pid=$(<"$1")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  local cmdline
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *"$2"* ]] || return 1
  echo "$pid"
}

# Ends process $1: SIGTERM, then SIGKILL if it is still alive 10 s later.
end_process() {
  kill "$1"
  local deadline=$((SECONDS + 10))
  while alive "$1"; do
    if ((SECONDS >= deadline)); then
      say "pid $1 did not exit within 10s of SIGTERM; sending SIGKILL"
      kill -KILL "$1" 2>/dev/null || true
      deadline=$((SECONDS + 5))
      while alive "$1"; do
        ((SECONDS < deadline)) || die "pid $1 is still alive after SIGKILL"
        sleep 0.1
      done
      return 0
    fi
    sleep 0.05
  done
}
