#!/usr/bin/env bash
# bench/pg.sh [BUILD_DIR]: several relay nodes on one PostgreSQL database, each figure next to
# its peer measured in the same run (issue 11's performance points):
#   1. Durable sends through two relay nodes (`meshwire server --storage postgres://...`) with
#      wrk, CLIENTS/2 keep-alive connections on each node, 200-byte messages to one mesh, next to
#      pgbench with CLIENTS clients each running one INSERT of a 200-byte row per transaction;
#      synchronous_commit=on for both. ROUNDS rounds in alternation; the figures are medians, and
#      each round's ratio with a 95% interval of their median (ROUNDS=15: whether the relay is above).
#   2. Cross-node wake: meshwire-bench wake sending through node A while the receiver long-polls
#      node B: from the send's 201 to B's answer, p50 and p99.
# PostgreSQL is a throwaway server in a temp dir, on a Unix socket only (as the postgres user when
# run as root). Raw figures go to bench/results/pg-<UTC time>.json. Nothing is left running.
# Quick look: SECONDS_EACH=3 ROUNDS=1 WAKE_MESSAGES=200 bench/pg.sh
# Several meshes (nodes then lock several mesh rows per batch): MESHES=3 KEYED=1 bench/pg.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
CLIENTS=${CLIENTS:-16}
SECONDS_EACH=${SECONDS_EACH:-10}
ROUNDS=${ROUNDS:-3}
SIZE=${SIZE:-200}
WAKE_MESSAGES=${WAKE_MESSAGES:-1000}
NODES=${NODES:-2}  # 1: every wrk connection to node A (to see what a second node changes)
MESHES=${MESHES:-1}  # more: each send goes to one of MESHES meshes at random (nodes then write several)
KEYED=${KEYED:-0}    # 1: half the sends carry an idempotency_key (as the CLI's and MCP's do)
RELAY_ARGS=${RELAY_ARGS:-}  # extra `meshwire server` flags for both nodes, e.g. --io-threads 1

die() {
  echo "pg.sh: $*" >&2
  exit 2
}
note() { echo "== $*" >&2; }

for n in CLIENTS SECONDS_EACH ROUNDS SIZE WAKE_MESSAGES MESHES; do
  [[ ${!n} =~ ^[0-9]+$ && ${!n} -gt 0 ]] || die "$n must be a whole number above 0"
done
((CLIENTS % 2 == 0)) || die "CLIENTS must be even (half on each node)"
[[ $NODES == 1 || $NODES == 2 ]] || die "NODES must be 1 or 2"
[[ $KEYED == 0 || $KEYED == 1 ]] || die "KEYED must be 0 or 1"

BUILD=${1:-$ROOT/build}
[[ -d $BUILD ]] || die "no build directory '$BUILD'; build first: cmake -S . -B build -G Ninja && cmake --build build"
MESHWIRE=$(cd "$BUILD" && pwd)/cli/meshwire
BENCH=$(cd "$BUILD" && pwd)/bench/meshwire-bench
[[ -x $MESHWIRE && -x $BENCH ]] || die "build meshwire and meshwire-bench first (cmake --build build)"
for tool in wrk curl pgbench psql; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install wrk curl postgresql)"
done
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
[[ -x $PGBIN/initdb ]] || die "PostgreSQL's server is not installed (apt-get install postgresql)"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/meshwire-pgbench.XXXXXX")
PIDS=()
as_owner() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  [[ -d $TMP/data ]] && as_owner "$PGBIN/pg_ctl" -D "$TMP/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

note "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') in $TMP (Unix socket only)"
[[ $(id -u) == 0 ]] && chown postgres "$TMP"
as_owner "$PGBIN/initdb" -D "$TMP/data" -U meshwire -A trust >"$TMP/initdb.log" 2>&1 || die "initdb failed: $(tail -3 "$TMP/initdb.log")"
as_owner "$PGBIN/pg_ctl" -D "$TMP/data" -l "$TMP/data/server.log" -w -t 60 \
  -o "-k $TMP -c listen_addresses= -p 5432 -c synchronous_commit=on -c max_connections=200" start >/dev/null ||
  die "the PostgreSQL server did not start"
