#!/usr/bin/env bash
# The auditors' tools on a log of N events (1 million by default): `crm replay` (every read model
# rebuilt from position 0) and `crm verify` (every hash chain recomputed), each as events/s
# beside a plain RocksDB write of the same number of records of the same size, measured in the
# same run by crm_log_seed. Prints a markdown table.
#   ops/bench/audit_bench.sh [--events N (1000000)]
# Needs the Release build of ops/build.sh: build/crm and build/ops/bench/crm_log_seed.
set -euo pipefail
cd "$(dirname "$0")/../.."

events=1000000
while [ $# -gt 0 ]; do
  case "$1" in
    --events) events="${2:?--events needs a value}"; shift 2 ;;
    -h | --help) echo "usage: ops/bench/audit_bench.sh [--events N (1000000)]"; exit 0 ;;
    *) echo "audit_bench: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
for binary in build/crm build/ops/bench/crm_log_seed; do
  [ -x "$binary" ] || { echo "audit_bench: $binary is missing: run ops/build.sh" >&2; exit 1; }
done

work_dir=$(mktemp -d)
trap 'rm -rf "$work_dir"' EXIT

seed=$(build/ops/bench/crm_log_seed --data-dir "$work_dir/data" --baseline-dir "$work_dir/baseline" \
  --events "$events")
echo "$seed" >&2
baseline_rate=$(echo "$seed" | sed -n 's/^baseline: .*: \([0-9]*\) records\/s$/\1/p')

replay=$(build/crm replay --data-dir "$work_dir/data" 2>/dev/null)
echo "$replay" >&2
replay_rate=$(echo "$replay" | sed -n 's/^events replayed: .*(\([0-9]*\) events\/s)$/\1/p')
echo "$replay" | grep -qx identical || { echo "audit_bench: replay was not identical" >&2; exit 1; }

verify=$(build/crm verify --data-dir "$work_dir/data" 2>&1 >/dev/null | tail -1)
echo "$verify" >&2
verify_rate=$(echo "$verify" | sed -n 's/^crm verify: .*(\([0-9]*\) events\/s): as written$/\1/p')

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", 100 * a / b }'; }
echo
echo "| on a log of $events events | events/s | vs plain RocksDB write |"
echo "|---|---:|---:|"
echo "| plain RocksDB write (baseline, batches of 1,000, unsynced) | $baseline_rate | 100% |"
echo "| \`crm replay\` (every read model rebuilt, digests compared) | $replay_rate | $(ratio "$replay_rate" "$baseline_rate") |"
echo "| \`crm verify\` (every hash chain recomputed, index and heads checked) | $verify_rate | $(ratio "$verify_rate" "$baseline_rate") |"
echo
echo "- Machine: $(nproc) CPUs, $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')."
echo "- Command: \`ops/bench/audit_bench.sh --events $events\`"
