#!/usr/bin/env bash
# The resident size of `crm serve` while the number of customers grows: registers customers over
# HTTP (the registration load of http_bench.sh, run until the log holds N customers) and samples
# VmRSS of the engine every tenth of the way; prints a markdown table. The engine bounds what it
# keeps in memory (the aggregate cache's entries, RocksDB's block cache and memtables), so the
# resident size should level off however many customers there are.
#   ops/bench/memory_bench.sh [--customers N (1000000)] [--connections N (32)]
# Needs the Release build of ops/build.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."

invocation="ops/bench/memory_bench.sh${*:+ $*}"
customers=1000000
connections=32
while [ $# -gt 0 ]; do
  case "$1" in
    --customers) customers="${2:?--customers needs a value}"; shift 2 ;;
    --connections) connections="${2:?--connections needs a value}"; shift 2 ;;
    -h | --help) echo "usage: ops/bench/memory_bench.sh [--customers N] [--connections N]"; exit 0 ;;
    *) echo "memory_bench: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

bench_name=memory_bench
duration_s=100000 # the load runs until stopped below
# shellcheck source=ops/bench/lib.sh
source ops/bench/lib.sh

start_crm
crm_pid=$server_pid
rss_mib() { awk '/^VmRSS:/ { printf "%.0f", $2 / 1024 }' "/proc/$crm_pid/status"; }
events_in_log() {
  curl -s "http://127.0.0.1:$crm_port/metrics" |
    awk '/^crm_log_end_offset\{/ { sum += $2 } END { printf "%.0f", sum }'
}
echo "== at start: $(rss_mib) MiB resident"
"$load" --target "127.0.0.1:$crm_port" --method POST --path /v1/customers \
  --connections "$connections" --duration-s "$duration_s" --warmup-s 0 \
  --body-file "$body_file" --content-type application/json --unique-field seq \
  --unique-idempotency-key --expect-status 201 \
  --header "Authorization: Bearer $token" >"$work_dir/load.out" 2>&1 &
load_pid=$!
started=$SECONDS
rows=""
peak=0
next_mark=1
while [ "$next_mark" -le 10 ]; do
  sleep 2
  kill -0 "$load_pid" 2>/dev/null || { echo "memory_bench: the load stopped:" >&2; tail "$work_dir/load.out" >&2; exit 1; }
  registered=$(($(events_in_log) - 1)) # the admin principal's event
  rss=$(rss_mib)
  [ "$rss" -gt "$peak" ] && peak=$rss
  while [ "$next_mark" -le 10 ] && [ "$registered" -ge $((customers * next_mark / 10)) ]; do
    rows+="| $registered | $rss | $((SECONDS - started)) |"$'\n'
    echo "== $registered customers: $rss MiB resident"
    next_mark=$((next_mark + 1))
  done
done
kill "$load_pid" 2>/dev/null || true
wait "$load_pid" 2>/dev/null || true

cat <<TABLE

| customers registered | crm serve resident MiB | seconds |
|---:|---:|---:|
${rows%$'\n'}

- Peak resident size sampled: $peak MiB (every 2 s).
$(machine_line)
- Command: \`$invocation\`
TABLE
