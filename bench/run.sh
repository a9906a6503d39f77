#!/usr/bin/env bash
# bench/run.sh [BUILD_DIR]: runs every meshwire benchmark on this machine and prints the table.
#
#   1. Durable sends, against their peer in the same run: Redis 7 XADD (AOF, appendfsync
#      always) with redis-benchmark, and the relay (`meshwire server`, SQLite in a temp dir)
#      with wrk, both 16 keep-alive connections and 200-byte values, ROUNDS times in
#      alternation; the figures are the medians.
#   2. meshwire-bench wake, parked (10,000 long-polls, then one broadcast) and slow
#      (3,000 clients trickling bytes) against the same relay.
# Raw figures go to bench/results/<UTC time>.json (gitignored). Nothing is left running.
# Sizes can be lowered for a quick look, e.g. SENDS_SECONDS=3 PARKED_LISTENERS=200 bench/run.sh
# (see bench/README.md); the published figures are the defaults.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

SENDS_CLIENTS=${SENDS_CLIENTS:-16}
SENDS_SECONDS=${SENDS_SECONDS:-10}
ROUNDS=${ROUNDS:-3}
SIZE=${SIZE:-200}
REDIS_REQUESTS=${REDIS_REQUESTS:-200000}
WAKE_MESSAGES=${WAKE_MESSAGES:-1000}
PARKED_LISTENERS=${PARKED_LISTENERS:-10000}
PARKED_SECONDS=${PARKED_SECONDS:-10}
PARKED_SENDS=${PARKED_SENDS:-500}
SLOW_CLIENTS=${SLOW_CLIENTS:-3000}
SLOW_SECONDS=${SLOW_SECONDS:-14}
RELAY_ARGS=${RELAY_ARGS:-}      # extra `meshwire server` flags, word-split
BENCH_ONLY=${BENCH_ONLY:-all}   # all | redis | meshwire

die() {
  echo "run.sh: $*" >&2
  exit 2
}
note() { echo "== $*" >&2; }

case $BENCH_ONLY in
  all | redis | meshwire) ;;
  *) die "BENCH_ONLY must be all, redis or meshwire" ;;
esac

build_arg=${1:-build}
if [[ -d $build_arg ]]; then
  BUILD=$(cd "$build_arg" && pwd)
elif [[ -d $ROOT/$build_arg ]]; then
  BUILD=$(cd "$ROOT/$build_arg" && pwd)
else
  die "no build directory '$build_arg'; build first:" \
    "cmake -S . -B build -G Ninja && cmake --build build"
fi
MESHWIRE=${MESHWIRE_BIN:-$BUILD/cli/meshwire}
BENCH=${MESHWIRE_BENCH_BIN:-$BUILD/bench/meshwire-bench}
if [[ $BENCH_ONLY != redis ]]; then
  [[ -x $MESHWIRE ]] || die "no relay binary at $MESHWIRE; build the project first"
  [[ -x $BENCH ]] || die "no meshwire-bench at $BENCH; build the project first"
  command -v wrk >/dev/null || die "wrk not found (apt-get install wrk)"
  command -v curl >/dev/null || die "curl not found (apt-get install curl)"
fi
if [[ $BENCH_ONLY != meshwire ]]; then
  command -v redis-server >/dev/null || die "redis-server not found (apt-get install redis-server)"
  command -v redis-benchmark >/dev/null ||
    die "redis-benchmark not found (apt-get install redis-tools)"
fi

for n in SENDS_CLIENTS SENDS_SECONDS ROUNDS SIZE REDIS_REQUESTS WAKE_MESSAGES PARKED_LISTENERS \
  PARKED_SECONDS PARKED_SENDS SLOW_CLIENTS SLOW_SECONDS; do
  [[ ${!n} =~ ^[0-9]+$ ]] || die "$n must be a whole number"
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/meshwire-bench.XXXXXX")
REDIS_PID=""
RELAY_PID=""
CHILD_PID=""

# Stops what this script started (by pid), bounded in time, then removes the temp dir.
stop_pid() {
  local pid=$1 i
  [[ -n $pid ]] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "run.sh: pid $pid ignored SIGTERM for 10 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pid "$CHILD_PID"
  stop_pid "$RELAY_PID"
  stop_pid "$REDIS_PID"
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs a command in the background and waits for it, so that a signal reaches the trap at once.
# Its status lands in LAST_RC; never fails the script by itself.
run_child() {
  LAST_RC=0
  "$@" &
  CHILD_PID=$!
  wait "$CHILD_PID" || LAST_RC=$?
  CHILD_PID=""
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p i
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + RANDOM % 12000)) # below Linux's ephemeral range (32768-60999)
    if ! port_in_use "$p"; then
      echo "$p"
      return 0
    fi
  done
  die "no free loopback port found"
}

