#!/usr/bin/env bash
# Builds the Python transform into a WASM component: curate.wasm beside this
# script (or the path given). Needs componentize-py (pip install
# componentize-py; scripts/setup.sh puts it in the project's venv).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/curate.wasm}"
bin="$(command -v componentize-py || echo "$HOME/.cache/tributary/venv/bin/componentize-py")"
cd "$here"
exec "$bin" -d ../../../wit -w transform componentize app -o "$out"
