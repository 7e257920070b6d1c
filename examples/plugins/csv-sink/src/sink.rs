//! The CSV sink itself: a `Sink` like any built-in connector's. `lib.rs`
//! exports it as a plugin.

use std::io::Write;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use serde::Deserialize;
use tributary_plugin::connector::{
    CommitOutcome, CommittedEpoch, ConnectorContext, Delivery, EpochCommit, Error, Result, Sink,
    parse_config,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CsvConfig {
    /// The folder the files go to (relative: to the pipeline file's folder).
    path: String,
}

/// The sink: the rows of the epoch in progress, as CSV text.
#[derive(Debug)]
pub struct CsvSink {
    dir: PathBuf,
    pipeline: String,
    /// The header of the epoch in progress (its first batch's columns).
    header: Option<Vec<String>>,
    staged: Vec<u8>,
    rows: u64,
    /// Whether this run has removed what a crash left (at its first commit).
    tidied: bool,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::external(format!("csv sink: cannot {what} {}: {e}", path.display()))
}

/// Quotes a field when RFC 4180 needs it.
fn field(out: &mut Vec<u8>, text: &str) {
    if text.contains([',', '"', '\n', '\r']) {
        out.push(b'"');
        out.extend_from_slice(text.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(text.as_bytes());
    }
}

impl CsvSink {
    pub fn new(config: &serde_json::Value, ctx: &ConnectorContext) -> Result<Self> {
        let config: CsvConfig = parse_config("csv sink", config)?;
        let dir = ctx.resolve(&config.path);
        std::fs::create_dir_all(dir.join("_commits")).map_err(|e| io("create", &dir, e))?;
        Ok(CsvSink {
            dir,
            pipeline: ctx.pipeline_id.clone(),
            header: None,
            staged: Vec::new(),
            rows: 0,
            tidied: false,
        })
    }

    fn record_path(&self, pipeline: &str) -> PathBuf {
        self.dir.join("_commits").join(format!("{pipeline}.json"))
    }

    fn epoch_path(&self, epoch: u64) -> PathBuf {
        self.dir.join(format!("{}-{epoch:010}.csv", self.pipeline))
    }

    fn read_record(&self, pipeline: &str) -> Result<Option<EpochCommit>> {
        let path = self.record_path(pipeline);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::data(format!("csv sink: {} is damaged: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("read", &path, e)),
        }
    }

    /// Writes `bytes` to `path` atomically and durably: a temporary file,
    /// fsync, rename, fsync of the folder (without it, a power cut may undo
    /// the rename after the commit was reported).
    fn replace(path: &Path, bytes: &[u8]) -> Result<()> {
        let tmp = path.with_extension("partial");
        let mut file = std::fs::File::create(&tmp).map_err(|e| io("create", &tmp, e))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| io("write", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| io("rename", &tmp, e))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io("sync", dir, e))
    }

    /// Removes the files of epochs after `last` (a crash left them visible
    /// without a commit record).
    fn remove_uncommitted(&self, last: u64) -> Result<()> {
        let prefix = format!("{}-", self.pipeline);
        let entries = std::fs::read_dir(&self.dir).map_err(|e| io("list", &self.dir, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let epoch = name
                .strip_prefix(&prefix)
                .and_then(|rest| rest.strip_suffix(".csv"))
                .and_then(|n| n.parse::<u64>().ok());
            if epoch.is_some_and(|e| e > last) {
                std::fs::remove_file(entry.path()).map_err(|e| io("remove", &entry.path(), e))?;
            }
        }
        Ok(())
    }
}

impl Sink for CsvSink {
    fn last_commit(&mut self, pipeline_id: &str) -> Result<Option<CommittedEpoch>> {
        self.read_record(pipeline_id)
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let names: Vec<String> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        match &self.header {
            None => {
                for (i, name) in names.iter().enumerate() {
                    if i > 0 {
                        self.staged.push(b',');
                    }
                    field(&mut self.staged, name);
                }
                self.staged.push(b'\n');
                self.header = Some(names);
            }
            Some(header) if *header != names => {
                return Err(Error::data(format!(
                    "csv sink: the columns changed within an epoch ({} then {}); one file has one header",
                    header.join(","),
                    names.join(",")
                )));
            }
            Some(_) => {}
        }
        let options = FormatOptions::default().with_null("");
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::data(format!("csv sink: a column cannot be shown as text: {e}")))?;
        for row in 0..batch.num_rows() {
            for (i, f) in formatters.iter().enumerate() {
                if i > 0 {
                    self.staged.push(b',');
                }
                field(&mut self.staged, &f.value(row).to_string());
            }
            self.staged.push(b'\n');
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    fn commit(&mut self, commit: &EpochCommit) -> Result<CommitOutcome> {
        let last = self.read_record(&commit.pipeline_id)?;
        if last.as_ref().is_some_and(|last| last.epoch >= commit.epoch) {
            self.staged.clear();
            self.header = None;
            return Ok(CommitOutcome::AlreadyCommitted);
        }
        // Only the run that commits tidies up after a crash (the plugin ABI
        // has no separate call for it); a reader of the offsets never does.
        if !self.tidied {
            self.remove_uncommitted(last.as_ref().map_or(0, |c| c.epoch))?;
            self.tidied = true;
        }
        if !self.staged.is_empty() {
            Self::replace(&self.epoch_path(commit.epoch), &self.staged)?;
        }
        let record = serde_json::to_vec(commit).map_err(|e| Error::internal(e.to_string()))?;
        Self::replace(&self.record_path(&commit.pipeline_id), &record)?;
        self.staged.clear();
        self.header = None;
        Ok(CommitOutcome::Committed)
    }

    fn delivery(&self) -> Delivery {
        Delivery::ExactlyOnce
    }

    fn describe(&self) -> String {
        format!("CSV files in {}", self.dir.display())
    }
}
