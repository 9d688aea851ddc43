#!/usr/bin/env bash
# Installs the Node packages of the end-to-end tests (tests/e2e), including Node 22
# itself, which comes from the npm package `node` because Debian's Node is 20.
# Idempotent and silent on success: Debian's npm is installed only when missing
# (`apt-get update` at most once, then), and `npm ci` runs only when
# tests/e2e/node_modules is missing, incomplete or older than package-lock.json.
# Afterwards tests/e2e/node_modules/.bin/node is Node 22.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
e2e="$root/tests/e2e"

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi

if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >/dev/null
  $sudo apt-get install -y -qq npm nodejs >/dev/null
fi

modules="$e2e/node_modules"
if [[ -d "$modules" && -x "$modules/.bin/node" && ! "$e2e/package-lock.json" -nt "$modules" ]]; then
  exit 0
fi

# A failed or interrupted install must not look complete to the next run.
trap 'rm -rf "$modules"' ERR INT TERM
# npm prints its summary ("added N packages") on stdout; errors go to stderr.
(cd "$e2e" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
trap - ERR INT TERM
# npm ci may leave the folder's own timestamp older than the lock file it installed.
touch "$modules"
