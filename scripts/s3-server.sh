#!/usr/bin/env bash
# Starts and stops the local S3 server for the S3 tests: s3rver
# (@20minutes/s3rver 4.0.4, pinned in tests/s3/server/package-lock.json).
#
#   s3_env=$(scripts/s3-server.sh start)   install if needed, start on 127.0.0.1,
#   eval "$s3_env"                         print `export` lines for the tests
#                                          (`eval "$(... start)"` in one line would
#                                          hide a failed start from `set -e`)
#   scripts/s3-server.sh stop              stop it (by its PID) and remove its data
#   scripts/s3-server.sh env               print the `export` lines again
#   scripts/s3-server.sh node              print the Node.js it runs s3rver with (a
#                                          system node >= 20, else one it fetches with
#                                          npm into STOREWATCH_NODE_DIR, default build/node)
#
# Settings (environment):
#   STOREWATCH_S3_PORT       port to listen on; unset: 4568, or a free port if 4568
#                            is taken; 0: a free port; any other value: exactly that
#   STOREWATCH_S3_BUCKET     bucket created at start (default storewatch-test)
#   STOREWATCH_S3_STATE_DIR  where the PID, port, log and data live
#                            (default ${TMPDIR:-/tmp}/storewatch-s3rver)
#   STOREWATCH_S3_START_TIMEOUT  seconds to wait for it to answer (default 30)
#   STOREWATCH_S3_ENDPOINT   when set (a user pointing the tests at a MinIO or AWS
#                            bucket, with AWS_* and STOREWATCH_S3_BUCKET), `start`
#                            and `stop` do nothing. The export lines of `start`
#                            set it too, with STOREWATCH_S3_LOCAL_SERVER=1, which
#                            tells this script the endpoint is its own s3rver.
#
# The port actually bound is in $STOREWATCH_S3_STATE_DIR/s3rver.port and the bucket
# in s3rver.bucket (the CTest fixture s3rver_start/s3rver_stop uses them).
#
# Only the `export` lines go to standard output; messages go to standard error.
# Credentials are s3rver's built-in pair S3RVER/S3RVER (any region is accepted).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
server_dir=$root/tests/s3/server
state_dir=${STOREWATCH_S3_STATE_DIR:-${TMPDIR:-/tmp}/storewatch-s3rver}
pid_file=$state_dir/s3rver.pid
port_file=$state_dir/s3rver.port
bucket_file=$state_dir/s3rver.bucket
log_file=$state_dir/s3rver.log
data_dir=$state_dir/data
bucket=${STOREWATCH_S3_BUCKET:-storewatch-test}
start_timeout=${STOREWATCH_S3_START_TIMEOUT:-30}
access_key=S3RVER
secret_key=S3RVER
region=${AWS_REGION:-us-east-1}

usage() {
  echo "usage: scripts/s3-server.sh start|stop|env|node" >&2
  exit 2
}

# shellcheck source=server-lib.sh
script_name=s3-server
source "$(dirname "${BASH_SOURCE[0]}")/server-lib.sh"

# The PID in the pid file, if that process is still our server (not a reused PID).
running_pid() { pid_from_file "$pid_file" storewatch-s3rver; }

print_env() {
  local port=$1
  printf 'export STOREWATCH_S3_ENDPOINT=%q\n' "http://127.0.0.1:$port"
  printf 'export AWS_ACCESS_KEY_ID=%q\n' "$access_key"
  printf 'export AWS_SECRET_ACCESS_KEY=%q\n' "$secret_key"
  printf 'export AWS_REGION=%q\n' "$region"
  printf 'export STOREWATCH_S3_BUCKET=%q\n' "$bucket"
  printf 'export STOREWATCH_S3_LOCAL_SERVER=1\n'
}

# True when STOREWATCH_S3_ENDPOINT names a store of the user's, not our s3rver.
external_store() {
  [[ -n ${STOREWATCH_S3_ENDPOINT:-} && -z ${STOREWATCH_S3_LOCAL_SERVER:-} ]]
}

