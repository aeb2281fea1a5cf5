#!/usr/bin/env bash
# Customer registrations per second through the engine's HTTP API, next to the ceiling: a bare
# cpp-httplib server tuned the same way that only echoes the body (crm_echo_server). Both are
# driven by the same closed-loop client (crm_load) with the same body, connections and duration;
# prints a markdown table.
#   ops/bench/http_bench.sh [--connections N (32)] [--duration-s S (10)]
# Needs the Release build of ops/build.sh: build/crm, build/ops/bench/crm_load and crm_echo_server.
# The engine's data directory is a fresh `mktemp -d` (set TMPDIR to put it on another disk).
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() { echo "usage: ops/bench/http_bench.sh [--connections N (32)] [--duration-s S (10)]"; }

invocation="ops/bench/http_bench.sh${*:+ $*}"
connections=32
duration_s=10
while [ $# -gt 0 ]; do
  case "$1" in
    --connections) connections="${2:?--connections needs a value}"; shift 2 ;;
    --duration-s) duration_s="${2:?--duration-s needs a value}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "http_bench: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done

bench_name=http_bench
# shellcheck source=ops/bench/lib.sh
source ops/bench/lib.sh

load_flags_shown="--connections $connections --duration-s $duration_s --body-file $body_file \
--unique-field seq --unique-idempotency-key --expect-status 201"

# (a) The ceiling: the echo server.
start_echo
run_load echo "$echo_port"
stop_server

# (b) The engine: registrations on a fresh data directory.
start_crm
run_load crm "$crm_port" --header "Authorization: Bearer $token"
stop_server

# (c) The table.
echo_rps=$(result_field echo rps)
crm_rps=$(result_field crm rps)
echo_p50_us=$(result_field echo p50_us)
echo_p99_us=$(result_field echo p99_us)
crm_p50_us=$(result_field crm p50_us)
crm_p99_us=$(result_field crm p99_us)
crm_share_of_echo=$(awk -v crm="$crm_rps" -v echo="$echo_rps" \
  'BEGIN { if (echo > 0) printf "%.1f%%", 100 * crm / echo; else print "n/a" }')

cat <<EOF

| server | rps | p50 µs | p99 µs | rps vs echo |
|---|---:|---:|---:|---:|
| echo (bare cpp-httplib) | $echo_rps | $echo_p50_us | $echo_p99_us | 100% |
| crm registrations | $crm_rps | $crm_p50_us | $crm_p99_us | $crm_share_of_echo |

$(machine_line)
- Command: \`$invocation\`
- Each run: \`$load --target 127.0.0.1:PORT --method POST --path /v1/customers $load_flags_shown\`
  (crm adds \`--header "Authorization: Bearer \$TOKEN"\`); ${http_threads} server threads.
EOF
