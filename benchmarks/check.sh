#!/usr/bin/env bash
# Fails when a benchmark ratio falls below its floor in benchmarks/floors.txt:
# runs the ratio-printing benchmarks at small sizes (a few seconds), reads
# every "<figure>: <ratio>" line they print, and checks each figure the
# floors name. Ratios only (each to a baseline in the same run), so a
# shared, noisy machine passes; a 2x regression does not.
#
# Usage: benchmarks/check.sh [options] BENCH_DIR   (the build's benchmarks/ folder)
#   --floors FILE   the floors (default: floors.txt beside this script)
#   --save FILE     also keep the benchmarks' output in FILE
#   --from FILE     check the output saved in FILE instead of running them
# STOREWATCH_CHECK_SCALE=F multiplies every measured ratio by F before the
# check: F=0.4 is what a 2.5x regression would print (the CTest test
# benchmark_check.catches_regression runs it so, and expects the failure).
# Exit status: 0 all at or above their floors, 1 some below (each named on
# stderr with its value and floor) or missing, 2 usage or a benchmark failed.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
floors=$here/floors.txt
save=""
from=""
while (($# > 1)); do
  case $1 in
    --floors) floors=$2; shift 2 ;;
    --save) save=$2; shift 2 ;;
    --from) from=$2; shift 2 ;;
    *) break ;;
  esac
done
if (($# != 1)) && [[ -z $from ]]; then
  echo "usage: check.sh [--floors FILE] [--save FILE | --from FILE] BENCH_DIR" >&2
  exit 2
fi
bench=${1:-}

output=$(mktemp)
trap 'rm -f "$output"' EXIT
if [[ -n $from ]]; then
  cat "$from" >"$output" || exit 2
else
  # Sizes: a few seconds each on a loaded 2-core machine; stream_throughput
  # takes the median of its rounds' ratios.
  for run in "stream_throughput 50000 5" "journal_catchup 100000 5"; do
    echo "== $run" >>"$output"
    # shellcheck disable=SC2086  # the words of $run are the program and its arguments
    if ! "$bench"/$run >>"$output" 2>&1; then
      cat "$output" >&2
      echo "check.sh: $run failed" >&2
      exit 2
    fi
  done
fi
if [[ -n $save ]]; then cp "$output" "$save"; fi

awk -v scale="${STOREWATCH_CHECK_SCALE:-1}" '
  # The floors file first: "<floor> <figure>".
  FNR == NR {
    if ($0 ~ /^[ \t]*(#|$)/) next
    floor = $1
    figure = $0
    sub(/^[ \t]*[^ \t]+[ \t]+/, "", figure)
    sub(/[ \t]+$/, "", figure)
    floors[figure] = floor
    order[++count] = figure
    next
  }
  # Then the output: "<figure>: <ratio>", the figure up to the last ": ".
  /: [0-9]+(\.[0-9]+)?$/ {
    at = match($0, /: [0-9]+(\.[0-9]+)?$/)
    measured[substr($0, 1, at - 1)] = substr($0, at + 2) * scale
  }
  END {
    bad = 0
    for (i = 1; i <= count; ++i) {
      figure = order[i]
      if (!(figure in measured)) {
        printf "check.sh: \"%s\" was not printed (floor %s)\n", figure, floors[figure] > "/dev/stderr"
        bad = 1
      } else if (measured[figure] + 0 < floors[figure] + 0) {
        printf "check.sh: \"%s\" is %.2f, below its floor %s\n", figure, measured[figure], floors[figure] > "/dev/stderr"
        bad = 1
      } else {
        printf "ok %-55s %6.2f >= %s\n", figure, measured[figure], floors[figure]
      }
    }
    exit bad
  }
' "$floors" "$output"
