#!/usr/bin/env bash
# Runs every test: unit tests, conformance suites, and the end-to-end tests
# against the release binary with PyIceberg and DuckDB reading the tables.
set -euo pipefail
cd "$(dirname "$0")/.."
export TRIBUTARY_PYTHON="$(scripts/setup.sh)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tributary/target}"
# Build once, then test (one release profile for everything).
cargo build --release --workspace --locked
cargo test --release --workspace --locked -- --test-threads="${TRIBUTARY_TEST_THREADS:-2}"
