#!/usr/bin/env bash
# The performance suite: every benchmark of the project, one after another on this machine, and
# one table of their rates, latencies and ratios against the baseline each measures in the same
# run (these machines are noisy: compare ratios, not absolute figures, across runs).
#   ops/bench/run.sh [--quick]
#     --quick: shorter runs (5 s loads, 200,000 events, 5,000 inbound records, 100,000
#              customers) for a smoke test
# Builds first (ops/build.sh). Run nothing else meanwhile.
set -euo pipefail
cd "$(dirname "$0")/../.."

duration_s=10
orders=40000
events=1000000
customers=1000000
inbound=20000
if [ "${1:-}" = "--quick" ]; then
  duration_s=5
  orders=20000
  events=200000
  customers=100000
  inbound=5000
elif [ $# -gt 0 ]; then
  echo "usage: ops/bench/run.sh [--quick]" >&2
  exit 2
fi

ops/build.sh >/dev/null
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

run() {
  local name=$1
  shift
  echo "== $name: $*" >&2
  if ! "$@" >"$out/$name.md" 2>"$out/$name.log"; then
    echo "run.sh: $name failed; its output ends:" >&2
    tail -n 20 "$out/$name.log" "$out/$name.md" >&2
    exit 1
  fi
}
run http ops/bench/http_bench.sh --duration-s "$duration_s"
run floor ops/bench/floor_bench.sh --rounds 1 --duration-s "$duration_s"
run order ops/bench/order_bench.sh --duration-s "$duration_s" --orders "$orders"
run audit ops/bench/audit_bench.sh --events "$events"
run inbound ops/bench/inbound_bench.sh --records "$inbound"
run memory ops/bench/memory_bench.sh --customers "$customers"

# Table rows of a benchmark's markdown (header and separator left out), cells trimmed.
rows() { grep '^| ' "$out/$1.md" | grep -v -e '^|---' -e '^| server ' -e '^| on a log' -e '^| customers' -e '^| inbound,' | sed 's/ *| */|/g'; }
cell() { echo "$1" | cut -d'|' -f"$2"; }

echo "| benchmark | what | rate /s | p50 µs | p99 µs | vs its baseline |"
echo "|---|---|---:|---:|---:|---:|"
for bench in http order; do
  while IFS= read -r row; do
    echo "| $bench | $(cell "$row" 2) | $(cell "$row" 3) | $(cell "$row" 4) | $(cell "$row" 5) | $(cell "$row" 6) |"
  done < <(rows "$bench")
done
# The floor's medians table (the rows after its "(medians)" header), shares of its own echo run.
while IFS= read -r row; do
  echo "| floor | $(cell "$row" 3) | $(cell "$row" 4) | – | – | $(cell "$row" 5) |"
done < <(awk '/\(medians\)/ { on = 1; next } on && /^\|---/ { next } on && /^\| / { print; next } on { exit }' \
  "$out/floor.md" | sed 's/ *| */|/g')
while IFS= read -r row; do
  echo "| audit | $(cell "$row" 2) | $(cell "$row" 3) | – | – | $(cell "$row" 4) |"
done < <(rows audit)
last=$(rows memory | tail -n 1)
peak=$(sed -n 's/^- Peak resident size sampled: \([0-9]*\) MiB.*/\1/p' "$out/memory.md")
echo "| memory | crm serve resident at $(cell "$last" 2) customers: $(cell "$last" 3) MiB (peak $peak MiB) | – | – | – | – |"
while IFS= read -r row; do
  echo "| kafka inbound | $(cell "$row" 2) | $(cell "$row" 3) | – | – | $(cell "$row" 4) |"
done < <(rows inbound)
echo
grep -m1 '^- Machine' "$out/http.md"
echo "- Command: \`ops/bench/run.sh${*:+ $*}\`, $(date -u +%Y-%m-%d)"