# Where a Node.js 20 fetched from the npm registry lives, when the system's node
# is older (Debian 12's own nodejs is 18; s3rver 4.0.4 needs 20 or later).
node_dir=${STOREWATCH_NODE_DIR:-$root/build/node}
node_package=node@20

# The major version of the node program $1, or nothing if it does not run.
node_major() {
  "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null
}

# Puts a Node.js >= 20 first on PATH: the system's if it is new enough, else
# the one in $node_dir, fetched there with npm (the `node` package of the npm
# registry, which brings the matching prebuilt binary as another package).
ensure_node() {
  local major
  if command -v node >/dev/null; then
    major=$(node_major node)
    [[ -n $major ]] && ((major >= 20)) && return 0
  fi
  local fetched=$node_dir/node_modules/.bin/node
  if [[ ! -x $fetched ]] || ! major=$(node_major "$fetched") || ((${major:-0} < 20)); then
    command -v npm >/dev/null ||
      die "Node.js >= 20 is needed (s3rver 4.0.4 requires it) and neither it nor npm is here: run scripts/setup.sh (it installs Debian's nodejs and npm)"
    say "node is $(node --version 2>/dev/null || echo missing); fetching $node_package from the npm registry into $node_dir"
    mkdir -p "$node_dir"
    if ! npm install --prefix "$node_dir" --no-audit --no-fund --no-save --loglevel=error "$node_package" >"$node_dir/npm.log" 2>&1; then
      cat "$node_dir/npm.log" >&2
      die "npm could not install $node_package into $node_dir (log above)"
    fi
    major=$(node_major "$fetched")
    [[ -n $major ]] && ((major >= 20)) || die "$fetched is not a working Node.js >= 20 (see $node_dir/npm.log)"
  fi
  PATH=$node_dir/node_modules/.bin:$PATH
  export PATH
}

check_node() {
  ensure_node
  command -v npm >/dev/null || die "npm not found: install npm for node $(node --version)"
}

install_server() {
  [[ -f $server_dir/package-lock.json ]] || die "missing $server_dir/package-lock.json"
  # npm ci leaves node_modules/.package-lock.json; reinstall when the lock file is newer.
  local stamp=$server_dir/node_modules/.package-lock.json
  if [[ -f $stamp && ! $server_dir/package-lock.json -nt $stamp && -f $server_dir/node_modules/@20minutes/s3rver/package.json ]]; then
    return 0
  fi
  say "installing s3rver (npm ci in tests/s3/server)"
  if ! (cd "$server_dir" && npm ci --no-audit --no-fund --loglevel=error >"$state_dir/npm-ci.log" 2>&1); then
    cat "$state_dir/npm-ci.log" >&2
    die "npm ci failed in $server_dir (log above)"
  fi
}

