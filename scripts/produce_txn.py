#!/usr/bin/env python3
"""Writes JSON records ({"id": "<prefix>-<i>", "n": i}) to a Kafka topic the
way Kafka Streams, Flink or Debezium do: with confluent-kafka's transactional
producer, so the log holds commit markers and, with --abort-every, whole
aborted transactions between the committed ones. Without --transactions it
produces plainly (idempotent, no markers).

    produce_txn.py --bootstrap H:P --topic T [--create --partitions 3]
                   [--prefix a] [--records 300] [--per-txn 50] [--abort-every 3]

Record i goes to partition i % partitions. With --forever it goes on
writing (transactions, or without --transactions --per-txn records at a time)
until killed or, with --seconds, for that long, printing "producing" first.
Every --abort-every-th transaction is aborted. Prints {"committed": [ids],
"aborted": [ids]}.
"""
import argparse
import itertools
import json
import sys
import time
import uuid

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--create", action="store_true", help="create the topic first")
    ap.add_argument("--partitions", type=int, default=1)
    ap.add_argument("--prefix", default="a")
    ap.add_argument("--records", type=int, default=300)
    ap.add_argument("--transactions", action="store_true", help="write in transactions")
    ap.add_argument("--per-txn", type=int, default=50)
    ap.add_argument("--abort-every", type=int, default=0,
                    help="abort every n-th transaction (0: none)")
    ap.add_argument("--forever", action="store_true",
                    help="go on writing until killed (or for --seconds)")
    ap.add_argument("--seconds", type=float, default=None,
                    help="with --forever: stop after this many seconds")
    args = ap.parse_args()

    if args.create:
        admin = AdminClient({"bootstrap.servers": args.bootstrap})
        futures = admin.create_topics(
            [NewTopic(args.topic, num_partitions=args.partitions, replication_factor=1)])
        for f in futures.values():
            try:
                f.result(30)
            except KafkaException as e:
                sys.exit(f"create topic {args.topic}: {e}")

    conf = {"bootstrap.servers": args.bootstrap, "enable.idempotence": True, "linger.ms": 5}
    if args.transactions:
        conf["transactional.id"] = f"produce-txn-{uuid.uuid4()}"
    producer = Producer(conf)
    committed, aborted = [], []

    def send(i):
        rid = f"{args.prefix}-{i}"
        producer.produce(args.topic, json.dumps({"id": rid, "n": i}).encode(),
                         key=rid.encode(), partition=i % args.partitions)
        return rid

    stop_at = None if args.seconds is None else time.monotonic() + args.seconds

    def more():
        return stop_at is None or time.monotonic() < stop_at

    if not args.transactions and args.forever:
        print("producing", flush=True)
        for start in itertools.count(0, args.per_txn):
            if not more():
                break
            committed += [send(i) for i in range(start, start + args.per_txn)]
            if producer.flush(60) != 0:
                sys.exit("not every record was delivered within 60 s")
    elif not args.transactions:
        committed = [send(i) for i in range(args.records)]
        if producer.flush(60) != 0:
            sys.exit("not every record was delivered within 60 s")
    else:
        producer.init_transactions(30)
        txn = 0
        starts = range(0, args.records, args.per_txn)
        if args.forever:
            starts = itertools.count(0, args.per_txn)
            print("producing", flush=True)
        for start in starts:
            if not more():
                break
            txn += 1
            producer.begin_transaction()
            end = start + args.per_txn if args.forever else min(start + args.per_txn, args.records)
            ids = [send(i) for i in range(start, end)]
            if args.abort_every and txn % args.abort_every == 0:
                # Flushed first, so the aborted records are in the log.
                producer.flush(60)
                producer.abort_transaction(30)
                aborted += ids
            else:
                producer.commit_transaction(30)
                committed += ids
    print(json.dumps({"committed": committed, "aborted": aborted}))


if __name__ == "__main__":
    main()
