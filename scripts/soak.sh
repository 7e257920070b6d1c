#!/usr/bin/env bash
# The soak run (issue 19): the seed pipeline examples/articles/pipeline.json
# (Kafka → watermark 2 h → dedup on id → Iceberg) fed at a steady rate for a
# long time, watched for growth, then checked for loss.
#
#   scripts/soak.sh [--duration SECONDS] [--rate RECORDS_PER_S] [--out DIR]
#                   [--interval SECONDS] [--partitions N] [--lock-catalog AT:SECONDS]
#
# Defaults: one hour (3600 s) at 1000 records/s, samples every 10 s, 3
# partitions, the results in ./soak/. It starts Apache Kafka
# (scripts/kafka.sh) and Tributary's Schema Registry on free 127.0.0.1 ports,
# runs `tributary run` on the seed pipeline with its metrics endpoint on, and
# produces Avro articles (scripts/produce_articles.py --rate: ~10% duplicates
# of a recent record, 1% late by 3 hours, event time 250 ms apart so the 2 h
# dedup window holds 28,800 ids once full). scripts/soak.py samples the
# pipeline process every --interval s: RSS, threads, open fds, CPU, its
# metrics, the warehouse size, and every epoch's commit latency from the
# progress lines. When the producer is done it waits for the pipeline to read
# everything and commit, stops it with SIGTERM (its final commit), reads the
# table back with PyIceberg and checks every expected id is there exactly
# once. Writes to --out: samples.csv, commits.csv, producer.json, check.json,
# summary.md (also printed), pipeline.log. Exits 1 when a record is lost or
# duplicated, or when the pipeline stalled (read nothing for 120 s while
# records waited; it is then restarted so the table can still be checked).
#
# --lock-catalog AT:SECONDS holds an exclusive lock on the table's SQLite
# catalog for SECONDS, AT seconds after producing starts: a commit that takes
# that long, as under a slow catalog or disk (docs/reliability.md, "Soak").
#
# The binary is $TRIBUTARY_BIN (default: the release build in
# $CARGO_TARGET_DIR, built when missing); Python is $TRIBUTARY_PYTHON (default:
# scripts/setup.sh's venv). Everything else lives in a temporary folder that
# is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=3600
rate=1000
out="$PWD/soak"
interval=10
partitions=3
lock_catalog=""
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration="$2"; shift 2 ;;
    --rate) rate="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --interval) interval="$2"; shift 2 ;;
    --partitions) partitions="$2"; shift 2 ;;
    --lock-catalog) lock_catalog="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "soak.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
records=$(( duration * rate ))

PY="${TRIBUTARY_PYTHON:-$(scripts/setup.sh)}"
if [ -z "${TRIBUTARY_BIN:-}" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tributary/target}"
  cargo build --release -p tributary
  TRIBUTARY_BIN="$CARGO_TARGET_DIR/release/tributary"
fi
BIN="$TRIBUTARY_BIN"
PIPELINE=examples/articles/pipeline.json

mkdir -p "$out"
out="$(cd "$out" && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/tributary-soak.XXXXXX")"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { echo "soak $(date -u +%H:%M:%S): $*"; }

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 300); do
    if "$PY" -c "import socket; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on 127.0.0.1:$1" >&2; exit 1
}
metric() { # the sum of a metric's samples, 0 when absent
  "$PY" - "$METRICS_URL" "$1" <<'EOF'
import sys, urllib.request
from prometheus_client.parser import text_string_to_metric_families
text = urllib.request.urlopen(sys.argv[1], timeout=5).read().decode()
print(int(sum(s.value for f in text_string_to_metric_families(text)
              for s in f.samples if s.name == sys.argv[2])))
EOF
}

KAFKA_PORT="$(free_port)"
CONTROLLER_PORT="$(free_port)"
REGISTRY_PORT="$(free_port)"
METRICS_PORT="$(free_port)"
METRICS_URL="http://127.0.0.1:$METRICS_PORT/metrics"

