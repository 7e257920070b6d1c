//! Counters a running pipeline updates, the one-line progress report built
//! from them, and their Prometheus text rendering (served by `--metrics-listen`,
//! see `crate::metrics_http`).
//!
//! The pipeline thread only bumps atomics; a reporter thread reads them every
//! few seconds and prints a line such as
//!
//! ```text
//! articles_raw: in 120000 (24010/s) batch 6.1 ms lag 5200 out 98000 late 1200 dup 10800 dead-letter 0 | epoch 12 committed 1.2s ago in 35 ms, table 98000 rows | watermark 2026-01-02T09:10:00Z
//! ```

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tributary_connector::Backlog;
pub use tributary_wasm_host::format_micros;

const NO_WATERMARK: i64 = i64::MIN;

/// Live counters of one pipeline. Cheap to update from the hot path.
#[derive(Debug)]
pub struct Metrics {
    pub records_in: AtomicU64,
    pub records_out: AtomicU64,
    pub dropped_late: AtomicU64,
    pub dropped_duplicate: AtomicU64,
    pub filtered: AtomicU64,
    pub dead_lettered: AtomicU64,
    /// Records a transform failed on alone, found by splitting their batch.
    pub isolated: AtomicU64,
    pub epochs_committed: AtomicU64,
    pub last_epoch: AtomicU64,
    last_commit_unix_ms: AtomicI64,
    pub last_commit_latency_us: AtomicU64,
    pub table_rows: AtomicI64,
    watermark: AtomicI64,
    /// Bytes of transform state in the last checkpoint (a changelog or a
    /// full snapshot).
    pub checkpoint_bytes: AtomicU64,
    /// Checkpoints of this run that were full snapshots.
    pub full_snapshots: AtomicU64,
    /// Keys in the transforms' state stores at the last checkpoint.
    pub state_keys: AtomicU64,
    /// Time from a batch's arrival to its rows handed to the sink.
    pub batch_seconds: Histogram,
    /// Time to end an epoch: checkpoint, dead letters, sink commit.
    pub commit_seconds: Histogram,
    /// Every commit latency of this run (µs, the latest [`LATENCY_SAMPLES`]),
    /// for exact percentiles in the run summary and the benchmark.
    commit_latencies: Mutex<Vec<u64>>,
    /// The latest commits (at most [`RECENT_COMMITS`]), for the console's
    /// commit timeline.
    recent_commits: Mutex<std::collections::VecDeque<CommitRecord>>,
    /// `records_out` at the previous commit: what a commit wrote is the
    /// difference.
    out_at_last_commit: AtomicU64,
    /// Records not yet read, per source partition (Kafka consumer lag).
    backlog: Mutex<Vec<Backlog>>,
    /// Input records per second over the last few seconds, kept by
    /// [`Metrics::sample_rate`] (f64 bits).
    input_rate: AtomicU64,
    rate_window: Mutex<std::collections::VecDeque<(Instant, u64)>>,
}

/// How many commit latencies a run keeps for its percentiles.
pub const LATENCY_SAMPLES: usize = 100_000;

/// How many commits [`Metrics::recent_commits`] keeps.
pub const RECENT_COMMITS: usize = 500;

/// One epoch's commit, as the console's timeline shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitRecord {
    pub epoch: u64,
    /// When it was committed (Unix milliseconds).
    pub at_unix_ms: i64,
    /// Time to end the epoch: checkpoint, dead letters, sink commit.
    pub latency_us: u64,
    /// Records the epoch wrote to the sink.
    pub rows: u64,
    /// Rows in the table after it, when the sink says.
    pub table_rows: Option<u64>,
}

/// A Prometheus-style histogram with fixed upper bounds, in seconds.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum_us: AtomicU64,
    count: AtomicU64,
}

