//! Counters a running pipeline updates and the one-line progress report built
//! from them.
//!
//! The pipeline thread only bumps atomics; a reporter thread reads them every
//! few seconds and prints a line such as
//!
//! ```text
//! articles_raw: in 120000 (24010/s) out 98000 late 1200 dup 10800 dead-letter 0 | epoch 12 committed 1.2s ago in 35 ms, table 98000 rows | watermark 2026-01-02T09:10:00Z
//! ```

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
    pub epochs_committed: AtomicU64,
    pub last_epoch: AtomicU64,
    last_commit_unix_ms: AtomicI64,
    pub last_commit_latency_us: AtomicU64,
    pub table_rows: AtomicI64,
    watermark: AtomicI64,
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
            epochs_committed: AtomicU64::new(0),
            last_epoch: AtomicU64::new(0),
            last_commit_unix_ms: AtomicI64::new(0),
            last_commit_latency_us: AtomicU64::new(0),
            table_rows: AtomicI64::new(-1),
            watermark: AtomicI64::new(NO_WATERMARK),
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
        self.epochs_committed.fetch_add(1, Relaxed);
        self.last_epoch.store(epoch, Relaxed);
        self.last_commit_unix_ms.store(unix_ms(), Relaxed);
        self.last_commit_latency_us
            .store(latency.as_micros() as u64, Relaxed);
        if let Some(rows) = table_rows {
            self.table_rows.store(rows as i64, Relaxed);
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
            last_epoch: self.last_epoch.load(Relaxed),
            epochs_committed: self.epochs_committed.load(Relaxed),
            last_commit_unix_ms: self.last_commit_unix_ms.load(Relaxed),
            last_commit_latency_us: self.last_commit_latency_us.load(Relaxed),
            table_rows: Some(self.table_rows.load(Relaxed))
                .filter(|r| *r >= 0)
                .map(|r| r as u64),
            watermark: self.watermark(),
        }
    }
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
    pub last_epoch: u64,
    pub epochs_committed: u64,
    pub last_commit_unix_ms: i64,
    pub last_commit_latency_us: u64,
    pub table_rows: Option<u64>,
    pub watermark: Option<i64>,
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
        line.push_str(&format!(
            " out {} late {} dup {}",
            self.records_out, self.dropped_late, self.dropped_duplicate
        ));
        if self.filtered > 0 {
            line.push_str(&format!(" filtered {}", self.filtered));
        }
        line.push_str(&format!(" dead-letter {}", self.dead_lettered));
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

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Microseconds since the Unix epoch as an RFC 3339 UTC time.
pub fn format_micros(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| format!("{micros}µs"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_line_reports_counts_rate_and_watermark() {
        let m = Metrics::default();
        let before = m.snapshot();
        m.records_in.fetch_add(500, Relaxed);
        m.dropped_late.fetch_add(3, Relaxed);
        m.set_watermark(Some(1_767_225_600_000_000)); // 2026-01-01T00:00:00Z
        m.committed(4, Duration::from_millis(12), Some(480));
        std::thread::sleep(Duration::from_millis(5));
        let line = m.snapshot().progress_line("p", Some(&before));
        assert!(line.starts_with("p: in 500 ("), "{line}");
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
}
