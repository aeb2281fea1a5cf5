# Shared by the HTTP benchmarks (sourced, not run): the binaries, a server's start and stop,
# free ports, readiness, and reading crm_load's RESULT line. The caller sets `bench_name` and
# may add binaries to `required_binaries` before sourcing.
crm=build/crm
load=build/ops/bench/crm_load
echo_server=build/ops/bench/crm_echo_server
for binary in "$crm" "$load" "$echo_server" ${required_binaries:-}; do
  if [ ! -x "$binary" ]; then
    echo "$bench_name: $binary is missing; build the project first with ops/build.sh" >&2
    exit 1
  fi
done

body_file=ops/bench/register_customer.json
http_threads=256  # both servers: one pool thread per concurrent connection, as crm's default
ready_deadline_s=30
stop_deadline_s=30

work_dir=$(mktemp -d)   # server logs and load outputs
data_dir=$(mktemp -d)   # the engine's data directory
server_pid=""

# stop_server: SIGTERM to the running server, then waits for it (SIGKILL after the deadline).
stop_server() {
  [ -n "$server_pid" ] || return 0
  local pid=$server_pid
  server_pid=""
  kill -TERM "$pid" 2>/dev/null || true
  local give_up_at=$((SECONDS + stop_deadline_s))
  while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$give_up_at" ]; do sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "$bench_name: server $pid still running after ${stop_deadline_s} s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  local exit_status=0
  wait "$pid" 2>/dev/null || exit_status=$?
  if [ "$exit_status" -ne 0 ]; then
    echo "$bench_name: server $pid exited with status $exit_status" >&2
  fi
}

