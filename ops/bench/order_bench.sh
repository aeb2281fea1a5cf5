#!/usr/bin/env bash
# Submits of 5-item orders per second through the engine's HTTP API — offer rules checked,
# every line priced, the receipt fixed, durable before the reply — next to the echo baseline of
# ops/bench/http_bench.sh (a bare cpp-httplib server answering the registration body), both
# driven by crm_load with the same connections and duration in the same run.
#   ops/bench/order_bench.sh [--connections N (32)] [--duration-s S (10)] [--orders N (60000)]
# Draft orders are prepared first by crm_order_seed (not measured): five offers with rules,
# 64 customers, N drafts of five items; crm_load then POSTs each draft's :submit once.
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() {
  echo "usage: ops/bench/order_bench.sh [--connections N (32)] [--duration-s S (10)]" \
    "[--orders N (60000)]"
}

invocation="ops/bench/order_bench.sh${*:+ $*}"
connections=32
duration_s=10
orders=60000
while [ $# -gt 0 ]; do
  case "$1" in
    --connections) connections="${2:?--connections needs a value}"; shift 2 ;;
    --duration-s) duration_s="${2:?--duration-s needs a value}"; shift 2 ;;
    --orders) orders="${2:?--orders needs a value}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "order_bench: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done

bench_name=order_bench
seed=build/ops/bench/crm_order_seed
required_binaries=$seed
# shellcheck source=ops/bench/lib.sh
source ops/bench/lib.sh

# (a) The ceiling: the echo server, as in http_bench.sh.
start_echo
run_load echo "$echo_port"
stop_server

# (b) The engine: drafts prepared, then each submitted once.
start_crm
seed_started=$SECONDS
"$seed" --target "127.0.0.1:$crm_port" --token "$token" --orders "$orders" --customers 64 \
  --connections "$connections" --out "$work_dir/submits.txt"
echo "== seeded in $((SECONDS - seed_started)) s"
submit_flags="--method POST --connections $connections --duration-s $duration_s \
--unique-idempotency-key --expect-status 200"
# shellcheck disable=SC2086  # submit_flags is a list of flags
if ! "$load" --target "127.0.0.1:$crm_port" $submit_flags --path-file "$work_dir/submits.txt" \
  --header "Authorization: Bearer $token" 2>&1 | tee "$work_dir/submit.out"; then
  echo "order_bench: the submit run failed (see the first error above)" >&2
  exit 1
fi
grep '^RESULT ' "$work_dir/submit.out" >"$work_dir/submit.result"
stop_server

# (c) The table.
echo_rps=$(result_field echo rps)
submit_rps=$(result_field submit rps)
share=$(awk -v crm="$submit_rps" -v echo="$echo_rps" \
  'BEGIN { if (echo > 0) printf "%.1f%%", 100 * crm / echo; else print "n/a" }')

cat <<EOF

| server | rps | p50 µs | p99 µs | rps vs echo |
|---|---:|---:|---:|---:|
| echo (bare cpp-httplib) | $echo_rps | $(result_field echo p50_us) | $(result_field echo p99_us) | 100% |
| crm 5-item order submits | $submit_rps | $(result_field submit p50_us) | $(result_field submit p99_us) | $share |

$(machine_line)
- Command: \`$invocation\`
- Submit run: \`$load --target 127.0.0.1:PORT $submit_flags --path-file SUBMITS\`
  after \`$seed --orders $orders --customers 64\`; ${http_threads} server threads.
EOF
