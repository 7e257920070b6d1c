#!/usr/bin/env bash
# Commit latency as a table ages: COMMITS commits (default 400) of 100
# generated records each into a fresh Iceberg table on local disk, and the
# p50 / p99 commit time of the first 50 and of the last 50 commits, read from
# the run's per-epoch log (BENCHMARKS.md). Also prints how many manifests the
# table's last snapshot carries (PyIceberg, when TRIBUTARY_PYTHON or python3
# has it).
#
# TABLE_PROPERTIES (a JSON object, optional) are set on the table when the
# sink creates it (the sink's `table_properties`), e.g. a snapshot retention:
#
#   scripts/bench_commits.sh BINARY [LABEL] [COMMITS]
#   TABLE_PROPERTIES='{"history.expire.max-snapshot-age-ms": "60000",
#     "write.metadata.delete-after-commit.enabled": "true"}' \
#     scripts/bench_commits.sh target/release/tributary retained 10000
set -euo pipefail
bin="$1"; label="${2:-$1}"; commits="${3:-400}"
# Only when given: older binaries do not know the field.
props="${TABLE_PROPERTIES:+, \"table_properties\": $TABLE_PROPERTIES}"
py="${TRIBUTARY_PYTHON:-python3}"
d="$(mktemp -d)"
trap 'rm -rf "$d"' EXIT
mkdir -p "$d/wh"
cat > "$d/p.json" <<JSON
{"name": "commits", "source": {"type": "generator", "seed": 1, "records": $((commits * 100)), "rate_per_sec": 0,
  "duplicate_ratio": 0.0, "late_ratio": 0.0},
 "sink": {"type": "iceberg", "catalog_uri": "sqlite:$d/wh/catalog.db", "warehouse": "$d/wh", "table": "demo.b.t"$props},
 "checkpoint": {"location": "$d/chk"},
 "trigger": {"interval_ms": 10, "max_records_per_epoch": 100, "batch_size": 100}}
JSON
if ! TRIBUTARY_LOG="info,tributary_runtime=debug" "$bin" run --available-now --progress-interval 0 \
  "$d/p.json" 2>"$d/log" >/dev/null; then
  echo "$label: the run failed; the end of its log:" >&2
  tail -n 20 "$d/log" >&2
  exit 1
fi
[ -n "${BENCH_LOG:-}" ] && cp "$d/log" "$BENCH_LOG"
manifests="$("$py" - "$d" <<'PY' 2>/dev/null || echo "?"
import sys
from pyiceberg.catalog.sql import SqlCatalog
d = sys.argv[1]
t = SqlCatalog("tributary", uri=f"sqlite:///{d}/wh/catalog.db", warehouse=f"file://{d}/wh").load_table("demo.b.t")
print(len(t.current_snapshot().manifests(t.io)))
PY
)"
python3 - "$d/log" "$label" "$manifests" <<'PY'
import re, statistics, sys
ms = []
for line in open(sys.argv[1]):
    m = re.search(r"committed in ([0-9.]+)(µs|ms|s)\b.*epoch=(\d+)", line)
    if m:
        v, unit = float(m.group(1)), m.group(2)
        ms.append({"µs": v / 1000, "ms": v, "s": v * 1000}[unit])

def p(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]

first, last = ms[:50], ms[-50:]
print(f"{sys.argv[2]}: {len(ms)} commits; first 50: p50 {p(first, .5):.1f} ms, p99 {p(first, .99):.1f} ms; "
      f"last 50: p50 {p(last, .5):.1f} ms, p99 {p(last, .99):.1f} ms; "
      f"manifests in the last snapshot: {sys.argv[3]}")
PY
