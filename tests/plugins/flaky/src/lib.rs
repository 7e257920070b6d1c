//! A test plugin, `flaky-csv`: the example CSV sink (its source, included)
//! that misbehaves on the epoch `fail_at_epoch`: `"panic"` panics in its
//! `write`, `"error"` fails its `commit` with an error. `"outage"` fails
//! every `write` with a retryable error while the file `outage_file` exists
//! (a warehouse that is down). Without `fail`, or once the epoch is past, it
//! is the CSV sink. For the tests of what a misbehaving plugin costs: a
//! clear message, and no record lost.
//!
//! ```json
//! "sink": {"type": "flaky-csv", "path": "out", "fail": "panic", "fail_at_epoch": 3}
//! ```

#[path = "../../../../examples/plugins/csv-sink/src/sink.rs"]
mod csv;

use arrow_array::RecordBatch;
use serde::Deserialize;
use tributary_plugin::connector::{
    CommitOutcome, CommittedEpoch, ConnectorContext, Delivery, EpochCommit, Error, Result, Sink,
};
use tributary_plugin::{SinkPlugin, export_sink};

#[derive(Debug, Deserialize)]
struct Misbehave {
    #[serde(default)]
    fail: Option<String>,
    #[serde(default = "first")]
    fail_at_epoch: u64,
    #[serde(default)]
    outage_file: Option<std::path::PathBuf>,
}

fn first() -> u64 {
    1
}

struct Flaky {
    csv: csv::CsvSink,
    misbehave: Misbehave,
    /// The epoch being written: the last committed one + 1.
    epoch: u64,
}

impl Flaky {
    fn due(&self, what: &str) -> bool {
        self.misbehave.fail.as_deref() == Some(what) && self.epoch == self.misbehave.fail_at_epoch
    }
}

impl Sink for Flaky {
    fn last_commit(&mut self, pipeline_id: &str) -> Result<Option<CommittedEpoch>> {
        let last = self.csv.last_commit(pipeline_id)?;
        self.epoch = last.as_ref().map_or(0, |c| c.epoch) + 1;
        Ok(last)
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if self.misbehave.fail.as_deref() == Some("outage")
            && let Some(file) = &self.misbehave.outage_file
            && file.exists()
        {
            return Err(Error::external(format!(
                "flaky-csv: the warehouse is unreachable ({} exists)",
                file.display()
            )));
        }
        if self.due("panic") {
            panic!("flaky-csv was told to panic in epoch {}", self.epoch);
        }
        self.csv.write(batch)
    }

    fn delivery(&self) -> Delivery {
        self.csv.delivery()
    }

    fn commit(&mut self, commit: &EpochCommit) -> Result<CommitOutcome> {
        if self.due("error") {
            // Not retryable (a full disk, say): the pipeline stops at once.
            return Err(Error::external(format!(
                "flaky-csv was told to fail the commit of epoch {} (disk full, say)",
                self.epoch
            ))
            .retryable(false));
        }
        let done = self.csv.commit(commit)?;
        self.epoch = commit.epoch + 1;
        Ok(done)
    }
}

impl SinkPlugin for Flaky {
    const NAME: &'static str = "flaky-csv";
    const DESCRIPTION: &'static str = "test plugin: the CSV sink, panicking or failing on request";

    fn open(config: &serde_json::Value, ctx: &ConnectorContext) -> Result<Self> {
        let mut csv_config = config.clone();
        let misbehave: Misbehave = serde_json::from_value(config.clone())
            .map_err(|e| Error::config(format!("flaky-csv: {e}")))?;
        if let Some(fields) = csv_config.as_object_mut() {
            fields.remove("fail");
            fields.remove("fail_at_epoch");
            fields.remove("outage_file");
        }
        Ok(Flaky {
            csv: csv::CsvSink::new(&csv_config, ctx)?,
            misbehave,
            epoch: 1,
        })
    }
}

export_sink!(Flaky);
