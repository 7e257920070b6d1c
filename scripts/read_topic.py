#!/usr/bin/env python3
"""Reads a whole topic the way a consumer of Tributary's `kafka` sink would:
confluent-kafka's Consumer, values decoded as JSON or with its
AvroDeserializer and Schema Registry client (Confluent wire format).

    read_topic.py --bootstrap H:P --topic T [--registry URL] [--field id] [--min N]
Prints {"messages": N, "values": [<field of each value>], "keys": [...],
"schema_ids": [...]} (schema ids only for Avro).
"""
import argparse
import json
import struct
import sys

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--registry", help="decode Avro values with this Schema Registry")
    ap.add_argument("--field", default="id")
    ap.add_argument("--min", type=int, default=0, help="read at least this many messages")
    ap.add_argument("--quiet", type=int, default=2,
                    help="then stop after this many seconds without a message")
    args = ap.parse_args()

    deserialize = None
    if args.registry:
        deserialize = AvroDeserializer(SchemaRegistryClient({"url": args.registry}))
    consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "read-topic",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    meta = consumer.list_topics(args.topic, timeout=10).topics[args.topic]
    consumer.assign([TopicPartition(args.topic, p, 0) for p in meta.partitions])
    ctx = SerializationContext(args.topic, MessageField.VALUE)
    values, keys, ids = [], [], set()
    # Not the high watermarks: the test broker (Tansu 0.6) reports them
    # wrongly. Read at least --min messages, then until nothing more comes.
    quiet, waited = 0, 0
    while quiet < args.quiet:
        msgs = consumer.consume(2000, timeout=1.0)
        if msgs:
            quiet = 0
        elif len(values) >= args.min:
            quiet += 1
        else:
            waited += 1
            if waited > 60:
                sys.exit(f"only {len(values)} of at least {args.min} messages after 60 s")
        for msg in msgs:
            if msg.error():
                sys.exit(f"consume: {msg.error()}")
            raw = msg.value()
            if deserialize:
                magic, schema_id = struct.unpack(">bI", raw[:5])
                assert magic == 0, "Confluent wire format starts with 0"
                ids.add(schema_id)
                value = deserialize(raw, ctx)
            else:
                value = json.loads(raw)
            values.append(value[args.field])
            keys.append(msg.key().decode() if msg.key() is not None else None)
    consumer.close()
    print(json.dumps({"messages": len(values), "values": values, "keys": keys,
                      "schema_ids": sorted(ids)}))


if __name__ == "__main__":
    main()
