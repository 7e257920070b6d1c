#!/usr/bin/env bash
# Builds {name}.wasm with componentize-js (Node.js and npm).
set -euo pipefail
cd "$(dirname "$0")"
[ -d node_modules/@bytecodealliance/componentize-js ] || npm install --no-audit --no-fund >&2
exec node build.mjs transform.js wit {name}.wasm
