//! The `blackhole` sink: counts the rows it is given and discards them, as
//! Flink's `blackhole` connector does. It is for measuring a pipeline without
//! its destination (the benchmark's per-stage figures) and for dry runs of a
//! source and its transforms.
//!
//! It keeps nothing, so it cannot say what was committed: every run starts
//! from the source's beginning (or `start` position). **Delivery:
//! at-least-once** — every row is counted, and counted again by the next run.
//!
//! ```json
//! {"type": "blackhole"}
//! ```

#![forbid(unsafe_code)]

use serde::Deserialize;
use tributary_connector::{
    CommitOutcome, CommittedEpoch, ConnectorContext, EpochCommit, FromConfig, RecordBatch, Result,
    Sink,
};

/// Config of the `blackhole` sink: no fields.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlackholeConfig {}

/// Rows received, and rows "committed" (received before the last commit).
#[derive(Debug, Default)]
pub struct Blackhole {
    staged: u64,
    committed: u64,
}

impl FromConfig for Blackhole {
    type Config = BlackholeConfig;
    const NAME: &'static str = "blackhole sink";
    fn from_config(_config: BlackholeConfig, _ctx: &ConnectorContext) -> Result<Self> {
        Ok(Blackhole::default())
    }
}

impl Sink for Blackhole {
    fn last_commit(&mut self, _pipeline_id: &str) -> Result<Option<CommittedEpoch>> {
        Ok(None)
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.staged += batch.num_rows() as u64;
        Ok(())
    }

    fn commit(&mut self, _commit: &EpochCommit) -> Result<CommitOutcome> {
        self.committed += std::mem::take(&mut self.staged);
        Ok(CommitOutcome::Committed)
    }

    fn describe(&self) -> String {
        "blackhole (rows are discarded)".into()
    }

    /// At-least-once: nothing is recorded, so a new run counts every row again.
    fn delivery(&self) -> tributary_connector::Delivery {
        tributary_connector::Delivery::AtLeastOnce
    }

    fn row_count(&mut self) -> Option<u64> {
        Some(self.committed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_discards() {
        use std::sync::Arc;
        use tributary_connector::{Offsets, Schema};
        let mut sink = tributary_connector::build_sink::<Blackhole>(
            &serde_json::json!({}),
            &ConnectorContext::default(),
        )
        .unwrap();
        let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(5));
        let batch =
            RecordBatch::try_new_with_options(Arc::new(Schema::empty()), vec![], &options).unwrap();
        sink.write(&batch).unwrap();
        sink.write(&batch).unwrap();
        assert_eq!(
            sink.row_count(),
            Some(0),
            "nothing counts before the commit"
        );
        let commit = EpochCommit {
            pipeline_id: "p".into(),
            epoch: 1,
            offsets: Offsets::default(),
            watermark_micros: None,
        };
        assert_eq!(sink.commit(&commit).unwrap(), CommitOutcome::Committed);
        assert_eq!(sink.row_count(), Some(10));
        assert!(sink.last_commit("p").unwrap().is_none());
        let err = tributary_connector::build_sink::<Blackhole>(
            &serde_json::json!({"path": "x"}),
            &ConnectorContext::default(),
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("unknown field `path`"), "{err}");
    }
}
