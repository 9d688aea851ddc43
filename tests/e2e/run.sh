#!/usr/bin/env bash
# Runs one end-to-end test file with Node 22 against the given sluice binary:
#   tests/e2e/run.sh path/to/sluice sdk_streamable_http.test.mjs
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
"$here/../../scripts/install-node-deps.sh"
export SLUICE_BIN=$1
exec "$here/node_modules/.bin/node" --test "$here/$2"
