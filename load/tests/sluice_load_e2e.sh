#!/usr/bin/env bash
# sluice-load against the real gateway, end to end:
#   load/tests/sluice_load_e2e.sh path/to/sluice path/to/sluice-load load/scenarios
# Starts sluice on a free loopback port with a fresh demo database and its per-client limits
# off (one generator pushes one gateway hard), then runs sluice-load for a few seconds in each
# transport with thresholds that must hold (exit 0), once open loop, and once with a threshold
# no run can meet (exit 1). Prints the failing run's output and the server's log tail.
set -euo pipefail
sluice=$1
load=$2
scenarios=$3
dir=$(mktemp -d)
server=""
cleanup() {
  if [[ -n $server ]]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  [[ -f $dir/run.log ]] && cat "$dir/run.log" >&2
  echo "--- sluice log (tail) ---" >&2
  tail -20 "$dir/server.log" >&2 || true
  exit 1
}

# GET /healthz over bash's /dev/tcp; true on 200.
healthy() (
  local status
  # In a subshell, so a refused connection ends only this function.
  exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
  printf 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
  IFS= read -r -t 2 status <&3 || status=""
  exec 3<&- 3>&-
  [[ $status == "HTTP/1.1 200"* ]]
)

# sluice refuses SLUICE_* variables it does not know, so none come from outside.
unset_sluice=$(env | grep -o '^SLUICE_[A-Z0-9_]*' | sed 's/^/-u /' || true)
for attempt in 1 2 3 4 5 6 7 8; do
  port=$((20000 + RANDOM % 40000))
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi  # taken
  # shellcheck disable=SC2086
  env $unset_sluice SLUICE_RATE_LIMIT=0 SLUICE_MAX_IN_FLIGHT=0 \
    "$sluice" --listen "127.0.0.1:$port" --demo-db "$dir/demo.sqlite" 2>"$dir/server.log" &
  server=$!
  for _ in $(seq 1 600); do
    if healthy "$port" 2>/dev/null; then break 2; fi
    kill -0 "$server" 2>/dev/null || break  # lost the port to someone: try another
    sleep 0.1
  done
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  server=""
done
[[ -n $server ]] || fail "sluice did not start"
url=http://127.0.0.1:$port/mcp

# run EXPECTED_STATUS NAME ARGS...: runs sluice-load and checks its exit status.
run() {
  local expected=$1 name=$2
  shift 2
  local status=0
  echo "== $name: sluice-load $*"
  "$load" --url "$url" --quiet "$@" >"$dir/run.log" 2>&1 || status=$?
  cat "$dir/run.log"
  [[ $status -eq $expected ]] || fail "$name: exit status $status, expected $expected"
}

for transport in http-modern http-legacy websocket; do
  run 0 "$transport" --transport "$transport" --scenario "$scenarios/demo.yaml" --clients 8 \
    --duration 4s --warmup 500ms --threshold 'errors<1%' --threshold 'rps>5' \
    --json "$dir/$transport.json" --html "$dir/$transport.html"
  grep -q '"passed": true' "$dir/$transport.json" || fail "$transport: the JSON report says not passed"
  grep -q '"kind"' "$dir/$transport.json" && fail "$transport: errors in the JSON report"
  grep -q '<svg\|createElementNS' "$dir/$transport.html" || fail "$transport: no charts in the HTML report"
done
run 0 open-loop --scenario "$scenarios/select1.yaml" --rate 100 --duration 3s \
  --threshold 'errors<1%' --threshold 'rps>50' --json "$dir/open.json"
grep -q '"mode": "open"' "$dir/open.json" || fail "open-loop: the report does not say open"
run 1 impossible-threshold --scenario "$scenarios/select1.yaml" --clients 2 --duration 1s \
  --threshold 'p50<1us'
grep -q 'FAIL p50<1us' "$dir/run.log" || fail "impossible-threshold: the summary does not name it"
run 2 bad-threshold --scenario "$scenarios/select1.yaml" --threshold 'p50<fast'
echo "all sluice-load runs behaved"
