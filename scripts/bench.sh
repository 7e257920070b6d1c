#!/usr/bin/env bash
# The Kafka benchmark (not a test): N Avro articles (default 1,000,000) into a
# local Apache Kafka broker, then the seed pipeline stage by stage. See
# scripts/bench_kafka.py; results go in BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="$(scripts/setup.sh)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tributary/target}"
cargo build --release -p tributary --bin tributary
exec "$PY" scripts/bench_kafka.py --bin "$CARGO_TARGET_DIR/release/tributary" \
  --records "${1:-1000000}" "${@:2}"
