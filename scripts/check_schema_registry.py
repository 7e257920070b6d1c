#!/usr/bin/env python3
"""Drive a Schema Registry with confluent-kafka's own client, as Python producers do.

The same suite runs against Tributary's own small Confluent-compatible registry
and against Apicurio Registry's Confluent API (a server we did not write; its
global compatibility set to BACKWARD, Confluent's default, by the harness).
It proves either against a client we did not write:
confluent-kafka's SchemaRegistryClient registers two versions of the article
schema, AvroSerializer serialises one record with each (no broker needed), the
read and compatibility calls are checked, and an incompatible schema must be
refused with HTTP 409.

Prints one JSON object on its last stdout line: the schema ids and the
serialised payloads (hex, Confluent wire format) for the caller to decode with
another client. Exits non-zero, naming the check, when something is off.

    python scripts/check_schema_registry.py --url http://127.0.0.1:8081
"""

import argparse
import datetime
import json
import sys

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

TOPIC = "articles.raw.v1"
SUBJECT = TOPIC + "-value"

FIELDS_V1 = [
    {"name": "id", "type": "string"},
    {"name": "title", "type": "string"},
    {"name": "published_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
]
V1 = {"type": "record", "name": "Article", "namespace": "tributary.news", "fields": FIELDS_V1}
# v2 adds an optional field with a null default: BACKWARD compatible.
V2 = dict(V1, fields=FIELDS_V1 + [{"name": "lang", "type": ["null", "string"], "default": None}])
# title string -> int is no Avro promotion: must be refused under BACKWARD.
BAD = dict(V2, fields=[dict(f, type="int") if f["name"] == "title" else f for f in V2["fields"]])

# 2026-01-01T00:00:00Z, i.e. 1767225600000 ms since the epoch.
PUBLISHED = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


def check(condition, what):
    if not condition:
        sys.exit(f"check_schema_registry: FAILED: {what}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="registry base URL, e.g. http://127.0.0.1:8081")
    args = parser.parse_args()

    client = SchemaRegistryClient({"url": args.url})
    ctx = SerializationContext(TOPIC, MessageField.VALUE)
    v1_text, v2_text, bad_text = json.dumps(V1), json.dumps(V2), json.dumps(BAD)

    # One serializer per schema version: each registers its own schema.
    v1_payload = AvroSerializer(client, v1_text)(
        {"id": "py-1", "title": "Written by Python", "published_at": PUBLISHED}, ctx
    )
    v2_payload = AvroSerializer(client, v2_text)(
        {"id": "py-2", "title": "Zweite Version", "published_at": PUBLISHED, "lang": "de"}, ctx
    )
    v1_id = int.from_bytes(v1_payload[1:5], "big")
    v2_id = int.from_bytes(v2_payload[1:5], "big")
    check(v1_payload[0] == 0 and v2_payload[0] == 0, "payloads start with the magic byte 0")
    check(v1_id != v2_id, f"v1 and v2 get different ids, got {v1_id} and {v2_id}")

    # Registering v1 again answers the same id.
    again = client.register_schema(SUBJECT, Schema(v1_text, "AVRO"))
    check(again == v1_id, f"re-registering v1 returns id {v1_id}, got {again}")

    latest = client.get_latest_version(SUBJECT)
    check(latest.schema_id == v2_id, f"latest version has id {v2_id}, got {latest.schema_id}")
    check(latest.version == 2, f"latest version is 2, got {latest.version}")
    fetched = client.get_schema(v1_id)
    check(json.loads(fetched.schema_str) == V1, "get_schema(v1 id) returns the v1 schema")
    found = client.lookup_schema(SUBJECT, Schema(v1_text, "AVRO"))
    check((found.schema_id, found.version) == (v1_id, 1), f"lookup finds v1 as version 1, got {found}")
    check(client.get_subjects() == [SUBJECT], f"one subject, got {client.get_subjects()}")
    check(client.get_versions(SUBJECT) == [1, 2], f"versions [1, 2], got {client.get_versions(SUBJECT)}")
    check(client.get_compatibility() == "BACKWARD", "global compatibility is BACKWARD")

    check(client.test_compatibility(SUBJECT, Schema(v2_text, "AVRO")) is True, "v2 tests compatible")
    check(client.test_compatibility(SUBJECT, Schema(bad_text, "AVRO")) is False, "title -> int tests incompatible")

    status, message = None, ""
    try:
        client.register_schema(SUBJECT, Schema(bad_text, "AVRO"))
    except SchemaRegistryError as err:
        status, message = err.http_status_code, err.error_message
    check(status == 409, f"an incompatible schema is refused with HTTP 409, got {status}")
    # By its name (ours) or its place in the schema (Apicurio: /fields/1/type).
    check("title" in message or "/fields/1" in message, f"the refusal names the field: {message!r}")

    print(
        json.dumps(
            {
                "subject": SUBJECT,
                "v1_id": v1_id,
                "v2_id": v2_id,
                "v1_payload_hex": bytes(v1_payload).hex(),
                "v2_payload_hex": bytes(v2_payload).hex(),
                "incompatible_status": status,
                "incompatible_message": message,
            }
        )
    )


if __name__ == "__main__":
    main()