# jget FILE KEY: a top-level scalar of the bench's flat JSON, or "n/a".
jget() {
  local v=""
  if [[ -s $1 ]]; then
    v=$(grep -o "\"$2\":[^,}]*" "$1" | head -n1 | cut -d: -f2- | tr -d '"' || true)
  fi
  [[ -z $v || $v == null ]] && v="n/a"
  echo "$v"
}
num() { [[ $1 =~ ^-?[0-9.]+([eE][-+]?[0-9]+)?$ ]]; }
fmt() {
  if num "$1"; then
    LC_ALL=C awk -v v="$1" -v d="${2:-2}" 'BEGIN { printf "%.*f", d, v }'
  else
    echo "$1"
  fi
}
ratio() {
  if num "$1" && num "$2" && [[ $2 != 0 && $2 != 0.0 ]]; then
    LC_ALL=C awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'
  else
    echo "n/a"
  fi
}
json_str() {
  printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g' | tr -d '\000-\037')"
}
json_or_null() { if [[ -s $1 ]]; then head -n1 "$1"; else echo null; fi; }

median() { printf '%s\n' "$@" | { grep -E '^-?[0-9.]+$' || true; } | sort -g | awk '{ v[NR] = $1 }
  END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# The parked and slow tests hold one socket per client on both sides.
want_files=$((PARKED_LISTENERS + SLOW_CLIENTS + 1024))
((want_files < 8192)) && want_files=8192
if [[ $(ulimit -n) != unlimited ]] && (($(ulimit -n) < want_files)); then
  hard=$(ulimit -Hn)
  if [[ $hard != unlimited ]] && ((hard < want_files)); then
    echo "run.sh: warning: hard open-file limit is $hard (< $want_files); parked may fall short" >&2
    want_files=$hard
  fi
  ulimit -n "$want_files"
fi

FAILED=()
STAMP=$(date -u +%Y%m%dT%H%M%SZ)

# ---------------------------------------------------------------------------------------------
# 1. The servers: Redis (the peer) and the relay
REDIS_VERSION=n/a
VALUE=$(head -c "$SIZE" /dev/zero | tr '\0' 'x')
if [[ $BENCH_ONLY != meshwire ]]; then
  REDIS_PORT=$(free_port)
  REDIS_VERSION=$(redis-server --version | grep -o 'v=[^ ]*' | cut -d= -f2)
  mkdir -p "$TMP/redis"
  note "Redis $REDIS_VERSION on 127.0.0.1:$REDIS_PORT (appendonly, appendfsync always)"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$TMP/redis" --daemonize no \
    --appendonly yes --appendfsync always --save '' --logfile "$TMP/redis.log" &
  REDIS_PID=$!
  for ((i = 0; i < 100; i++)); do
    [[ $(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]] && break
    if ! kill -0 "$REDIS_PID" 2>/dev/null; then
      tail -n 20 "$TMP/redis.log" >&2
      die "redis-server exited"
    fi
    sleep 0.1
  done
fi

MESHWIRE_VERSION=n/a
if [[ $BENCH_ONLY != redis ]]; then
  MESHWIRE_VERSION=$("$MESHWIRE" --version 2>/dev/null | head -n1 || echo n/a)
  export MESHWIRE_HOME=$TMP/home
  mkdir -p "$MESHWIRE_HOME"
  chmod 700 "$MESHWIRE_HOME"
  STORAGE=sqlite:$TMP/relay.db
  # Port 0: the relay binds a free port itself and logs it (a port picked
  # here could be taken by one of the bench's own client sockets meanwhile).
  # shellcheck disable=SC2086 # RELAY_ARGS is meant to be word-split
  "$MESHWIRE" server --listen "127.0.0.1:0" --storage "$STORAGE" $RELAY_ARGS \
    >"$TMP/relay.log" 2>&1 &
  RELAY_PID=$!
  RELAY_PORT=
  healthy=0
  for ((i = 0; i < 150; i++)); do
    kill -0 "$RELAY_PID" 2>/dev/null || break
    if [[ -z $RELAY_PORT ]]; then
      RELAY_PORT=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$TMP/relay.log")
      [[ -n $RELAY_PORT ]] || { sleep 0.1; continue; }
    fi
    if curl -sf "http://127.0.0.1:$RELAY_PORT/health" >/dev/null 2>&1; then
      healthy=1
      break
    fi
    sleep 0.1
  done
  if ((!healthy)); then
    tail -n 30 "$TMP/relay.log" >&2
    die "the relay did not answer GET /health within 15 s"
  fi
  URL=http://127.0.0.1:$RELAY_PORT
  note "relay $MESHWIRE_VERSION on $URL, storage $STORAGE ${RELAY_ARGS:+(extra: $RELAY_ARGS)}"
  TOKEN=$("$MESHWIRE" admin token create --user bench --name bench --storage "$STORAGE" |
    tr -d '[:space:]')
  [[ $TOKEN == mw_* ]] || die "admin token create printed no token"
  export MESHWIRE_TOKEN=$TOKEN # the bench reads it from the environment, never from argv

  # wrk's request: a direct send from agent bench-a to bench-b of a fresh mesh.
  SEND_MESH=$(send_setup "$URL" "$TOKEN" "$TMP/send.lua" "$VALUE")
  [[ -n $SEND_MESH ]] || die "could not create the sends mesh"
fi

# ---------------------------------------------------------------------------------------------
# 2. Durable sends: Redis XADD and the relay in alternation, ROUNDS times each
REDIS_RPS_ALL=() REDIS_P50_ALL=() REDIS_P99_ALL=()
MW_RPS_ALL=() MW_P50_ALL=() MW_P99_ALL=() MW_NON2XX=0 MW_ERRORS=0
# wrk prints latencies with units; in ms.
to_ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /[^m]s$/) n *= 1000; printf "%.3f", n }'; }
for ((round = 1; round <= ROUNDS; round++)); do
  if [[ $BENCH_ONLY != meshwire ]]; then
    note "round $round: redis-benchmark, $SENDS_CLIENTS clients, $REDIS_REQUESTS x XADD of a $SIZE-byte field"
    run_child redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -c "$SENDS_CLIENTS" \
      -n "$REDIS_REQUESTS" -r 100000 --csv XADD bench '*' field "$VALUE" >"$TMP/redis.csv"
    if ((LAST_RC != 0)); then
      FAILED+=("redis-benchmark (exit $LAST_RC)")
    else
      # Columns by name: "test","rps","avg_latency_ms",...,"p50_latency_ms",...,"p99_latency_ms"
      read -r rps p50 p99 < <(tr -d '"' <"$TMP/redis.csv" | awk -F, '
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        { rps = $col["rps"]; p50 = ("p50_latency_ms" in col) ? $col["p50_latency_ms"] : "n/a"
          p99 = ("p99_latency_ms" in col) ? $col["p99_latency_ms"] : "n/a" }
        END { print (rps == "" ? "n/a" : rps), p50, p99 }')
      echo "redis XADD: $rps req/s, p50 $p50 ms, p99 $p99 ms" >&2
      REDIS_RPS_ALL+=("$rps") REDIS_P50_ALL+=("$p50") REDIS_P99_ALL+=("$p99")
    fi
  fi
  if [[ $BENCH_ONLY != redis ]]; then
    note "round $round: wrk, $SENDS_CLIENTS connections, $SENDS_SECONDS s of $SIZE-byte sends"
    run_child wrk -t1 -c"$SENDS_CLIENTS" -d"${SENDS_SECONDS}s" --latency -s "$TMP/send.lua" \
      "$URL/mesh/$SEND_MESH/messages" >"$TMP/wrk.txt"
    if ((LAST_RC != 0)); then
      FAILED+=("wrk (exit $LAST_RC)")
    else
      rps=$(awk '/^Requests\/sec:/ { print $2 }' "$TMP/wrk.txt")
      p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$TMP/wrk.txt")")
      p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$TMP/wrk.txt")")
      non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$TMP/wrk.txt")
      errors=$(awk '/Socket errors:/ { gsub(",", ""); print $4 + $6 + $8 + $10 }' "$TMP/wrk.txt")
      MW_NON2XX=$((MW_NON2XX + ${non2xx:-0})) MW_ERRORS=$((MW_ERRORS + ${errors:-0}))
      echo "meshwire sends: $rps req/s, p50 $p50 ms, p99 $p99 ms, non-2xx ${non2xx:-0}" >&2
      MW_RPS_ALL+=("$rps") MW_P50_ALL+=("$p50") MW_P99_ALL+=("$p99")
    fi
  fi
