#!/usr/bin/env bash
# Builds {name}.wasm: C bindings from tributary, Debian's clang + wasi-libc
# (apt-get install clang lld wasi-libc libclang-rt-dev-wasm32), then a
# component made by tributary with the WASI adapter.
set -euo pipefail
cd "$(dirname "$0")"
tributary="${TRIBUTARY_BIN:-tributary}"
"$tributary" transform bindings c gen >/dev/null
"${CC:-clang}" --target=wasm32-wasi -O2 -Wall -mexec-model=reactor -o {name}.core.wasm \
  transform.c gen/transform.c gen/transform_component_type.o
"$tributary" transform component {name}.core.wasm -o {name}.wasm
