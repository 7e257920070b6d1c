//! The `parquet` sink: Parquet files in a local folder, exactly once.
//!
//! Rows are written into staged Parquet files as they arrive; at the end of an
//! epoch the files become visible as `<path>/<pipeline>-e<epoch>-<n>.parquet`
//! and the commit record is written ([`crate::publish`]). A file is rolled
//! past `target_file_size_mb`, and whenever the schema of the rows changes, so
//! each file has one schema and files may differ: read them with DuckDB's
//! `read_parquet('<path>/*.parquet', union_by_name = true)` (or pyarrow's
//! dataset with a unified schema).
//!
//! **Delivery: exactly-once**, for readers of `<path>/*.parquet` once the
//! sink has started after a crash (which removes an uncommitted epoch's files;
//! until then such files are visible). Readers that want no such window read
//! the files listed in the commit records (`<path>/_tributary/*/commit.json`).
//!
//! ```json
//! {"type": "parquet", "path": "out/articles", "compression": "zstd", "target_file_size_mb": 128}
//! ```

use std::fs::File;
use std::path::PathBuf;

use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as Codec, GzipLevel, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::Deserialize;
use tributary_connector::commit_record::io_error;
use tributary_connector::{
    CommitOutcome, CommittedEpoch, ConnectorContext, Delivery, EpochCommit, Error, FromConfig,
    Owner, RecordBatch, Result, Sink,
};

use crate::publish::Folder;

/// Config of the `parquet` sink.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParquetSinkConfig {
    /// The output folder (created when missing; relative to the pipeline file).
    pub path: String,
    /// Column compression: `zstd` (default), `snappy`, `lz4`, `gzip` or `none`.
    #[serde(default)]
    pub compression: Compression,
    /// Roll to a new file past this size, in MiB.
    #[serde(default = "default_target_file_size_mb")]
    pub target_file_size_mb: u64,
}

fn default_target_file_size_mb() -> u64 {
    128
}

/// Parquet column compression.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    Zstd,
    Snappy,
    Lz4,
    Gzip,
    None,
}

impl Compression {
    fn codec(self) -> Codec {
        match self {
            Self::Zstd => Codec::ZSTD(ZstdLevel::default()),
            Self::Snappy => Codec::SNAPPY,
            Self::Lz4 => Codec::LZ4_RAW,
            Self::Gzip => Codec::GZIP(GzipLevel::default()),
            Self::None => Codec::UNCOMPRESSED,
        }
    }
}

/// A staged file being filled.
struct OpenFile {
    writer: ArrowWriter<File>,
    /// A second handle on the file, to sync it once the writer has closed.
    handle: File,
    path: PathBuf,
    schema: SchemaRef,
}

/// The sink.
pub struct ParquetSink {
    folder: Folder,
    props: WriterProperties,
    target_bytes: usize,
    open: Option<OpenFile>,
    /// The epoch's finished files: kept until its commit succeeds, so a
    /// retried commit publishes them again.
    staged: Vec<PathBuf>,
    rows: u64,
    /// A file could not be finished and its rows are gone: nothing of this
    /// run may be committed any more.
    lost: Option<String>,
}

impl std::fmt::Debug for ParquetSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetSink")
            .field("folder", &self.folder)
            .finish_non_exhaustive()
    }
}

/// Touches nothing on disk until the pipeline starts.
impl FromConfig for ParquetSink {
    type Config = ParquetSinkConfig;
    const NAME: &'static str = "parquet sink";
    fn from_config(config: ParquetSinkConfig, ctx: &ConnectorContext) -> Result<Self> {
        ParquetSink::new(config, ctx)
    }
}

