#!/usr/bin/env bash
# Builds curate.wasm (or the path given) from curate.js with componentize-js.
# Needs Node.js and npm; installs componentize-js here when missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/curate.wasm}"
cd "$here"
[ -d node_modules/@bytecodealliance/componentize-js ] || npm install --no-audit --no-fund >&2
exec node build.mjs curate.js ../../../wit "$out"
