#!/usr/bin/env bash
# Side-by-side benchmark of Sluice against the strongest peers, on one machine, in one run:
#
#   bench/run.sh            the full matrix (about 25 minutes)
#   bench/run.sh --quick    c=1 and 8, 3 s each, one repeat, 1,000 WebSocket sessions
#
# Installs what is missing (Debian packages, the peers from npm into bench/node_modules),
# builds the release sluice, sluice-load, odbc_floor and http_ceiling in build/bench-rel, starts a private
# PostgreSQL 15 on loopback with the demo schema (bench/schema.sql), then starts
#   sluice    release build, its `query` tool with the two statements as arguments, on
#             its native PostgreSQL client (a postgresql:// URL)
#   sluice-odbc  the same build through psqlODBC (an ODBC connection string)
#   sluice-base  with --baseline BIN only: another sluice binary (say, a build of the commit
#             before a change) on the native client, so before and after share one run
#   toolbox   Google's MCP Toolbox for Databases, two `postgres-sql` tools
#   dbhub     Bytebase DBHub on Node 22, two custom tools from its TOML config
#   ceiling   bench/http_ceiling: canned answers (Sluice's own bytes for each statement), no
#             database, no JSON parsing: what the load generator and loopback TCP allow
#             before a gateway does any work, the ceiling for every MCP server here
# and drives each with the same load generator (sluice-load, one session per virtual
# client, --transport http-legacy, the one Streamable HTTP flavour all three speak) at each
# concurrency level, interleaving the servers so that they share the machine's noise. Two
# floors run the same SQL without MCP: pgbench (the database itself, prepared statements)
# and odbc_floor (the same psqlODBC driver with bulk column binding). Finally 10,000 idle
# WebSocket sessions are opened against a fresh sluice and its memory is read.
#
# Server CPU per request is the server process's utime+stime (/proc/PID/stat) over the
# measured window divided by the requests answered in it; DB CPU likewise over the
# postmaster and its backends; peak RSS is VmHWM (/proc/PID/status), reset before each run.
# Prints one table and writes bench/results/latest.md and latest.json. Everything it
# starts is stopped (by PID) and the cluster removed, also on failure or Ctrl-C.
#
# Options: --quick, --duration S (10), --warmup S (1), --repeats N (3, at the highest
# concurrency), --repeats-below N (3, at the other levels), --clients "1 8 64",
# --systems "sluice sluice-odbc toolbox dbhub ceiling odbc pgbench" (ceiling needs sluice), --ws-sessions N (10000; 0 skips),
# --build-dir DIR (build/bench-rel), --baseline BIN (adds sluice-base, run from BIN, to the
# systems), --results DIR (bench/results), --perf DIR (after the
# measured runs, one more run of Sluice per statement at the highest concurrency under
# `perf record -g`, not counted in the table; writes DIR/sluice-<statement>.data and a
# summary by library and function in DIR/sluice-<statement>.txt; needs perf). BENCH_PG_OPTIONS adds
# server options, e.g. BENCH_PG_OPTIONS='-c log_statement=all' to see what each server sends
# (the log is printed if the run fails, and removed with the cluster). BENCH_SLUICE_CONFIG
# adds lines to Sluice's YAML config, e.g. BENCH_SLUICE_CONFIG='log_level: info'.
#
# --sluice-io-threads N (1): Sluice's `io_threads`. One by default: client, servers and
# database share this machine's cores, and an I/O thread per core then costs Sluice more CPU
# per request (threads that go idle and are woken again) for the same throughput. 0 leaves
# Sluice at its own default, a thread per CPU. The peers run at their defaults, which are
# their best here (Toolbox with GOMAXPROCS=1 answers 10-30% fewer requests at no less CPU
# per request); a GOMAXPROCS in the environment reaches Toolbox.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
log_tag=bench
# shellcheck source=bench/common.sh
source "$here/common.sh"

duration=10
warmup=1
repeats=3
repeats_below=3
clients="1 8 64"
systems="sluice sluice-odbc toolbox dbhub ceiling odbc pgbench"
ws_sessions=10000
build_dir="$root/build/bench-rel"
results="$here/results"
mode=full
perf_dir=""
baseline=""
sluice_io_threads=1
command_line="bench/run.sh${*:+ $*}"

