#!/usr/bin/env bash
# Commit latency as a table ages: 400 commits (40,000 generated records,
# 100 per epoch) into a fresh Iceberg table on local disk, and the median
# commit time of the first 50 and of the last 50 (BENCHMARKS.md).
#
#   scripts/bench_commits.sh BINARY [LABEL]
set -euo pipefail
bin="$1"; label="${2:-$1}"
d="$(mktemp -d)"
trap 'rm -rf "$d"' EXIT
mkdir -p "$d/wh"
cat > "$d/p.json" <<JSON
{"name": "commits", "source": {"type": "generator", "seed": 1, "records": 40000, "rate_per_sec": 0,
  "duplicate_ratio": 0.0, "late_ratio": 0.0},
 "sink": {"type": "iceberg", "catalog_uri": "sqlite:$d/wh/catalog.db", "warehouse": "$d/wh", "table": "demo.b.t"},
 "checkpoint": {"location": "$d/chk"},
 "trigger": {"interval_ms": 10, "max_records_per_epoch": 100, "batch_size": 100}}
JSON
TRIBUTARY_LOG="info,tributary_runtime=debug" "$bin" run --available-now --progress-interval 0 "$d/p.json" \
  2>"$d/log" >/dev/null
python3 - "$d/log" "$label" <<'PY'
import re, statistics, sys
ms = []
for line in open(sys.argv[1]):
    m = re.search(r"committed in ([0-9.]+)(µs|ms|s) .*epoch=(\d+)", line)
    if m:
        v, unit = float(m.group(1)), m.group(2)
        ms.append({"µs": v / 1000, "ms": v, "s": v * 1000}[unit])
print(f"{sys.argv[2]}: {len(ms)} commits, median of the first 50 "
      f"{statistics.median(ms[:50]):.1f} ms, of the last 50 {statistics.median(ms[-50:]):.1f} ms")
PY