impl ParquetSink {
    pub fn new(config: ParquetSinkConfig, ctx: &ConnectorContext) -> Result<Self> {
        if config.path.trim().is_empty() {
            return Err(Error::config(
                "parquet sink: `path` is empty: give the output folder, e.g. \"out/articles\"",
            ));
        }
        if config.target_file_size_mb == 0 {
            return Err(Error::config(
                "parquet sink: `target_file_size_mb` must be at least 1",
            ));
        }
        Ok(Self {
            folder: Folder::new(ctx.resolve(&config.path), &ctx.pipeline_id, "parquet")?,
            props: WriterProperties::builder()
                .set_compression(config.compression.codec())
                .build(),
            target_bytes: (config.target_file_size_mb as usize).saturating_mul(1 << 20),
            open: None,
            staged: Vec::new(),
            rows: 0,
            lost: None,
        })
    }

    fn parquet_error(&self, what: &str, e: parquet::errors::ParquetError) -> Error {
        Error::external(format!(
            "parquet sink {}: {what}: {e}",
            self.folder.dir().display()
        ))
    }

    /// Closes the file being filled, syncs it and stages it for the commit.
    /// A failure here loses the file's rows (the writer is gone), so the sink
    /// refuses to commit from then on and the pipeline stops; its next start
    /// writes the epoch again from the last commit.
    fn finish_file(&mut self) -> Result<()> {
        let Some(open) = self.open.take() else {
            return Ok(());
        };
        let finished = match open.writer.close() {
            Ok(_) => open
                .handle
                .sync_all()
                .map_err(|e| io_error(&format!("sync {}", open.path.display()), e)),
            Err(e) => Err(self.parquet_error("close a file", e)),
        };
        if let Err(e) = finished {
            let _ = std::fs::remove_file(&open.path);
            self.lost = Some(e.to_string());
            return Err(self.check_not_lost().unwrap_err());
        }
        self.staged.push(open.path);
        Ok(())
    }

    fn check_not_lost(&self) -> Result<()> {
        match &self.lost {
            None => Ok(()),
            Some(why) => Err(Error::external(format!(
                "parquet sink {}: a staged file could not be finished ({why}), so the epoch's rows in it \
                 are gone from this run; stopping. The next start writes the epoch again from the last commit",
                self.folder.dir().display()
            ))
            .retryable(false)),
        }
    }

    fn check_pipeline(&self, pipeline_id: &str) -> Result<()> {
        if pipeline_id != self.folder.pipeline() {
            return Err(Error::internal(format!(
                "parquet sink built for pipeline `{}` was asked about `{pipeline_id}`",
                self.folder.pipeline()
            )));
        }
        Ok(())
    }

    fn start_file(&mut self, schema: SchemaRef) -> Result<()> {
        let path = self.folder.staging_file()?;
        let file =
            File::create(&path).map_err(|e| io_error(&format!("create {}", path.display()), e))?;
        let handle = file
            .try_clone()
            .map_err(|e| io_error(&format!("open {}", path.display()), e))?;
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(self.props.clone()))
            .map_err(|e| self.parquet_error("start a file", e))?;
        self.open = Some(OpenFile {
            writer,
            handle,
            path,
            schema,
        });
        Ok(())
    }
}

impl Sink for ParquetSink {
    fn fence(&mut self, pipeline_id: &str, owner: &Owner) -> Result<()> {
        self.check_pipeline(pipeline_id)?;
        self.folder.fence(owner)
    }

    fn recover(&mut self, pipeline_id: &str) -> Result<()> {
        self.check_pipeline(pipeline_id)?;
        self.folder.open().map(|_| ())
    }

    fn last_commit(&mut self, pipeline_id: &str) -> Result<Option<CommittedEpoch>> {
        self.check_pipeline(pipeline_id)?;
        Ok(self.folder.read_last()?.map(|r| r.committed()))
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.check_not_lost()?;
        if batch.num_rows() == 0 {
            return Ok(());
        }
        // One schema per file: a batch with another schema starts a new one.
        if self
            .open
            .as_ref()
            .is_some_and(|o| o.schema != batch.schema())
        {
            self.finish_file()?;
        }
        if self.open.is_none() {
            self.start_file(batch.schema())?;
        }
        let open = self.open.as_mut().expect("a file was just opened");
        let written = open.writer.write(batch);
        let size = open.writer.bytes_written() + open.writer.in_progress_size();
        written.map_err(|e| self.parquet_error("write rows", e))?;
        self.rows += batch.num_rows() as u64;
        if size >= self.target_bytes {
            self.finish_file()?;
        }
        Ok(())
    }

