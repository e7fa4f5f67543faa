#!/usr/bin/env bash
# Installs what storewatch needs from Debian 12's packages (as root, or with sudo).
#   scripts/setup.sh          everything: compilers, sanitizer runtimes, libraries, Catch2,
#                             and the packaging and docs tools
#   scripts/setup.sh --demo   only what building the examples and the tool needs
set -euo pipefail

packages=(g++ cmake ninja-build libasio-dev nlohmann-json3-dev zlib1g-dev)
# The S3 store (storewatch::s3): SHA-256 and HMAC for SigV4 signing, the XML
# parser for S3's responses, and libcurl for HTTP(S).
packages+=(libssl-dev libpugixml-dev libcurl4-openssl-dev)
# The Redis wake-up hints (storewatch::redis): hiredis's async API (0.14 in
# Debian 12: no TLS).
packages+=(libhiredis-dev)
# The tool's and the programs' command lines (CLI11), and the tool's ISO 8601
# times (Howard Hinnant's date library); both header-only.
packages+=(libcli11-dev libhowardhinnant-date-dev)
if [[ "${1:-}" != "--demo" ]]; then
  packages+=(catch2 clang-16 libclang-rt-16-dev)
  # The packaging tests: pkg-config, the Conan recipe's stand-in run and
  # lint, and the API reference (docs/Doxyfile).
  packages+=(pkgconf python3 pyflakes3 doxygen)
  # The reference S3 client of tests/s3/parity_test.cpp (/usr/bin/aws, awscli 2.x),
  # and the openssl command that makes tests/s3/ca_bundle_test.cpp's private CA.
  packages+=(awscli openssl)
  # The baselines of benchmarks/wakeup_latency and directory_latency, the
  # peers in benchmarks/directory_latency and directory_scan, and the
  # latency plots (benchmarks/plot_latency.py).
  packages+=(inotify-tools python3-watchdog python3-matplotlib)
  # The S3 tests' server, s3rver, runs on Node.js >= 20: Debian's nodejs (18)
  # and npm are enough, as scripts/s3-server.sh then fetches Node.js 20 from
  # the npm registry. A node already here (20 from elsewhere) is kept.
  # (scripts/s3-server.sh waits for it to answer with the curl command.)
  packages+=(curl)
  # The hint tests' server (scripts/redis-server.sh starts one per test run on
  # a loopback port; the system's service is not used).
  packages+=(redis-server)
  command -v node >/dev/null || packages+=(nodejs)
  command -v npm >/dev/null || packages+=(npm)
fi

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
