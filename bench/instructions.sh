#!/usr/bin/env bash
# Instructions Sluice executes per request, counted by Valgrind's callgrind: a figure that
# does not move with the machine's load, so a change of a few percent in Sluice's own code
# shows up here when the timings of bench/run.sh (on a shared VM, ±10% run to run) cannot
# resolve it. User space only: the kernel's share (socket sends and receives, about a third
# of Sluice's CPU on `SELECT 1`) is not counted.
#
#   bench/instructions.sh                      this build
#   bench/instructions.sh --baseline BIN       this build and BIN (say, a build of the commit
#                                              before a change), side by side
#
# Starts a private PostgreSQL 15 on loopback with bench/schema.sql, then for each binary and
# for each of the two benchmark statements (`SELECT 1` and 100 rows of orders): Sluice under
# callgrind (one I/O thread, the native PostgreSQL client, pool of 4), a warm-up run of
# sluice-load, the counters zeroed, a measured run of --seconds, the counters dumped. Prints
# instructions per tools/call (the measured run's own initialize per client is counted in,
# about 0.2% at the defaults). Everything it starts is stopped by PID and the cluster removed.
#
# Options: --baseline BIN, --clients N (4), --seconds S (8), --build-dir DIR (build/bench-rel),
# --keep DIR (keep the callgrind files there, for callgrind_annotate).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
log_tag=instructions
# shellcheck source=bench/common.sh
source "$here/common.sh"
baseline=""
clients=4
seconds=8
build_dir="$root/build/bench-rel"
keep=""

while (($#)); do
  case $1 in
    --baseline) baseline=$2; shift ;;
    --clients) clients=$2; shift ;;
    --seconds) seconds=$2; shift ;;
    --build-dir) build_dir=$2; shift ;;
    --keep) keep=$2; shift ;;
    -h | --help) usage 0 ;;
    *) echo "bench/instructions.sh: unknown option $1" >&2; usage 2 >&2 ;;
  esac
  shift
done
for n in "$clients" "$seconds"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "bench/instructions.sh: $n: expected a positive whole number" >&2; exit 2; }
done
if [[ -n $baseline && ! -x $baseline ]]; then
  echo "bench/instructions.sh: --baseline $baseline is not an executable" >&2
  exit 2
fi

"$root/scripts/install-deps.sh" valgrind
build_release "$build_dir" sluice sluice-load
load="$build_dir/load/sluice-load"
pgbin=/usr/lib/postgresql/15/bin

work=$(mktemp -d /tmp/sluice-instructions.XXXXXX)
chmod 0755 "$work"
((EUID == 0)) && chown postgres:postgres "$work"
server=""
pgdata="$work/data"
cleanup() {
  if [[ -n $server ]]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  if [[ -f $pgdata/postmaster.pid ]]; then
    as_pg "$pgbin/pg_ctl" -D "$pgdata" -m immediate stop >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "starting PostgreSQL 15 in $work"
as_pg "$pgbin/initdb" -D "$pgdata" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
  --no-sync --no-instructions >"$work/initdb.log" 2>&1
pgport=$(free_port)
as_pg "$pgbin/pg_ctl" -D "$pgdata" -l "$work/postgres.log" -w -t 60 start -o \
  "-p $pgport -k $work -c listen_addresses=127.0.0.1 -c fsync=off" >/dev/null
as_pg "$pgbin/psql" -X -q -v ON_ERROR_STOP=1 -h "$work" -p "$pgport" -U postgres -d postgres \
  <"$here/schema.sql" >/dev/null

declare -A sql=(
  [select1]="SELECT 1"
  [rows100]="SELECT id, customer_id, ordered_at, status, total, items FROM orders ORDER BY id LIMIT 100"
)
for s in select1 rows100; do
  printf 'name: %s\ncalls:\n  - tool: query\n    arguments: {sql: "%s"}\n' "$s" "${sql[$s]}" \
    >"$work/$s.yaml"
done

# count BIN STATEMENT: sets `result` to the instructions per request. Not run in a subshell,
# so that cleanup sees the server it starts.
count() {
  local bin=$1 s=$2 port out
  port=$(free_port)
  out="$work/$(basename "$bin")-$s-$RANDOM"
  cat >"$work/sluice.yaml" <<YAML
http: {listen: "127.0.0.1:$port"}
log_level: warn
io_threads: 1
sources:
  - name: bench
    connection_string: "postgresql://postgres@127.0.0.1:$pgport/postgres?sslmode=disable"
    pool: {min_size: 4, max_size: 4}
limits:
  default: {rate: 0, max_in_flight: 0}
YAML
  env $(env | grep -o '^SLUICE_[A-Z0-9_]*' | sed 's/^/-u /') \
    valgrind --tool=callgrind --callgrind-out-file="$out.cg" "$bin" --config "$work/sluice.yaml" \
    >"$out.log" 2>&1 &
  server=$!
  wait_listening "$server" "$port" sluice || { cat "$out.log" >&2; return 1; }
  "$load" --url "http://127.0.0.1:$port/mcp" --transport http-legacy --scenario "$work/$s.yaml" \
    --clients "$clients" --duration 3s --quiet >/dev/null 2>&1
  callgrind_control -z "$server" >/dev/null 2>&1
  "$load" --url "http://127.0.0.1:$port/mcp" --transport http-legacy --scenario "$work/$s.yaml" \
    --clients "$clients" --duration "${seconds}s" --quiet --threshold 'errors<=0' \
    >"$out.txt" 2>&1 || { cat "$out.txt" >&2; return 1; }
  callgrind_control -d "$server" >/dev/null 2>&1
  kill -INT "$server"
  wait "$server" || true
  server=""
  local requests ir
  requests=$(awk '$1 == "requests" { print $2; exit }' "$out.txt")  # "requests N ok, 0 errors"
  # The dump taken after the measured run is the largest file; the one written at exit holds
  # only the shutdown.
  ir=$(for f in "$out".cg*; do
         callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'
       done | sort -n | tail -1)
  [[ -n $keep ]] && { mkdir -p "$keep"; cp "$out".cg* "$keep/"; }
  result=$((ir / requests))
}

printf '| statement | this build |%s\n' "${baseline:+ baseline | this/baseline |}"
printf '|---|--:|%s\n' "${baseline:+--:|--:|}"
for s in select1 rows100; do
  log "$s: this build under callgrind"
  count "$build_dir/gateway/sluice" "$s"
  a=$result
  if [[ -n $baseline ]]; then
    log "$s: baseline under callgrind"
    count "$baseline" "$s"
    b=$result
    printf '| %s | %s | %s | %s |\n' "$s" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2fx", a / b }')"
  else
    printf '| %s | %s |\n' "$s" "$a"
  fi
done
