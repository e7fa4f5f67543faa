#!/usr/bin/env bash
# Builds the libFuzzer targets with clang++-16 in build/fuzz (a configure of
# its own: STOREWATCH_BUILD_FUZZERS=ON, tests, examples, benchmarks and tools
# OFF) and runs each for BUDGET seconds (default 60) on a copy of its corpus,
# so the checked-in corpus under tests/fuzz/corpus/ is never modified. The
# corpus holds the regression inputs of bugs found so far: they are replayed
# first.
#
#   tests/fuzz/run.sh [BUDGET_SECONDS] [TARGET...]
#   tests/fuzz/run.sh --build-only [TARGET...]     configure and build, run nothing
#
# Prints one line per target: seconds, executions (libFuzzer's final
# stat::number_of_executed_units) and crashes. Exit status 1 if any target
# crashed, timed out, ran out of memory or broke a property (the input is kept
# in build/fuzz/run/<target>/artifacts/, the report in build/fuzz/run/<target>/log);
# 2 on a usage or build error.
#
# Environment: CXX (default clang++-16), STOREWATCH_FUZZ_JOBS (how many to
# build and run at once, default 2), STOREWATCH_FUZZ_TIMEOUT (seconds one input may take,
# default 25).
set -uo pipefail

build_only=false
if [[ ${1:-} == --build-only ]]; then
  build_only=true
  shift
  set -- 60 "$@"
fi
budget=${1:-60}
if ! [[ $budget =~ ^[1-9][0-9]*$ ]]; then
  echo "run.sh: the budget must be a positive number of seconds, not '$budget'" >&2
  exit 2
fi
shift $(($# > 0 ? 1 : 0))

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$repo/build/fuzz
all_targets=(fuzz_versioned_path fuzz_event_json fuzz_journal_record fuzz_journal_cursor fuzz_journal_scan fuzz_checkpoint
             fuzz_time fuzz_cli fuzz_s3_listing fuzz_aws_ini)
targets=()
declare -A named=()
for target in "$@"; do
  if [[ ! -d $repo/tests/fuzz/corpus/$target ]]; then
    echo "run.sh: unknown target '$target' (${all_targets[*]})" >&2
    exit 2
  fi
  # A target named twice runs once: two runs of one target would share its folder.
  [[ -n ${named[$target]:-} ]] && continue
  named[$target]=1
  targets+=("$target")
done
((${#targets[@]} == 0)) && targets=("${all_targets[@]}")

cxx=${CXX:-clang++-16}
mkdir -p "$build"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if ! cmake -S "$repo" -B "$build" "${generator[@]}" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE= \
       -DCMAKE_CXX_FLAGS="-O1 -gline-tables-only" -DSTOREWATCH_BUILD_FUZZERS=ON -DSTOREWATCH_BUILD_TESTS=OFF \
       -DSTOREWATCH_BUILD_EXAMPLES=OFF -DSTOREWATCH_BUILD_BENCHMARKS=OFF -DSTOREWATCH_BUILD_TOOLS=OFF \
       -DSTOREWATCH_INSTALL=OFF >"$build/configure.log" 2>&1; then
  cat "$build/configure.log" >&2
  echo "run.sh: configuring $build failed" >&2
  exit 2
fi
if ! cmake --build "$build" --parallel "${STOREWATCH_FUZZ_JOBS:-2}" --target "${targets[@]}"; then
  echo "run.sh: building the fuzz targets failed" >&2
  exit 2
fi
if $build_only; then exit 0; fi

export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
# Runs one target on a copy of its corpus and writes its line of the table
# to $work/result (the targets run STOREWATCH_FUZZ_JOBS at a time).
run_target() {
  local target=$1
  local work=$build/run/$target
  rm -rf "$work"
  mkdir -p "$work/artifacts"
  cp -R "$repo/tests/fuzz/corpus/$target" "$work/corpus"
  local started status seconds executions crashes
  started=$(date +%s)
  "$build/tests/fuzz/$target" -max_total_time="$budget" -print_final_stats=1 \
    -timeout="${STOREWATCH_FUZZ_TIMEOUT:-25}" -artifact_prefix="$work/artifacts/" "$work/corpus" \
    >"$work/log" 2>&1
  status=$?
  seconds=$(($(date +%s) - started))
  executions=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/log" | tail -n 1 | grep -o '[0-9]*$')
  crashes=$(find "$work/artifacts" -type f | wc -l)
  ((status != 0 && crashes == 0)) && crashes=1
  printf '%-22s %8s %14s %8s %s\n' "$target" "$seconds" "${executions:-?}" "$crashes" "$status" >"$work/result"
}

parallel=${STOREWATCH_FUZZ_JOBS:-2}
for target in "${targets[@]}"; do
  while (($(jobs -rp | wc -l) >= parallel)); do wait -n; done
  run_target "$target" &
done
wait

failed=0
printf '%-22s %8s %14s %8s\n' target seconds executions crashes
for target in "${targets[@]}"; do
  work=$build/run/$target
  if [[ ! -f $work/result ]]; then
    printf '%-22s %8s %14s %8s\n' "$target" "?" "?" 1
    failed=1
    continue
  fi
  read -r _ seconds executions crashes status <"$work/result"
  printf '%-22s %8s %14s %8s\n' "$target" "$seconds" "$executions" "$crashes"
  if ((crashes > 0)); then
    failed=1
    {
      echo "---- $target failed (exit status $status); inputs:"
      find "$work/artifacts" -type f | sed 's/^/  /'
      echo "---- end of $work/log:"
      grep -v '^#[0-9]' "$work/log" | tail -n 40
      echo "----"
    } >&2
  fi
done
exit "$failed"