log "$duration s at $rate records/s ($records records), $partitions partitions; work folder $WORK, results in $out"
log "Apache Kafka on 127.0.0.1:$KAFKA_PORT, Schema Registry on 127.0.0.1:$REGISTRY_PORT"
scripts/kafka.sh "$WORK/kafka" "$KAFKA_PORT" "$CONTROLLER_PORT" >"$WORK/kafka.log" 2>&1 &
pids+=($!)
"$BIN" schema-registry --listen "127.0.0.1:$REGISTRY_PORT" --data "$WORK/schemas" >"$WORK/registry.log" 2>&1 &
pids+=($!)
wait_port "$REGISTRY_PORT"
# (librdkafka logs each refused connection until Kafka listens: kept aside.)
"$PY" - "127.0.0.1:$KAFKA_PORT" 2>"$WORK/wait-kafka.log" <<'EOF' || { cat "$WORK/wait-kafka.log"; tail -20 "$WORK/kafka.log"; exit 1; } >&2
import sys, time
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
admin = AdminClient({"bootstrap.servers": sys.argv[1], "reconnect.backoff.max.ms": 100})
deadline = time.monotonic() + 120
while True:
    try:
        if admin.list_topics(timeout=1).brokers:
            break
    except KafkaException:
        pass
    if time.monotonic() > deadline:
        sys.exit("Apache Kafka did not serve metadata within 120 s")
    time.sleep(0.2)
EOF

export KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$KAFKA_PORT"
export KAFKA_TOPIC=articles.raw.v1
export SCHEMA_REGISTRY_URL="http://127.0.0.1:$REGISTRY_PORT"
export ICEBERG_TABLE=demo.news.articles_raw
export ICEBERG_WAREHOUSE="$WORK/warehouse"
export ICEBERG_CATALOG_URI="sqlite:$WORK/warehouse/catalog.db"
export CHECKPOINT_LOCATION="$WORK/chk/articles_raw"
produce() { "$PY" scripts/produce_articles.py --bootstrap "$KAFKA_BOOTSTRAP_SERVERS" --registry "$SCHEMA_REGISTRY_URL" --topic "$KAFKA_TOPIC" "$@"; }

# The topic first, so the pipeline starts on a topic that exists.
produce --partitions "$partitions" --records 0 >/dev/null
"$BIN" validate "$PIPELINE" >/dev/null

log "tributary run $PIPELINE (metrics on 127.0.0.1:$METRICS_PORT)"
"$BIN" run --progress-interval 1 --metrics-listen "127.0.0.1:$METRICS_PORT" "$PIPELINE" >"$WORK/pipeline.log" 2>&1 &
run_pid=$!
pids+=($run_pid)
wait_port "$METRICS_PORT"

rm -f "$WORK/stop-sampling"
"$PY" scripts/soak.py sample --pid "$run_pid" --metrics "$METRICS_URL" --log "$WORK/pipeline.log" \
  --warehouse "$WORK/warehouse" --checkpoint "$WORK/chk" --csv "$out/samples.csv" \
  --commits "$out/commits.csv" --stop-file "$WORK/stop-sampling" --interval "$interval" &
sampler_pid=$!
pids+=($sampler_pid)

if [ -n "$lock_catalog" ]; then
  "$PY" - "$WORK/warehouse/catalog.db" "${lock_catalog%%:*}" "${lock_catalog#*:}" <<'EOF' &
import sqlite3, sys, time
time.sleep(float(sys.argv[2]))
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)
db.execute("BEGIN EXCLUSIVE")
print(f"soak {time.strftime('%H:%M:%S', time.gmtime())}: the catalog is locked for {sys.argv[3]} s", flush=True)
time.sleep(float(sys.argv[3]))
db.execute("ROLLBACK")
print(f"soak {time.strftime('%H:%M:%S', time.gmtime())}: the catalog is unlocked", flush=True)
EOF
  pids+=($!)