done
REDIS_RPS=$(median "${REDIS_RPS_ALL[@]}") REDIS_P50=$(median "${REDIS_P50_ALL[@]}")
REDIS_P99=$(median "${REDIS_P99_ALL[@]}")
MW_RPS=$(median "${MW_RPS_ALL[@]}") MW_P50=$(median "${MW_P50_ALL[@]}") MW_P99=$(median "${MW_P99_ALL[@]}")
((MW_NON2XX == 0 && MW_ERRORS == 0)) || FAILED+=("sends: $MW_NON2XX non-2xx answers, $MW_ERRORS socket errors")
if [[ -n $REDIS_PID ]]; then
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  stop_pid "$REDIS_PID"
  REDIS_PID=""
fi

# ---------------------------------------------------------------------------------------------
# 3. Waking, waiting and slow clients, against the same relay
if [[ $BENCH_ONLY != redis ]]; then
  note "wake: $WAKE_MESSAGES messages"
  run_child "$BENCH" wake --url "$URL" --messages "$WAKE_MESSAGES" --size "$SIZE" \
    >"$TMP/wake.json"
  ((LAST_RC == 0)) || FAILED+=("wake (exit $LAST_RC)")

  note "parked: $PARKED_LISTENERS listeners, $PARKED_SENDS sends over $PARKED_SECONDS s"
  run_child "$BENCH" parked --url "$URL" --listeners "$PARKED_LISTENERS" \
    --seconds "$PARKED_SECONDS" --sends "$PARKED_SENDS" --size "$SIZE" --ramp 5000 \
    --relay-pid "$RELAY_PID" >"$TMP/parked.json"
  ((LAST_RC == 0)) || FAILED+=("parked (exit $LAST_RC)")

  note "slow: $SLOW_CLIENTS clients trickling a request, $SLOW_SECONDS s of normal sends"
  run_child "$BENCH" slow --url "$URL" --clients "$SLOW_CLIENTS" --seconds "$SLOW_SECONDS" \
    --size "$SIZE" >"$TMP/slow.json"
  ((LAST_RC == 0)) || FAILED+=("slow (exit $LAST_RC)")

  kill -TERM "$RELAY_PID" 2>/dev/null || true
  relay_rc=0
  for ((i = 0; i < 150; i++)); do
    kill -0 "$RELAY_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$RELAY_PID" 2>/dev/null; then
    FAILED+=("relay still running 15 s after SIGTERM")
    kill -KILL "$RELAY_PID" 2>/dev/null || true
  fi
  wait "$RELAY_PID" || relay_rc=$?
  RELAY_PID=""
  ((relay_rc == 0)) || FAILED+=("relay exited $relay_rc on SIGTERM (relay log below)")
  if ((relay_rc != 0)); then tail -n 20 "$TMP/relay.log" >&2; fi
