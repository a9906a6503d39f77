# bench/lib.sh: what the benchmark scripts share (sourced; defines functions only).

# send_setup URL TOKEN LUA_FILE VALUE: creates a mesh "bench-sends" with agents bench-a and
# bench-b on the relay at URL, writes to LUA_FILE wrk's script of a direct send from bench-a to
# bench-b with content VALUE, and prints the mesh's id (nothing when the relay refused).
send_setup() {
  local url=$1 token=$2 lua=$3 value=$4 mesh
  _bench_api() { curl -sf -X "$1" "$url$2" -H "Authorization: Bearer $token" ${3:+-d "$3"}; }
  mesh=$(_bench_api POST /mesh '{"name":"bench-sends"}' | grep -o '"mesh_id":"[^"]*"' | cut -d'"' -f4)
  [[ -n $mesh ]] || return 0
  _bench_api POST "/mesh/$mesh/agents" '{"name":"bench-a"}' >/dev/null
  _bench_api POST "/mesh/$mesh/agents" '{"name":"bench-b"}' >/dev/null
  send_lua "$lua" "$token" "$value"
  echo "$mesh"
}

# send_lua LUA_FILE TOKEN VALUE: wrk's script of one send from bench-a to bench-b, with content
# VALUE, to the URL wrk is given.
send_lua() {
  cat >"$1" <<EOL
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $2"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"from":"bench-a","to":"bench-b","content":"$3"}'
EOL
}
