#!/usr/bin/env python3
"""Peer benchmark (not a test): the seed's job on one Apache Kafka topic, by
Tributary and by the systems it replaces, in interleaved rounds.

Starts Apache Kafka (scripts/kafka.sh, one KRaft node) and Apicurio Registry
(scripts/jvm.sh apicurio; its Confluent API) on free 127.0.0.1 ports, produces
N Avro articles (the seed's schema, 10 % duplicates, 1 % late, 3 partitions)
with confluent-kafka's AvroSerializer, then per round runs each system over the
whole topic into a fresh Iceberg table (SQLite catalog):

  tributary  examples/articles/pipeline.json, `tributary run --available-now`
  spark      the seed's job in pyspark (scripts/spark_articles.py): watermark
             2 h + dropDuplicates, Iceberg, AvailableNow, maxOffsetsPerTrigger
             100,000 (Tributary's max_records_per_epoch), local[2]
  connect    Kafka Connect (standalone worker) + Apache Iceberg's sink, Avro
             through Apicurio's AvroConverter, commit interval 5 s; it has no
             dedup or watermark (no SMT can keep state), so it writes every record
  python     confluent-kafka Consumer + AvroDeserializer into a pyarrow table
             (scripts/peer_consume.py): reads only, writes no table

For each: wall time, CPU-seconds of every process of that system (the JVMs
included; sampled from /proc every 0.2 s over the process tree, so a process
that ends loses at most its last 0.2 s), records per CPU-second, peak RSS (the
tree's sum), start → visible (from starting the system until PyIceberg sees its
final table), and whether the table holds exactly the expected ids. Medians of
the rounds; one Markdown table, with the ratios Tributary/Spark and
Tributary/Connect per CPU-second and per MiB of RSS.

  scripts/bench.sh peers 1000000 [--rounds 3] [--systems tributary,spark,connect,python]
"""

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
TABLE = "demo.news.articles_raw"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def jvm_tool(tool):
    out = subprocess.run([os.path.join(HERE, "jvm.sh"), tool], check=True, stdout=subprocess.PIPE, text=True)
    return out.stdout.strip().splitlines()[-1]


class Tree:
    """CPU-seconds and RSS of a process and all its descendants, from /proc."""

    def __init__(self, pid):
        self.root = pid
        self.cpu = {}  # pid -> last seen utime+stime (s)
        self.peak_rss = 0

    def sample(self):
        children = {}
        stats = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    text = f.read()
            except OSError:
                continue
            fields = text[text.rindex(")") + 2:].split()
            pid, ppid = int(entry), int(fields[1])
            children.setdefault(ppid, []).append(pid)
            # utime, stime (fields 14, 15 of stat); rss pages (field 24)
            stats[pid] = ((int(fields[11]) + int(fields[12])) / TICK, int(fields[21]) * PAGE)
        rss, todo = 0, [self.root]
        while todo:
            pid = todo.pop()
            if pid in stats:
                cpu, mem = stats[pid]
                self.cpu[pid] = max(cpu, self.cpu.get(pid, 0))
                rss += mem
            todo.extend(children.get(pid, []))
        self.peak_rss = max(self.peak_rss, rss)

    def cpu_seconds(self):
        return sum(self.cpu.values())


def watch(proc, until=None, limit=3600):
    """Samples `proc`'s tree every 0.2 s until it exits (or `until()` holds)."""
    tree = Tree(proc.pid)
    began = time.monotonic()
    while True:
        tree.sample()
        if proc.poll() is not None:
            break
        if until is not None and until():
            break
        if time.monotonic() - began > limit:
            proc.kill()
            sys.exit(f"bench_peers: {proc.args[:3]} ran over {limit} s")
        time.sleep(0.2)
    return tree, time.monotonic() - began


def table_ids(catalog_uri, name, warehouse):
    """Every id in the table, read by PyIceberg (None: no table yet)."""
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.exceptions import NoSuchTableError

    catalog = SqlCatalog(name, uri="sqlite:///" + catalog_uri[len("sqlite:"):],
                         warehouse="file://" + warehouse)
    try:
        table = catalog.load_table(TABLE)
    except NoSuchTableError:
        return None
    return table.scan(selected_fields=("id",)).to_arrow().column("id").to_pylist()