/// Bucket bounds for latencies from a millisecond to a minute.
const LATENCY_BOUNDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_us: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = self.bounds.iter().position(|b| secs <= *b) {
            self.counts[i].fetch_add(1, Relaxed);
        }
        self.sum_us.fetch_add(d.as_micros() as u64, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    /// The samples of one pipeline (the family's HELP and TYPE lines are
    /// written once, by the caller).
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            cumulative += count.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let sum = self.sum_us.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            records_in: AtomicU64::new(0),
            records_out: AtomicU64::new(0),
            dropped_late: AtomicU64::new(0),
            dropped_duplicate: AtomicU64::new(0),
            filtered: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            isolated: AtomicU64::new(0),
            epochs_committed: AtomicU64::new(0),
            last_epoch: AtomicU64::new(0),
            last_commit_unix_ms: AtomicI64::new(0),
            last_commit_latency_us: AtomicU64::new(0),
            table_rows: AtomicI64::new(-1),
            watermark: AtomicI64::new(NO_WATERMARK),
            checkpoint_bytes: AtomicU64::new(0),
            full_snapshots: AtomicU64::new(0),
            state_keys: AtomicU64::new(0),
            batch_seconds: Histogram::new(LATENCY_BOUNDS),
            commit_seconds: Histogram::new(LATENCY_BOUNDS),
            commit_latencies: Mutex::new(Vec::new()),
            recent_commits: Mutex::new(std::collections::VecDeque::new()),
            out_at_last_commit: AtomicU64::new(0),
            backlog: Mutex::new(Vec::new()),
            input_rate: AtomicU64::new(0f64.to_bits()),
            rate_window: Mutex::new(std::collections::VecDeque::new()),
        }
    }
}

impl Metrics {
    pub fn set_watermark(&self, watermark: Option<i64>) {
        self.watermark
            .store(watermark.unwrap_or(NO_WATERMARK), Relaxed);
    }

    pub fn watermark(&self) -> Option<i64> {
        Some(self.watermark.load(Relaxed)).filter(|w| *w != NO_WATERMARK)
    }

    pub fn committed(&self, epoch: u64, latency: Duration, table_rows: Option<u64>) {
        let at_unix_ms = unix_ms();
        let out = self.records_out.load(Relaxed);
        let rows = out.saturating_sub(self.out_at_last_commit.swap(out, Relaxed));
        {
            let mut recent = self
                .recent_commits
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if recent.len() >= RECENT_COMMITS {
                recent.pop_front();
            }
            recent.push_back(CommitRecord {
                epoch,
                at_unix_ms,
                latency_us: latency.as_micros() as u64,
                rows,
                table_rows,
            });
        }
        self.epochs_committed.fetch_add(1, Relaxed);
        self.last_epoch.store(epoch, Relaxed);
        self.last_commit_unix_ms.store(at_unix_ms, Relaxed);
        self.last_commit_latency_us
            .store(latency.as_micros() as u64, Relaxed);
        if let Some(rows) = table_rows {
            self.table_rows.store(rows as i64, Relaxed);
        }
        self.commit_seconds.observe(latency);
        let mut all = self
            .commit_latencies
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if all.len() >= LATENCY_SAMPLES {
            all.remove(0);
        }
        all.push(latency.as_micros() as u64);
    }

    /// The latest commits of this run, oldest first (at most
    /// [`RECENT_COMMITS`]).
    pub fn recent_commits(&self) -> Vec<CommitRecord> {
        self.recent_commits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect()
    }

    /// The input rate over the last ten seconds (see [`Metrics::sample_rate`]).
    pub fn input_rate(&self) -> f64 {
        f64::from_bits(self.input_rate.load(Relaxed))
    }

    /// The median and 99th percentile of this run's commit latencies.
    pub fn commit_percentiles(&self) -> Option<(Duration, Duration)> {
        let mut all = self
            .commit_latencies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if all.is_empty() {
            return None;
        }
        all.sort_unstable();
        let at = |q: f64| {
            let i = ((all.len() as f64 * q).ceil() as usize).clamp(1, all.len()) - 1;
            Duration::from_micros(all[i])
        };
        Some((at(0.5), at(0.99)))
    }

    pub fn set_backlog(&self, backlog: Vec<Backlog>) {
        *self.backlog.lock().unwrap_or_else(|e| e.into_inner()) = backlog;
    }

