#!/usr/bin/env bash
# Starts the given sluice on a free loopback port with a fresh demo database, runs the
# WebSocket scale check (load/ws_scale.mjs) against it with the remaining arguments, stops
# the server, and exits with the check's status:
#   tests/e2e/run_load.sh path/to/sluice --sessions 200 --seconds 20 --rate 1
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
"$here/../../scripts/install-node-deps.sh"
node="$here/node_modules/.bin/node"
bin=$1
shift
dir=$(mktemp -d)
port=$("$node" -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
# sluice refuses SLUICE_* variables it does not know; run it without any.
env $(env | grep -o '^SLUICE_[A-Z0-9_]*' | sed 's/^/-u /') \
  "$bin" --listen "127.0.0.1:$port" --demo-db "$dir/demo.sqlite" 2>"$dir/server.log" &
server=$!
cleanup() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
for _ in $(seq 1 600); do
  if "$node" -e "fetch('http://127.0.0.1:$port/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"; then
    break
  fi
  kill -0 "$server" 2>/dev/null || { cat "$dir/server.log" >&2; exit 1; }
  sleep 0.1
done
status=0
"$node" "$here/../../load/ws_scale.mjs" --url "ws://127.0.0.1:$port/mcp" --pid "$server" "$@" || status=$?
if [[ $status -ne 0 ]]; then tail -20 "$dir/server.log" >&2; fi
exit $status
