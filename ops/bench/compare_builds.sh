#!/usr/bin/env bash
# Two builds of crm, one against the other: the registration load of http_bench.sh run on each in
# turn (baseline, candidate, baseline, …) so that both meet the same moments of a noisy machine.
# Per run: registrations/s, crm's CPU per registration and its context switches per registration
# (both read from /proc); then the candidate's medians as ratios of the baseline's.
#   ops/bench/compare_builds.sh --baseline BIN [--candidate BIN (build/crm)] [--rounds N (3)]
#                               [--connections N (32)] [--duration-s S (6)] [-- crm serve flags]
# Make a baseline binary from another commit with, for example:
#   git worktree add /tmp/base <commit> && cmake -S /tmp/base -B /tmp/base/build \
#     -DCMAKE_BUILD_TYPE=Release && cmake --build /tmp/base/build --target crm
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() {
  echo "usage: ops/bench/compare_builds.sh --baseline BIN [--candidate BIN (build/crm)]" \
    "[--rounds N (3)] [--connections N (32)] [--duration-s S (6)] [-- crm serve flags]"
}

invocation="ops/bench/compare_builds.sh${*:+ $*}"
baseline=""
candidate=build/crm
rounds=3
connections=32
duration_s=6
serve_flags=()
while [ $# -gt 0 ]; do
  case "$1" in
    --baseline) baseline="${2:?--baseline needs a value}"; shift 2 ;;
    --candidate) candidate="${2:?--candidate needs a value}"; shift 2 ;;
    --rounds) rounds="${2:?--rounds needs a value}"; shift 2 ;;
    --connections) connections="${2:?--connections needs a value}"; shift 2 ;;
    --duration-s) duration_s="${2:?--duration-s needs a value}"; shift 2 ;;
    --) shift; serve_flags=("$@"); break ;;
    -h | --help) usage; exit 0 ;;
    *) echo "compare_builds: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
if [ -z "$baseline" ]; then
  echo "compare_builds: --baseline is required" >&2
  usage >&2
  exit 2
fi
for binary in "$baseline" "$candidate"; do
  if [ ! -x "$binary" ]; then
    echo "compare_builds: $binary is not an executable" >&2
    exit 2
  fi
done
if ! [[ "$rounds" =~ ^[1-9][0-9]*$ ]]; then
  echo "compare_builds: --rounds must be a positive number" >&2
  exit 2
fi

bench_name=compare_builds
# shellcheck source=ops/bench/lib.sh
source ops/bench/lib.sh

for round in $(seq 1 "$rounds"); do
  for which in baseline candidate; do
    if [ "$which" = baseline ]; then binary=$baseline; else binary=$candidate; fi
    start_crm "$binary" ${serve_flags[@]+"${serve_flags[@]}"} >/dev/null
    measure_run "$which" "$round" "$crm_port" --header "Authorization: Bearer $token"
    echo "round $round $which: $(tail -n 1 "$results" | cut -d' ' -f3) registrations/s" >&2
  done
done

echo
echo "| build | round | registrations/s | crm CPU µs a registration | context switches a registration |"
echo "|---|---:|---:|---:|---:|"
awk '{ printf "| %s | %d | %d | %d | %.2f |\n", $1, $2, $3, $4, $5 }' "$results"
echo
base_rps=$(median 3 baseline)
cand_rps=$(median 3 candidate)
base_cpu=$(median 4 baseline)
cand_cpu=$(median 4 candidate)
awk -v br="$base_rps" -v cr="$cand_rps" -v bc="$base_cpu" -v cc="$cand_cpu" 'BEGIN {
  printf "Medians: baseline %d/s, candidate %d/s: candidate at %.1f%% of the baseline'"'"'s rate, ", br, cr, 100 * cr / br
  printf "%.1f%% of its CPU a registration.\n", 100 * cc / bc
}'
echo
machine_line
echo "- Command: \`$invocation\`; baseline \`$baseline\`, candidate \`$candidate\`."
