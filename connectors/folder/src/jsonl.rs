//! The `jsonl` sink: rows as JSON lines, for debugging and for tools that
//! read JSON.
//!
//! - `"path": "-"` prints each epoch's rows on stdout when the epoch commits.
//!   **Delivery: at-least-once**: the commit record is kept in the pipeline's
//!   local checkpoint folder (`<checkpoint>/connectors/jsonl-stdout.commit.json`),
//!   and a crash after printing an epoch but before recording it prints that
//!   epoch again on the next run. With a `postgres://` checkpoint location
//!   there is no local folder for the record: every run prints from the
//!   start of the source.
//! - `"path": "<folder>"` writes one file per epoch,
//!   `<folder>/<pipeline>-e<epoch>-00000.jsonl`, committed as the `parquet`
//!   sink commits ([`crate::publish`]). **Delivery: exactly-once.**
//!
//! Values are written as arrow-json writes them (timestamps as RFC 3339
//! strings); null fields are written as `null`.
//!
//! ```json
//! {"type": "jsonl", "path": "-"}
//! ```

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use arrow_json::writer::{LineDelimited, WriterBuilder};
use serde::Deserialize;
use tributary_connector::commit_record::{CommitRecord, RecordFile, io_error};
use tributary_connector::{
    CommitOutcome, CommittedEpoch, ConnectorContext, Delivery, EpochCommit, Error, FromConfig,
    Owner, RecordBatch, Result, Sink,
};

use crate::publish::Folder;

/// Config of the `jsonl` sink.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonlSinkConfig {
    /// `-` for stdout (at-least-once), or an output folder (relative to the
    /// pipeline file; exactly-once).
    pub path: String,
}

/// Where the lines go.
enum Target {
    Stdout {
        /// The epoch's lines, printed at the commit.
        buffer: Vec<u8>,
        record: Option<RecordFile>,
        last: Option<CommitRecord>,
    },
    Folder {
        folder: Box<Folder>,
        open: Option<(BufWriter<File>, PathBuf)>,
        /// The epoch's finished file, kept until its commit succeeds.
        staged: Vec<PathBuf>,
    },
}

/// The sink.
pub struct JsonlSink {
    target: Target,
    rows: u64,
}

impl std::fmt::Debug for JsonlSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl FromConfig for JsonlSink {
    type Config = JsonlSinkConfig;
    const NAME: &'static str = "jsonl sink";
    fn from_config(config: JsonlSinkConfig, ctx: &ConnectorContext) -> Result<Self> {
        JsonlSink::new(config, ctx)
    }
}

/// Appends `batch` to `out` as JSON lines.
pub fn encode_lines<W: Write>(batch: &RecordBatch, out: W) -> Result<()> {
    let mut writer = WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, LineDelimited>(out);
    writer
        .write(batch)
        .and_then(|()| writer.finish())
        .map_err(|e| Error::data(format!("jsonl sink: cannot write rows as JSON: {e}")))
}

impl JsonlSink {
    pub fn new(config: JsonlSinkConfig, ctx: &ConnectorContext) -> Result<Self> {
        let target = match config.path.trim() {
            "" => {
                return Err(Error::config(
                    "jsonl sink: `path` is empty: give \"-\" for stdout or an output folder",
                ));
            }
            "-" => Target::Stdout {
                // Without a local folder the commits cannot be recorded.
                buffer: Vec::new(),
                record: ctx
                    .state_dir
                    .as_ref()
                    .map(|d| RecordFile::new(d.join("jsonl-stdout.commit.json"))),
                last: None,
            },
            path => Target::Folder {
                folder: Box::new(Folder::new(ctx.resolve(path), &ctx.pipeline_id, "jsonl")?),
                open: None,
                staged: Vec::new(),
            },
        };
        if matches!(target, Target::Stdout { record: None, .. }) {
            tracing::warn!(
                "jsonl sink to stdout: the checkpoint location is not a local folder, so commits are not \
                 recorded and every run prints from the start of the source"
            );
        }
        Ok(Self { target, rows: 0 })
    }
}

impl Sink for JsonlSink {
    /// A folder is fenced ([`Folder::fence`]); stdout is at-least-once and
    /// is fenced by the checkpoint store only.
    fn fence(&mut self, _pipeline_id: &str, owner: &Owner) -> Result<()> {
        match &mut self.target {
            Target::Stdout { .. } => Ok(()),
            Target::Folder { folder, .. } => folder.fence(owner),
        }
    }

    fn recover(&mut self, _pipeline_id: &str) -> Result<()> {
        match &mut self.target {
            Target::Stdout { .. } => Ok(()),
            Target::Folder { folder, .. } => folder.open().map(|_| ()),
        }
    }

