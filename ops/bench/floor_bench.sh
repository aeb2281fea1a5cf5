#!/usr/bin/env bash
# How much of the gap between the echo server and `crm serve` the pieces issue 2 requires take by
# themselves. Runs, in turn and for several rounds (so each meets the same moments of a noisy
# machine), the registration load of http_bench.sh against:
#   echo          the bare cpp-httplib server (the baseline of every HTTP benchmark)
#   floor-json    crm_floor_server --write off: the body parsed and a customer printed through
#                 protobuf's JSON util, nothing written
#   floor-write   crm_floor_server --json off: the body echoed, a synced RocksDB write of three
#                 keys through one group-commit writer thread
#   floor         both: the least a durable registration costs with the pieces required
#   floor-direct  the same, each HTTP thread writing its own synced batch (RocksDB groups them)
#   crm           `crm serve` on a fresh data directory
# and prints each one's rate, its CPU a request and its context switches a request (from /proc),
# then the medians as shares of the echo server's rate.
#   ops/bench/floor_bench.sh [--rounds N (3)] [--connections N (32)] [--duration-s S (6)]
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() {
  echo "usage: ops/bench/floor_bench.sh [--rounds N (3)] [--connections N (32)] [--duration-s S (6)]"
}

invocation="ops/bench/floor_bench.sh${*:+ $*}"
rounds=3
connections=32
duration_s=6
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="${2:?--rounds needs a value}"; shift 2 ;;
    --connections) connections="${2:?--connections needs a value}"; shift 2 ;;
    --duration-s) duration_s="${2:?--duration-s needs a value}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "floor_bench: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
if ! [[ "$rounds" =~ ^[1-9][0-9]*$ ]]; then
  echo "floor_bench: --rounds must be a positive number" >&2
  exit 2
fi

bench_name=floor_bench
floor_server=build/ops/bench/crm_floor_server
required_binaries=$floor_server
# shellcheck source=ops/bench/lib.sh
source ops/bench/lib.sh

# start_floor FLAGS…: the floor server on a fresh data directory; sets floor_port and server_pid.
start_floor() {
  fresh_data_dir
  floor_port=$(free_loopback_port)
  "$floor_server" --data-dir "$data_dir" --listen "127.0.0.1:$floor_port" \
    --threads "$http_threads" "$@" >"$work_dir/floor_server.log" 2>&1 &
  server_pid=$!
  wait_until_ok "http://127.0.0.1:$floor_port/healthz" 10 "$work_dir/floor_server.log"
}

servers="echo floor-json floor-write floor floor-direct crm"
for round in $(seq 1 "$rounds"); do
  for which in $servers; do
    auth=()
    case "$which" in
      echo) start_echo >/dev/null; port=$echo_port ;;
      floor-json) start_floor --write off; port=$floor_port ;;
      floor-write) start_floor --json off; port=$floor_port ;;
      floor) start_floor; port=$floor_port ;;
      floor-direct) start_floor --writer direct; port=$floor_port ;;
      crm)
        start_crm >/dev/null
        port=$crm_port
        auth=(--header "Authorization: Bearer $token")
        ;;
    esac
    measure_run "$which" "$round" "$port" ${auth[@]+"${auth[@]}"}
    echo "round $round $which: $(tail -n 1 "$results" | cut -d' ' -f3) requests/s" >&2
  done
done

echo
echo "| server | round | requests/s | server CPU µs a request | context switches a request |"
echo "|---|---:|---:|---:|---:|"
awk '{ printf "| %s | %d | %d | %d | %.2f |\n", $1, $2, $3, $4, $5 }' "$results"
echo
describe() {
  case "$1" in
    echo) echo "echo (bare cpp-httplib)" ;;
    floor-json) echo "floor: protobuf JSON in and out, nothing written" ;;
    floor-write) echo "floor: a synced group-commit write of 3 keys, no JSON" ;;
    floor) echo "floor: JSON in and out and the synced write" ;;
    floor-direct) echo "floor, each HTTP thread writing its own synced batch" ;;
    crm) echo "crm registrations" ;;
  esac
}
echo "| server (medians) | what | requests/s | share of echo | server CPU µs a request |"
echo "|---|---|---:|---:|---:|"
echo_rps=$(median 3 echo)
for which in $servers; do
  awk -v which="$which" -v what="$(describe "$which")" -v rps="$(median 3 "$which")" \
    -v cpu="$(median 4 "$which")" -v echo_rps="$echo_rps" 'BEGIN {
      printf "| %s | %s | %d | %.1f%% | %d |\n", which, what, rps, 100 * rps / echo_rps, cpu
    }'
done
echo
machine_line
echo "- Command: \`$invocation\`; every run: $load, $connections connections, ${duration_s} s" \
  "measured after a ${warmup_s} s warm-up, the registration body of http_bench.sh."
