#!/usr/bin/env python3
"""Produces news articles to Kafka as Avro in Confluent's wire format, with
confluent-kafka's own SchemaRegistryClient and AvroSerializer (clients we did
not write), including the mess real feeds have: duplicates, out-of-order and
late events, and optionally malformed messages.

Record i of a run is a pure function of (seed, i), so a test can say exactly
which ids a pipeline must deliver:
  - normal:    id a-<i>, published at start + i*spacing ± jitter;
  - duplicate: an exact copy of one of the previous 500 records;
  - late:      id late-<i>, published `late_by` behind the stream (only once
               the stream is that far along, so a watermark exists to judge it).

Prints one JSON object: counts, the schema id, and (with --expected FILE) the
ids a 2-hour watermark + dedup must deliver are written to FILE.

  produce_articles.py --bootstrap 127.0.0.1:9092 --registry http://127.0.0.1:8081 \\
      --topic articles.raw.v1 --partitions 3 --records 10000
"""

import argparse
import io
import json
import random
import struct
import sys
import time
from datetime import datetime, timedelta, timezone

import fastavro
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

FIELDS_V1 = [
    {"name": "id", "type": "string"},
    {"name": "source", "type": "string"},
    {"name": "title", "type": "string"},
    {"name": "url", "type": "string"},
    {"name": "author", "type": ["null", "string"], "default": None},
    {"name": "body", "type": "string"},
    {"name": "published_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
]
# v2 adds an optional field: BACKWARD compatible, a new column in Iceberg.
FIELDS_V2 = FIELDS_V1 + [{"name": "language", "type": ["null", "string"], "default": None}]


def schema_text(version):
    fields = FIELDS_V1 if version == 1 else FIELDS_V2
    return json.dumps({"type": "record", "name": "Article", "namespace": "demo.news", "fields": fields})


SOURCES = ["reuters", "ap", "afp", "bbc", "dpa"]


def articles(args):
    """Yields (kind, record) for records args.first .. args.first+args.records-1."""
    rng = random.Random(args.seed)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    recent = []
    # Draws for records before `first` are replayed so that a later round
    # continues the same stream.
    for i in range(args.first + args.records):
        stream = start + timedelta(milliseconds=i * args.spacing_ms)
        roll = rng.random()
        jitter = rng.uniform(-args.jitter_ms, args.jitter_ms)
        pick = rng.randrange(1 << 30)
        if recent and roll < args.duplicate_ratio:
            kind, rec = "duplicate", dict(recent[pick % len(recent)])
        elif roll < args.duplicate_ratio + args.late_ratio and i * args.spacing_ms > args.late_by_ms:
            kind = "late"
            rec = make(i, f"late-{i}", stream - timedelta(milliseconds=args.late_by_ms))
        else:
            kind = "normal"
            rec = make(i, f"a-{i}", stream + timedelta(milliseconds=jitter))
            recent.append(rec)
            if len(recent) > 500:
                recent.pop(0)
        if i >= args.first:
            yield kind, rec


def make(i, rid, published):
    return {
        "id": rid,
        "source": SOURCES[i % len(SOURCES)],
        "title": f"Article {i}",
        "url": f"https://news.example/{rid}",
        "author": None if i % 7 == 0 else f"author {i % 13}",
        "body": f"Body of article {i}. " * 4,
        "published_at": published,
    }


def ensure_topic(bootstrap, topic, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    if topic in admin.list_topics(timeout=10).topics:
        return False
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    futures[topic].result(timeout=30)
    return True


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--registry", help="the Schema Registry URL (for --format avro)")
    p.add_argument("--topic", default="articles.raw.v1")
    p.add_argument("--partitions", type=int, default=3, help="when the topic is created")
    p.add_argument("--records", type=int, default=10000)
    p.add_argument("--first", type=int, default=0, help="index of the first record (to continue a stream)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--schema-version", type=int, choices=[1, 2], default=1)
    p.add_argument("--format", choices=["avro", "json"], default="avro",
                   help="json: one JSON object per message (published_at as RFC 3339), no registry")
    p.add_argument("--spacing-ms", type=int, default=250)
    p.add_argument("--jitter-ms", type=int, default=60_000)
    p.add_argument("--duplicate-ratio", type=float, default=0.1)
    p.add_argument("--late-ratio", type=float, default=0.01)
    p.add_argument("--late-by-ms", type=int, default=3 * 3_600_000)
    p.add_argument("--bad", action="append", default=[],
                   choices=["bad-magic", "unknown-schema-id", "truncated", "tombstone"],
                   help="also produce one malformed message of this kind, mid-stream (repeatable)")
    p.add_argument("--rate", type=float, default=0, help="records per second at most (0: as fast as possible)")
    p.add_argument("--expected", help="write the ids a 2 h watermark + dedup must deliver here (JSON list)")
    p.add_argument("--register", action="store_true",
                   help="only register --schema-version under the topic's subject and print its id")
    p.add_argument("--schema-id", type=int,
                   help="frame every record with this id of a schema registered before (--register) "
                        "without asking the registry, as a producer with the id cached does while "
                        "the registry is down")
    args = p.parse_args()

    if args.format == "avro" and not args.registry and args.schema_id is None:
        p.error("--registry (or --schema-id) is needed for --format avro")
    if args.register:
        registry = SchemaRegistryClient({"url": args.registry})
        schema_id = registry.register_schema(f"{args.topic}-value", Schema(schema_text(args.schema_version), "AVRO"))
        print(json.dumps({"topic": args.topic, "schema_id": schema_id}))
        return
    created = ensure_topic(args.bootstrap, args.topic, args.partitions)
    if args.format == "avro" and args.schema_id is not None:
        parsed = fastavro.parse_schema(json.loads(schema_text(args.schema_version)))

        def serializer(rec, _ctx):
            out = io.BytesIO()
            out.write(struct.pack(">bI", 0, args.schema_id))
            fastavro.schemaless_writer(out, parsed, rec)
            return out.getvalue()
        ctx = None
    elif args.format == "avro":
        registry = SchemaRegistryClient({"url": args.registry})
        serializer = AvroSerializer(registry, schema_text(args.schema_version),
                                    to_dict=lambda rec, ctx: rec)
        ctx = SerializationContext(args.topic, MessageField.VALUE)
    else:
        def serializer(rec, _ctx):
            rec = dict(rec, published_at=rec["published_at"].isoformat())
            return json.dumps(rec).encode()
        ctx = None
    producer = Producer({"bootstrap.servers": args.bootstrap, "enable.idempotence": True,
                         "linger.ms": 20, "batch.num.messages": 10000})

    counts = {"normal": 0, "duplicate": 0, "late": 0}
    expected = []
    bad_positions = []
    bad_at = {kind: args.records * (n + 1) // (len(args.bad) + 1) for n, kind in enumerate(args.bad)}
    failures = []

    def delivered(err, msg):
        if err is not None:
            failures.append(str(err))

    def report_bad(kind):
        def cb(err, msg):
            if err is not None:
                failures.append(str(err))
            else:
                bad_positions.append({"kind": kind, "partition": msg.partition(), "offset": msg.offset()})
        return cb

    last_good = None
    began = time.monotonic()
    # Paced about 50 times a second, so a slow rate is steady rather than
    # bursts with pauses between.
    pace_every = max(1, min(500, int(args.rate // 50)))
    for n, (kind, rec) in enumerate(articles(args)):
        if args.rate and n % pace_every == 0:
            ahead = n / args.rate - (time.monotonic() - began)
            if ahead > 0:
                producer.poll(0)
                time.sleep(ahead)
        counts[kind] += 1
        if kind == "normal":
            expected.append(rec["id"])
        if args.schema_version == 2:
            rec = dict(rec, language="en" if n % 2 else None)
        value = serializer(rec, ctx)
        last_good = value
        send(producer, args.topic, rec["id"].encode(), value, delivered)
        for bad_kind, at in bad_at.items():
            if n == at:
                send(producer, args.topic, b"bad", malformed(bad_kind, last_good), report_bad(bad_kind))
        if n % 5000 == 0:
            producer.poll(0)
    remaining = producer.flush(60)
    seconds = time.monotonic() - began
    if remaining or failures:
        sys.exit(f"produce failed: {remaining} undelivered; {failures[:3]}")

    # The serializer registers the schema with the first record; with none
    # (--records 0 only creates the topic) there is no schema id yet.
    schema_id = args.schema_id
    if last_good and args.format == "avro" and schema_id is None:
        schema_id = registry.get_latest_version(f"{args.topic}-value").schema_id
    if args.expected:
        with open(args.expected, "w") as f:
            json.dump(expected, f)
    print(json.dumps({"topic": args.topic, "created": created, "schema_id": schema_id,
                      "produced": sum(counts.values()), **counts, "bad": bad_positions,
                      "seconds": round(seconds, 3),
                      "achieved_rate": round(sum(counts.values()) / seconds, 1) if seconds else None}))


def send(producer, topic, key, value, on_delivery):
    """produce(), waiting for deliveries while the local queue is full."""
    while True:
        try:
            producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
            return
        except BufferError:
            producer.poll(0.1)


def malformed(kind, good):
    if kind == "bad-magic":
        return b"\x01" + good[1:]
    if kind == "unknown-schema-id":
        return b"\x00" + struct.pack(">I", 999_999) + good[5:]
    if kind == "truncated":
        return good[: len(good) // 2]
    return None  # tombstone


if __name__ == "__main__":
    main()