fi
log "producing $records records at $rate/s"
produce --records "$records" --rate "$rate" --expected "$WORK/expected.json" >"$out/producer.json"
produced="$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["produced"])' "$out/producer.json")"
log "produced $produced records ($(cat "$out/producer.json"))"

# Catch up: everything read, then two trigger intervals for the epoch that
# holds the last records to commit; SIGTERM then commits whatever is left
# and stops the run. A run that reads nothing for 120 s while records wait
# has stalled: it is stopped the same way and started again with
# --available-now (it resumes from its last commit and reads the rest), so
# the table can still be checked; the soak then fails.
stalled=""
last_in=-1
last_move=$(date +%s)
while :; do
  if ! kill -0 "$run_pid" 2>/dev/null; then echo "the pipeline stopped (see $out/pipeline.log)" >&2; cp "$WORK/pipeline.log" "$out/"; exit 1; fi
  now_in="$(metric tributary_records_in_total)"
  [ "$now_in" -ge "$produced" ] && break
  if [ "$now_in" != "$last_in" ]; then last_in="$now_in"; last_move=$(date +%s); fi
  if [ $(( $(date +%s) - last_move )) -ge 120 ]; then
    stalled="read $now_in of $produced records, then nothing for 120 s after the producer finished"
    log "STALLED: the pipeline $stalled"
    break
  fi
  sleep 1
done
[ -z "$stalled" ] && sleep 12
log "stopping the pipeline (SIGTERM)"
touch "$WORK/stop-sampling"
wait "$sampler_pid"
kill -TERM "$run_pid"
status=0
wait "$run_pid" || status=$?
cp "$WORK/pipeline.log" "$out/pipeline.log"
if [ "$status" != 0 ]; then echo "tributary run exited with $status (see $out/pipeline.log)" >&2; exit 1; fi
if [ -n "$stalled" ]; then
  # A restart reads the backlog, and may stall the same way: each gets 300 s
  # (then SIGTERM: it commits what it read), up to five.
  for attempt in 1 2 3 4 5; do
    log "restarting it with --available-now to read the rest (attempt $attempt)"
    rc=0
    timeout -s TERM 300 "$BIN" run --available-now --progress-interval 5 "$PIPELINE" \
      >"$out/pipeline-restart-$attempt.log" 2>&1 || rc=$?
    tail -1 "$out/pipeline-restart-$attempt.log"
    stalled="$stalled; restart $attempt: $(tail -1 "$out/pipeline-restart-$attempt.log")"
    [ "$rc" = 0 ] && break
    if [ "$rc" != 124 ]; then echo "the restarted run failed (see $out/pipeline-restart-$attempt.log)" >&2; exit 1; fi
  done
fi

log "reading the table back (PyIceberg)"
"$PY" scripts/soak.py check --catalog-uri "$ICEBERG_CATALOG_URI" --warehouse "$ICEBERG_WAREHOUSE" \
  --table "$ICEBERG_TABLE" --expected "$WORK/expected.json" >"$out/check.json"
"$PY" scripts/soak.py report --csv "$out/samples.csv" --commits "$out/commits.csv" \
  --producer "$out/producer.json" --check "$out/check.json" --interval "$interval" \
  ${stalled:+--stalled "$stalled"} \
  --window "$(( duration >= 3600 ? 600 : 60 ))" --warmup "$(( duration >= 3600 ? 600 : 30 ))" | tee "$out/summary.md"
"$PY" -c '
import json, sys
c = json.load(open(sys.argv[1]))
sys.exit(0 if c["lost"] == 0 and c["duplicated_ids"] == 0 else 1)' "$out/check.json"
if [ -n "$stalled" ]; then echo "soak: FAILED: the pipeline stalled ($stalled)" >&2; exit 1; fi