    fn last_commit(&mut self, _pipeline_id: &str) -> Result<Option<CommittedEpoch>> {
        match &mut self.target {
            Target::Stdout { record, last, .. } => {
                *last = match record {
                    Some(r) => r.read()?,
                    None => None,
                };
                Ok(last.as_ref().map(CommitRecord::committed))
            }
            Target::Folder { folder, .. } => Ok(folder.read_last()?.map(|r| r.committed())),
        }
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        match &mut self.target {
            Target::Stdout { buffer, .. } => encode_lines(batch, buffer)?,
            Target::Folder { folder, open, .. } => {
                if open.is_none() {
                    let path = folder.staging_file()?;
                    let file = File::create(&path)
                        .map_err(|e| io_error(&format!("create {}", path.display()), e))?;
                    *open = Some((BufWriter::new(file), path));
                }
                let (out, _) = open.as_mut().expect("opened above");
                encode_lines(batch, out)?;
            }
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    fn commit(&mut self, commit: &EpochCommit) -> Result<CommitOutcome> {
        match &mut self.target {
            Target::Stdout {
                buffer,
                record,
                last,
            } => {
                let rows = std::mem::take(&mut self.rows);
                let lines = std::mem::take(buffer);
                if last.as_ref().is_some_and(|l| l.epoch >= commit.epoch) {
                    return Ok(CommitOutcome::AlreadyCommitted);
                }
                let mut stdout = std::io::stdout().lock();
                stdout
                    .write_all(&lines)
                    .and_then(|()| stdout.flush())
                    .map_err(|e| io_error("write to stdout", e).retryable(false))?;
                let total = last.as_ref().map_or(0, |l| l.total_rows) + rows;
                let new = CommitRecord::new(commit, rows, total, Vec::new());
                if let Some(file) = record {
                    file.write(&new)?;
                }
                *last = Some(new);
                Ok(CommitOutcome::Committed)
            }
            Target::Folder {
                folder,
                open,
                staged,
            } => {
                if let Some((out, path)) = open.take() {
                    // A file that cannot be finished has lost rows: stop (not
                    // retryable); the next start writes the epoch again.
                    let finished = out
                        .into_inner()
                        .map_err(|e| e.into_error())
                        .and_then(|file| file.sync_all());
                    if let Err(e) = finished {
                        let _ = std::fs::remove_file(&path);
                        return Err(
                            io_error(&format!("finish {}", path.display()), e).retryable(false)
                        );
                    }
                    staged.push(path);
                }
                let outcome = folder.commit(commit, staged, self.rows)?;
                staged.clear();
                self.rows = 0;
                Ok(outcome)
            }
        }
    }

    fn describe(&self) -> String {
        match &self.target {
            Target::Stdout { .. } => "JSON lines on stdout".into(),
            Target::Folder { folder, .. } => {
                format!("JSON-lines files in {}", folder.dir().display())
            }
        }
    }

    fn row_count(&mut self) -> Option<u64> {
        match &self.target {
            Target::Stdout { last, .. } => last.as_ref().map(|l| l.total_rows),
            Target::Folder { folder, .. } => folder.last().map(|r| r.total_rows),
        }
    }

    fn delivery(&self) -> Delivery {
        match self.target {
            Target::Stdout { .. } => Delivery::AtLeastOnce,
            Target::Folder { .. } => Delivery::ExactlyOnce,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::StringArray;
    use arrow_schema::{DataType, Field, Schema};
    use tributary_connector::Offsets;

    use super::*;

    fn batch(ids: &[&str]) -> RecordBatch {
        let schema = Schema::new(vec![Field::new("id", DataType::Utf8, true)]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![Arc::new(StringArray::from(ids.to_vec()))],
        )
        .unwrap()
    }

    fn commit(epoch: u64) -> EpochCommit {
        EpochCommit {
            pipeline_id: "p".into(),
            epoch,
            offsets: Offsets::new(serde_json::json!({"position": epoch})),
            watermark_micros: None,
        }
    }

    #[test]
    fn a_folder_gets_one_file_per_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = ConnectorContext {
            pipeline_id: "p".into(),
            base_dir: dir.path().into(),
            state_dir: None,
        };
        let mut sink =
            tributary_connector::build_sink::<JsonlSink>(&serde_json::json!({"path": "out"}), &ctx)
                .unwrap();
        assert_eq!(sink.delivery(), Delivery::ExactlyOnce);
        sink.write(&batch(&["a", "b"])).unwrap();
        sink.write(&batch(&["c"])).unwrap();
        sink.commit(&commit(1)).unwrap();
        let text =
            std::fs::read_to_string(dir.path().join("out/p-e00000000000000000001-00000.jsonl"))
                .unwrap();
        assert_eq!(text, "{\"id\":\"a\"}\n{\"id\":\"b\"}\n{\"id\":\"c\"}\n");
        assert_eq!(sink.row_count(), Some(3));
    }

    #[test]
    fn stdout_records_its_commits_in_the_state_folder() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = ConnectorContext {
            pipeline_id: "p".into(),
            base_dir: dir.path().into(),
            state_dir: Some(dir.path().join("state")),
        };
        let mut sink =
            tributary_connector::build_sink::<JsonlSink>(&serde_json::json!({"path": "-"}), &ctx)
                .unwrap();
        assert_eq!(sink.delivery(), Delivery::AtLeastOnce);
        assert!(sink.last_commit("p").unwrap().is_none());
        sink.write(&batch(&["a"])).unwrap();
        assert_eq!(sink.commit(&commit(1)).unwrap(), CommitOutcome::Committed);
        let mut again =
            tributary_connector::build_sink::<JsonlSink>(&serde_json::json!({"path": "-"}), &ctx)
                .unwrap();
        assert_eq!(again.last_commit("p").unwrap(), Some(commit(1)));
        assert_eq!(
            again.commit(&commit(1)).unwrap(),
            CommitOutcome::AlreadyCommitted
        );
    }
}