fi

# ---------------------------------------------------------------------------------------------
# Results
mkdir -p "$ROOT/bench/results"
OUT=$ROOT/bench/results/$STAMP.json
cpu_model=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)
{
  printf '{"timestamp":%s,' "$(json_str "$STAMP")"
  printf '"machine":{"nproc":%s,"cpu":%s,"kernel":%s},' "$(nproc)" "$(json_str "$cpu_model")" \
    "$(json_str "$(uname -r)")"
  printf '"meshwire_version":%s,"redis_version":%s,' "$(json_str "$MESHWIRE_VERSION")" \
    "$(json_str "$REDIS_VERSION")"
  printf '"config":{"clients":%s,"seconds":%s,"rounds":%s,"size":%s,"redis_requests":%s,' \
    "$SENDS_CLIENTS" "$SENDS_SECONDS" "$ROUNDS" "$SIZE" "$REDIS_REQUESTS"
  printf '"wake_messages":%s,"parked_listeners":%s,"parked_seconds":%s,"parked_sends":%s,' \
    "$WAKE_MESSAGES" "$PARKED_LISTENERS" "$PARKED_SECONDS" "$PARKED_SENDS"
  printf '"slow_clients":%s,"slow_seconds":%s,' "$SLOW_CLIENTS" "$SLOW_SECONDS"
  printf '"relay_args":%s},' "$(json_str "$RELAY_ARGS")"
  rj() { if num "$1"; then echo "$1"; else echo null; fi; }
  arr() { local IFS=,; echo "[$*]"; }
  printf '"redis_xadd":{"rps":%s,"p50_ms":%s,"p99_ms":%s,"rounds_rps":%s},' "$(rj "$REDIS_RPS")" \
    "$(rj "$REDIS_P50")" "$(rj "$REDIS_P99")" "$(arr "${REDIS_RPS_ALL[@]}")"
  printf '"sends":{"tool":"wrk","rps":%s,"p50_ms":%s,"p99_ms":%s,"rounds_rps":%s,"non_2xx":%s,"socket_errors":%s},' \
    "$(rj "$MW_RPS")" "$(rj "$MW_P50")" "$(rj "$MW_P99")" "$(arr "${MW_RPS_ALL[@]}")" "$MW_NON2XX" "$MW_ERRORS"
  printf '"wake":%s,"parked":%s,"slow":%s}\n' "$(json_or_null "$TMP/wake.json")" \
    "$(json_or_null "$TMP/parked.json")" "$(json_or_null "$TMP/slow.json")"
} >"$OUT"

