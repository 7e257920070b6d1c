#!/usr/bin/env bash
# The main job: the seed pipeline examples/articles/pipeline.json, end to end
# on a local machine.
#
#   Kafka topic articles.raw.v1 (Avro, Confluent Schema Registry)
#     → watermark on published_at, 2 hours (late events dropped and counted)
#     → dedup on id within the watermark (state checkpointed)
#     → Iceberg table demo.news.articles_raw (SQLite catalog)
#
# It starts a local Apache Kafka broker (scripts/kafka.sh: one KRaft node, jars
# from Maven Central) and Tributary's own Schema Registry on
# free 127.0.0.1 ports, produces articles with confluent-kafka's Avro producer
# (duplicates, out-of-order and late events, a few malformed messages), runs
# the pipeline, kills it with kill -9 half-way, produces more (a v2 schema with
# a new field), restarts it, and reads the table back with PyIceberg and DuckDB.
# Everything it writes goes to ./quickstart/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="$(scripts/setup.sh)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tributary/target}"
echo "== building tributary (release)"
cargo build --release --workspace
BIN="$CARGO_TARGET_DIR/release/tributary"
PIPELINE=examples/articles/pipeline.json
WORK="$PWD/quickstart"

rm -rf "$WORK"
mkdir -p "$WORK"
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
KAFKA_PORT="$(free_port)"
CONTROLLER_PORT="$(free_port)"
REGISTRY_PORT="$(free_port)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
wait_port() {
  for _ in $(seq 200); do
    if "$PY" -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on 127.0.0.1:$1 (see $WORK/*.log)" >&2; exit 1
}

echo "== Apache Kafka on 127.0.0.1:$KAFKA_PORT, Schema Registry on 127.0.0.1:$REGISTRY_PORT"
scripts/kafka.sh "$WORK/kafka" "$KAFKA_PORT" "$CONTROLLER_PORT" >"$WORK/kafka.log" 2>&1 &
pids+=($!)
"$BIN" schema-registry --listen "127.0.0.1:$REGISTRY_PORT" --data "$WORK/schemas" >"$WORK/registry.log" 2>&1 &
pids+=($!)
wait_port "$REGISTRY_PORT"
# Kafka is ready when it names itself as a broker in metadata (it listens a
# moment before it can serve).
"$PY" - "127.0.0.1:$KAFKA_PORT" <<'EOF'
import sys, time
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
admin = AdminClient({"bootstrap.servers": sys.argv[1], "reconnect.backoff.max.ms": 100})
deadline = time.monotonic() + 90
while True:
    try:
        if admin.list_topics(timeout=1).brokers:
            break
    except KafkaException:
        pass
    if time.monotonic() > deadline:
        sys.exit("Apache Kafka did not serve metadata within 90 s (see quickstart/kafka.log)")
    time.sleep(0.1)
EOF

# The pipeline reads these (see the ${VAR:-default} references in it).
export KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$KAFKA_PORT"
export KAFKA_TOPIC=articles.raw.v1
export SCHEMA_REGISTRY_URL="http://127.0.0.1:$REGISTRY_PORT"
export ICEBERG_TABLE=demo.news.articles_raw
export ICEBERG_WAREHOUSE="$WORK/warehouse"
export ICEBERG_CATALOG_URI="sqlite:$WORK/warehouse/catalog.db"
export CHECKPOINT_LOCATION="$WORK/chk/articles_raw"
produce() { "$PY" scripts/produce_articles.py --bootstrap "$KAFKA_BOOTSTRAP_SERVERS" --registry "$SCHEMA_REGISTRY_URL" --topic "$KAFKA_TOPIC" "$@"; }

echo "== producing 100000 Avro articles (v1 schema) to $KAFKA_TOPIC, 3 partitions, with two malformed messages"
produce --partitions 3 --records 100000 --bad bad-magic --bad truncated --expected "$WORK/expected-1.json"

echo "== $BIN validate $PIPELINE"
"$BIN" validate "$PIPELINE"

echo "== run, and kill -9 it after 3 seconds"
"$BIN" run --progress-interval 1 "$PIPELINE" &
pid=$!
sleep 3
kill -9 "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true

echo "== 20000 more articles with schema v2 (adds an optional field \`language\`)"
produce --first 100000 --records 20000 --schema-version 2 --expected "$WORK/expected-2.json"

echo "== restart: it resumes from the last commit and reads everything there is (--available-now)"
"$BIN" run --available-now --progress-interval 1 "$PIPELINE"

echo "== the table, read by PyIceberg and DuckDB"
"$PY" scripts/inspect_table.py --catalog-uri "$ICEBERG_CATALOG_URI" \
  --warehouse "$ICEBERG_WAREHOUSE" --table "$ICEBERG_TABLE" --duckdb --show 3 --human \
  --expected "$WORK/expected-1.json" --expected "$WORK/expected-2.json"
echo "== dead-lettered records (malformed messages, with the reason):"
cat "$CHECKPOINT_LOCATION"/dead-letter/*.jsonl 2>/dev/null | "$PY" -c '
import json, sys
for line in sys.stdin:
    d = json.loads(line)
    print("  %s: %s" % (d.get("position"), d.get("reason")))'
