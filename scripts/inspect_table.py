#!/usr/bin/env python3
"""Reads an Iceberg table that Tributary wrote, with readers we did not write
(PyIceberg, and optionally DuckDB's iceberg extension), and prints a summary as
JSON: row count, distinct and duplicated keys, columns, and the current
snapshot's summary (where Tributary records pipeline id, epoch, offsets and
watermark). The quickstart prints it; the end-to-end tests assert on it.

    inspect_table.py --catalog-uri sqlite:quickstart/warehouse/catalog.db \
        --warehouse quickstart/warehouse --table demo.news.articles_raw --duckdb
"""

import argparse
import json
import os
import sys
from collections import Counter


def sqlalchemy_uri(uri: str) -> str:
    """Tributary's `sqlite:<path>` / `postgres://` forms → SQLAlchemy URLs."""
    if uri.startswith("sqlite:") and not uri.startswith("sqlite:///"):
        path = uri[len("sqlite:"):]
        if path.startswith("//"):
            path = path[2:]
        return "sqlite:///" + os.path.abspath(path)
    if uri.startswith("postgres://") or uri.startswith("postgresql://"):
        return "postgresql+psycopg2://" + uri.split("://", 1)[1]
    return uri


def warehouse_uri(path: str) -> str:
    return path if "://" in path else "file://" + os.path.abspath(path)


def duckdb_count(metadata_location: str) -> int:
    import duckdb

    con = duckdb.connect()
    # Offline: the wheels duckdb-extension-{avro,iceberg} carry the extension
    # files (iceberg needs avro for manifests); load them by path.
    import glob
    import importlib

    con.execute("SET autoinstall_known_extensions = false")
    for name in ("avro", "iceberg"):
        module = importlib.import_module(f"duckdb_extension_{name}")
        root = module.__path__[0]
        found = sorted(glob.glob(os.path.join(root, "extensions", "*", f"{name}.duckdb_extension")))
        if not found:
            raise SystemExit(f"no {name}.duckdb_extension under {root}")
        con.execute(f"LOAD '{found[-1]}'")
    path = metadata_location.removeprefix("file://")
    return con.execute("SELECT count(*) FROM iceberg_scan(?)", [path]).fetchone()[0]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--catalog-uri", required=True)
    p.add_argument("--catalog-name", default="tributary")
    p.add_argument("--warehouse", required=True)
    p.add_argument("--table", required=True)
    p.add_argument("--key", default="id", help="column whose values should be unique")
    p.add_argument("--ids", action="store_true", help="include every key value")
    p.add_argument("--rows", action="store_true", help="include every row")
    p.add_argument("--duckdb", action="store_true", help="also count rows with DuckDB")
    p.add_argument("--manifests", action="store_true",
                   help="also count the manifests of the current snapshot and of every snapshot")
    p.add_argument("--show", type=int, default=0, help="print N sample rows to stderr")
    p.add_argument("--expected", action="append", default=[],
                   help="a JSON list of the key values the table must hold exactly (repeatable; the lists add up)")
    p.add_argument("--human", action="store_true", help="print a readable report instead of JSON; exit 1 on duplicates")
    args = p.parse_args()

    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog(
        args.catalog_name,
        uri=sqlalchemy_uri(args.catalog_uri),
        warehouse=warehouse_uri(args.warehouse),
    )
    from pyiceberg.exceptions import NoSuchTableError

    try:
        table = catalog.load_table(args.table)
    except NoSuchTableError:
        print(json.dumps({"exists": False, "rows": 0}))
        return 0
    data = table.scan().to_arrow()
    keys = data.column(args.key).to_pylist() if args.key in data.column_names else []
    counts = Counter(keys)
    duplicated = sorted(k for k, n in counts.items() if n > 1)
    snapshot = table.current_snapshot()
    out = {
        "exists": True,
        "rows": data.num_rows,
        "distinct_keys": len(counts),
        "duplicated_keys": len(duplicated),
        "duplicated_examples": duplicated[:10],
        "columns": data.column_names,
        "snapshots": len(table.metadata.snapshots),
        "metadata_location": table.metadata_location,
        "summary": dict(snapshot.summary.additional_properties) if snapshot else {},
    }
    if snapshot:
        out["summary"]["operation"] = str(snapshot.summary.operation.value)
    if args.expected:
        want = set()
        for path in args.expected:
            with open(path) as f:
                want.update(json.load(f))
        have = set(str(k) for k in keys)
        out["expected_keys"] = len(want)
        out["missing_keys"] = len(want - have)
        out["unexpected_keys"] = len(have - want)
    if args.ids:
        out["ids"] = sorted(str(k) for k in keys)
    if args.rows:
        out["records"] = data.to_pylist()
    if args.manifests and snapshot:
        current = snapshot.manifests(table.io)
        out["manifests"] = len(current)
        out["manifest_files"] = {
            "added": sum(m.added_files_count or 0 for m in current),
            "existing": sum(m.existing_files_count or 0 for m in current),
            "deleted": sum(m.deleted_files_count or 0 for m in current),
        }
        out["manifests_per_snapshot"] = [
            len(s.manifests(table.io)) for s in table.metadata.snapshots
        ]
        out["merges"] = sum(
            1 for s in table.metadata.snapshots
            if int(s.summary.additional_properties.get("manifests-replaced", "0")) > 0
        )
    if args.duckdb:
        out["duckdb_rows"] = duckdb_count(table.metadata_location)
    if args.show:
        for row in data.slice(0, args.show).to_pylist():
            print("  ", {k: v if v is None else str(v) for k, v in row.items()}, file=sys.stderr)
    if args.human:
        s = out["summary"]
        print(f"rows: {out['rows']}" + (f" (DuckDB counts {out['duckdb_rows']})" if args.duckdb else ""))
        print(f"distinct {args.key}s: {out['distinct_keys']}, {args.key}s present more than once: {out['duplicated_keys']}")
        print(f"snapshots: {out['snapshots']}; the last one: pipeline {s.get('tributary.pipeline-id')}, "
              f"epoch {s.get('tributary.epoch')}, offsets {s.get('tributary.offsets')}, "
              f"watermark (µs) {s.get('tributary.watermark')}")
        print(f"metadata: {out['metadata_location']}")
        ok = out["duplicated_keys"] == 0
        if args.expected:
            print(f"expected {args.key}s: {out['expected_keys']}; missing: {out['missing_keys']}, "
                  f"not expected: {out['unexpected_keys']}")
            ok = ok and out["missing_keys"] == 0 and out["unexpected_keys"] == 0
        print("OK: every expected record exactly once" if ok else "NOT OK")
        return 0 if ok else 1
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