    pub fn backlog(&self) -> Vec<Backlog> {
        self.backlog
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Records the input count now and updates the input rate over the last
    /// ten seconds; called about once a second by the metrics endpoint.
    pub fn sample_rate(&self) {
        let now = Instant::now();
        let count = self.records_in.load(Relaxed);
        let mut window = self.rate_window.lock().unwrap_or_else(|e| e.into_inner());
        window.push_back((now, count));
        while window.len() > 2
            && window
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) > Duration::from_secs(10))
        {
            window.pop_front();
        }
        if let (Some((t0, c0)), Some((t1, c1))) = (window.front(), window.back()) {
            let secs = t1.duration_since(*t0).as_secs_f64();
            if secs > 0.0 {
                let rate = c1.saturating_sub(*c0) as f64 / secs;
                self.input_rate.store(rate.to_bits(), Relaxed);
            }
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            at: Instant::now(),
            records_in: self.records_in.load(Relaxed),
            records_out: self.records_out.load(Relaxed),
            dropped_late: self.dropped_late.load(Relaxed),
            dropped_duplicate: self.dropped_duplicate.load(Relaxed),
            filtered: self.filtered.load(Relaxed),
            dead_lettered: self.dead_lettered.load(Relaxed),
            isolated: self.isolated.load(Relaxed),
            last_epoch: self.last_epoch.load(Relaxed),
            epochs_committed: self.epochs_committed.load(Relaxed),
            last_commit_unix_ms: self.last_commit_unix_ms.load(Relaxed),
            last_commit_latency_us: self.last_commit_latency_us.load(Relaxed),
            table_rows: Some(self.table_rows.load(Relaxed))
                .filter(|r| *r >= 0)
                .map(|r| r as u64),
            watermark: self.watermark(),
            batches: self.batch_seconds.count(),
            batch_time_us: self.batch_seconds.sum_us.load(Relaxed),
            lag: {
                let backlog = self.backlog();
                (!backlog.is_empty()).then(|| backlog.iter().map(|b| b.records).sum())
            },
        }
    }

    /// Every metric of this pipeline in the Prometheus text format; see
    /// [`render_prometheus`].
    pub fn render_prometheus(&self, pipeline: &str) -> String {
        render_prometheus(&[(pipeline, self)])
    }
}

/// A gauge or counter family: name, type, help, and its value for one
/// pipeline (`None`: no sample).
type Family = (
    &'static str,
    &'static str,
    &'static str,
    fn(&Metrics, &Snapshot) -> Option<f64>,
);

/// A histogram family: name, help, and the pipeline's histogram.
type HistogramFamily = (&'static str, &'static str, fn(&Metrics) -> &Histogram);

const FAMILIES: &[Family] = &[
    (
        "tributary_records_in_total",
        "counter",
        "Records read from the source (including bad ones).",
        |_, s| Some(s.records_in as f64),
    ),
    (
        "tributary_input_records_per_second",
        "gauge",
        "Records read from the source per second, over the last 10 s.",
        |m, _| Some(m.input_rate()),
    ),
    (
        "tributary_records_out_total",
        "counter",
        "Records written to the sink.",
        |_, s| Some(s.records_out as f64),
    ),
    (
        "tributary_records_dropped_late_total",
        "counter",
        "Records dropped because their event time was at or before the watermark.",
        |_, s| Some(s.dropped_late as f64),
    ),
    (
        "tributary_records_dropped_duplicate_total",
        "counter",
        "Records dropped as duplicates by dedup.",
        |_, s| Some(s.dropped_duplicate as f64),
    ),
    (
        "tributary_records_filtered_total",
        "counter",
        "Records a transform chose to drop.",
        |_, s| Some(s.filtered as f64),
    ),
    (
        "tributary_records_dead_lettered_total",
        "counter",
        "Records sent to the dead-letter output.",
        |_, s| Some(s.dead_lettered as f64),
    ),
    (
        "tributary_records_isolated_total",
        "counter",
        "Records a transform failed on alone, found by splitting their batch (also dead-lettered).",
        |_, s| Some(s.isolated as f64),
    ),
    (
        "tributary_epochs_committed_total",
        "counter",
        "Epochs committed to the sink by this run.",
        |_, s| Some(s.epochs_committed as f64),
    ),
    (
        "tributary_last_committed_epoch",
        "gauge",
        "The last epoch committed to the sink by this run.",
        |_, s| Some(s.last_epoch as f64),
    ),
    (
        "tributary_table_rows",
        "gauge",
        "Rows in the sink's table after the last commit.",
        |_, s| s.table_rows.map(|r| r as f64),
    ),
    (
        "tributary_checkpoint_bytes",
        "gauge",
        "Bytes of transform state in the last checkpoint: a changelog of what its epoch changed, or a full snapshot.",
        |m, _| Some(m.checkpoint_bytes.load(Relaxed) as f64),
    ),
    (
        "tributary_checkpoint_full_snapshots_total",
        "counter",
        "Checkpoints of this run that were full snapshots of transform state (the others are changelogs).",
        |m, _| Some(m.full_snapshots.load(Relaxed) as f64),
    ),
    (
        "tributary_state_keys",
        "gauge",
        "Keys held in the transforms' state stores (dedup: ids whose window is open) at the last checkpoint.",
        |m, _| Some(m.state_keys.load(Relaxed) as f64),
    ),
    (
        "tributary_watermark_seconds",
        "gauge",
        "The event-time watermark, as Unix seconds.",
        |_, s| s.watermark.map(|w| w as f64 / 1e6),
    ),
];

