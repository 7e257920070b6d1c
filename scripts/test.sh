#!/usr/bin/env bash
# Runs every test: unit tests, conformance suites, and the end-to-end tests
# against the release binary with PyIceberg and DuckDB reading the tables.
set -euo pipefail
cd "$(dirname "$0")/.."
export TRIBUTARY_PYTHON="$(scripts/setup.sh)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tributary/target}"
# Build once, then test (one release profile for everything).
cargo build --release --workspace --locked
export TRIBUTARY_BIN="$CARGO_TARGET_DIR/release/tributary"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
cargo test --release --workspace --locked -- --test-threads="${TRIBUTARY_TEST_THREADS:-2}" 2>&1 | tee "$log" || status=$?
# The fuzz targets (fuzz/, their own workspace): built, run over their seed
# corpora and fuzzed 10 s each; a crash fails the run (docs/reliability.md).
# Their build is a second, instrumented build of the engine's dependencies
# (wasmtime among them); TRIBUTARY_SKIP_FUZZ=1 skips it.
if [ -z "${TRIBUTARY_SKIP_FUZZ:-}" ]; then
  scripts/fuzz.sh smoke 2>&1 | tee -a "$log" || status=1
fi
# One closing line with the totals of every test binary (cargo prints one
# "test result" line per binary, the last often a doc-test run with none).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
