#!/usr/bin/env bash
# Inbound commands from Kafka, end to end: N RegisterCustomer records published to crm.inbound
# of librdkafka's mock cluster (3 brokers, its own process) and applied by `crm serve
# --kafka-brokers` (each a customer, durable), timed from the first record published to the
# last one applied; beside the raw rate of librdkafka's transactional producer writing N records
# of the same size to the same cluster in the same run (the baseline). Prints a markdown table.
#   ops/bench/inbound_bench.sh [--records N (20000)]
# The mock cluster keeps only 5 MiB a partition: N up to about 200,000.
set -euo pipefail
cd "$(dirname "$0")/../.."

invocation="ops/bench/inbound_bench.sh${*:+ $*}"
records=20000
while [ $# -gt 0 ]; do
  case "$1" in
    --records) records="${2:?--records needs a value}"; shift 2 ;;
    -h | --help) echo "usage: ops/bench/inbound_bench.sh [--records N]"; exit 0 ;;
    *) echo "inbound_bench: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

bench_name=inbound_bench
mock=build/tests/crm_kafka_mock
publisher=build/ops/bench/crm_inbound_bench
required_binaries="$mock $publisher"
connections=1 duration_s=1
# shellcheck source=ops/bench/lib.sh
source ops/bench/lib.sh

"$mock" --brokers 3 --topic crm.inbound:8 --topic crm.rejected:1 --topic bench.baseline:8 \
  >"$work_dir/mock.out" 2>&1 &
mock_pid=$!
trap 'kill $mock_pid 2>/dev/null || true; cleanup' EXIT
for _ in $(seq 1 100); do
  grep -q '^BOOTSTRAP ' "$work_dir/mock.out" && break
  sleep 0.1
done
bootstrap=$(sed -n 's/^BOOTSTRAP //p' "$work_dir/mock.out")
[ -n "$bootstrap" ] || { echo "inbound_bench: the mock cluster did not start" >&2; exit 1; }
echo "== mock cluster: $bootstrap"

baseline=$("$publisher" --brokers "$bootstrap" --records "$records" --baseline)
echo "== $baseline"
baseline_rate=$(echo "$baseline" | sed -n 's/.*: \([0-9]*\) records\/s$/\1/p')

crm_port=$(free_loopback_port)
"$crm" serve --data-dir "$data_dir" --listen "127.0.0.1:$crm_port" --kafka-brokers "$bootstrap" \
  --kafka-settings session.timeout.ms=6000,heartbeat.interval.ms=500 >"$work_dir/crm.log" 2>&1 &
server_pid=$!
wait_until_ok "http://127.0.0.1:$crm_port/readyz" "$ready_deadline_s" "$work_dir/crm.log"
applied() {
  curl -s "http://127.0.0.1:$crm_port/metrics" |
    awk '/^crm_inbound_records_total\{outcome="applied"\}/ { printf "%.0f", $2 } END { }'
}
# One record first, so the consumer has joined its group and been assigned the partitions
# before the clock starts.
"$publisher" --brokers "$bootstrap" --records 1 --first "$records" --publish >/dev/null
until [ "$(applied)" = 1 ]; do
  kill -0 "$server_pid" 2>/dev/null || { echo "inbound_bench: crm exited" >&2; tail "$work_dir/crm.log" >&2; exit 1; }
  sleep 0.05
done
started=$(date +%s.%N)
"$publisher" --brokers "$bootstrap" --records "$records" --publish
until [ "$(applied)" = "$((records + 1))" ]; do
  kill -0 "$server_pid" 2>/dev/null || { echo "inbound_bench: crm exited" >&2; tail "$work_dir/crm.log" >&2; exit 1; }
  sleep 0.05
done
finished=$(date +%s.%N)
crm_rate=$(awk -v n="$records" -v a="$started" -v b="$finished" 'BEGIN { printf "%.0f", n / (b - a) }')
stop_server
ratio=$(awk -v a="$crm_rate" -v b="$baseline_rate" 'BEGIN { printf "%.1f%%", 100 * a / b }')

cat <<TABLE

| inbound, $records records | records/s | vs transactional producer |
|---|---:|---:|
| librdkafka transactional producer (baseline, transactions of 1,000) | $baseline_rate | 100% |
| crm: published to crm.inbound → applied, durable | $crm_rate | $ratio |

$(machine_line)
- Command: \`$invocation\`; the mock cluster's sockets lack TCP_NODELAY, so its round trips take
  2 or 43 ms at random: compare ratios from the same run only.
TABLE
