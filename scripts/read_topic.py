#!/usr/bin/env python3
"""Reads a whole topic the way a consumer of Tributary's `kafka` sink would:
confluent-kafka's Consumer, values decoded as JSON or with its
AvroDeserializer and Schema Registry client (Confluent wire format).

    read_topic.py --bootstrap H:P --topic T [--registry URL] [--field id]
Reads every partition from its start up to the end it had when the script
started, committed records only (read_committed: the end is the last stable
offset; transaction markers and aborted records are skipped). Prints {"messages": N, "values": [<field of each value>],
"keys": [...], "partitions": [...], "offsets": [...], "schema_ids": [...]}
(schema ids only for Avro; partitions and offsets of each message, in the
order of values).
"""
import argparse
import json
import struct
import sys
import time

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
    ap.add_argument("--timeout", type=float, default=120,
                    help="fail when the ends are not reached within this many seconds")
    args = ap.parse_args()

    deserialize = None
    if args.registry:
        deserialize = AvroDeserializer(SchemaRegistryClient({"url": args.registry}))
    consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "read-topic",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "isolation.level": "read_committed"})
    meta = consumer.list_topics(args.topic, timeout=10).topics[args.topic]
    if meta.error is not None:
        sys.exit(f"topic {args.topic}: {meta.error}")
    # Where each partition starts and ends now: everything written before
    # this script started is below the end (the last stable offset).
    ends, starts = {}, []
    for p in meta.partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(args.topic, p), timeout=10)
        starts.append(TopicPartition(args.topic, p, low))
        if high > low:
            ends[p] = high
    consumer.assign(starts)
    ctx = SerializationContext(args.topic, MessageField.VALUE)
    values, keys, ids = [], [], set()
    partitions, offsets = [], []
    deadline = time.monotonic() + args.timeout
    while ends:
        if time.monotonic() > deadline:
            sys.exit(f"partitions {sorted(ends)} did not reach their ends {ends} "
                     f"within {args.timeout} s ({len(values)} messages read)")
        msgs = consumer.consume(2000, timeout=1.0)
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
            partitions.append(msg.partition())
            offsets.append(msg.offset())
        # The consumer's position, not the last record's offset + 1: the
        # last offsets of a transactional topic are commit markers, which
        # librdkafka skips (moving the position past them) without a message.
        for tp in consumer.position([TopicPartition(args.topic, p) for p in list(ends)]):
            if tp.offset >= ends[tp.partition]:
                del ends[tp.partition]
    consumer.close()
    print(json.dumps({"messages": len(values), "values": values, "keys": keys,
                      "partitions": partitions, "offsets": offsets,
                      "schema_ids": sorted(ids)}))


if __name__ == "__main__":
    main()
