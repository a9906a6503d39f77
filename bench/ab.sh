#!/usr/bin/env bash
# bench/ab.sh OLD_BINARY NEW_BINARY: two relays side by side, durable sends in alternation.
#
# Starts each binary as `meshwire server` on a free loopback port with its own SQLite database,
# then runs `wrk -t1 -c16` (200-byte sends, as bench/run.sh) against one and then the other,
# ROUNDS times, swapping which goes first each round, so that the machine's drift hits both
# alike. Prints each round's sends/s and relay CPU per send (from /proc), and the median of the
# rounds' NEW/OLD ratios. This is how docs/PERFORMANCE.md compares one change against the code
# before it; the figures against Redis come from bench/run.sh.
#
#   ROUNDS (8), SECONDS_EACH (3), CLIENTS (16), SIZE (200): as named.
#   OLD_ARGS, NEW_ARGS: extra `meshwire server` flags for each (e.g. NEW_ARGS="--io-threads 1"
#   with the same binary twice compares two settings).
#   OLD_ENV, NEW_ENV: extra environment for each, as NAME=VALUE words.
# Loopback only; everything it starts is stopped on exit.
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

ROUNDS=${ROUNDS:-8}
SECONDS_EACH=${SECONDS_EACH:-3}
CLIENTS=${CLIENTS:-16}
SIZE=${SIZE:-200}

die() {
  echo "ab.sh: $*" >&2
  exit 2
}
(($# == 2)) || die "usage: bench/ab.sh OLD_BINARY NEW_BINARY (see the comment at the top)"
for b in "$1" "$2"; do [[ -x $b ]] || die "$b is not an executable meshwire binary"; done
for n in ROUNDS SECONDS_EACH CLIENTS SIZE; do
  [[ ${!n} =~ ^[1-9][0-9]*$ ]] || die "$n must be a whole number above 0"
done
command -v wrk >/dev/null || die "wrk not found (apt-get install wrk)"
command -v curl >/dev/null || die "curl not found (apt-get install curl)"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/meshwire-ab.XXXXXX")
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

VALUE=$(head -c "$SIZE" /dev/zero | tr '\0' 'x')

# start NAME BINARY ARGS ENV: a relay, a token, a mesh with two agents, wrk's script (lib.sh).
start() {
  local name=$1 bin=$2 args=$3 envs=$4 dir=$TMP/$1 port="" i
  mkdir -p "$dir/home"
  # shellcheck disable=SC2086 # ARGS and ENV are meant to be word-split
  MESHWIRE_HOME=$dir/home env $envs "$bin" server --listen 127.0.0.1:0 --storage "sqlite:$dir/relay.db" \
    $args >"$dir/relay.log" 2>&1 &
  PIDS+=($!)
  eval "${name}_PID=$!"
  for ((i = 0; i < 150; i++)); do
    port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$dir/relay.log")
    [[ -n $port ]] && curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
    port=""
    sleep 0.1
  done
  [[ -n $port ]] || { tail -n 20 "$dir/relay.log" >&2; die "$name relay did not start"; }
  local url=http://127.0.0.1:$port token mesh
  token=$(MESHWIRE_HOME=$dir/home "$bin" admin token create --user ab --name ab --storage "sqlite:$dir/relay.db" \
    2>"$dir/token.err" | tr -d '[:space:]')
  [[ $token == mw_* ]] || { cat "$dir/token.err" >&2; die "$name: admin token create printed no token"; }
  mesh=$(send_setup "$url" "$token" "$dir/send.lua" "$VALUE")
  [[ -n $mesh ]] || die "$name relay: could not create a mesh"
  eval "${name}_URL=$url/mesh/$mesh/messages"
}

# round NAME: "SENDS_PER_S CPU_US_PER_SEND" of one wrk run against NAME's relay.
round() {
  local pid_var=${1}_PID url_var=${1}_URL c0 c1 rps
  local pid=${!pid_var} url=${!url_var}
  c0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
  rps=$(wrk -t1 -c"$CLIENTS" -d"${SECONDS_EACH}s" -s "$TMP/$1/send.lua" "$url" | awk '/^Requests\/sec:/ { print $2 }')
  c1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
  [[ -n $rps ]] || die "wrk printed no rate against $1"
  awk -v a="$c0" -v b="$c1" -v r="$rps" -v s="$SECONDS_EACH" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%.0f %.1f\n", r, (b - a) / hz * 1e6 / (r * s) }'
}

start OLD "$1" "${OLD_ARGS:-}" "${OLD_ENV:-}"
start NEW "$2" "${NEW_ARGS:-}" "${NEW_ENV:-}"
round OLD >/dev/null # warm both up
round NEW >/dev/null

echo "round  old sends/s (CPU us/send)  new sends/s (CPU us/send)  new/old"
ratios=()
for ((r = 1; r <= ROUNDS; r++)); do
  if ((r % 2)); then
    old=$(round OLD) new=$(round NEW)
  else
    new=$(round NEW) old=$(round OLD)
  fi
  ratio=$(awk -v a="${old% *}" -v b="${new% *}" 'BEGIN { printf "%.3f", b / a }')
  ratios+=("$ratio")
  printf '%5d  %10s (%5s)              %10s (%5s)              %s\n' "$r" "${old% *}" "${old#* }" \
    "${new% *}" "${new#* }" "$ratio"
done
printf '%s\n' "${ratios[@]}" | sort -g | awk '{ v[NR] = $1 }
  END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "median new/old over %d rounds: %.3f\n", NR, m }'
