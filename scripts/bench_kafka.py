#!/usr/bin/env python3
"""Benchmark of the seed pipeline against a real broker, stage by stage.

Starts an Apache Kafka broker (scripts/kafka.sh, one KRaft node, with the JVM
options of Kafka's own start script) and Tributary's Schema Registry on free
127.0.0.1 ports, produces N Avro articles with confluent-kafka's AvroSerializer, then
runs `tributary run --available-now` over the whole topic once per stage:

  consume     Kafka → blackhole sink, values not decoded (format "bytes")
  + avro      Avro decoded into Arrow via the registry → blackhole
  + wasm      + the WASM watermark (2 h) and dedup transforms → blackhole
  + parquet   + the Iceberg sink: Parquet files and commits (the full pipeline)
  peer-raw    the same topic read by confluent-kafka's Consumer (Python,
              librdkafka), values not decoded: compare with "consume"
  peer        the same, Avro-decoded by its AvroDeserializer into a pyarrow
              table, the usual way without Tributary: compare with "+ avro"

Each row also gives the CPU time the broker (Kafka) spent serving the stage:
when it is close to the wall time, the broker is what limits records/s.

For each: records/s (wall), records per CPU-second of the tributary process
(user + system, from wait4), peak RSS, and commit latency p50/p99 as the run
reports them. Each stage reads the topic from the start with a fresh pipeline.
Prints a Markdown table (for BENCHMARKS.md) and a JSON line per stage.

  scripts/bench.sh 1000000
"""

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, what):
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            if proc.poll() is not None:
                sys.exit(f"{what} exited with {proc.returncode}")
            time.sleep(0.05)
    sys.exit(f"{what} did not listen on {port}")


def wait_kafka(bootstrap, proc):
    """Until the broker names itself in metadata (it listens a moment before
    it can serve)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": bootstrap, "reconnect.backoff.max.ms": 100})
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if admin.list_topics(timeout=1).brokers:
                return
        except KafkaException:
            pass
        if proc.poll() is not None:
            sys.exit(f"kafka exited with {proc.returncode}")
        time.sleep(0.1)
    sys.exit(f"kafka at {bootstrap} did not serve metadata within 90 s")


def stage_pipeline(stage, work, bootstrap, registry, topic):
    source = {"type": "kafka", "bootstrap_servers": bootstrap, "topics": [topic],
              "group_id": f"bench-{stage}", "start": "earliest"}
    if stage == "consume":
        source["format"] = "bytes"
    else:
        source.update({"format": "avro", "schema_registry_url": registry})
    transforms = []
    if stage in ("wasm", "parquet"):
        transforms = [
            {"name": "watermark", "module": "builtin:watermark",
             "config": {"event_time": "published_at", "delay": "2 hours"}},
            {"name": "dedup", "module": "builtin:dedup",
             "config": {"key": "id", "event_time": "published_at", "within": "2 hours", "keep": "first"}},
        ]
    if stage == "parquet":
        sink = {"type": "iceberg", "catalog_uri": f"sqlite:{work}/warehouse/catalog.db",
                "warehouse": f"{work}/warehouse", "table": "demo.news.articles_raw"}
    else:
        sink = {"type": "blackhole"}
    return {"name": f"bench_{stage}", "source": source, "transforms": transforms, "sink": sink,
            "checkpoint": {"location": f"{work}/chk"},
            "trigger": {"interval_ms": 5000, "max_records_per_epoch": 100000, "batch_size": 2000},
            "errors": {"policy": "dead-letter"}}


def run_stage(binary, stage, bootstrap, registry, topic):
    with tempfile.TemporaryDirectory(prefix=f"bench-{stage}-") as work:
        path = os.path.join(work, "pipeline.json")
        with open(path, "w") as f:
            json.dump(stage_pipeline(stage, work, bootstrap, registry, topic), f)
        err_path = os.path.join(work, "stderr.log")
        with open(err_path, "w") as err:
            began = time.monotonic()
            proc = subprocess.Popen([binary, "run", "--available-now", "--progress-interval", "0", path],
                                    stdout=subprocess.DEVNULL, stderr=err)
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.monotonic() - began
        log = open(err_path).read()
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"stage {stage} failed:\n{log[-3000:]}")
    done = re.search(r"done: .*?(\d+) records in, (\d+) out", log)
    commit = re.search(r"commit latency p50 ([\d.]+) ms, p99 ([\d.]+) ms", log)
    records = int(done.group(1)) if done else 0
    cpu = usage.ru_utime + usage.ru_stime
    return {
        "stage": stage, "records": records, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
        "records_per_s": round(records / wall), "records_per_cpu_s": round(records / cpu) if cpu else 0,
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "commit_p50_ms": float(commit.group(1)) if commit else None,
        "commit_p99_ms": float(commit.group(2)) if commit else None,
    }


def cpu_seconds(pid):
    """User + system CPU time of a running process, from /proc."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_peer(bootstrap, registry, topic, records, raw):
    """confluent-kafka Consumer (+ AvroDeserializer → pyarrow), in Python."""
    began = time.monotonic()
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "peer_consume.py"), "--bootstrap", bootstrap,
                             "--registry", registry, "--topic", topic, "--records", str(records)]
                            + (["--raw"] if raw else []),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.stdout.read(), proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - began
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"the peer failed:\n{err.decode()[-3000:]}")
    got = json.loads(out)["records"]
    cpu = usage.ru_utime + usage.ru_stime
    return {"stage": "peer-raw" if raw else "peer", "records": got, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "records_per_s": round(got / wall), "records_per_cpu_s": round(got / cpu) if cpu else 0,
            "peak_rss_mib": round(usage.ru_maxrss / 1024, 1), "commit_p50_ms": None, "commit_p99_ms": None}


