# Helpers shared by bench/run.sh and bench/instructions.sh; sourced, not run. The sourcing
# script sets `log_tag` (the prefix of its log lines) first.

log() { printf '[%s %s] %s\n' "$log_tag" "$(date +%H:%M:%S)" "$*" >&2; }

# Prints the calling script's header comment (from line 2 to `set -euo`) and exits.
usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
  exit "${1:-0}"
}

# Configures BUILD_DIR as a release build without tests if needed, then builds TARGETS.
build_release() {
  local build_dir=$1
  shift
  if [[ ! -f "$build_dir/build.ninja" ]]; then
    log "configuring $build_dir"
    cmake --preset release -B "$build_dir" -DSLUICE_BUILD_TESTS=OFF >/dev/null
  fi
  log "building $* (release)"
  cmake --build "$build_dir" -j2 --target "$@" >/dev/null
}

# Runs a command as the postgres user when root (PostgreSQL refuses to run as root).
as_pg() {
  if ((EUID == 0)); then runuser -u postgres -- "$@"; else "$@"; fi
}

# A loopback port nobody listens on right now.
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# waits until PID listens on PORT; fails if it exits first or takes over 60 s
wait_listening() {
  local pid=$1 port=$2 name=$3
  for _ in $(seq 1 600); do
    listening "$port" && return 0
    kill -0 "$pid" 2>/dev/null || { log "$name exited during startup"; return 1; }
    sleep 0.1
  done
  log "$name did not listen on $port within 60 s"
  return 1
}
