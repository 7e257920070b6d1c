#!/usr/bin/env python3
"""What other engines do to a table Tributary writes, done with PyIceberg:
append rows as another writer, expire every snapshot but the current one,
drop the table and create it again empty, or set table properties. The open-world tests run it
between two runs of a pipeline.

    table_maintenance.py --catalog-uri sqlite:w/catalog.db --warehouse w \
        --table demo.news.articles append --ids x-1 x-2
    table_maintenance.py ... expire
    table_maintenance.py ... recreate
    table_maintenance.py ... set commit.manifest.min-count-to-merge=5

Prints a JSON report: the snapshots left and the current snapshot's summary.
"""

import argparse
import json
import sys

from inspect_table import sqlalchemy_uri, warehouse_uri


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--catalog-uri", required=True)
    p.add_argument("--catalog-name", default="tributary")
    p.add_argument("--warehouse", required=True)
    p.add_argument("--table", required=True)
    sub = p.add_subparsers(dest="action", required=True)
    append = sub.add_parser("append", help="append rows with these ids (other columns null)")
    append.add_argument("--ids", nargs="+", required=True)
    sub.add_parser("expire", help="expire every snapshot but the current one")
    sub.add_parser("recreate", help="drop the table and create it again, empty, same schema")
    props = sub.add_parser("set", help="set table properties")
    props.add_argument("properties", nargs="+", metavar="KEY=VALUE")
    args = p.parse_args()

    import pyarrow as pa
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog(
        args.catalog_name,
        uri=sqlalchemy_uri(args.catalog_uri),
        warehouse=warehouse_uri(args.warehouse),
    )
    table = catalog.load_table(args.table)
    if args.action == "append":
        schema = table.schema().as_arrow()
        rows = [{f.name: (i if f.name == "id" else None) for f in schema} for i in args.ids]
        table.append(pa.Table.from_pylist(rows, schema=schema))
    elif args.action == "expire":
        current = table.current_snapshot().snapshot_id
        old = [s.snapshot_id for s in table.metadata.snapshots if s.snapshot_id != current]
        if old:
            table.maintenance.expire_snapshots().by_ids(old).commit()
    elif args.action == "recreate":
        schema = table.schema()
        catalog.drop_table(args.table)
        catalog.create_table(args.table, schema=schema)
    elif args.action == "set":
        pairs = dict(p.split("=", 1) for p in args.properties)
        with table.transaction() as tx:
            tx.set_properties(pairs)
    table = catalog.load_table(args.table)
    snapshot = table.current_snapshot()
    print(json.dumps({
        "snapshots": len(table.metadata.snapshots),
        "summary": dict(snapshot.summary.additional_properties) if snapshot else {},
        "properties": dict(table.properties),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
