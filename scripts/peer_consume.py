#!/usr/bin/env python3
"""The benchmark's peer: what one writes without Tributary to read the same
topic — confluent-kafka's Consumer (librdkafka, as Tributary uses) with its
AvroDeserializer and Schema Registry client, every partition from the start
until N records are read, rows gathered into a pyarrow table.

    peer_consume.py --bootstrap H:P --registry URL --topic T --records N
Prints {"records": N, "rows": N}.
"""
import argparse
import json
import sys

import pyarrow as pa
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--registry", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--records", type=int, required=True)
    ap.add_argument("--raw", action="store_true", help="count the messages, decode nothing")
    args = ap.parse_args()

    deserialize = AvroDeserializer(SchemaRegistryClient({"url": args.registry}))
    consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "bench-peer",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    meta = consumer.list_topics(args.topic, timeout=10).topics[args.topic]
    consumer.assign([TopicPartition(args.topic, p, 0) for p in meta.partitions])
    ctx = SerializationContext(args.topic, MessageField.VALUE)
    rows, batch = 0, []
    tables = []
    while rows < args.records:
        for msg in consumer.consume(2000, timeout=1.0):
            if msg.error():
                sys.exit(f"consume: {msg.error()}")
            rows += 1
            if not args.raw:
                batch.append(deserialize(msg.value(), ctx))
        if len(batch) >= 2000 or (batch and rows >= args.records):
            tables.append(pa.Table.from_pylist(batch))
            batch = []
    consumer.close()
    print(json.dumps({"records": rows, "rows": sum(t.num_rows for t in tables)}))


if __name__ == "__main__":
    main()
