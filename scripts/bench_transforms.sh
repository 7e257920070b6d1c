#!/usr/bin/env bash
# Time per record of the same transforms in Rust, C, Python and JavaScript
# (and the built-ins);
# see scripts/bench_transforms.py. Not a test; results go in BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="$(scripts/setup.sh)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tributary/target}"
cargo build --release -p tributary --bin tributary
exec "$PY" scripts/bench_transforms.py --bin "$CARGO_TARGET_DIR/release/tributary" --records "${1:-100000}"