cleanup() {
  stop_server
  rm -rf "$work_dir" "$data_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_loopback_port: prints a port on 127.0.0.1 that nothing listens on, below the ephemeral
# range so that the client's own connections cannot be holding it.
free_loopback_port() {
  local port
  for _ in $(seq 1 100); do
    port=$((20000 + RANDOM % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  echo "$bench_name: found no free loopback port" >&2
  return 1
}

# wait_until_ok URL DEADLINE_S LOG: polls URL until it answers 200; fails when the server exits
# or the deadline passes (and then shows the end of the server's LOG).
wait_until_ok() {
  local url=$1 deadline_s=$2 log=$3
  local give_up_at=$((SECONDS + deadline_s))
  until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" 2>/dev/null)" = 200 ]; do
    if ! kill -0 "$server_pid" 2>/dev/null; then
      echo "$bench_name: the server exited before $url answered 200; its log ends:" >&2
      tail -n 20 "$log" >&2
      return 1
    fi
    if [ "$SECONDS" -ge "$give_up_at" ]; then
      echo "$bench_name: $url did not answer 200 within ${deadline_s} s; the server's log ends:" >&2
      tail -n 20 "$log" >&2
      return 1
    fi
    sleep 0.05
  done
}

# run_load NAME PORT [extra crm_load flags]: runs the registration load (the echo baseline of
# every benchmark), showing its output; leaves its
# RESULT line in $work_dir/NAME.result. Fails when crm_load reports errors.
run_load() {
  local name=$1 port=$2
  shift 2
  local output=$work_dir/$name.out
  if ! "$load" --target "127.0.0.1:$port" --method POST --path /v1/customers \
    --connections "$connections" --duration-s "$duration_s" \
    --body-file "$body_file" --content-type application/json --unique-field seq \
    --unique-idempotency-key --expect-status 201 "$@" 2>&1 | tee "$output"; then
    echo "$bench_name: the $name run failed (see the first error above)" >&2
    return 1
  fi
  grep '^RESULT ' "$output" >"$work_dir/$name.result"
}

# result_field NAME KEY: a value from the RESULT line of run NAME.
result_field() {
  grep -o "$2=[0-9.]*" "$work_dir/$1.result" | cut -d= -f2
}


# start_echo: starts the echo server on a free port; sets echo_port and server_pid.
start_echo() {
  echo_port=$(free_loopback_port)
  echo "== echo: $echo_server on 127.0.0.1:$echo_port"
  "$echo_server" --listen "127.0.0.1:$echo_port" --threads "$http_threads" \
    >"$work_dir/echo_server.log" 2>&1 &
  server_pid=$!
  wait_until_ok "http://127.0.0.1:$echo_port/healthz" 10 "$work_dir/echo_server.log"
}

# fresh_data_dir: $data_dir replaced by a new, empty directory.
fresh_data_dir() {
  rm -rf "$data_dir"
  data_dir=$(mktemp -d)
}

# start_crm [BIN (build/crm)] [crm serve flags]: starts `BIN serve` on a fresh data directory and
# a free port; sets crm_port, server_pid and token (the admin's bearer token).
start_crm() {
  local binary=${1:-$crm}
  shift $(($# > 0 ? 1 : 0))
  fresh_data_dir
  crm_port=$(free_loopback_port)
  echo "== crm: $binary serve on 127.0.0.1:$crm_port, data in $data_dir"
  "$binary" serve --data-dir "$data_dir" --listen "127.0.0.1:$crm_port" \
    --http-threads "$http_threads" "$@" >"$work_dir/crm.log" 2>&1 &
  server_pid=$!
  wait_until_ok "http://127.0.0.1:$crm_port/readyz" "$ready_deadline_s" "$work_dir/crm.log"
  if [ ! -s "$data_dir/admin.token" ]; then
    echo "$bench_name: crm did not write $data_dir/admin.token" >&2
    exit 1
  fi
  token=$(tr -d '\r\n' <"$data_dir/admin.token")
}

ticks_per_s=$(getconf CLK_TCK)
warmup_s=2 # crm_load's warm-up, run before its measured seconds

# cpu_ticks PID: user + system CPU of the process so far, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# context_switches PID: voluntary and involuntary switches of all its threads so far.
context_switches() {
  cat "/proc/$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ { s += $2 } END { print s + 0 }'
}

# Rounds of runs, one line each: "NAME ROUND rps cpu_us_per_request switches_per_request".
results=$work_dir/results
: >"$results"

# measure_run NAME ROUND PORT [crm_load flags]: the registration load against the server started
# as $server_pid, with its CPU and context switches read from /proc around the run; stops the
# server and appends the run's line to $results.
measure_run() {
  local name=$1 round=$2 port=$3
  shift 3
  local ticks_before switches_before ticks_after switches_after rps
  ticks_before=$(cpu_ticks "$server_pid")
  switches_before=$(context_switches "$server_pid")
  run_load "$name" "$port" "$@" >/dev/null
  ticks_after=$(cpu_ticks "$server_pid")
  switches_after=$(context_switches "$server_pid")
  stop_server
  rps=$(result_field "$name" rps)
  # The CPU counters cover the warm-up too: spread them over all the requests of the run.
  awk -v name="$name" -v round="$round" -v rps="$rps" -v seconds="$((duration_s + warmup_s))" \
    -v ticks="$((ticks_after - ticks_before))" -v hz="$ticks_per_s" \
    -v switches="$((switches_after - switches_before))" 'BEGIN {
      requests = rps * seconds
      printf "%s %d %d %.0f %.2f\n", name, round, rps, 1e6 * ticks / hz / requests,
        switches / requests
    }' >>"$results"
}

# median COLUMN NAME: the median of a $results column over the rounds of one name.
median() {
  awk -v name="$2" -v column="$1" '$1 == name { print $column }' "$results" | sort -n |
    awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# machine_line: one line saying what ran the benchmark.
machine_line() {
  local cpu_model
  cpu_model=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)
  echo "- Machine: $(nproc) CPUs, ${cpu_model:-unknown CPU}; load generator and server share" \
    "them. crm data directory on $(stat -f -c %T "$data_dir")."
}
