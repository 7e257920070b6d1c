#!/usr/bin/env python3
"""The soak run's helper (scripts/soak.sh drives it). Three subcommands:

  sample   every --interval seconds, until --stop-file exists or the process
           is gone: the pipeline process's RSS, threads, open fds and CPU time
           (/proc/<pid>), its Prometheus metrics (records, epochs, lag, the
           commit-latency histogram) and the size of the warehouse, one CSV row
           each; and, from its progress lines (--progress-interval 1), every
           epoch's commit latency with the time it was seen, one row each in a
           second CSV.
  check    reads the Iceberg table back with PyIceberg and compares its ids
           with the ids the producer says must be there (--expected): lost,
           duplicated, not expected. Prints JSON.
  report   the summary: start/end/max of RSS and fds, commit latency p50/p99
           per 10-minute window, least-squares slopes, and the records.
"""

import argparse
import csv
import json
import os
import re
import sys
import threading
import time
import urllib.request
from collections import Counter

COMMIT_LINE = re.compile(r"\| epoch (\d+) committed [0-9.]+s ago in (\d+) ms")

SAMPLE_FIELDS = [
    "t_s", "unix_s", "rss_kib", "rss_hwm_kib", "threads", "fds", "cpu_s",
    "records_in", "records_out", "dropped_duplicate", "dropped_late", "dead_lettered",
    "epochs_committed", "lag_records", "commit_count", "commit_sum_s",
    "warehouse_bytes", "warehouse_files", "metadata_json_bytes", "checkpoint_bytes",
]


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])  # kB
            elif key == "Threads":
                out[key] = int(value)
    with open(f"/proc/{pid}/stat") as f:
        # Fields after the command name (which may hold spaces) in parentheses.
        rest = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    out["cpu_s"] = (int(rest[11]) + int(rest[12])) / ticks  # utime + stime
    out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return out


def scrape(url):
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    totals = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.endswith("_bucket"):
                continue
            totals[s.name] = totals.get(s.name, 0) + s.value
    return totals


def tree_size(path):
    """Bytes and files under `path`, and the largest `*.metadata.json` (an
    Iceberg table's metadata only grows, so that is the current one)."""
    size = files = metadata = 0
    for root, _dirs, names in os.walk(path):
        for name in names:
            try:
                n = os.stat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                continue
            size += n
            files += 1
            if name.endswith(".metadata.json"):
                metadata = max(metadata, n)
    return size, files, metadata


def follow_commits(log_path, out_path, began, stop):
    """Appends (seen at, epoch, latency ms) for each epoch a progress line
    names, once, until `stop` is set (and the log is read to its end)."""
    seen = set()
    with open(out_path, "w", newline="") as out:
        w = csv.writer(out)
        w.writerow(["t_s", "unix_s", "epoch", "commit_ms"])
        while not os.path.exists(log_path):
            if stop.wait(0.2):
                return
        with open(log_path) as log:
            pending = ""
            while True:
                chunk = log.read()
                done = stop.is_set()
                pending += chunk
                *lines, pending = pending.split("\n")
                now = time.time()
                for line in lines:
                    m = COMMIT_LINE.search(line)
                    if m and m.group(1) not in seen:
                        seen.add(m.group(1))
                        w.writerow([f"{now - began:.1f}", f"{now:.1f}", m.group(1), m.group(2)])
                out.flush()
                if done:
                    return
                stop.wait(0.5)


def cmd_sample(args):
    began = time.time()
    stop = threading.Event()
    follower = threading.Thread(target=follow_commits,
                                args=(args.log, args.commits, began, stop), daemon=True)
    follower.start()
    with open(args.csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=SAMPLE_FIELDS)
        w.writeheader()
        next_at = time.monotonic()
        while not os.path.exists(args.stop_file):
            try:
                st = proc_status(args.pid)
            except (FileNotFoundError, ProcessLookupError):
                print(f"soak: process {args.pid} is gone; sampling stops", file=sys.stderr)
                break
            try:
                m = scrape(args.metrics)
            except OSError as e:
                print(f"soak: metrics not readable ({e}); the row has none", file=sys.stderr)
                m = {}
            wh_bytes, wh_files, md_bytes = tree_size(args.warehouse)
            chk_bytes, _, _ = tree_size(args.checkpoint)
            now = time.time()
            w.writerow({
                "t_s": f"{now - began:.1f}", "unix_s": f"{now:.1f}",
                "rss_kib": st["VmRSS"], "rss_hwm_kib": st["VmHWM"], "threads": st["Threads"],
                "fds": st["fds"], "cpu_s": f"{st['cpu_s']:.2f}",
                "records_in": m.get("tributary_records_in_total", ""),
                "records_out": m.get("tributary_records_out_total", ""),
                "dropped_duplicate": m.get("tributary_records_dropped_duplicate_total", ""),
                "dropped_late": m.get("tributary_records_dropped_late_total", ""),
                "dead_lettered": m.get("tributary_records_dead_lettered_total", ""),
                "epochs_committed": m.get("tributary_epochs_committed_total", ""),
                "lag_records": m.get("tributary_source_lag_records", ""),
                "commit_count": m.get("tributary_commit_latency_seconds_count", ""),
                "commit_sum_s": m.get("tributary_commit_latency_seconds_sum", ""),
                "warehouse_bytes": wh_bytes, "warehouse_files": wh_files,
                "metadata_json_bytes": md_bytes, "checkpoint_bytes": chk_bytes,
            })
            f.flush()
            next_at += args.interval
            time.sleep(max(0.0, next_at - time.monotonic()))
    stop.set()
    follower.join()


