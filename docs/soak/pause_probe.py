#!/usr/bin/env python3
"""Does librdkafka fetch again after pause() and a new assign() of the same
partition, without resume()? (What the Kafka source's `pause(false)` relies
on; docs/reliability.md, "Soak".) Needs a broker with topic creation allowed:

    pause_probe.py --bootstrap 127.0.0.1:9092

Seen with confluent-kafka 2.16.0 (librdkafka 2.16.0): without resume(), 0 of
90 records arrive; with it, 90 of 90.
"""
import argparse
import time

import confluent_kafka
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def after_reassign(bootstrap, topic, resume):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "pause-probe",
                  "enable.auto.commit": False, "log_level": 3})
    c.assign([TopicPartition(topic, 0, 0)])
    c.consume(10, timeout=5)
    c.pause(c.assignment())
    c.assign([TopicPartition(topic, 0, 10)])  # as the source's resume does
    if resume:
        c.resume(c.assignment())
    n, end = 0, time.time() + 8
    while time.time() < end:
        n += len(c.consume(100, timeout=0.5))
    c.close()
    return n


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", default="pause-probe")
    args = ap.parse_args()
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    admin.create_topics([NewTopic(args.topic, 1, 1)])[args.topic].result(30)
    p = Producer({"bootstrap.servers": args.bootstrap})
    for i in range(100):
        p.produce(args.topic, value=b"x%d" % i)
    p.flush(30)
    print("librdkafka", confluent_kafka.libversion()[0])
    for resume in (False, True):
        n = after_reassign(args.bootstrap, args.topic, resume)
        print(f"pause, assign at offset 10, resume() {'called' if resume else 'not called'}: "
              f"{n} of 90 records in 8 s")
    admin.delete_topics([args.topic])


if __name__ == "__main__":
    main()
