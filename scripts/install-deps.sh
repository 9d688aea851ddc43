#!/usr/bin/env bash
# Installs the Debian bookworm packages Sluice needs to build, run and test, and any named
# as arguments.
# Idempotent: packages already present are skipped, and `apt-get update` runs at
# most once, only when something is missing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libboost1.81-dev
  unixodbc unixodbc-dev odbc-postgresql libsqliteodbc sqlite3
  nlohmann-json3-dev libyaml-cpp-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev googletest
  libssl-dev libmimalloc-dev
  postgresql-15 postgresql-client-15
)
# Callers may need a few more (bench/instructions.sh: valgrind).
packages+=("$@")

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi

echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done" >&2
