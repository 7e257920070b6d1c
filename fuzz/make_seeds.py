#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/seeds/<target>/.

Real inputs, made by tools we did not write where there are such: Avro
values framed as Confluent's serializer frames them (fastavro, from the venv
scripts/setup.sh makes), the example pipelines, checkpoints in the
documented format. Run it with the venv's python from the repo root:

    ~/.cache/tributary/venv/bin/python fuzz/make_seeds.py
"""
import io
import json
import shutil
import struct
import zlib
from pathlib import Path

import fastavro

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "fuzz" / "seeds"
SEP = b"|TRIBSEP|"

ARTICLE_V1 = {"type": "record", "name": "Article", "namespace": "demo.news", "fields": [
    {"name": "id", "type": "string"}, {"name": "source", "type": "string"},
    {"name": "title", "type": "string"}, {"name": "url", "type": "string"},
    {"name": "author", "type": ["null", "string"], "default": None},
    {"name": "body", "type": "string"},
    {"name": "published_at", "type": {"type": "long", "logicalType": "timestamp-millis"}}]}
ARTICLE_V2 = dict(ARTICLE_V1, fields=ARTICLE_V1["fields"] + [
    {"name": "language", "type": ["null", "string"], "default": None}])
NESTED = {"type": "record", "name": "Outer", "fields": [
    {"name": "id", "type": "long"},
    {"name": "inner", "type": ["null", {"type": "record", "name": "Inner", "fields": [
        {"name": "x", "type": "int"}, {"name": "tags", "type": {"type": "array", "items": "string"}}]}]},
    {"name": "attrs", "type": {"type": "map", "values": ["null", "double"]}},
    {"name": "many", "type": {"type": "array", "items": "Inner"}},
    {"name": "either", "type": ["null", "long", "string", "Inner"]},
    {"name": "single", "type": ["int"]},
    {"name": "matrix", "type": {"type": "array", "items": {"type": "array", "items": "int"}}}]}
DECIMALS = {"type": "record", "name": "Money", "fields": [
    {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
    {"name": "day", "type": {"type": "int", "logicalType": "date"}},
    {"name": "at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "uid", "type": {"type": "string", "logicalType": "uuid"}},
    {"name": "color", "type": {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN"]}}]}


def body(schema, record):
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), record)
    return out.getvalue()


def framed(schema_id, schema, record):
    return b"\x00" + struct.pack(">I", schema_id) + body(schema, record)


def article(i, **extra):
    return dict({"id": f"a-{i}", "source": "reuters", "title": f"Article {i}",
                 "url": f"https://news.example/a-{i}", "author": None if i % 7 == 0 else "author",
                 "body": f"Body of article {i}. " * 4, "published_at": 1767225600000 + i}, **extra)


def nested(i):
    inner = {"x": i, "tags": ["a", "b"]}
    return {"id": i, "inner": inner, "attrs": {"k": 1.5, "z": None}, "many": [inner],
            "either": "text" if i % 2 else i, "single": 3, "matrix": [[1, 2], []]}


def write(target, name, data):
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def checkpoint(pipeline, epoch, offsets, watermark, transforms):
    header = json.dumps({"pipeline_id": pipeline, "epoch": epoch, "offsets": offsets,
                         "watermark_micros": watermark, "created_at_ms": 1767225600000,
                         "transforms": [[n, len(s)] for n, s in transforms]}).encode()
    out = b"TRBCKPT1" + struct.pack("<I", len(header)) + header + b"".join(s for _, s in transforms)
    return out + struct.pack("<I", zlib.crc32(out))


def state(entries):
    out = b"TRBSTAT1" + struct.pack("<Q", len(entries))
    for key, value, expiry in entries:
        k = key.encode()
        out += struct.pack("<I", len(k)) + k + bytes([expiry is not None])
        out += struct.pack("<q", expiry or 0) + struct.pack("<I", len(value)) + value
    return out


def main():
    # wit_convert's seeds are not made here: its input is `arbitrary` bytes,
    # so they are a few inputs its campaign found (fuzz/seeds/wit_convert).
    for target in ["avro_decode", "avro_schema", "pipeline_config", "checkpoint_decode", "plugin_json"]:
        if (SEEDS / target).exists():
            shutil.rmtree(SEEDS / target)
    # avro_decode: schema id n is the target's WRITERS[n % 6]:
    # 0 article v1, 1 article v2, 2 all types, 3 nested, 4 nested v2, 5 conflict.
    write("avro_decode", "article-v1", framed(0, ARTICLE_V1, article(1)))
    write("avro_decode", "article-v1-then-v2", SEP.join([
        framed(0, ARTICLE_V1, article(1)), framed(1, ARTICLE_V2, article(2, language="en")),
        framed(0, ARTICLE_V1, article(7))]))
    write("avro_decode", "nested", SEP.join([framed(3, NESTED, nested(1)), framed(3, NESTED, nested(2))]))
    write("avro_decode", "article-then-conflict", SEP.join([
        framed(6, ARTICLE_V1, article(3)),
        framed(5, {"type": "record", "name": "Article", "namespace": "demo.news", "fields": [
            {"name": "id", "type": "long"}, {"name": "title", "type": ["null", "string"]}]},
            {"id": 5, "title": None})]))
    write("avro_decode", "bad-magic", b"{\"id\": 1}")
    write("avro_decode", "truncated", framed(0, ARTICLE_V1, article(4))[:20])
    # avro_schema: the writer schema's text, SEP, the body.
    for name, schema, record in [("article", ARTICLE_V1, article(1)), ("nested", NESTED, nested(1)),
                                 ("decimals", DECIMALS, {"price": __import__("decimal").Decimal("123.45"),
                                                         "day": 20455, "at": 1767225600000000,
                                                         "uid": "67e55044-10b1-426f-9247-bb680e5fe0c8",
                                                         "color": "GREEN"})]:
        write("avro_schema", name, json.dumps(schema).encode() + SEP + body(schema, record))
    # pipeline_config: the example pipelines as shipped.
    for p in sorted((ROOT / "examples").glob("*/pipeline*.json")):
        write("pipeline_config", f"{p.parent.name}-{p.name}", p.read_bytes())
    write("pipeline_config", "worker-style", json.dumps({
        "name": "articles", "source": {"type": "generator", "records": 10, "rate_per_sec": 1000},
        "transforms": [{"name": "watermark", "module": "builtin:watermark",
                        "config": {"event_time": "published_at", "delay": "2 hours"}},
                       {"name": "dedup", "module": "builtin:dedup",
                        "config": {"key": "id", "event_time": "published_at", "within": "2 hours"}}],
        "sink": {"type": "jsonl", "path": "out/${EMPTY:-x}", "password": "${env:SECRET}"},
        "checkpoint": {"location": "../chk/articles"},
        "errors": {"policy": "dead-letter", "dead_letter_path": "/tmp/dl"}}).encode())
    # checkpoint_decode: checkpoints as the store writes them.
    dedup = state([("a-1", b"\x01", 1767232800000000), ("a-2", b"\x01", None)])
    write("checkpoint_decode", "kafka-dedup", checkpoint(
        "articles_raw", 3, {"articles.raw.v1/0": 1042, "articles.raw.v1/1": 977}, 1767225600000000,
        [("watermark", state([])), ("dedup", dedup)]))
    write("checkpoint_decode", "generator-empty", checkpoint("g", 1, {"position": 100}, None, []))
    write("checkpoint_decode", "state-only", dedup)
    # plugin_json: mode 0 = the SDK's side (config, context, commit, pipeline);
    # mode 1 = a plugin answering the host (description, last commit, describe_sink, error).
    ff = b"\xff"
    write("plugin_json", "sdk-open-commit", b"\x00" + ff.join([
        json.dumps({"path": "out.csv", "header": True}).encode(),
        json.dumps({"pipeline_id": "p", "base_dir": "/tmp", "state_dir": "/tmp/chk/connectors"}).encode(),
        json.dumps({"pipeline_id": "p", "epoch": 1, "offsets": {"topic/0": 42},
                    "watermark_micros": 1767225600000000}).encode(),
        b"p"]))
    write("plugin_json", "host-describe-last-commit", b"\x01" + ff.join([
        json.dumps({"name": "csv", "kind": "sink", "description": "CSV files",
                    "config_schema": {"type": "object"}}).encode(),
        json.dumps({"pipeline_id": "p", "epoch": 4, "offsets": {"file": "a.jsonl", "line": 3},
                    "watermark_micros": None}).encode(),
        b"csv files in /tmp/out", "plugin failed: disk full".encode()]))


if __name__ == "__main__":
    main()
