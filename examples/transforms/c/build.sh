#!/usr/bin/env bash
# Builds the C transform into a WASM component: curate.wasm beside this
# script (or the path given). Needs Debian's clang, lld, wasi-libc and
# libclang-rt-dev-wasm32 (scripts/setup.sh installs them) and the tributary
# binary ($TRIBUTARY_BIN, else `tributary` on the PATH), which writes the C
# bindings and makes the component.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/curate.wasm}"
tributary="${TRIBUTARY_BIN:-tributary}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$tributary" transform bindings c "$work/gen" >/dev/null
"${CC:-clang}" --target=wasm32-wasi -O2 -Wall -Wextra -mexec-model=reactor -I "$work" \
  -o "$work/curate.core.wasm" "$here/curate.c" "$work/gen/transform.c" "$work/gen/transform_component_type.o"
"$tributary" transform component "$work/curate.core.wasm" -o "$out" >&2
