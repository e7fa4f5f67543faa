#!/usr/bin/env bash
# scripts/s3-server.sh on a machine whose node is Debian 12's (18): it fetches
# Node.js 20 from the npm registry with npm, and that is the node it runs
# s3rver with. The machine's node stands behind a shim that reports 18.
#
#   tests/s3/node_provision_test.sh path/to/scripts/s3-server.sh
set -euo pipefail
script=$1
real_node=$(command -v node) || { echo "node_provision_test: no node to stand behind the shim" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/bin"
cat >"$work/bin/node" <<SHIM
#!/bin/sh
# Node.js 18 as far as any version check can tell; everything else runs on the real one.
case "\$1" in
  --version | -v) echo v18.19.0; exit 0 ;;
  -p) case "\$2" in *versions.node*) echo 18; exit 0 ;; esac ;;
esac
exec "$real_node" "\$@"
SHIM
chmod +x "$work/bin/node"

fail() {
  echo "node_provision_test: $*" >&2
  exit 1
}

[[ $(PATH="$work/bin:$PATH" node --version) == v18.19.0 ]] || fail "the shim does not pose as node 18"
used=$(PATH="$work/bin:$PATH" STOREWATCH_NODE_DIR="$work/node" "$script" node) || fail "s3-server.sh node failed"
[[ $used == "$work/node/node_modules/.bin/node" ]] || fail "expected the fetched node, got '$used'"
version=$("$used" --version)
[[ $version =~ ^v([0-9]+)\. ]] && ((BASH_REMATCH[1] >= 20)) || fail "the fetched node is $version, not >= 20"

# A second run finds it and fetches nothing.
again=$(PATH="$work/bin:$PATH" STOREWATCH_NODE_DIR="$work/node" "$script" node 2>"$work/second.err")
[[ $again == "$used" ]] || fail "second run: expected $used, got '$again'"
! grep -q fetching "$work/second.err" || fail "second run fetched again: $(cat "$work/second.err")"

# The fixture's start runs s3rver on the fetched node, and it answers.
state=$work/state
PATH="$work/bin:$PATH" STOREWATCH_NODE_DIR="$work/node" STOREWATCH_S3_STATE_DIR="$state" STOREWATCH_S3_PORT=0 \
  STOREWATCH_S3_ENDPOINT="" STOREWATCH_S3_LOCAL_SERVER="" "$script" start >"$work/start.env" ||
  fail "s3-server.sh start failed behind the node 18 shim"
trap 'STOREWATCH_S3_STATE_DIR="$state" "$script" stop 2>/dev/null; rm -rf "$work"' EXIT
server_exe=$(readlink "/proc/$(<"$state/s3rver.pid")/exe")
[[ $server_exe == "$(readlink -f "$used")" ]] || fail "s3rver runs on '$server_exe', not the fetched $used"
curl -s -o /dev/null "http://127.0.0.1:$(<"$state/s3rver.port")/" || fail "s3rver does not answer"
STOREWATCH_S3_STATE_DIR="$state" "$script" stop 2>/dev/null

# With a node >= 20 on PATH, that one is used and nothing is fetched.
system=$(STOREWATCH_NODE_DIR="$work/unused" "$script" node)
[[ $system == "$real_node" ]] || fail "with node >= 20 on PATH expected $real_node, got '$system'"
[[ ! -e $work/unused ]] || fail "fetched a node although the system's is new enough"
echo "node_provision_test: 18 on PATH -> fetched $version, s3rver ran on it; >= 20 on PATH -> used as is"