def row_count(catalog_uri, name, warehouse):
    """Rows in the table's current snapshot, from its summary (cheap to poll)."""
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.exceptions import NoSuchTableError

    try:
        catalog = SqlCatalog(name, uri="sqlite:///" + catalog_uri[len("sqlite:"):],
                             warehouse="file://" + warehouse)
        snap = catalog.load_table(TABLE).current_snapshot()
    except (NoSuchTableError, Exception):  # the sink may be creating it right now
        return 0
    return int(snap.summary.additional_properties.get("total-records", 0)) if snap else 0


def exactness(ids, expected):
    if ids is None:
        return "no table"
    got = set(ids)
    extra, missing, dups = len(got - expected), len(expected - got), len(ids) - len(got)
    if not (extra or missing or dups):
        return "yes"
    return f"no: {extra} unexpected, {missing} missing, {dups} repeated"


class Env:
    def __init__(self, args, work):
        self.args, self.work = args, work
        self.port, self.controller = free_port(), free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.kafka = subprocess.Popen(
            [os.path.join(HERE, "kafka.sh"), os.path.join(work, "kafka"), str(self.port), str(self.controller)],
            stdout=open(os.path.join(work, "kafka.log"), "w"), stderr=subprocess.STDOUT)
        self.reg_port = free_port()
        self.apicurio_dir = jvm_tool("apicurio")
        self.apicurio = subprocess.Popen(
            ["java", "-Xmx512m", "-XX:+UseSerialGC", f"-Dquarkus.http.port={self.reg_port}",
             "-Dquarkus.http.host=127.0.0.1", "-jar",
             os.path.join(self.apicurio_dir, "apicurio-registry-runner.jar")],
            cwd=work, stdout=open(os.path.join(work, "apicurio.log"), "w"), stderr=subprocess.STDOUT)
        self.registry = f"http://127.0.0.1:{self.reg_port}/apis/ccompat/v7"
        self.wait_kafka()
        self.wait_registry()

    def wait_kafka(self):
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "reconnect.backoff.max.ms": 100})
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if admin.list_topics(timeout=1).brokers:
                    return
            except KafkaException:
                pass
            if self.kafka.poll() is not None:
                sys.exit(f"kafka exited ({self.kafka.returncode}); see {self.work}/kafka.log")
            time.sleep(0.2)
        sys.exit("kafka did not serve within 120 s")

    def wait_registry(self):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.registry}/subjects", timeout=2).read()
                break
            except OSError:
                if self.apicurio.poll() is not None:
                    sys.exit(f"Apicurio exited; see {self.work}/apicurio.log")
                time.sleep(0.3)
        req = urllib.request.Request(f"{self.registry}/config", method="PUT",
                                     data=b'{"compatibility": "BACKWARD"}',
                                     headers={"Content-Type": "application/vnd.schemaregistry.v1+json"})
        urllib.request.urlopen(req, timeout=10).read()

    def create_topic(self, name, partitions):
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        for f in admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)]).values():
            f.result(timeout=30)

    def stop(self):
        for p in (self.apicurio, self.kafka):
            p.terminate()
        for p in (self.apicurio, self.kafka):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def run_tributary(env, run_dir, n):
    wh = os.path.join(run_dir, "warehouse")
    os.makedirs(wh)
    cat = f"sqlite:{wh}/catalog.db"
    e = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=env.bootstrap, KAFKA_TOPIC=env.args.topic,
             SCHEMA_REGISTRY_URL=env.registry, ICEBERG_TABLE=TABLE, ICEBERG_WAREHOUSE=wh,
             ICEBERG_CATALOG_URI=cat, CHECKPOINT_LOCATION=os.path.join(run_dir, "chk"))
    proc = subprocess.Popen([env.args.bin, "run", "--available-now", "--progress-interval", "0",
                             os.path.join(ROOT, "examples/articles/pipeline.json")],
                            env=e, stdout=subprocess.DEVNULL, stderr=open(os.path.join(run_dir, "log"), "w"))
    tree, wall = watch(proc)
    if proc.returncode != 0:
        sys.exit(f"tributary failed; see {run_dir}/log")
    return tree, wall, wall, table_ids(cat, "tributary", wh)