def cmd_check(args):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from inspect_table import sqlalchemy_uri, warehouse_uri
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog("tributary", uri=sqlalchemy_uri(args.catalog_uri),
                         warehouse=warehouse_uri(args.warehouse))
    table = catalog.load_table(args.table)
    ids = table.scan(selected_fields=("id",)).to_arrow().column("id").to_pylist()
    counts = Counter(ids)
    with open(args.expected) as f:
        expected = set(json.load(f))
    lost = sorted(expected - counts.keys())
    unexpected = sorted(counts.keys() - expected)
    duplicated = sorted(k for k, n in counts.items() if n > 1)
    print(json.dumps({
        "rows": len(ids),
        "distinct_ids": len(counts),
        "expected_ids": len(expected),
        "lost": len(lost), "lost_examples": lost[:10],
        "duplicated_ids": len(duplicated),
        "extra_rows": len(ids) - len(counts),
        "duplicated_examples": duplicated[:10],
        "unexpected": len(unexpected), "unexpected_examples": unexpected[:10],
        "snapshots": len(table.metadata.snapshots),
    }))


def slope_per_hour(points):
    """Least-squares slope of (t seconds, y) points, in y per hour."""
    n = len(points)
    if n < 2:
        return float("nan")
    mt = sum(t for t, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    if var == 0:
        return float("nan")
    return sum((t - mt) * (y - my) for t, y in points) / var * 3600


def percentile(values, q):
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-q * len(s) // 100)) - 1))
    return s[k]


def cmd_report(args):
    with open(args.csv) as f:
        rows = list(csv.DictReader(f))
    with open(args.commits) as f:
        commits = [(float(r["t_s"]), int(r["commit_ms"])) for r in csv.DictReader(f)]
    if args.until is not None:
        rows = [r for r in rows if float(r["t_s"]) <= args.until]
        commits = [c for c in commits if c[0] <= args.until]
    if not rows:
        sys.exit("no samples")
    t = [float(r["t_s"]) for r in rows]
    rss = [int(r["rss_kib"]) / 1024 for r in rows]
    fds = [int(r["fds"]) for r in rows]
    thr = [int(r["threads"]) for r in rows]
    warm = args.warmup
    out = []
    p = out.append
    p(f"samples: {len(rows)} over {t[-1] - t[0]:.0f} s (every ~{args.interval:g} s); "
      f"commits seen: {len(commits)}")
    p("")
    p("| metric | start | end | min | max | slope, whole run | slope after the first "
      f"{warm / 60:g} min |")
    p("|---|---|---|---|---|---|---|")

    def row(name, ys, unit, fmt):
        pts = list(zip(t, ys))
        late = [(a, b) for a, b in pts if a >= t[0] + warm]
        p(f"| {name} | {fmt(ys[0])} | {fmt(ys[-1])} | {fmt(min(ys))} | {fmt(max(ys))} | "
          f"{slope_per_hour(pts):+.2f} {unit}/h | {slope_per_hour(late):+.2f} {unit}/h |")

    row("RSS (MiB)", rss, "MiB", lambda v: f"{v:.1f}")
    row("open fds", fds, "fds", lambda v: f"{v:d}")
    row("threads", thr, "threads", lambda v: f"{v:d}")
    md = [int(r.get("metadata_json_bytes") or 0) / 1024 for r in rows]
    if any(md):
        row("table metadata.json (KiB)", md, "KiB", lambda v: f"{v:.0f}")
    if commits:
        cms = [ms for _, ms in commits]
        pts = commits
        late = [(a, b) for a, b in pts if a >= t[0] + warm]
        p(f"| commit latency (ms) | {cms[0]} | {cms[-1]} | {min(cms)} | {max(cms)} | "
          f"{slope_per_hour(pts):+.2f} ms/h | {slope_per_hour(late):+.2f} ms/h |")
    cpu = [float(r["cpu_s"]) for r in rows]
    wh = [int(r["warehouse_bytes"]) for r in rows]
    whf = [int(r["warehouse_files"]) for r in rows]
    p("")
    p(f"pipeline CPU: {cpu[-1] - cpu[0]:.0f} s over {t[-1] - t[0]:.0f} s "
      f"({100 * (cpu[-1] - cpu[0]) / max(1, t[-1] - t[0]):.1f}% of one core); warehouse at the end: "
      f"{wh[-1] / 2**20:.1f} MiB in {whf[-1]} files")
    p("")
    p("| window | RSS MiB (end) | fds (end) | commits | commit p50 ms | commit p99 ms | "
      "commit max ms | records in |")
    p("|---|---|---|---|---|---|---|---|")
    win = args.window
    start = t[0]
    k = 0
    while start + k * win <= t[-1]:
        lo, hi = start + k * win, start + (k + 1) * win
        in_win = [r for r, tt in zip(rows, t) if lo <= tt < hi]
        c = [ms for tt, ms in commits if lo <= tt < hi]
        if in_win:
            last = in_win[-1]
            first_in = float(in_win[0]["records_in"] or 0)
            prev = [r for r, tt in zip(rows, t) if tt < lo]
            if prev:
                first_in = float(prev[-1]["records_in"] or 0)
            p(f"| {lo / 60:.0f}–{min(hi, t[-1]) / 60:.0f} min | {int(last['rss_kib']) / 1024:.1f} | "
              f"{last['fds']} | {len(c)} | {percentile(c, 50)} | {percentile(c, 99)} | "
              f"{max(c) if c else '-'} | {float(last['records_in'] or 0) - first_in:.0f} |")
        k += 1
    # Stalls: the pipeline read nothing for a minute or more while records
    # waited in Kafka (lag > 0 when the stall began, or the producer still
    # running; the lag metric is only as fresh as the last fetch).
    stalls = []
    k = 0
    while k < len(rows):
        j = k
        while j + 1 < len(rows) and rows[j + 1]["records_in"] == rows[k]["records_in"]:
            j += 1
        if t[j] - t[k] >= 60:
            stalls.append((t[k], t[j], rows[k]["records_in"], rows[j]["lag_records"]))
        k = j + 1
    p("")
    if stalls:
        for a, b, n, lag in stalls:
            p(f"STALL: the pipeline read nothing from t={a:.0f} s to t={b:.0f} s ({b - a:.0f} s) "
              f"at {float(n):.0f} records in (lag metric {lag})")
    else:
        p("stalls: none (the pipeline never went a minute without reading)")
    if args.stalled:
        p(f"the run did not catch up and was restarted to read the rest: {args.stalled}")
    if args.producer:
        with open(args.producer) as f:
            prod = json.load(f)
        p("")
        p(f"produced: {prod['produced']} records ({prod['normal']} distinct ids, "
          f"{prod['duplicate']} duplicates of a recent record, {prod['late']} late by 3 h) "
          f"at {prod.get('achieved_rate', float('nan')):.1f}/s")
    last = rows[-1]
    p(f"pipeline counters at the end: in {last['records_in']}, out {last['records_out']}, "
      f"duplicates dropped {last['dropped_duplicate']}, late dropped {last['dropped_late']}, "
      f"dead-lettered {last['dead_lettered']}, epochs {last['epochs_committed']}")
    if args.check:
        with open(args.check) as f:
            chk = json.load(f)
        p(f"table: {chk['rows']} rows, {chk['distinct_ids']} distinct ids, {chk['snapshots']} snapshots; "
          f"expected ids {chk['expected_ids']}; lost {chk['lost']}, duplicated {chk['duplicated_ids']} "
          f"ids ({chk['extra_rows']} extra rows), not expected {chk['unexpected']}")
        for key in ("lost_examples", "duplicated_examples", "unexpected_examples"):
            if chk[key]:
                p(f"  {key}: {chk[key]}")
    print("\n".join(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sample")
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--metrics", required=True, help="the /metrics URL")
    s.add_argument("--log", required=True, help="the pipeline's stderr (progress lines)")
    s.add_argument("--warehouse", required=True)
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--csv", required=True)
    s.add_argument("--commits", required=True, help="CSV of every epoch's commit latency")
    s.add_argument("--stop-file", required=True)
    s.add_argument("--interval", type=float, default=10)
    c = sub.add_parser("check")
    c.add_argument("--catalog-uri", required=True)
    c.add_argument("--warehouse", required=True)
    c.add_argument("--table", required=True)
    c.add_argument("--expected", required=True)
    r = sub.add_parser("report")
    r.add_argument("--csv", required=True)
    r.add_argument("--commits", required=True)
    r.add_argument("--producer")
    r.add_argument("--check")
    r.add_argument("--interval", type=float, default=10)
    r.add_argument("--stalled", help="what soak.sh did about a run that stopped reading")
    r.add_argument("--until", type=float,
                   help="only the samples and commits up to this many seconds (e.g. before a stall)")
    r.add_argument("--window", type=float, default=600, help="seconds per row of the window table")
    r.add_argument("--warmup", type=float, default=600,
                   help="seconds left out of the second slope (the dedup window filling)")
    args = ap.parse_args()
    {"sample": cmd_sample, "check": cmd_check, "report": cmd_report}[args.cmd](args)


if __name__ == "__main__":
    main()