PSQL=(psql -X -q -h "$TMP" -p 5432 -U meshwire)
"${PSQL[@]}" -d postgres -c "CREATE DATABASE relay" -c "CREATE DATABASE peer"
"${PSQL[@]}" -d peer -c "CREATE TABLE messages (seq BIGSERIAL PRIMARY KEY, mesh_id TEXT NOT NULL, content TEXT NOT NULL)"
VALUE=$(head -c "$SIZE" /dev/zero | tr '\0' x)
echo "INSERT INTO messages(mesh_id, content) VALUES ('bench', '$VALUE');" >"$TMP/insert.sql"
URI="postgresql://meshwire@/relay?host=$TMP&port=5432"

start_relay() { # NAME: starts a node, sets its URL in NAME_URL
  # shellcheck disable=SC2086  # RELAY_ARGS is a list of flags
  "$MESHWIRE" server --listen 127.0.0.1:0 --storage "$URI" --log-level info $RELAY_ARGS >"$TMP/$1.log" 2>&1 &
  PIDS+=($!)
  local i port=""
  for ((i = 0; i < 150; i++)); do
    port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$TMP/$1.log")
    [[ -n $port ]] && curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
    port=""
    sleep 0.1
  done
  [[ -n $port ]] || die "relay $1 did not start: $(tail -3 "$TMP/$1.log")"
  printf -v "$1_URL" 'http://127.0.0.1:%s' "$port"
}
start_relay A
start_relay B
note "relay nodes A $A_URL and B $B_URL on one database"
TOKEN=$("$MESHWIRE" admin token create --user bench --storage "$URI" 2>/dev/null | tr -d '[:space:]')
[[ $TOKEN == mw_* ]] || die "admin token create printed no token"
export MESHWIRE_TOKEN=$TOKEN
api() { curl -sf -X POST "$A_URL$1" -H "Authorization: Bearer $TOKEN" -d "$2"; }
MESH_IDS=()
for ((m = 1; m <= MESHES; m++)); do
  MESH=$(api /mesh "{\"name\":\"bench-pg-$m\"}" | grep -o '"mesh_id":"[^"]*"' | cut -d'"' -f4)
  [[ -n $MESH ]] || die "could not create mesh $m"
  api "/mesh/$MESH/agents" '{"name":"bench-a"}' >/dev/null
  api "/mesh/$MESH/agents" '{"name":"bench-b"}' >/dev/null
  MESH_IDS+=("\"$MESH\"")