    fn commit(&mut self, commit: &EpochCommit) -> Result<CommitOutcome> {
        self.check_not_lost()?;
        self.finish_file()?;
        let outcome = self.folder.commit(commit, &self.staged, self.rows)?;
        self.staged.clear();
        self.rows = 0;
        Ok(outcome)
    }

    fn describe(&self) -> String {
        format!("parquet files in {}", self.folder.dir().display())
    }

    fn row_count(&mut self) -> Option<u64> {
        self.folder.last().map(|r| r.total_rows)
    }

    fn delivery(&self) -> Delivery {
        Delivery::ExactlyOnce
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use tributary_connector::Offsets;

    use super::*;

    fn batch(ids: &[&str], with_n: bool) -> RecordBatch {
        let mut fields = vec![Field::new("id", DataType::Utf8, false)];
        let mut cols: Vec<arrow_array::ArrayRef> = vec![Arc::new(StringArray::from(ids.to_vec()))];
        if with_n {
            fields.push(Field::new("n", DataType::Int64, true));
            cols.push(Arc::new(Int64Array::from(vec![1; ids.len()])));
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap()
    }

    fn commit(epoch: u64) -> EpochCommit {
        EpochCommit {
            pipeline_id: "p".into(),
            epoch,
            offsets: Offsets::new(serde_json::json!({"position": epoch})),
            watermark_micros: None,
        }
    }

    fn files(dir: &std::path::Path) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn epochs_become_files_with_their_own_schema() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = ConnectorContext {
            pipeline_id: "p".into(),
            base_dir: dir.path().into(),
            state_dir: None,
        };
        let mut sink = tributary_connector::build_sink::<ParquetSink>(
            &serde_json::json!({"path": "out", "compression": "snappy"}),
            &ctx,
        )
        .unwrap();
        assert_eq!(sink.delivery(), Delivery::ExactlyOnce);
        assert!(sink.last_commit("p").unwrap().is_none());
        sink.write(&batch(&["a", "b"], false)).unwrap();
        sink.write(&batch(&["c"], true)).unwrap();
        let out = dir.path().join("out");
        assert!(files(&out).is_empty(), "nothing visible before the commit");
        sink.commit(&commit(1)).unwrap();
        let written = files(&out);
        assert_eq!(written.len(), 2, "a schema change rolls the file");
        let rows: Vec<usize> = written
            .iter()
            .map(|p| {
                let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(p).unwrap())
                    .unwrap()
                    .build()
                    .unwrap();
                reader.map(|b| b.unwrap().num_rows()).sum()
            })
            .collect();
        assert_eq!(rows, [2, 1]);
        assert_eq!(sink.row_count(), Some(3));

        let mut again = tributary_connector::build_sink::<ParquetSink>(
            &serde_json::json!({"path": "out"}),
            &ctx,
        )
        .unwrap();
        assert_eq!(again.last_commit("p").unwrap(), Some(commit(1)));
        again.write(&batch(&["x"], false)).unwrap();
        assert_eq!(
            again.commit(&commit(1)).unwrap(),
            CommitOutcome::AlreadyCommitted
        );
        assert_eq!(files(&out).len(), 2);

        let err = tributary_connector::build_sink::<ParquetSink>(
            &serde_json::json!({"path": "out", "compression": "brotli"}),
            &ctx,
        )
        .err()
        .unwrap();
        assert!(
            err.to_string().contains("unknown variant `brotli`"),
            "{err}"
        );
    }
}