/// Every metric of every given pipeline in the Prometheus text exposition
/// format (version 0.0.4), each family once with a sample per pipeline
/// (label `pipeline`). Written here rather than with a client library
/// because the values already live in these atomics (the progress line reads
/// the same ones) and the format is a few lines of text per metric.
pub fn render_prometheus(pipelines: &[(&str, &Metrics)]) -> String {
    let rows: Vec<(String, &Metrics, Snapshot)> = pipelines
        .iter()
        .map(|(name, m)| {
            (
                format!("pipeline=\"{}\"", escape_label(name)),
                *m,
                m.snapshot(),
            )
        })
        .collect();
    let mut out = String::new();
    for (name, kind, help, value) in FAMILIES {
        let samples: Vec<(&str, f64)> = rows
            .iter()
            .filter_map(|(labels, m, snap)| value(m, snap).map(|v| (labels.as_str(), v)))
            .collect();
        if samples.is_empty() {
            continue;
        }
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    }
    let histograms: [HistogramFamily; 2] = [
        (
            "tributary_batch_processing_seconds",
            "Time from a batch's arrival to its rows handed to the sink.",
            |m| &m.batch_seconds,
        ),
        (
            "tributary_commit_latency_seconds",
            "Time to end an epoch: checkpoint, dead letters and sink commit.",
            |m| &m.commit_seconds,
        ),
    ];
    for (name, help, pick) in histograms {
        if rows.is_empty() {
            break;
        }
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (labels, m, _) in &rows {
            pick(m).render(&mut out, name, labels);
        }
    }
    let name = "tributary_source_lag_records";
    let mut header = false;
    for (labels, m, _) in &rows {
        for b in m.backlog() {
            if !header {
                let _ = writeln!(
                    out,
                    "# HELP {name} Records in the source not read yet (Kafka consumer lag), per partition.\n# TYPE {name} gauge"
                );
                header = true;
            }
            let _ = writeln!(
                out,
                "{name}{{{labels},partition=\"{}\"}} {}",
                escape_label(&b.partition),
                b.records
            );
        }
    }
    out
}

/// A reading of [`Metrics`] at one instant.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub at: Instant,
    pub records_in: u64,
    pub records_out: u64,
    pub dropped_late: u64,
    pub dropped_duplicate: u64,
    pub filtered: u64,
    pub dead_lettered: u64,
    pub isolated: u64,
    pub last_epoch: u64,
    pub epochs_committed: u64,
    pub last_commit_unix_ms: i64,
    pub last_commit_latency_us: u64,
    pub table_rows: Option<u64>,
    pub watermark: Option<i64>,
    /// Batches processed, and their processing time in all (µs).
    pub batches: u64,
    pub batch_time_us: u64,
    /// Records in the source not read yet (all partitions), when it says.
    pub lag: Option<u64>,
}

impl Snapshot {
    /// The progress line; `previous` gives the input rate.
    pub fn progress_line(&self, pipeline: &str, previous: Option<&Snapshot>) -> String {
        let mut line = format!("{pipeline}: in {}", self.records_in);
        if let Some(prev) = previous {
            let secs = self.at.duration_since(prev.at).as_secs_f64();
            if secs > 0.0 {
                let rate = (self.records_in - prev.records_in) as f64 / secs;
                line.push_str(&format!(" ({rate:.0}/s)"));
            }
        }
        if let Some(prev) = previous {
            let batches = self.batches - prev.batches;
            if batches > 0 {
                let ms = (self.batch_time_us - prev.batch_time_us) as f64 / batches as f64 / 1e3;
                line.push_str(&format!(" batch {ms:.1} ms"));
            }
        }
        if let Some(lag) = self.lag {
            line.push_str(&format!(" lag {lag}"));
        }
        line.push_str(&format!(
            " out {} late {} dup {}",
            self.records_out, self.dropped_late, self.dropped_duplicate
        ));
        if self.filtered > 0 {
            line.push_str(&format!(" filtered {}", self.filtered));
        }
        line.push_str(&format!(" dead-letter {}", self.dead_lettered));
        if self.isolated > 0 {
            line.push_str(&format!(" (isolated {})", self.isolated));
        }
        if self.last_commit_unix_ms > 0 {
            let ago = (unix_ms() - self.last_commit_unix_ms).max(0) as f64 / 1000.0;
            line.push_str(&format!(
                " | epoch {} committed {ago:.1}s ago in {} ms",
                self.last_epoch,
                self.last_commit_latency_us / 1000
            ));
            if let Some(rows) = self.table_rows {
                line.push_str(&format!(", table {rows} rows"));
            }
        } else {
            line.push_str(" | no commit yet");
        }
        match self.watermark {
            Some(w) => line.push_str(&format!(" | watermark {}", format_micros(w))),
            None => line.push_str(" | no watermark yet"),
        }
        line
    }
}