done
MESH=${MESH_IDS[0]//\"/}  # the wake bench's, and the URL wrk is given
if ((MESHES == 1 && KEYED == 0)); then
  send_lua "$TMP/send.lua" "$TOKEN" "$VALUE"
else
  cat >"$TMP/send.lua" <<EOL
-- each send to one of the meshes at random; with KEYED=1 half carry a fresh idempotency_key
local meshes = {$(IFS=,; echo "${MESH_IDS[*]}")}
local headers = {["Authorization"] = "Bearer $TOKEN", ["Content-Type"] = "application/json"}
local n = 0
math.randomseed(os.time() + math.floor(os.clock() * 1000000))
request = function()
  n = n + 1
  local key = ""
  if $KEYED == 1 and n % 2 == 0 then key = ',"idempotency_key":"' .. math.random(1e9) .. "-" .. n .. '"' end
  return wrk.format("POST", "/mesh/" .. meshes[math.random(#meshes)] .. "/messages", headers,
    '{"from":"bench-a","to":"bench-b","content":"$VALUE"' .. key .. '}')
end
EOL
fi

# Where the CPU goes, per operation: clock ticks of the PostgreSQL server (its live processes, and
# through the postmaster's children times those that ended, as pgbench's sessions do), of the relay
# nodes, and of the machine's idle time; a client's own from its subshell's `times`.
TICK=$(getconf CLK_TCK)
POSTMASTER=$(head -n1 "$TMP/data/postmaster.pid")
pg_ticks() {
  { awk '{ print $14 + $15 + $16 + $17 }' "/proc/$POSTMASTER/stat"
    for pid in $(pgrep -P "$POSTMASTER"); do awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || true; done
  } | awk '{ s += $1 } END { print s + 0 }'
}
relay_ticks() { for pid in "${PIDS[@]}"; do awk '{ print $14 + $15 }' "/proc/$pid/stat"; done | awk '{ s += $1 } END { print s + 0 }'; }
idle_ticks() { awk '/^cpu / { print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }
# client_seconds FILE...: the user + system seconds `times` wrote (its second line: the children's)
client_seconds() {
  awk 'FNR == 2 { for (i = 1; i <= 2; i++) { split($i, t, /[ms]/); s += t[1] * 60 + t[2] } } END { print s + 0 }' "$@"
}
# cpu_line RATE PG0 PG1 RELAY0 RELAY1 IDLE0 IDLE1 CLIENT_S: "pg relay client idle%", the first three
# in µs per operation of a round at RATE operations/s
cpu_line() {
  LC_ALL=C awk -v ops="$(LC_ALL=C awk -v r="${1:-0}" -v s="$SECONDS_EACH" 'BEGIN { print r * s }')" -v pg="$(($3 - $2))" -v relay="$(($5 - $4))" -v i0="$6" -v i1="$7" -v client="$8" -v tick="$TICK" 'BEGIN {
    split(i0, a, " "); split(i1, b, " "); idle = (b[2] - a[2] > 0) ? 100 * (b[1] - a[1]) / (b[2] - a[2]) : 0
    if (ops <= 0) { print "n/a n/a n/a n/a"; exit }
    printf "%.0f %.0f %.0f %.0f\n", pg / tick / ops * 1e6, relay / tick / ops * 1e6, client / ops * 1e6, idle }'
}

# peer_round, relay_round: one round of each side, their figures appended to PEER/RELAY and
# PEER_CPU/RELAY_CPU (tps, rps and the CPU columns left set for the round's lines).
peer_round() {
  note "round $round: pgbench, $CLIENTS clients, ${SECONDS_EACH} s of one-INSERT transactions"
  p0=$(pg_ticks) i0=$(idle_ticks)
  (
    pgbench -n -h "$TMP" -p 5432 -U meshwire -c "$CLIENTS" -j 2 -T "$SECONDS_EACH" -f "$TMP/insert.sql" peer \
      >"$TMP/pgbench.txt" 2>/dev/null || true
    times >"$TMP/times-pgbench.txt"
  )
  i1=$(idle_ticks)
  sleep 0.2  # the postmaster collects its ended sessions' times
  p1=$(pg_ticks)
  tps=$(awk '/^tps = / { print $3; exit }' "$TMP/pgbench.txt")
  PEER+=("${tps:-n/a}")
  read -r peer_pg _ peer_client peer_idle <<<"$(cpu_line "$tps" "$p0" "$p1" 0 0 "$i0" "$i1" \
    "$(client_seconds "$TMP/times-pgbench.txt")")"
  PEER_CPU+=("$peer_pg $peer_client $peer_idle")
}
relay_round() {
  half=$((CLIENTS / NODES))
  note "round $round: wrk on $NODES node(s), $half connections each, ${SECONDS_EACH} s of sends"
  p0=$(pg_ticks) r0=$(relay_ticks) i0=$(idle_ticks)
  (
    wrk -t1 -c"$half" -d"${SECONDS_EACH}s" -s "$TMP/send.lua" "$A_URL/mesh/$MESH/messages" >"$TMP/wrk-a.txt"
    times >"$TMP/times-a.txt"
  ) &
  wa=$!
  : >"$TMP/wrk-b.txt"
  printf '0m0s 0m0s\n0m0s 0m0s\n' >"$TMP/times-b.txt"
  if ((NODES == 2)); then
    (
      wrk -t1 -c"$half" -d"${SECONDS_EACH}s" -s "$TMP/send.lua" "$B_URL/mesh/$MESH/messages" >"$TMP/wrk-b.txt"
      times >"$TMP/times-b.txt"
    ) &
    wait "$!"
  fi
  wait "$wa"
  p1=$(pg_ticks) r1=$(relay_ticks) i1=$(idle_ticks)
  for f in a b; do
    bad=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$TMP/wrk-$f.txt")
    [[ -z $bad ]] || die "node ${f^^} answered $bad sends with an error"
  done
  rps=$(awk '/^Requests\/sec:/ { s += $2 } END { print s }' "$TMP/wrk-a.txt" "$TMP/wrk-b.txt")
  RELAY+=("$rps")
  read -r cpu_pg cpu_relay cpu_client cpu_idle <<<"$(cpu_line "$rps" "$p0" "$p1" "$r0" "$r1" "$i0" "$i1" \
    "$(client_seconds "$TMP/times-a.txt" "$TMP/times-b.txt")")"
  RELAY_CPU+=("$cpu_pg $cpu_relay $cpu_client $cpu_idle")
}

# Odd rounds run pgbench first, even rounds the relay first, so that neither side always
# follows the other (and what the other left behind: autovacuum, dirty pages, a warm cache).
PEER=() RELAY=() PEER_CPU=() RELAY_CPU=()
for ((round = 1; round <= ROUNDS; round++)); do
  if ((round % 2)); then
    peer_round
    relay_round
  else
    relay_round
    peer_round
  fi
  echo "   pgbench $tps tx/s, relay $rps sends/s" >&2
  echo "   CPU µs per transaction: PostgreSQL $peer_pg, pgbench $peer_client (cores ${peer_idle}% idle);" \
    "per send: PostgreSQL $cpu_pg, relay nodes $cpu_relay, wrk $cpu_client (cores ${cpu_idle}% idle)" >&2
done

note "cross-node wake: $WAKE_MESSAGES messages sent through A, long-polled on B"
"$BENCH" wake --url "$B_URL" --send-url "$A_URL" --messages "$WAKE_MESSAGES" --size "$SIZE" >"$TMP/wake.json" 2>"$TMP/wake.log" ||
  die "meshwire-bench wake failed: $(tail -3 "$TMP/wake.log")"
jget() { grep -o "\"$1\":[^,}]*" "$TMP/wake.json" | head -n1 | cut -d: -f2-; }
median() { printf '%s\n' "$@" | { grep -E '^[0-9.]+$' || true; } | sort -g | awk '{ v[NR] = $1 }
  END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
peer=$(median "${PEER[@]}")
relay=$(median "${RELAY[@]}")
ratio=$(LC_ALL=C awk -v a="$relay" -v b="$peer" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
# Each round's own ratio (its relay round over its pgbench round, run back to back, so the machine's
# drift between rounds cancels), and a 95% confidence interval for the median of those ratios that
# assumes nothing of their distribution: the order statistics k and n+1-k, k the largest with
# P(Binomial(n, 1/2) < k) <= 0.025 (none under 6 rounds).
ROUND_RATIOS=()
for ((r = 0; r < ${#RELAY[@]}; r++)); do
  ROUND_RATIOS+=("$(LC_ALL=C awk -v a="${RELAY[r]}" -v b="${PEER[r]}" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.3f", a / b; else print "n/a" }')")
done
round_median=$(LC_ALL=C awk -v m="$(median "${ROUND_RATIOS[@]}")" 'BEGIN { if (m == "n/a") print m; else printf "%.3f", m }')
read -r ci_low ci_high rounds_above rounds_valid <<<"$(printf '%s\n' "${ROUND_RATIOS[@]}" | { grep -E '^[0-9.]+$' || true; } | sort -g |
  LC_ALL=C awk '{ v[NR] = $1; if ($1 >= 1) above++ }
  END {
    n = NR; k = 0; cdf = 0; c = 1  # c = C(n, j)
    for (j = 0; j < n; j++) { cdf += c / 2 ^ n; if (cdf > 0.025) break; k = j + 1; c = c * (n - j) / (j + 1) }
    if (k >= 1) printf "%.3f %.3f %d %d\n", v[k], v[n + 1 - k], above + 0, n; else printf "n/a n/a %d %d\n", above + 0, n
  }')"
# column I of each row given: its median
col() {
  local i=$1
  shift
  # shellcheck disable=SC2046  # one number per row
  median $(printf '%s\n' "$@" | awk -v i="$i" '{ print $i }')
}
read -r peer_pg peer_client peer_idle <<<"$(col 1 "${PEER_CPU[@]}") $(col 2 "${PEER_CPU[@]}") $(col 3 "${PEER_CPU[@]}")"
read -r cpu_pg cpu_relay cpu_client cpu_idle <<<"$(col 1 "${RELAY_CPU[@]}") $(col 2 "${RELAY_CPU[@]}") \
  $(col 3 "${RELAY_CPU[@]}") $(col 4 "${RELAY_CPU[@]}")"
jnum() { [[ $1 =~ ^[0-9.]+$ ]] && echo "$1" || echo null; }
# jlist VALUE...: the values as a JSON array's elements, each a number or null
jlist() {
  local v out=()
  for v in "$@"; do out+=("$(jnum "$v")"); done
  (IFS=,; echo "${out[*]}")
}

mkdir -p "$ROOT/bench/results"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
printf '{"bench":"pg","nodes":%s,"meshes":%s,"keyed":%s,"clients":%s,"seconds":%s,"rounds":%s,"size":%s,"pgbench_tps":[%s],"relay_rps":[%s],"pgbench_tps_median":%s,"relay_rps_median":%s,"ratio":"%s","round_ratios":[%s],"round_ratio_median":%s,"round_ratio_ci95":[%s,%s],"cpu_us_per_op":{"pgbench":{"postgres":%s,"client":%s,"idle_pct":%s},"relay":{"postgres":%s,"relay_nodes":%s,"client":%s,"idle_pct":%s}},"wake":%s}\n' \
  "$NODES" "$MESHES" "$KEYED" "$CLIENTS" "$SECONDS_EACH" "$ROUNDS" "$SIZE" "$(jlist "${PEER[@]}")" "$(jlist "${RELAY[@]}")" \
  "$(jnum "$peer")" "$(jnum "$relay")" "$ratio" "$(jlist "${ROUND_RATIOS[@]}")" "$(jnum "$round_median")" "$(jnum "$ci_low")" "$(jnum "$ci_high")" "$(jnum "$peer_pg")" "$(jnum "$peer_client")" "$(jnum "$peer_idle")" \
  "$(jnum "$cpu_pg")" "$(jnum "$cpu_relay")" "$(jnum "$cpu_client")" "$(jnum "$cpu_idle")" "$(head -n1 "$TMP/wake.json")" >"$ROOT/bench/results/pg-$stamp.json"

cat <<EOT
meshwire on PostgreSQL, run $stamp (bench/results/pg-$stamp.json)
$NODES relay node(s) taking sends to $MESHES mesh(es)$( ((KEYED)) && echo ", half with an idempotency_key"), on one database, vs pgbench (one INSERT per transaction), $CLIENTS clients, $SIZE-byte
values, ${SECONDS_EACH} s x $ROUNDS rounds in alternation, synchronous_commit=on; medians:
  durable sends   relay $relay/s   pgbench $peer tx/s   ratio ${ratio}x
  each round      $(printf '%sx ' "${ROUND_RATIOS[@]}")(median ${round_median}x; at or above 1.0x: $rounds_above of $rounds_valid;
                  95% interval of the median: $( [[ $ci_low == n/a ]] && echo "n/a, 6 rounds or more give one" || echo "${ci_low}x to ${ci_high}x"))
  CPU µs per op   pgbench: PostgreSQL $peer_pg, pgbench $peer_client, cores ${peer_idle}% idle
                  relay:   PostgreSQL $cpu_pg, relay nodes $cpu_relay, wrk $cpu_client, cores ${cpu_idle}% idle
  cross-node wake (send's 201 on A -> poll answer on B)  p50 $(jget wake_p50_ms) ms  p99 $(jget wake_p99_ms) ms
EOT