while (($#)); do
  case $1 in
    --quick)
      mode=quick duration=3 warmup=1 repeats=1 repeats_below=1 clients="1 8" ws_sessions=1000
      ;;
    --duration) duration=$2; shift ;;
    --warmup) warmup=$2; shift ;;
    --repeats) repeats=$2; shift ;;
    --repeats-below) repeats_below=$2; shift ;;
    --clients) clients=$2; shift ;;
    --systems) systems=$2; shift ;;
    --ws-sessions) ws_sessions=$2; shift ;;
    --build-dir) build_dir=$2; shift ;;
    --results) results=$2; shift ;;
    --perf) perf_dir=$2; shift ;;
    --baseline) baseline=$2; shift ;;
    --sluice-io-threads) sluice_io_threads=$2; shift ;;
    -h | --help) usage 0 ;;
    *) echo "bench/run.sh: unknown option $1" >&2; usage 2 >&2 ;;
  esac
  shift
done
for n in "$duration" "$warmup" "$repeats" "$repeats_below" "$ws_sessions" "$sluice_io_threads"; do
  [[ $n =~ ^[0-9]+$ ]] || { echo "bench/run.sh: $n: expected a whole number" >&2; exit 2; }
done
((duration > 0)) || { echo "bench/run.sh: --duration must be > 0" >&2; exit 2; }

# ---------------------------------------------------------------- what is needed
"$root/scripts/install-deps.sh"
"$root/scripts/install-node-deps.sh"  # Node 22 and `ws` for load/ws_scale.mjs

modules="$here/node_modules"
if [[ ! -x "$modules/.bin/node" || ! -x "$modules/@toolbox-sdk/server-linux-x64/bin/toolbox" ||
      ! -f "$modules/@bytebase/dbhub/dist/index.js" || "$here/package-lock.json" -nt "$modules" ]]; then
  log "installing the peers from npm into bench/node_modules"
  trap 'rm -rf "$modules"' ERR INT TERM
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  trap - ERR INT TERM
  touch "$modules"
fi
node="$modules/.bin/node"
toolbox="$modules/@toolbox-sdk/server-linux-x64/bin/toolbox"
dbhub="$modules/@bytebase/dbhub/dist/index.js"
e2e_node="$root/tests/e2e/node_modules/.bin/node"

build_release "$build_dir" sluice sluice-load odbc_floor http_ceiling
sluice="$build_dir/gateway/sluice"
if [[ -n $baseline ]]; then
  [[ -x $baseline ]] || { echo "bench/run.sh: --baseline $baseline is not an executable" >&2; exit 2; }
  baseline=$(cd "$(dirname "$baseline")" && pwd)/$(basename "$baseline")
  [[ " $systems " == *" sluice-base "* ]] || systems="sluice-base $systems"
fi
load="$build_dir/load/sluice-load"
floor="$build_dir/bench/odbc_floor"
ceiling="$build_dir/bench/http_ceiling"
export ODBCSYSINI="$build_dir/odbc"

pgbin=/usr/lib/postgresql/15/bin

# 10,000 WebSocket sessions need as many descriptors in the server and in the client.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# ---------------------------------------------------------------- cleanup
work=$(mktemp -d /tmp/sluice-bench.XXXXXX)
chmod 0755 "$work"
started=()  # PIDs of the servers and of the one load process running, not yet reaped
pgdata=""

# Stops one process started here (TERM, then KILL after 5 s) and reaps it.
stop_pid() {
  local target=$1 keep=()
  kill "$target" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$target" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$target" 2>/dev/null || true
  wait "$target" 2>/dev/null || true
  for p in "${started[@]}"; do [[ $p == "$target" ]] || keep+=("$p"); done
  started=("${keep[@]}")
}

