//! What the console charts: per connector, the last hour of samples taken
//! once a second from the live [`Metrics`] the pipeline already keeps
//! (input rate, batch processing time, backlog per partition, table rows,
//! watermark), in a ring bounded by [`HISTORY_SAMPLES`], and its latest
//! commits (at most [`RECENT_COMMITS`]), so the pages work without
//! Prometheus. A connector's history outlives its runs (a pause, restart
//! or new config replaces its `Metrics`); it is not kept across worker
//! restarts.

use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tributary_runtime::metrics::{CommitRecord, Metrics, RECENT_COMMITS};

/// Samples kept per connector: an hour at one a second.
pub const HISTORY_SAMPLES: usize = 3600;

/// Partitions charted one by one; the backlog of any further ones is
/// summed into one more series, so a topic of hundreds of partitions costs
/// no more than this.
pub const MAX_PARTITIONS: usize = 32;

/// The series name of the partitions past [`MAX_PARTITIONS`].
const OTHERS: &str = "other partitions";

/// One reading.
#[derive(Clone, Debug)]
struct Sample {
    /// Unix milliseconds.
    at_ms: i64,
    input_rate: f64,
    /// Mean processing time of the batches since the previous sample
    /// (none when no batch ended in between).
    batch_ms: Option<f64>,
    table_rows: Option<u64>,
    /// Unix milliseconds.
    watermark_ms: Option<i64>,
    /// Records not read yet, by index into [`History::partitions`] (`None`:
    /// the partition was not reported then).
    backlog: Vec<Option<u64>>,
}

/// A connector's ring of samples.
#[derive(Debug, Default)]
pub struct History {
    samples: VecDeque<Sample>,
    /// Partition names in the order first seen; the last may be [`OTHERS`].
    partitions: Vec<String>,
    /// Batches and their total time (µs) at the previous sample.
    batches_seen: Option<(u64, u64)>,
    /// The latest commits of every run, oldest first.
    commits: VecDeque<CommitRecord>,
}

impl History {
    /// Takes one sample of `m` now.
    pub fn sample(&mut self, m: &Metrics) {
        self.sample_at(m, unix_ms());
    }

    fn sample_at(&mut self, m: &Metrics, at_ms: i64) {
        let snap = m.snapshot();
        self.absorb_commits(m);
        let (batches, time_us) = (snap.batches, snap.batch_time_us);
        // A new run starts its counters at zero: then the whole count is new.
        let (b0, t0) = match self.batches_seen {
            Some((b, t)) if b <= batches && t <= time_us => (b, t),
            _ => (0, 0),
        };
        self.batches_seen = Some((batches, time_us));
        let batch_ms =
            (batches > b0).then(|| (time_us - t0) as f64 / (batches - b0) as f64 / 1000.0);
        let mut backlog = vec![None; self.partitions.len()];
        for b in m.backlog() {
            let i = self.partition_index(&b.partition);
            if i >= backlog.len() {
                backlog.resize(i + 1, None);
            }
            backlog[i] = Some(backlog[i].unwrap_or(0) + b.records);
        }
        if self.samples.len() >= HISTORY_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(Sample {
            at_ms,
            input_rate: m.input_rate(),
            batch_ms,
            table_rows: snap.table_rows,
            watermark_ms: snap.watermark.map(|w| w.div_euclid(1000)),
            backlog,
        });
    }

    /// Keeps the commits of `m` not kept yet: those later than the last
    /// one kept (by time, then epoch: a new sink may number its epochs from
    /// 1). Every sample does this, and so does a page before it shows them.
    pub fn absorb_commits(&mut self, m: &Metrics) {
        let last = self.commits.back().map(|c| (c.at_unix_ms, c.epoch));
        for c in m.recent_commits() {
            if last.is_none_or(|l| (c.at_unix_ms, c.epoch) > l) {
                if self.commits.len() >= RECENT_COMMITS {
                    self.commits.pop_front();
                }
                self.commits.push_back(c);
            }
        }
    }

    /// The series index of a partition, adding it (or folding it into
    /// [`OTHERS`]) when new.
    fn partition_index(&mut self, partition: &str) -> usize {
        if let Some(i) = self.partitions.iter().position(|p| p == partition) {
            return i;
        }
        if self.partitions.len() < MAX_PARTITIONS {
            self.partitions.push(partition.to_string());
            return self.partitions.len() - 1;
        }
        if self.partitions.len() == MAX_PARTITIONS {
            self.partitions.push(OTHERS.to_string());
        }
        MAX_PARTITIONS
    }

    /// The input rates of the last `n` samples, oldest first (the list's
    /// sparklines).
    pub fn recent_rates(&self, n: usize) -> Vec<f64> {
        let skip = self.samples.len().saturating_sub(n);
        self.samples
            .iter()
            .skip(skip)
            .map(|s| round2(s.input_rate))
            .collect()
    }