def run_spark(env, run_dir, n):
    wh = os.path.join(run_dir, "warehouse")
    os.makedirs(wh)
    cat = f"sqlite:{wh}/catalog.db"
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "spark_articles.py"), "run",
                             "--jars-dir", env.spark_jars, "--bootstrap", env.bootstrap,
                             "--registry", env.registry, "--topic", env.args.topic,
                             "--catalog-uri", cat, "--warehouse", wh, "--table", TABLE,
                             "--checkpoint", os.path.join(run_dir, "chk"),
                             "--max-offsets-per-trigger", "100000"],
                            stdout=open(os.path.join(run_dir, "out"), "w"),
                            stderr=open(os.path.join(run_dir, "log"), "w"))
    tree, wall = watch(proc)
    if proc.returncode != 0:
        sys.exit(f"spark failed; see {run_dir}/log")
    return tree, wall, wall, table_ids(cat, "spark", wh)


def run_connect(env, run_dir, n):
    wh = os.path.join(run_dir, "warehouse")
    os.makedirs(wh)
    cat = f"sqlite:{wh}/catalog.db"
    control = f"control-{os.path.basename(run_dir)}"
    env.create_topic(control, 1)
    worker = os.path.join(run_dir, "worker.properties")
    sink = os.path.join(run_dir, "sink.properties")
    with open(worker, "w") as f:
        f.write(f"""bootstrap.servers={env.bootstrap}
key.converter=org.apache.kafka.connect.storage.StringConverter
value.converter=io.apicurio.registry.utils.converter.AvroConverter
value.converter.apicurio.registry.url=http://127.0.0.1:{env.reg_port}/apis/registry/v2
value.converter.apicurio.registry.as-confluent=true
value.converter.apicurio.registry.use-id=contentId
offset.storage.file.filename={run_dir}/connect.offsets
listeners=http://127.0.0.1:{free_port()}
rest.advertised.host.name=127.0.0.1
plugin.discovery=only_scan
""")
    with open(sink, "w") as f:
        f.write(f"""name=iceberg-{os.path.basename(run_dir)}
connector.class=org.apache.iceberg.connect.IcebergSinkConnector
tasks.max=1
topics={env.args.topic}
iceberg.tables={TABLE}
iceberg.tables.auto-create-enabled=true
iceberg.catalog=connect
iceberg.catalog.catalog-impl=org.apache.iceberg.jdbc.JdbcCatalog
iceberg.catalog.uri=jdbc:sqlite:{wh}/catalog.db
iceberg.catalog.warehouse={wh}
iceberg.catalog.jdbc.schema-version=V1
iceberg.control.topic={control}
iceberg.control.group-id-prefix=cg-{os.path.basename(run_dir)}
iceberg.control.commit.interval-ms=5000
consumer.override.auto.offset.reset=earliest
""")
    log4j = os.path.join(HERE, "jvm/connect/log4j.properties")
    proc = subprocess.Popen(["java", "-Xmx2g", f"-Dlog4j.configuration=file:{log4j}",
                             "-cp", os.path.join(env.connect_jars, "*"),
                             "org.apache.kafka.connect.cli.ConnectStandalone", worker, sink],
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(run_dir, "log"), "w"))
    last_check = [0.0]

    def all_visible():
        # Poll the table once a second, from this process (not counted).
        if time.monotonic() - last_check[0] < 1.0:
            return False
        last_check[0] = time.monotonic()
        return row_count(cat, "connect", wh) >= n

    tree, wall = watch(proc, until=all_visible)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if row_count(cat, "connect", wh) < n:
        sys.exit(f"connect ended before the table held {n} rows; see {run_dir}/log")
    return tree, wall, wall, table_ids(cat, "connect", wh)


def run_python(env, run_dir, n):
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "peer_consume.py"), "--bootstrap", env.bootstrap,
                             "--registry", env.registry, "--topic", env.args.topic, "--records", str(n)],
                            stdout=open(os.path.join(run_dir, "out"), "w"),
                            stderr=open(os.path.join(run_dir, "log"), "w"))
    tree, wall = watch(proc)
    if proc.returncode != 0:
        sys.exit(f"python peer failed; see {run_dir}/log")
    return tree, wall, None, None