# Waits for a load process started here and forgets it; never fails.
reap() {
  local target=$1 keep=()
  wait "$target" 2>/dev/null || true
  for p in "${started[@]}"; do [[ $p == "$target" ]] || keep+=("$p"); done
  started=("${keep[@]}")
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  for ((i = ${#started[@]} - 1; i >= 0; i--)); do stop_pid "${started[i]}"; done
  if [[ -n $pgdata && -f $pgdata/postmaster.pid ]]; then
    as_pg "$pgbin/pg_ctl" -D "$pgdata" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  if ((status != 0 && status != 130 && status != 143)) && [[ -d $work ]]; then
    for f in "$work"/*.log; do
      [[ -f $f ]] || continue
      echo "--- $(basename "$f") (tail) ---" >&2
      tail -15 "$f" >&2
    done
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# utime+stime of one process, in clock ticks
ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }

# utime+stime of the postmaster, its live backends, and its reaped children, in ticks
pg_ticks() {
  # Processes come and go while cat reads: a vanished one is not an error.
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v pm="$postmaster" '
    { pid = $1; sub(/^.*\) /, "")
      if (pid == pm) t += $12 + $13 + $14 + $15; else if ($2 == pm) t += $12 + $13 }
    END { print t + 0 }'
}

hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

# ---------------------------------------------------------------- PostgreSQL
log "starting PostgreSQL 15 in $work/pg"
mkdir "$work/pg"
((EUID == 0)) && chown postgres:postgres "$work/pg"
pgdata="$work/pg/data"
superuser_pw=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
bench_pw=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$superuser_pw" >"$work/pg/pw"
((EUID == 0)) && chown postgres:postgres "$work/pg/pw"
as_pg "$pgbin/initdb" -D "$pgdata" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
  --pwfile="$work/pg/pw" --encoding=UTF8 --locale=C.UTF-8 --no-sync --no-instructions \
  >"$work/initdb.log" 2>&1
rm -f "$work/pg/pw"
for attempt in 1 2 3; do
  pgport=$(free_port)
  if as_pg "$pgbin/pg_ctl" -D "$pgdata" -l "$work/pg/postgres.log" -w -t 60 start -o \
      "-p $pgport -k $work/pg -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off ${BENCH_PG_OPTIONS:-}" \
      >/dev/null; then
    break
  fi
  ((attempt < 3)) || { cat "$work/pg/postgres.log" >&2; exit 1; }
done
postmaster=$(head -1 "$pgdata/postmaster.pid")
psql_as() {  # psql_as USER DATABASE: runs stdin
  as_pg "$pgbin/psql" -X -q -v ON_ERROR_STOP=1 -h "$work/pg" -p "$pgport" -U "$1" -d "$2" >/dev/null
}
psql_as postgres postgres <<SQL
CREATE ROLE bench LOGIN PASSWORD '$bench_pw';
CREATE DATABASE bench OWNER bench;
SQL
psql_as bench bench <"$here/schema.sql"
log "demo schema loaded: customers 10,000 rows, orders 20,000 (port $pgport)"

# ---------------------------------------------------------------- the two statements
declare -A sql=(
  [select1]="SELECT 1"
  [rows100]="SELECT id, customer_id, ordered_at, status, total, items FROM orders ORDER BY id LIMIT 100"
)
scenarios="select1 rows100"
odbc="Driver={PostgreSQL Unicode};Server=127.0.0.1;Port=$pgport;Database=bench;Uid=bench;Pwd=$bench_pw;"

# ---------------------------------------------------------------- configurations
pgurl="postgresql://bench:$bench_pw@127.0.0.1:$pgport/bench?sslmode=disable"
for name in sluice sluice-odbc sluice-base; do
  cs=$pgurl
  [[ $name == sluice-odbc ]] && cs=$odbc
  cat >"$work/$name.yaml" <<YAML
log_level: warn
sources:
  - name: bench
    connection_string: "$cs"
    pool: {min_size: 4, max_size: 4}
sessions: {max: 20000}
limits:
  default: {rate: 0, max_in_flight: 0}
YAML
  if ((sluice_io_threads > 0)); then echo "io_threads: $sluice_io_threads" >>"$work/$name.yaml"; fi
  if [[ -n ${BENCH_SLUICE_CONFIG:-} ]]; then
    printf '%s\n' "$BENCH_SLUICE_CONFIG" >>"$work/$name.yaml"
  fi
done
for s in $scenarios; do
  printf 'name: %s\ncalls:\n  - tool: query\n    arguments: {sql: "%s"}\n' "$s" "${sql[$s]}" \
    >"$work/sluice-$s.yaml"
  cp "$work/sluice-$s.yaml" "$work/sluice-odbc-$s.yaml"
  cp "$work/sluice-$s.yaml" "$work/sluice-base-$s.yaml"
  printf 'name: %s\ncalls:\n  - tool: %s\n' "$s" "$s" >"$work/toolbox-$s.yaml"
  cp "$work/toolbox-$s.yaml" "$work/dbhub-$s.yaml"
  cp "$work/toolbox-$s.yaml" "$work/ceiling-$s.yaml"
  printf '%s;\n' "${sql[$s]}" >"$work/$s.pgbench"
done

cat >"$work/tools.yaml" <<YAML
kind: source
name: bench
type: postgres
host: 127.0.0.1
port: $pgport
database: bench
user: bench
password: $bench_pw
---
kind: tool
name: select1
type: postgres-sql
source: bench
description: SELECT 1
statement: ${sql[select1]}
---
kind: tool
name: rows100
type: postgres-sql
source: bench
description: 100 rows of orders
statement: ${sql[rows100]}
YAML

cat >"$work/dbhub.toml" <<TOML
[[sources]]
id = "bench"
dsn = "postgres://bench:$bench_pw@127.0.0.1:$pgport/bench?sslmode=disable"

[[tools]]
name = "select1"
source = "bench"
description = "SELECT 1"
statement = "${sql[select1]}"

[[tools]]
name = "rows100"
source = "bench"
description = "100 rows of orders"
statement = "${sql[rows100]}"
TOML

# ---------------------------------------------------------------- servers
declare -A pid port
start_server() {
  local name=$1
  port[$name]=$(free_port)
  case $name in
    sluice | sluice-odbc | sluice-base)
      sed -i "1i http: {listen: \"127.0.0.1:${port[$name]}\"}" "$work/$name.yaml"
      # sluice refuses SLUICE_* variables it does not know, so none come from outside.
      env $(env | grep -o '^SLUICE_[A-Z0-9_]*' | sed 's/^/-u /') \
        "$([[ $name == sluice-base ]] && echo "$baseline" || echo "$sluice")" \
        --config "$work/$name.yaml" >"$work/$name.log" 2>&1 &
      ;;
    toolbox)
      (cd "$work" && exec "$toolbox" --config "$work/tools.yaml" --address 127.0.0.1 \
        --port "${port[$name]}" --disable-version-check --disable-reload --log-level WARN \
        >"$work/toolbox.log" 2>&1) &
      ;;
    dbhub)
      (cd "$work" && exec "$node" "$dbhub" --config "$work/dbhub.toml" --transport http \
        --host 127.0.0.1 --port "${port[$name]}" >"$work/dbhub.log" 2>&1) &
      ;;
    ceiling)
      local answers=()
      for s in $scenarios; do answers+=(--answer "$s=$work/answer-$s.json"); done
      "$ceiling" --listen "127.0.0.1:${port[$name]}" "${answers[@]}" >"$work/ceiling.log" 2>&1 &
      ;;
  esac
  pid[$name]=$!
  started+=("${pid[$name]}")
  wait_listening "${pid[$name]}" "${port[$name]}" "$name"
}

# One run of sluice-load against a server; appends a line to runs.jsonl.
run_mcp() {
  local name=$1 scenario=$2 c=$3 rep=$4
  local out="$work/runs/$name-$scenario-c$c-r$rep.json" g0 g1 d0 d1 lp
  echo 5 >"/proc/${pid[$name]}/clear_refs" 2>/dev/null || true  # resets VmHWM
  "$load" --url "http://127.0.0.1:${port[$name]}/mcp" --transport http-legacy \
    --scenario "$work/$name-$scenario.yaml" --clients "$c" --duration "${duration}s" \
    --warmup "${warmup}s" --timeout 30s --quiet --json "$out" >"$out.txt" 2>&1 &
  lp=$!
  started+=("$lp")
  sleep "$warmup"
  g0=$(ticks "${pid[$name]}") d0=$(pg_ticks)
  reap "$lp"
  g1=$(ticks "${pid[$name]}") d1=$(pg_ticks)
  [[ -f $out ]] || { log "$name $scenario c=$c: sluice-load wrote no report"; cat "$out.txt" >&2; return 0; }
  printf '{"system":"%s","scenario":"%s","clients":%d,"repeat":%d,"kind":"sluice-load","file":"%s","server_ticks":%d,"db_ticks":%d,"peak_rss_kib":%d}\n' \
    "$name" "$scenario" "$c" "$rep" "$out" $((g1 - g0)) $((d1 - d0)) "$(hwm_kib "${pid[$name]}")" \
    >>"$work/runs.jsonl"
}

run_odbc() {
  local scenario=$1 c=$2 rep=$3
  local out="$work/runs/odbc-$scenario-c$c-r$rep.json" d0 d1 fp
  "$floor" --connection-string "$odbc" --sql "${sql[$scenario]}" --clients "$c" \
    --duration "$duration" --warmup "$warmup" --json "$out" >"$out.txt" 2>&1 &
  fp=$!
  started+=("$fp")
  sleep "$warmup"
  d0=$(pg_ticks)
  reap "$fp"
  d1=$(pg_ticks)
  [[ -f $out ]] || { log "odbc $scenario c=$c: no report"; cat "$out.txt" >&2; return 0; }
  printf '{"system":"odbc","scenario":"%s","clients":%d,"repeat":%d,"kind":"odbc_floor","file":"%s","db_ticks":%d}\n' \
    "$scenario" "$c" "$rep" "$out" $((d1 - d0)) >>"$work/runs.jsonl"
}

run_pgbench() {
  local scenario=$1 c=$2 rep=$3
  local prefix="$work/pgbench/$scenario-c$c-r$rep" d0 d1 bp
  local threads=$((c < 2 ? c : 2))
  mkdir -p "$prefix"
  PGPASSWORD=$bench_pw "$pgbin/pgbench" -h 127.0.0.1 -p "$pgport" -U bench -n -M prepared \
    -c "$c" -j "$threads" -T $((warmup + duration)) -f "$work/$scenario.pgbench" \
    -l --log-prefix="$prefix/log" bench >"$prefix/out.txt" 2>&1 &
  bp=$!
  started+=("$bp")
  sleep "$warmup"
  d0=$(pg_ticks)
  reap "$bp"
  d1=$(pg_ticks)
  printf '{"system":"pgbench","scenario":"%s","clients":%d,"repeat":%d,"kind":"pgbench","dir":"%s","db_ticks":%d,"warmup_s":%d,"duration_s":%d}\n' \
    "$scenario" "$c" "$rep" "$prefix" $((d1 - d0)) "$warmup" "$duration" >>"$work/runs.jsonl"
}

mkdir -p "$work/runs" "$work/pgbench" "$results"
: >"$work/runs.jsonl"
: >"$work/checks.jsonl"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

active=()
for name in sluice-base sluice sluice-odbc toolbox dbhub ceiling; do
  [[ " $systems " == *" $name "* ]] || continue
  if [[ $name == ceiling && ! -f $work/answer-select1.json ]]; then
    log "ceiling left out: it answers with Sluice's bytes, and sluice did not run"
    continue
  fi
  log "starting $name"
  start_server "$name"
  # One call of each tool, to check that every server returns the same rows (the 100 order
  # timestamps in the text a model reads), then a short smoke run: a server that cannot
  # answer is left out, not timed.
  ok=1
  for s in $scenarios; do
    args='{}'
    [[ $name == sluice* ]] && args="{\"sql\": \"${sql[$s]}\"}"
    tool=$s
    [[ $name == sluice* ]] && tool=query
    save=()
    [[ $name == sluice ]] && save=("$work/answer-$s.json")
    answer=$("$node" "$here/check_tool.mjs" "http://127.0.0.1:${port[$name]}/mcp" "$tool" "$args" \
      '2024-01-0[1-3]' "${save[@]}" 2>&1) || ok=0
    printf '{"system":"%s","scenario":"%s","check":%s}\n' "$name" "$s" "$answer" >>"$work/checks.jsonl"
    "$load" --url "http://127.0.0.1:${port[$name]}/mcp" --transport http-legacy \
      --scenario "$work/$name-$s.yaml" --clients 1 --duration 1s --quiet \
      --threshold 'errors<=0' >"$work/smoke-$name-$s.txt" 2>&1 || ok=0
  done
  if ((ok)); then
    active+=("$name")
  else
    log "$name failed its smoke run; left out:"
    cat "$work"/smoke-"$name"-*.txt >&2
    stop_pid "${pid[$name]}"
    unset "pid[$name]"
  fi
done
for name in odbc pgbench; do
  [[ " $systems " == *" $name "* ]] && active+=("$name")
done

levels=($clients)
top=${levels[-1]}
runs=0
for s in $scenarios; do
  for c in "${levels[@]}"; do
    n=$repeats_below
    ((c == top)) && n=$repeats
    runs=$((runs + n * ${#active[@]}))
  done
done
log "measuring ${active[*]}: $runs runs of ${warmup}+${duration} s (about $(((runs * (warmup + duration + 1) + 59) / 60)) min)"

for s in $scenarios; do
  for c in "${levels[@]}"; do
    n=$repeats_below
    ((c == top)) && n=$repeats
    for ((rep = 1; rep <= n; rep++)); do
      for name in "${active[@]}"; do
        log "$s c=$c repeat $rep/$n: $name"
        case $name in
          odbc) run_odbc "$s" "$c" "$rep" ;;
          pgbench) run_pgbench "$s" "$c" "$rep" ;;
          *) run_mcp "$name" "$s" "$c" "$rep" ;;
        esac
      done
    done
  done
done

# ---------------------------------------------------------------- profile (--perf)
if [[ -n $perf_dir && " ${active[*]} " == *" sluice "* ]]; then
  if ! command -v perf >/dev/null; then
    log "--perf: perf is not installed (Debian package linux-perf); no profile taken"
  else
    mkdir -p "$perf_dir"
    perf_dir=$(cd "$perf_dir" && pwd)
    for s in $scenarios; do
      log "$s c=$top: sluice under perf record (not counted)"
      "$load" --url "http://127.0.0.1:${port[sluice]}/mcp" --transport http-legacy \
        --scenario "$work/sluice-$s.yaml" --clients "$top" --duration "${duration}s" \
        --warmup "${warmup}s" --timeout 30s --quiet >"$work/perf-$s.txt" 2>&1 &
      lp=$!
      started+=("$lp")
      sleep "$warmup"
      perf record -g -F 999 -p "${pid[sluice]}" -o "$perf_dir/sluice-$s.data" \
        -- sleep "$duration" >"$work/perf-record-$s.log" 2>&1 || log "perf record failed (see $perf_dir)"
      reap "$lp"
      {
        echo "# sluice, $s, $top clients: share of samples by library, then by function"
        perf report -i "$perf_dir/sluice-$s.data" --no-children --sort dso -g none 2>/dev/null |
          grep -v '^#' | grep -v '^$' | head -12 || true
        echo
        perf report -i "$perf_dir/sluice-$s.data" --no-children --sort sym -g none 2>/dev/null |
          grep -v '^#' | grep -v '^$' | head -40 || true
      } >"$perf_dir/sluice-$s.txt"
      log "profile: $perf_dir/sluice-$s.txt"
    done
  fi
fi

# ---------------------------------------------------------------- idle WebSocket sessions
ws_json=""
if ((ws_sessions > 0)) && [[ " ${active[*]} " == *" sluice "* ]]; then
  for name in sluice-base sluice sluice-odbc toolbox dbhub ceiling; do
    if [[ -n ${pid[$name]:-} ]]; then stop_pid "${pid[$name]}"; fi
  done
  log "opening $ws_sessions idle WebSocket sessions against a fresh sluice"
  ws_port=$(free_port)
  sed -i "1s/.*/http: {listen: \"127.0.0.1:$ws_port\"}/" "$work/sluice.yaml"
  env $(env | grep -o '^SLUICE_[A-Z0-9_]*' | sed 's/^/-u /') \
    "$sluice" --config "$work/sluice.yaml" >"$work/sluice-ws.log" 2>&1 &
  ws_pid=$!
  started+=("$ws_pid")
  wait_listening "$ws_pid" "$ws_port" "sluice (WebSocket)"
  # Sessions stay idle: about one in five makes a single call during the few seconds the
  # check runs; the memory is read after all are open and settled, and at its peak.
  "$e2e_node" "$root/load/ws_scale.mjs" --url "ws://127.0.0.1:$ws_port/mcp" \
    --sessions "$ws_sessions" --seconds 1 --rate 0.2 --settle-ms 2000 --pid "$ws_pid" \
    >"$work/ws.json" 2>"$work/ws.log" || log "ws_scale reported failures (see the results)"
  ws_json="$work/ws.json"
fi
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem_gib=$(awk '/^MemTotal:/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
"$node" "$here/report.mjs" --runs "$work/runs.jsonl" --checks "$work/checks.jsonl" --ws "$ws_json" --results "$results" \
  --clk-tck "$(getconf CLK_TCK)" --mode "$mode" --command "$command_line" \
  --machine "$(nproc) cores ($cpu_model), ${mem_gib} GiB RAM, $(uname -sr)" \
  --load "$load_before -> $load_after" --duration "$duration" --warmup "$warmup" \
  --sluice-io-threads "$sluice_io_threads" --gomaxprocs "${GOMAXPROCS:-default}" \
  --versions "sluice $("$sluice" --version 2>/dev/null | awk '{print $NF}'), toolbox $("$toolbox" --version | awk '{print $3}'), dbhub $("$node" -p "require('$modules/@bytebase/dbhub/package.json').version"), node $("$node" --version), PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}'), psqlODBC $(dpkg-query -W -f='${Version}' odbc-postgresql 2>/dev/null)"
