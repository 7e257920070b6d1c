#!/usr/bin/env python3
"""The seed's Spark job, as the seed writes it, and a Spark reader of Iceberg tables.

`run`: Spark Structured Streaming reads the Kafka topic of Avro articles (Confluent
wire format, the schema from the registry), applies
`withWatermark("published_at", "2 hours").dropDuplicates(["id"])` (or its
bounded form `dropDuplicatesWithinWatermark(["id"])` with `--dedup within`)
and appends to an Iceberg table with a checkpoint location, with
Trigger.AvailableNow: everything in the topic at start, then it stops. This is
the job Tributary's examples/articles/pipeline.json replaces; the differential
test (tests/all/spark.rs) and the peer benchmark (scripts/bench_peers.py) run it.

`read`: Spark reads an Iceberg table (Tributary's, say) through the Iceberg JDBC
catalog on a SQLite file and prints a JSON summary: rows, distinct ids, the ids,
the columns.

Spark runs local[2], bound to 127.0.0.1, no UI. The jars (Kafka source, Avro,
Iceberg's Spark runtime, SQLite JDBC) come from `scripts/jvm.sh spark`, passed
as --jars-dir.

  spark_articles.py run --jars-dir DIR --bootstrap 127.0.0.1:9092 \\
      --registry http://127.0.0.1:8081 --topic articles.raw.v1 \\
      --catalog-uri sqlite:/tmp/w/catalog.db --warehouse /tmp/w \\
      --table demo.news.articles_raw --checkpoint /tmp/chk
  spark_articles.py read --jars-dir DIR --catalog-uri sqlite:/tmp/w/catalog.db \\
      --catalog-name tributary --warehouse /tmp/w --table demo.news.articles_raw
"""

import argparse
import glob
import json
import os
import sys
import time
import urllib.request


def session(args, catalog_name, app, own_catalog):
    # Spark binds to 127.0.0.1 only, whatever the host name resolves to.
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    from pyspark.sql import SparkSession

    jars = sorted(glob.glob(os.path.join(args.jars_dir, "*.jar")))
    if not jars:
        sys.exit(f"spark_articles: no jars in {args.jars_dir}: run scripts/jvm.sh spark")
    if not args.catalog_uri.startswith("sqlite:"):
        sys.exit(f"spark_articles: --catalog-uri must be sqlite:<path>, got {args.catalog_uri}")
    db = args.catalog_uri[len("sqlite:"):]
    prefix = f"spark.sql.catalog.{catalog_name}"
    builder = (
        SparkSession.builder.appName(app)
        .master("local[2]")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.jars", ",".join(jars))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.extensions", "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions")
        # The Iceberg JDBC catalog on the same SQLite layout Tributary,
        # PyIceberg and DuckDB use.
        .config(prefix, "org.apache.iceberg.spark.SparkCatalog")
        .config(f"{prefix}.type", "jdbc")
        .config(f"{prefix}.uri", f"jdbc:sqlite:{db}")
        .config(f"{prefix}.warehouse", args.warehouse)
    )
    if own_catalog:
        # Spark's own catalog file: the layout with views (V1). Another
        # writer's catalog (Tributary's) is read as it is, never migrated.
        builder = builder.config(f"{prefix}.jdbc.schema-version", "V1")
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def latest_schema(registry, subject):
    url = f"{registry.rstrip('/')}/subjects/{subject}/versions/latest"
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.load(resp)["schema"]


def run(args):
    from pyspark.sql.avro.functions import from_avro
    from pyspark.sql.functions import col, expr

    spark = session(args, args.catalog_name, "articles_raw", own_catalog=True)
    schema = latest_schema(args.registry, f"{args.topic}-value")
    table = f"{args.catalog_name}.{args.table}"

    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", args.bootstrap)
        .option("subscribe", args.topic)
        .option("startingOffsets", "earliest")
    )
    if args.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(args.max_offsets_per_trigger))
    raw = reader.load()
    # Confluent's wire format: magic byte 0, a 4-byte schema id, then Avro.
    articles = raw.select(
        from_avro(expr("substring(value, 6, length(value) - 5)"), schema).alias("a")
    ).select("a.*")
    watermarked = articles.withWatermark("published_at", "2 hours")
    if args.dedup == "within":
        deduped = watermarked.dropDuplicatesWithinWatermark(["id"])
    else:
        deduped = watermarked.dropDuplicates(["id"])

    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {args.catalog_name}.{args.table.rsplit('.', 1)[0]}")
    if not spark.catalog.tableExists(table):
        spark.createDataFrame([], articles.schema).writeTo(table).using("iceberg").create()

    began = time.monotonic()
    query = (
        deduped.writeStream.format("iceberg")
        .outputMode("append")
        .option("checkpointLocation", args.checkpoint)
        .trigger(availableNow=True)
        .toTable(table)
    )
    query.awaitTermination()
    seconds = time.monotonic() - began
    progress = [json.loads(p.json) if hasattr(p, "json") else p for p in query.recentProgress]
    if args.progress:
        with open(args.progress, "w") as f:
            json.dump(progress, f, indent=1)
    rows = spark.table(table).count()
    print(json.dumps({
        "table": table,
        "rows": rows,
        "micro_batches": len(progress),
        "input_rows": sum(p["numInputRows"] for p in progress),
        "seconds": round(seconds, 3),
    }))
    spark.stop()


def read(args):
    spark = session(args, args.catalog_name, "read_table", own_catalog=False)
    table = f"{args.catalog_name}.{args.table}"
    df = spark.table(table)
    ids = [r[0] for r in df.select(args.key).collect()]
    print(json.dumps({
        "table": table,
        "rows": len(ids),
        "distinct": len(set(ids)),
        "columns": df.columns,
        "ids": sorted(ids) if args.ids else None,
    }))
    spark.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("run", "read"):
        s = sub.add_parser(name)
        s.add_argument("--jars-dir", required=True, help="the folder scripts/jvm.sh spark prints")
        s.add_argument("--catalog-uri", required=True, help="sqlite:<path of the catalog file>")
        s.add_argument("--catalog-name", default="spark", help="the Iceberg catalog's name (Tributary's: tributary)")
        s.add_argument("--warehouse", required=True)
        s.add_argument("--table", required=True, help="namespace.table")
    r = sub.choices["run"]
    r.add_argument("--bootstrap", required=True)
    r.add_argument("--registry", required=True)
    r.add_argument("--topic", default="articles.raw.v1")
    r.add_argument("--checkpoint", required=True)
    r.add_argument("--dedup", choices=["drop", "within"], default="drop",
                   help="drop: dropDuplicates([id]) (the seed's); within: dropDuplicatesWithinWatermark([id])")
    r.add_argument("--max-offsets-per-trigger", type=int, default=0,
                   help="records per micro-batch (0: Spark's default, everything in one)")
    r.add_argument("--progress", help="write Spark's progress reports (one per micro-batch) here as JSON")
    q = sub.choices["read"]
    q.add_argument("--key", default="id")
    q.add_argument("--ids", action="store_true", help="include every id")
    args = p.parse_args()
    run(args) if args.command == "run" else read(args)


if __name__ == "__main__":
    main()
