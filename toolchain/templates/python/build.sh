#!/usr/bin/env bash
# Builds {name}.wasm with componentize-py (pip install componentize-py).
set -euo pipefail
cd "$(dirname "$0")"
exec "${COMPONENTIZE_PY:-componentize-py}" -d wit -w transform componentize app -o {name}.wasm