/// A Prometheus label value: backslashes, quotes and newlines escaped.
pub fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_line_reports_counts_rate_and_watermark() {
        let m = Metrics::default();
        let before = m.snapshot();
        m.records_in.fetch_add(500, Relaxed);
        m.batch_seconds.observe(Duration::from_millis(4));
        m.batch_seconds.observe(Duration::from_millis(6));
        m.set_backlog(vec![
            Backlog {
                partition: "t/0".into(),
                records: 70,
            },
            Backlog {
                partition: "t/1".into(),
                records: 30,
            },
        ]);
        m.dropped_late.fetch_add(3, Relaxed);
        m.set_watermark(Some(1_767_225_600_000_000)); // 2026-01-01T00:00:00Z
        m.committed(4, Duration::from_millis(12), Some(480));
        std::thread::sleep(Duration::from_millis(5));
        let line = m.snapshot().progress_line("p", Some(&before));
        assert!(line.starts_with("p: in 500 ("), "{line}");
        assert!(line.contains("/s) batch 5.0 ms lag 100 out 0"), "{line}");
        assert!(line.contains("late 3"), "{line}");
        assert!(line.contains("epoch 4 committed"), "{line}");
        assert!(line.contains("in 12 ms, table 480 rows"), "{line}");
        assert!(line.ends_with("watermark 2026-01-01T00:00:00Z"), "{line}");
        assert!(
            Metrics::default()
                .snapshot()
                .progress_line("p", None)
                .contains("no commit yet")
        );
    }

    #[test]
    fn prometheus_text_has_every_metric_with_labels() {
        let m = Metrics::default();
        m.records_in.fetch_add(7, Relaxed);
        m.committed(1, Duration::from_millis(3), Some(5));
        m.committed(2, Duration::from_millis(40), Some(9));
        m.batch_seconds.observe(Duration::from_millis(2));
        m.set_backlog(vec![Backlog {
            partition: "articles/0".into(),
            records: 12,
        }]);
        let text = m.render_prometheus("a\"b");
        assert!(
            text.contains("tributary_records_in_total{pipeline=\"a\\\"b\"} 7"),
            "{text}"
        );
        assert!(
            text.contains("tributary_table_rows{pipeline=\"a\\\"b\"} 9"),
            "{text}"
        );
        assert!(
            text.contains(
                "tributary_source_lag_records{pipeline=\"a\\\"b\",partition=\"articles/0\"} 12"
            ),
            "{text}"
        );
        // Cumulative buckets: 3 ms is in le=0.005 and above; 40 ms from le=0.05.
        assert!(
            text.contains(
                "tributary_commit_latency_seconds_bucket{pipeline=\"a\\\"b\",le=\"0.005\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "tributary_commit_latency_seconds_bucket{pipeline=\"a\\\"b\",le=\"0.05\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("tributary_commit_latency_seconds_count{pipeline=\"a\\\"b\"} 2"),
            "{text}"
        );
        let (p50, p99) = m.commit_percentiles().unwrap();
        assert_eq!(
            (p50, p99),
            (Duration::from_millis(3), Duration::from_millis(40))
        );
    }

    /// Each commit's rows are what was written since the one before, and
    /// the log keeps only the latest [`RECENT_COMMITS`].
    #[test]
    fn recent_commits_are_bounded_and_count_each_epochs_rows() {
        let m = Metrics::default();
        m.records_out.fetch_add(30, Relaxed);
        m.committed(1, Duration::from_millis(2), Some(30));
        m.records_out.fetch_add(12, Relaxed);
        m.committed(2, Duration::from_millis(5), None);
        let log = m.recent_commits();
        assert_eq!(
            log.iter()
                .map(|c| (c.epoch, c.rows, c.latency_us, c.table_rows))
                .collect::<Vec<_>>(),
            [(1, 30, 2000, Some(30)), (2, 12, 5000, None)]
        );
        for epoch in 3..(RECENT_COMMITS as u64 + 10) {
            m.committed(epoch, Duration::from_millis(1), None);
        }
        let log = m.recent_commits();
        assert_eq!(log.len(), RECENT_COMMITS);
        assert_eq!(log.last().unwrap().epoch, RECENT_COMMITS as u64 + 9);
    }
}
