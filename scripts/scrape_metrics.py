#!/usr/bin/env python3
"""Scrapes a Tributary `/metrics` endpoint with the Prometheus project's own
text-format parser (prometheus_client), waiting until a condition holds.

    scrape_metrics.py --url http://127.0.0.1:9464/metrics \
        --until tributary_records_out_total=1000 --timeout 60

Prints one JSON object: {"samples": [{"name", "labels", "value"}...],
"families": {name: type}}. Exits 1 when the condition is not met in time
(with the last scrape on stderr), 2 when the text does not parse.
"""
import argparse
import json
import sys
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def scrape(url):
    with urllib.request.urlopen(url, timeout=5) as resp:
        ctype = resp.headers.get("Content-Type", "")
        text = resp.read().decode("utf-8")
    families = list(text_string_to_metric_families(text))
    return ctype, text, families


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--until", action="append", default=[],
                    help="NAME=VALUE: wait until the (unlabelled-sum) sample reaches VALUE")
    ap.add_argument("--timeout", type=float, default=60)
    args = ap.parse_args()
    want = []
    for cond in args.until:
        name, value = cond.split("=", 1)
        want.append((name, float(value)))

    deadline = time.monotonic() + args.timeout
    last = None
    while True:
        try:
            ctype, text, families = scrape(args.url)
        except ValueError as e:
            print(f"the metrics text does not parse: {e}", file=sys.stderr)
            sys.exit(2)
        except OSError as e:
            last = str(e)
            families = None
        if families is not None:
            samples = [s for f in families for s in f.samples]
            totals = {}
            for s in samples:
                totals[s.name] = totals.get(s.name, 0) + s.value
            last = text
            if all(totals.get(n, -1) >= v for n, v in want):
                print(json.dumps({
                    "content_type": ctype,
                    "families": {f.name: f.type for f in families},
                    "samples": [{"name": s.name, "labels": s.labels, "value": s.value}
                                for s in samples],
                }))
                return
        if time.monotonic() > deadline:
            print(f"condition {args.until} not met in {args.timeout} s; last scrape:\n{last}",
                  file=sys.stderr)
            sys.exit(1)
        time.sleep(0.2)


if __name__ == "__main__":
    main()