def median_run(rs):
    """The median of each figure over repeated runs of one stage."""
    out = dict(rs[0])
    for key, value in rs[0].items():
        if isinstance(value, (int, float)):
            values = sorted(r[key] for r in rs if r[key] is not None)
            out[key] = values[len(values) // 2] if values else None
    out["runs"] = len(rs)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", required=True, help="the tributary binary")
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--partitions", type=int, default=3)
    p.add_argument("--repeat", type=int, default=3, help="runs of each stage; the table gives medians")
    p.add_argument("--stages", default="consume,peer-raw,avro,peer,wasm,parquet")
    p.add_argument("--baseline", help="a second tributary binary (say, the previous commit's) run "
                   "through the same stages in the same rounds, for an A/B in one run")
    args = p.parse_args()

    procs = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-services-") as services:
            kport, cport, rport = free_port(), free_port(), free_port()
            # Kafka's own defaults (kafka-server-start.sh), not the quick-start
            # options the tests use: this measures a broker as it is run.
            env = dict(os.environ, KAFKA_JVM_OPTS="-Xms1g -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20 "
                                                  "-XX:InitiatingHeapOccupancyPercent=35")
            kafka = subprocess.Popen([os.path.join(HERE, "kafka.sh"), os.path.join(services, "kafka"),
                                      str(kport), str(cport)], env=env,
                                     stdout=subprocess.DEVNULL, stderr=open(os.path.join(services, "kafka.log"), "w"))
            procs.append(kafka)
            registry = subprocess.Popen([args.bin, "schema-registry", "--listen", f"127.0.0.1:{rport}",
                                         "--data", os.path.join(services, "schemas")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(registry)
            wait_port(rport, registry, "schema registry")
            bootstrap, reg_url, topic = f"127.0.0.1:{kport}", f"http://127.0.0.1:{rport}", "articles.bench"
            wait_kafka(bootstrap, kafka)

            began = time.monotonic()
            out = subprocess.run([sys.executable, os.path.join(HERE, "produce_articles.py"),
                                  "--bootstrap", bootstrap, "--registry", reg_url, "--topic", topic,
                                  "--partitions", str(args.partitions), "--records", str(args.records)],
                                 check=True, capture_output=True, text=True)
            produced = json.loads(out.stdout)
            print(f"produced {produced['produced']} Avro articles in {time.monotonic() - began:.1f} s "
                  f"({produced['duplicate']} duplicates, {produced['late']} late)", file=sys.stderr)

            binaries = [("", args.bin)] + ([(" (baseline)", args.baseline)] if args.baseline else [])
            runs = {}
            for stage in args.stages.split(","):
                for label, binary in ([("", None)] if stage in ("peer", "peer-raw") else binaries):
                    runs[(stage, label, binary)] = []
            # Rounds of every stage in turn, so that a noisy moment of the
            # machine spreads over the stages instead of hitting one.
            for _ in range(args.repeat):
                for (stage, label, binary), rs in runs.items():
                    broker_cpu = cpu_seconds(kafka.pid)
                    if stage in ("peer", "peer-raw"):
                        r = run_peer(bootstrap, reg_url, topic, produced["produced"], stage == "peer-raw")
                    else:
                        r = run_stage(binary, stage, bootstrap, reg_url, topic)
                    r["broker_cpu_s"] = round(cpu_seconds(kafka.pid) - broker_cpu, 2)
                    r["label"] = label
                    print(json.dumps(r), file=sys.stderr)
                    rs.append(r)
            results = [dict(median_run(rs), label=label) for (_, label, _), rs in runs.items()]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()

    cpu = open("/proc/cpuinfo").read()
    model = re.search(r"model name\s*:\s*(.*)", cpu)
    print(f"\nmachine: {os.cpu_count()} cores, {model.group(1) if model else 'unknown CPU'}; "
          f"{args.records} records, {args.partitions} partitions; medians of {args.repeat} runs\n")
    print("| stage | records | wall s | CPU s | records/s | records per CPU-s | peak RSS MiB | commit p50 / p99 ms | broker CPU s |")
    print("|---|---|---|---|---|---|---|---|---|")
    names = {"consume": "consume only", "avro": "+ Avro decode", "wasm": "+ WASM watermark + dedup",
             "parquet": "+ Parquet / Iceberg (end to end)",
             "peer": "peer: confluent-kafka Consumer + AvroDeserializer → pyarrow (Python)",
             "peer-raw": "peer: confluent-kafka Consumer, values not decoded (Python)"}
    for r in results:
        commit = f"{r['commit_p50_ms']} / {r['commit_p99_ms']}" if r["commit_p50_ms"] is not None else "–"
        print(f"| {names.get(r['stage'], r['stage'])}{r['label']} | {r['records']} | {r['wall_s']} | {r['cpu_s']} | "
              f"{r['records_per_s']} | {r['records_per_cpu_s']} | {r['peak_rss_mib']} | {commit} | {r['broker_cpu_s']} |")


if __name__ == "__main__":
    main()
