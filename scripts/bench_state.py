#!/usr/bin/env python3
"""Transform state at scale (issue 13, items 4 and 6): a benchmark, not a test.

For each binary and each number of live keys N, two runs on one checkpoint
location of the pipeline generator -> watermark -> dedup -> Parquet files, with a
dedup window so long that no key expires (every id stays alive):

  load    N unique records in epochs of 100,000: peak RSS (/usr/bin/time),
          CPU; bytes per live key = (peak RSS - the peak RSS of a run of
          100,000 records) / (N - 100,000).
  steady  the next 200,000 records in epochs of 10,000 (N live keys, 10,000
          changed per epoch): each epoch's commit latency and checkpoint
          bytes, from the pipeline's debug log (`committed in ...;
          checkpoint: ... of B bytes`; a binary without that line shows the
          file sizes), and the time to restore the state at start.

    scripts/bench_state.py --bin NEW [--baseline-bin OLD] [--keys 1000000 10000000]

Prints a Markdown table for BENCHMARKS.md. Every run uses a fresh temporary
folder.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time

COMMITTED = re.compile(
    r"committed in ([0-9.]+)(ms|µs|s)(?:; checkpoint: (changelog|full snapshot) of (\d+) bytes)? .*epoch=(\d+)"
)
RESUMED = re.compile(r"resuming after epoch")


def pipeline(records, per_epoch):
    return {
        "name": "state-bench",
        "source": {"type": "generator", "seed": 3, "records": records,
                   "duplicate_ratio": 0, "late_ratio": 0, "out_of_order_ms": 0},
        "transforms": [
            {"name": "watermark", "module": "builtin:watermark",
             "config": {"event_time": "published_at", "delay": "3650 days"}},
            {"name": "dedup", "module": "builtin:dedup",
             "config": {"key": "id", "event_time": "published_at", "within": "3650 days"}},
        ],
        # A sink with commits (the blackhole has none, so a second run would
        # start over), and one that keeps only the id: little disk.
        "sink": {"type": "parquet", "path": "out", "compression": "zstd"},
        "checkpoint": {"location": "chk"},
        "trigger": {"interval_ms": 3_600_000, "max_records_per_epoch": per_epoch,
                    "batch_size": 5000},
    }


def run(binary, folder, records, per_epoch):
    with open(os.path.join(folder, "p.json"), "w") as f:
        json.dump(pipeline(records, per_epoch), f)
    env = dict(os.environ, TRIBUTARY_LOG="tributary_runtime=debug")
    began = time.monotonic()
    out = subprocess.run(
        ["/usr/bin/time", "-f", "TIME rss_kb=%M user=%U sys=%S", binary, "run",
         "--available-now", "p.json"],
        cwd=folder, env=env, capture_output=True, text=True)
    wall = time.monotonic() - began
    if out.returncode != 0:
        errors = [line for line in out.stderr.splitlines() if line.startswith("error")]
        return {"error": errors[-1] if errors else out.stderr[-500:]}
    m = re.search(r"TIME rss_kb=(\d+) user=([0-9.]+) sys=([0-9.]+)", out.stderr)
    epochs = []
    restore_s = None
    first_line_t = None
    for line in out.stderr.splitlines():
        line = re.sub(r"\x1b\[[0-9;]*m", "", line)
        t = line[:27]
        if first_line_t is None and line.startswith("20"):
            first_line_t = t
        if RESUMED.search(line) and first_line_t:
            restore_s = stamp(t) - stamp(first_line_t)
        c = COMMITTED.search(line)
        if c:
            scale = {"ms": 1.0, "µs": 0.001, "s": 1000.0}[c.group(2)]
            epochs.append({"epoch": int(c.group(5)), "ms": float(c.group(1)) * scale,
                           "kind": c.group(3), "bytes": int(c.group(4)) if c.group(4) else None})
    return {"rss_mib": int(m.group(1)) / 1024, "cpu_s": float(m.group(2)) + float(m.group(3)),
            "wall_s": wall, "epochs": epochs, "restore_s": restore_s}


def stamp(t):
    from datetime import datetime
    return datetime.strptime(t.rstrip("Z")[:26], "%Y-%m-%dT%H:%M:%S.%f").timestamp()


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def measure(binary, keys):
    folder = tempfile.mkdtemp(prefix="bench-state-")
    try:
        base = run(binary, folder, 100_000, 100_000)
        shutil.rmtree(os.path.join(folder, "chk"))
        shutil.rmtree(os.path.join(folder, "out"))
        load = run(binary, folder, keys, 100_000)
        if "error" in load:
            return {"keys": keys, "error": load["error"]}
        steady = run(binary, folder, keys + 200_000, 10_000)
        if "error" in steady:
            return {"keys": keys, "error": steady["error"]}
        sizes = sorted(os.path.getsize(os.path.join(folder, "chk", f))
                       for f in os.listdir(os.path.join(folder, "chk")) if f.endswith(".ckpt"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    ms = [e["ms"] for e in steady["epochs"]]
    known = [e["bytes"] for e in steady["epochs"] if e["bytes"] is not None]
    return {
        "keys": keys,
        "baseline_rss_mib": base["rss_mib"],
        "load_rss_mib": load["rss_mib"],
        "bytes_per_key": (load["rss_mib"] - base["rss_mib"]) * 1024 * 1024 / (keys - 100_000),
        "load_cpu_s": load["cpu_s"],
        "load_us_per_record": load["cpu_s"] / keys * 1e6,
        "steady_epochs": len(ms),
        "commit_p50_ms": statistics.median(ms) if ms else None,
        "commit_p99_ms": pct(ms, 0.99) if ms else None,
        "checkpoint_bytes_median": statistics.median(known) if known else None,
        "full_snapshots": sum(1 for e in steady["epochs"] if e["kind"] == "full snapshot"),
        "stored_files_bytes": sizes,
        "restore_s": steady["restore_s"],
        "steady_rss_mib": steady["rss_mib"],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--baseline-bin")
    ap.add_argument("--keys", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--json")
    args = ap.parse_args()
    results = []
    for keys in args.keys:
        for label, binary in (("baseline", args.baseline_bin), ("this", args.bin)):
            if not binary:
                continue
            r = measure(binary, keys)
            r["binary"] = label
            results.append(r)
            print(json.dumps(r), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    print()
    print("| binary | live keys | peak RSS MiB (load) | bytes/key | load CPU µs/record | "
          "steady commit p50 / p99 ms | checkpoint bytes/epoch (median) | full snapshots in 20 epochs | restore s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        if "error" in r:
            print(f"| {r['binary']} | {r['keys']:,} | failed: {r['error']} |||||||")
            continue
        ckpt = r["checkpoint_bytes_median"]
        ckpt = f"{ckpt:,.0f}" if ckpt is not None else f"(files: {r['stored_files_bytes'][-1]:,})"
        restore = f"{r['restore_s']:.2f}" if r["restore_s"] is not None else "?"
        print(f"| {r['binary']} | {r['keys']:,} | {r['load_rss_mib']:.0f} | {r['bytes_per_key']:.0f} | "
              f"{r['load_us_per_record']:.2f} | {r['commit_p50_ms']:.1f} / {r['commit_p99_ms']:.1f} | "
              f"{ckpt} | {r['full_snapshots']} | {restore} |")


if __name__ == "__main__":
    main()