    /// The latest commits, oldest first.
    pub fn commits(&self) -> impl Iterator<Item = &CommitRecord> {
        self.commits.iter()
    }

    /// Columns, as the charts take them: `t` in Unix seconds, one array per
    /// metric (`null` where there was no value), and the backlog as one
    /// series per partition.
    pub fn to_json(&self) -> Value {
        let col =
            |f: &dyn Fn(&Sample) -> Value| -> Vec<Value> { self.samples.iter().map(f).collect() };
        let backlog: Vec<Vec<Value>> = (0..self.partitions.len())
            .map(|i| {
                self.samples
                    .iter()
                    .map(|s| json!(s.backlog.get(i).copied().flatten()))
                    .collect()
            })
            .collect();
        json!({
            "t": col(&|s| json!(s.at_ms as f64 / 1000.0)),
            "input_rate": col(&|s| json!(round2(s.input_rate))),
            "batch_ms": col(&|s| json!(s.batch_ms.map(round2))),
            "table_rows": col(&|s| json!(s.table_rows)),
            "watermark_ms": col(&|s| json!(s.watermark_ms)),
            "backlog": {"partitions": self.partitions, "series": backlog},
        })
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

pub(crate) fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::Relaxed;
    use std::time::Duration;
    use tributary_connector::Backlog;

    fn backlog(parts: &[(&str, u64)]) -> Vec<Backlog> {
        parts
            .iter()
            .map(|(p, r)| Backlog {
                partition: p.to_string(),
                records: *r,
            })
            .collect()
    }

    #[test]
    fn keeps_an_hour_and_no_more() {
        let m = Metrics::default();
        let mut h = History::default();
        for i in 0..(HISTORY_SAMPLES as i64 + 25) {
            h.sample_at(&m, i * 1000);
        }
        let j = h.to_json();
        let t = j["t"].as_array().unwrap();
        assert_eq!(t.len(), HISTORY_SAMPLES);
        assert_eq!(t[0], json!(25.0), "the oldest samples went first");
    }

    #[test]
    fn batch_time_is_the_mean_since_the_previous_sample_and_survives_a_new_run() {
        let m = Metrics::default();
        let mut h = History::default();
        h.sample_at(&m, 0);
        m.batch_seconds.observe(Duration::from_millis(4));
        m.batch_seconds.observe(Duration::from_millis(8));
        h.sample_at(&m, 1000);
        h.sample_at(&m, 2000);
        // A restart: new metrics, counters from zero.
        let m2 = Metrics::default();
        m2.batch_seconds.observe(Duration::from_millis(3));
        h.sample_at(&m2, 3000);
        assert_eq!(h.to_json()["batch_ms"], json!([null, 6.0, null, 3.0]));
    }

    #[test]
    fn backlog_has_a_series_per_partition_and_folds_the_rest() {
        let m = Metrics::default();
        let mut h = History::default();
        m.set_backlog(backlog(&[("t/0", 5), ("t/1", 7)]));
        h.sample_at(&m, 0);
        m.set_backlog(backlog(&[("t/1", 2)]));
        m.table_rows.store(40, Relaxed);
        h.sample_at(&m, 1000);
        let j = h.to_json();
        assert_eq!(j["backlog"]["partitions"], json!(["t/0", "t/1"]));
        assert_eq!(j["backlog"]["series"], json!([[5, null], [7, 2]]));
        assert_eq!(j["table_rows"], json!([null, 40]));

        let many: Vec<(String, u64)> = (0..MAX_PARTITIONS + 3)
            .map(|i| (format!("big/{i}"), 1))
            .collect();
        let many: Vec<(&str, u64)> = many.iter().map(|(p, r)| (p.as_str(), *r)).collect();
        let mut h = History::default();
        m.set_backlog(backlog(&many));
        h.sample_at(&m, 0);
        let j = h.to_json();
        let parts = j["backlog"]["partitions"].as_array().unwrap();
        assert_eq!(parts.len(), MAX_PARTITIONS + 1);
        assert_eq!(parts[MAX_PARTITIONS], OTHERS);
        assert_eq!(j["backlog"]["series"][MAX_PARTITIONS], json!([3]));
    }

    #[test]
    fn commits_of_every_run_are_kept_once() {
        let mut h = History::default();
        let m = Metrics::default();
        m.committed(1, Duration::from_millis(1), None);
        h.sample_at(&m, 0);
        m.committed(2, Duration::from_millis(1), None);
        h.sample_at(&m, 1000);
        h.sample_at(&m, 2000);
        std::thread::sleep(Duration::from_millis(2));
        // The next run goes on from epoch 3.
        let m2 = Metrics::default();
        m2.committed(3, Duration::from_millis(1), None);
        h.sample_at(&m2, 3000);
        let epochs: Vec<u64> = h.commits().map(|c| c.epoch).collect();
        assert_eq!(epochs, [1, 2, 3]);
    }
}