SYSTEMS = {
    "tributary": ("Tributary (seed pipeline, `--available-now`)", run_tributary),
    "spark": ("Spark 4.1.1 Structured Streaming (seed's job, AvailableNow, local[2])", run_spark),
    "connect": ("Kafka Connect 4.3.1 + Iceberg 1.12 sink (Avro via Apicurio's converter)", run_connect),
    "python": ("Python: confluent-kafka Consumer + AvroDeserializer → pyarrow (no table)", run_python),
}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", required=True, help="the release tributary binary")
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--systems", default="tributary,spark,connect,python")
    p.add_argument("--topic", default="articles.raw.v1")
    p.add_argument("--keep", action="store_true", help="keep the work folder")
    args = p.parse_args()
    systems = args.systems.split(",")
    for s in systems:
        if s not in SYSTEMS:
            p.error(f"unknown system {s}: one of {', '.join(SYSTEMS)}")

    work = tempfile.mkdtemp(prefix="bench-peers-")
    env = Env(args, work)
    try:
        env.spark_jars = jvm_tool("spark") if "spark" in systems else None
        env.connect_jars = jvm_tool("connect") if "connect" in systems else None
        expected_file = os.path.join(work, "expected.json")
        began = time.monotonic()
        out = subprocess.run([sys.executable, os.path.join(HERE, "produce_articles.py"),
                              "--bootstrap", env.bootstrap, "--registry", env.registry,
                              "--topic", args.topic, "--partitions", "3", "--records", str(args.records),
                              "--expected", expected_file], check=True, stdout=subprocess.PIPE, text=True)
        produced = json.loads(out.stdout)
        print(f"produced {produced} in {time.monotonic() - began:.1f} s", file=sys.stderr)
        with open(expected_file) as f:
            expected = set(json.load(f))

        results = {s: [] for s in systems}
        for rnd in range(1, args.rounds + 1):
            order = systems[rnd - 1:] + systems[:rnd - 1]  # rotate: no system always first
            for s in order:
                run_dir = os.path.join(work, f"{s}-{rnd}")
                os.makedirs(run_dir)
                tree, wall, visible, ids = SYSTEMS[s][1](env, run_dir, args.records)
                cpu = tree.cpu_seconds()
                r = {"system": s, "round": rnd, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                     "records_per_cpu_s": round(args.records / cpu) if cpu else None,
                     "peak_rss_mib": round(tree.peak_rss / 2**20), "visible_s": visible and round(visible, 2),
                     "rows": None if ids is None else len(ids),
                     "exact": "n/a (reads only)" if s == "python" else exactness(ids, expected)}
                results[s].append(r)
                print(json.dumps(r), flush=True)
        print(table(args, produced, results))
    finally:
        env.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"work folder kept: {work}", file=sys.stderr)


def median(rs, key):
    vals = [r[key] for r in rs if r[key] is not None]
    return statistics.median(vals) if vals else None


def table(args, produced, results):
    cpu_model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu_model = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    lines = [
        f"{args.records:,} Avro articles ({produced['duplicate']:,} duplicates, {produced['late']:,} late) on one "
        f"Apache Kafka 4.4 topic (3 partitions); medians of {args.rounds} interleaved rounds; "
        f"{os.cpu_count()} cores ({cpu_model}), {platform.platform()}; "
        f"`scripts/bench.sh peers {args.records}`.",
        "",
        "| system | wall s | CPU s (all processes) | records / CPU s | peak RSS MiB | start → visible s | rows | exactly the expected ids |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    med = {}
    for s, rs in results.items():
        m = {k: median(rs, k) for k in ("wall_s", "cpu_s", "records_per_cpu_s", "peak_rss_mib", "visible_s", "rows")}
        med[s] = m
        exact = "; ".join(sorted({r["exact"] for r in rs}))
        fmt = lambda v, spec: "–" if v is None else format(v, spec)
        lines.append(f"| {SYSTEMS[s][0]} | {fmt(m['wall_s'], '.1f')} | {fmt(m['cpu_s'], '.1f')} | "
                     f"{fmt(m['records_per_cpu_s'], ',.0f')} | {fmt(m['peak_rss_mib'], '.0f')} | "
                     f"{fmt(m['visible_s'], '.1f')} | {fmt(m['rows'], ',.0f')} | {exact} |")
    t = med.get("tributary")
    for peer in ("spark", "connect"):
        if t and peer in med and med[peer]["cpu_s"]:
            lines.append("")
            lines.append(
                f"Tributary/{peer.capitalize()}: {med[peer]['cpu_s'] / t['cpu_s']:.1f}× fewer CPU-seconds "
                f"(records per CPU-second {t['records_per_cpu_s'] / med[peer]['records_per_cpu_s']:.1f}×), "
                f"{med[peer]['peak_rss_mib'] / t['peak_rss_mib']:.1f}× less peak RSS "
                f"(records per MiB of RSS {med[peer]['peak_rss_mib'] / t['peak_rss_mib']:.1f}×).")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
