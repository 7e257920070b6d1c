#!/usr/bin/env bash
# The Kafka benchmark (not a test): N Avro articles (default 1,000,000) into a
# local Apache Kafka broker, then the seed pipeline stage by stage. See
# scripts/bench_kafka.py; results go in BENCHMARKS.md.
#
# Peer mode: `scripts/bench.sh peers [N] [--rounds R] [--systems ...]` runs the
# seed's job on one topic of N articles (default 1,000,000) with Tributary,
# Spark, Kafka Connect + Iceberg's sink and a Python consumer in interleaved
# rounds: see scripts/bench_peers.py.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="$(scripts/setup.sh)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tributary/target}"
cargo build --release -p tributary --bin tributary
if [ "${1:-}" = peers ]; then
  exec "$PY" scripts/bench_peers.py --bin "$CARGO_TARGET_DIR/release/tributary" \
    --records "${2:-1000000}" "${@:3}"
fi
exec "$PY" scripts/bench_kafka.py --bin "$CARGO_TARGET_DIR/release/tributary" \
  --records "${1:-1000000}" "${@:2}"