# Runs in the background as the server. The package ships no bin/ script, so it is
# started through its API: the bucket is created with configureBuckets(), and the
# HTTP server is ours (s3rver's own run() crashes on a taken port instead of
# rejecting). Arguments: data dir, port, whether the port was given, bucket, port
# file. "storewatch-s3rver" in argv marks the process for `stop`.
# shellcheck disable=SC2016 # JavaScript, not shell: ${...} is a template literal
launcher='
const [dataDir, portArg, portGiven, bucket, portFile] = process.argv.slice(2);
const fs = require("fs");
const http = require("http");
const S3rver = require("@20minutes/s3rver");
function listen(handler, port) {
  return new Promise((resolve, reject) => {
    const server = http.createServer(handler);
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}
(async () => {
  const app = new S3rver({
    directory: dataDir,
    silent: false,
    configureBuckets: [{ name: bucket, configs: [] }],
  });
  await app.configureBuckets();
  const handler = app.getMiddleware();
  let server;
  try {
    server = await listen(handler, Number(portArg));
  } catch (err) {
    if (err.code !== "EADDRINUSE" || portGiven === "1") throw err;
    console.error(`port ${portArg} is taken; using a free port`);
    server = await listen(handler, 0);
  }
  const { address, port } = server.address();
  fs.writeFileSync(portFile + ".tmp", String(port));
  fs.renameSync(portFile + ".tmp", portFile);
  console.log(`s3rver listening on ${address}:${port}, bucket ${bucket}`);
})().catch((err) => {
  console.error(`s3rver failed to start: ${err.message || err}`);
  process.exit(1);
});
'

start() {
  local pid
  if pid=$(running_pid); then
    die "already running (pid $pid, port $(cat "$port_file" 2>/dev/null || echo '?')); run 'scripts/s3-server.sh stop' first"
  fi
  check_node
  command -v curl >/dev/null || die "curl not found (used to wait for the server)"
  [[ $bucket =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]] || die "STOREWATCH_S3_BUCKET='$bucket' is not a valid bucket name"
  local port=${STOREWATCH_S3_PORT:-4568} port_given=0
  [[ -n ${STOREWATCH_S3_PORT:-} ]] && port_given=1
  if [[ ! $port =~ ^[0-9]+$ ]] || ((port > 65535)); then
    die "STOREWATCH_S3_PORT='$port' is not a port number"
  fi
  [[ $start_timeout =~ ^[0-9]+$ ]] || die "STOREWATCH_S3_START_TIMEOUT='$start_timeout' is not a number of seconds"

  mkdir -p "$state_dir"
  install_server
  rm -rf "$data_dir"
  rm -f "$pid_file" "$port_file" "$port_file.tmp"
  mkdir -p "$data_dir"
  echo "$bucket" >"$bucket_file"

  # Own the fds so that `$(scripts/s3-server.sh start)` does not wait for the server.
  (
    cd "$server_dir"
    export NODE_OPTIONS="--openssl-legacy-provider${NODE_OPTIONS:+ $NODE_OPTIONS}"
    exec node -e "$launcher" storewatch-s3rver "$data_dir" "$port" "$port_given" "$bucket" "$port_file"
  ) </dev/null >"$log_file" 2>&1 &
  pid=$!
  echo "$pid" >"$pid_file"

  # Bounded wait: until the port file appears and the port answers HTTP.
  local deadline=$((SECONDS + start_timeout)) bound_port=""
  while :; do
    if ! alive "$pid"; then
      rm -f "$pid_file"
      cat "$log_file" >&2
      die "s3rver exited during start (log above, $log_file)"
    fi
    if [[ -z $bound_port && -s $port_file ]]; then
      bound_port=$(<"$port_file")
    fi
    if [[ -n $bound_port ]] &&
      curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$bound_port/" 2>/dev/null; then
      break
    fi
    if ((SECONDS >= deadline)); then
      kill "$pid" 2>/dev/null || true
      rm -f "$pid_file"
      cat "$log_file" >&2
      die "s3rver did not answer within ${start_timeout}s (log above, $log_file)"
    fi
    sleep 0.1
  done
  say "s3rver $(node -p 'require(process.argv[1]).version' "$server_dir/node_modules/@20minutes/s3rver/package.json") running: pid $pid, http://127.0.0.1:$bound_port, bucket $bucket, log $log_file"
  print_env "$bound_port"
}

stop() {
  local pid
  if ! pid=$(running_pid); then
    if [[ -f $pid_file ]]; then
      say "not running (stale pid file removed)"
      rm -f "$pid_file" "$port_file" "$bucket_file"
    else
      say "not running"
    fi
    rm -rf "$data_dir"
    return 0
  fi
  local began=$SECONDS
  end_process "$pid"
  rm -f "$pid_file" "$port_file" "$bucket_file"
  say "stopped (pid $pid) in $((SECONDS - began)) s; removing its data ($(du -sh "$data_dir" 2>/dev/null | cut -f1))"
  began=$SECONDS
  rm -rf "$data_dir"
  say "data removed in $((SECONDS - began)) s"
}

case ${1:-} in
  start | stop)
    if external_store; then
      say "STOREWATCH_S3_ENDPOINT is set: the tests use that store; '$1' does nothing"
      exit 0
    fi
    "$1"
    ;;
  env)
    running_pid >/dev/null || die "not running; run 'scripts/s3-server.sh start'"
    bucket=$(<"$bucket_file")
    print_env "$(<"$port_file")"
    ;;
  node)
    ensure_node
    command -v node
    ;;
  *) usage ;;
esac
