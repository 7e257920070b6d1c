#!/usr/bin/env bash
# The main job on embedded defaults: generated news articles (with duplicates,
# out-of-order and late events) → WASM watermark (2 h) → WASM dedup on id →
# a local Iceberg table (SQLite catalog) — killed with SIGKILL half-way,
# restarted, and read back with PyIceberg and DuckDB.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="$(scripts/setup.sh)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tributary/target}"
echo "== building tributary (release)"
cargo build --release --workspace
BIN="$CARGO_TARGET_DIR/release/tributary"
PIPELINE=examples/quickstart/pipeline.json

rm -rf quickstart
echo "== $BIN validate $PIPELINE"
"$BIN" validate "$PIPELINE"

echo "== run, and kill -9 it after 2 seconds"
"$BIN" run --progress-interval 1 "$PIPELINE" &
pid=$!
sleep 2
kill -9 "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true

echo "== restart: it resumes from the last commit and runs to the end of the generated stream"
"$BIN" run --progress-interval 1 "$PIPELINE"

echo "== the table, read by PyIceberg and DuckDB"
"$PY" scripts/inspect_table.py --catalog-uri sqlite:quickstart/warehouse/catalog.db \
  --warehouse quickstart/warehouse --table demo.news.articles_raw --duckdb --show 3 --human
