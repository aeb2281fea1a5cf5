#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang into build-fuzz/ (installing the Debian
# packages that are missing, as ops/build.sh does) and runs each for a bounded time.
#   ops/fuzz.sh                each target for 60 seconds, one after the other
#   ops/fuzz.sh --seconds N    each target for N seconds
# Each target starts from a copy of its seeds in build-fuzz/corpus/<target> (the committed
# corpus stays as it is; what a run finds is kept there for the next run). Exits non-zero when
# a target finds a crash, a leak, a sanitizer report or a broken invariant; the input is kept in
# build-fuzz/artifacts/<target>/ and replays with `build-fuzz/<target> <file>`.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds)
      seconds="${2:-}"
      shift 2 || shift
      ;;
    *)
      echo "usage: ops/fuzz.sh [--seconds N]" >&2
      exit 2
      ;;
  esac
done
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "ops/fuzz.sh: --seconds takes a whole number of seconds above 0" >&2
  exit 2
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# clang with its runtime (libFuzzer, ASan, UBSan), and what ops/build.sh installs for protobuf
# and OpenSSL (the SHA-256 behind the customer ids of fuzz_inbound).
packages=(build-essential cmake libprotobuf-dev protobuf-compiler libssl-dev libclang-rt-14-dev)
installed clang-14 || installed clang || packages+=(clang-14)
ops/install-packages.sh "${packages[@]}"
cxx=$(command -v clang++-14 || command -v clang++)

build_dir=build-fuzz
cmake -S tests/fuzz -B "$build_dir" -DCMAKE_CXX_COMPILER="$cxx" >/dev/null
cmake --build "$build_dir" -j 2

# JSON seeds are bodies named "<message full name>--<what>.json"; the target reads the message
# from the input's first byte, its index in the list the target prints.
copy_json_seeds() {
  local corpus=$1
  local -A index=()
  local i name seed base
  while read -r i name; do
    index[$name]=$i
  done < <(CRM_FUZZ_PRINT=messages "$build_dir/fuzz_json_body")
  for seed in tests/fuzz/corpus/fuzz_json_body/*.json; do
    base=$(basename "$seed" .json)
    name=${base%%--*}
    i=${index[$name]:-}
    if [ -z "$i" ] || [ "$i" -gt 255 ]; then
      echo "ops/fuzz.sh: $seed: no message $name within the first byte's reach; skipped" >&2
      continue
    fi
    {
      printf "\\$(printf '%03o' "$i")"
      cat "$seed"
    } >"$corpus/$base"
  done
}

failed=0
for target in fuzz_json_body fuzz_csv fuzz_inbound; do
  corpus="$build_dir/corpus/$target"
  artifacts="$build_dir/artifacts/$target"
  log="$build_dir/$target.log"
  mkdir -p "$corpus" "$artifacts"
  options=(-max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048
    -print_final_stats=1 -artifact_prefix="$artifacts/")
  if [ "$target" = fuzz_json_body ]; then
    copy_json_seeds "$corpus"
  else
    cp tests/fuzz/corpus/"$target"/* "$corpus"/
  fi
  # Targets whose input goes through libprotobuf's JSON parser (not instrumented) print a
  # dictionary of the field names and enum values the fuzzer cannot learn from coverage.
  if [ "$target" != fuzz_csv ]; then
    CRM_FUZZ_PRINT=dictionary "$build_dir/$target" >"$build_dir/$target.dict"
    options+=(-dict="$build_dir/$target.dict")
  fi

  result=ok
  "$build_dir/$target" "${options[@]}" "$corpus" >"$log" 2>&1 || result=FAILED
  executions=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || true)
  [ -n "$executions" ] || executions=$(grep -o '^#[0-9]*' "$log" | tail -n 1 | tr -d '#' || true)
  echo "$target: ${executions:-?} executions in ${seconds} s," \
    "$(find "$corpus" -type f | wc -l) inputs in $corpus: $result"
  if [ "$result" != ok ]; then
    failed=1
    tail -n 60 "$log" >&2
    inputs=$(grep -o 'Test unit written to .*' "$log" | sed 's/^Test unit written to //' || true)
    echo "$target: the input: ${inputs:-none written}; the whole log: $log" >&2
  fi
done
exit "$failed"