W=$TMP/wake.json P=$TMP/parked.json L=$TMP/slow.json
parked="$(jget "$P" listeners_parked) / $(jget "$P" listeners)"
rss="$(fmt "$(jget "$P" rss_idle_mib)" 1) -> $(fmt "$(jget "$P" rss_parked_mib)" 1)"
threads="$(jget "$P" relay_threads_idle) -> $(jget "$P" relay_threads_parked)"
parked_send="$(fmt "$(jget "$P" send_p50_ms)") / $(fmt "$(jget "$P" send_p99_ms)")"
cat <<EOF

## meshwire benchmarks ($STAMP, $(nproc) cores${cpu_model:+, $cpu_model})

relay: $MESHWIRE_VERSION (SQLite storage) with wrk vs Redis $REDIS_VERSION XADD (AOF, appendfsync
always) with redis-benchmark; $SENDS_CLIENTS keep-alive connections on loopback, $SIZE-byte
values, medians of $ROUNDS alternating rounds (each: ${MW_RPS_ALL[*]:-n/a} vs ${REDIS_RPS_ALL[*]:-n/a}).

| figure | meshwire | Redis XADD |
|---|---:|---:|
| durable appends/s | $(fmt "$MW_RPS" 0) | $(fmt "$REDIS_RPS" 0) |
| meshwire / Redis | $(ratio "$MW_RPS" "$REDIS_RPS") | 1 |
| latency p50 (ms) | $(fmt "$MW_P50") | $(fmt "$REDIS_P50") |
| latency p99 (ms) | $(fmt "$MW_P99") | $(fmt "$REDIS_P99") |
| non-2xx answers, socket errors | $MW_NON2XX, $MW_ERRORS | |

| meshwire figure | value |
|---|---:|
| wake latency p50 (ms, send's 201 -> poll answer; below 0: the answer came first) | $(fmt "$(jget "$W" wake_p50_ms)") |
| wake latency p99 (ms) | $(fmt "$(jget "$W" wake_p99_ms)") |
| poll answers before the send's 201 / received | $(jget "$W" received_before_201) / $(jget "$W" received) |
| send issued -> poll answer p50 / p99 (ms) | $(fmt "$(jget "$W" send_to_receive_p50_ms)") / $(fmt "$(jget "$W" send_to_receive_p99_ms)") |
| wake messages received / sent | $(jget "$W" received) / $(jget "$W" sent) |
| parked listeners (relay says listening / asked) | $parked |
| relay RSS idle -> parked (MiB) | $rss |
| relay RSS per parked listener (KiB) | $(fmt "$(jget "$P" rss_per_listener_kib)" 1) |
| relay threads idle -> parked | $threads |
| relay CPU, all parked and nothing sent (% of a core) | $(fmt "$(jget "$P" relay_cpu_parked_quiet_pct)" 1) |
| send p50 / p99 with listeners parked (ms) | $parked_send |
| woken listeners / targeted | $(jget "$P" woken_listeners) / $(jget "$P" targeted_listeners) |
| broadcast to all parked: last answer after it was sent (ms) | $(fmt "$(jget "$P" broadcast_all_ms)") |
| sends while $(jget "$L" clients_opened) clients trickle bytes: p99 / max (ms) | $(fmt "$(jget "$L" send_p99_ms)") / $(fmt "$(jget "$L" send_max_ms)") |
| trickling connections closed by the request deadline | $(jget "$L" closed_by_relay) |

Raw figures: ${OUT#"$ROOT"/}
EOF

if ((${#FAILED[@]} > 0)); then
  printf 'run.sh: check failed: %s\n' "${FAILED[@]}" >&2
  exit 1
fi
