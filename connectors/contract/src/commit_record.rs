//! A commit record in a local file, for sinks whose destination cannot hold
//! one next to the data (a folder of files, a Kafka topic, stdout).
//!
//! The file is replaced atomically: the new record is written to a temporary
//! file beside it, synced, renamed over the old one, and the folder is synced,
//! so after a crash the file holds either the previous record or the new one,
//! never a torn mix. That rename is the commit point of such a sink.
//!
//! ```
//! use tributary_connector::commit_record::{CommitRecord, RecordFile};
//! use tributary_connector::{EpochCommit, Offsets};
//! let dir = std::env::temp_dir().join(format!("trib-doc-{}", std::process::id()));
//! let file = RecordFile::new(dir.join("commit.json"));
//! assert!(file.read().unwrap().is_none());
//! let commit = EpochCommit { pipeline_id: "p".into(), epoch: 1, offsets: Offsets::default(), watermark_micros: None };
//! file.write(&CommitRecord::new(&commit, 10, 10, vec![])).unwrap();
//! assert_eq!(file.read().unwrap().unwrap().epoch, 1);
//! # std::fs::remove_dir_all(dir).unwrap();
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{CommittedEpoch, EpochCommit, Error, Offsets, Owner, Result};

/// What a sink committed last for one pipeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommitRecord {
    pub pipeline_id: String,
    pub epoch: u64,
    pub offsets: Offsets,
    pub watermark_micros: Option<i64>,
    /// Rows this epoch delivered.
    #[serde(default)]
    pub rows: u64,
    /// Rows all committed epochs of this pipeline delivered.
    #[serde(default)]
    pub total_rows: u64,
    /// Files this epoch made visible, by name (folder sinks).
    #[serde(default)]
    pub files: Vec<String>,
    /// The run that committed it, when the sink was fenced
    /// ([`crate::Sink::fence`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
}

impl CommitRecord {
    pub fn new(commit: &EpochCommit, rows: u64, total_rows: u64, files: Vec<String>) -> Self {
        Self {
            pipeline_id: commit.pipeline_id.clone(),
            epoch: commit.epoch,
            offsets: commit.offsets.clone(),
            watermark_micros: commit.watermark_micros,
            rows,
            total_rows,
            files,
            owner: None,
        }
    }

    /// The record, naming the run that commits it.
    pub fn with_owner(mut self, owner: Option<Owner>) -> Self {
        self.owner = owner;
        self
    }

    /// The record as the runtime resumes from it.
    pub fn committed(&self) -> CommittedEpoch {
        EpochCommit {
            pipeline_id: self.pipeline_id.clone(),
            epoch: self.epoch,
            offsets: self.offsets.clone(),
            watermark_micros: self.watermark_micros,
        }
    }
}

/// One commit record file.
#[derive(Clone, Debug)]
pub struct RecordFile {
    path: PathBuf,
}

impl RecordFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The record, or `None` when nothing was committed yet.
    pub fn read(&self) -> Result<Option<CommitRecord>> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(io_error(&format!("read {}", self.path.display()), e));
            }
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::data(format!(
                "the commit record {} is damaged ({e}); restore it from a backup, or remove it \
                 together with the data it describes to start over",
                self.path.display()
            ))
        })
    }

    /// Replaces the record atomically and durably.
    pub fn write(&self, record: &CommitRecord) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(record)
            .map_err(|e| Error::internal(format!("encode a commit record: {e}")))?;
        write_atomically(&self.path, &bytes)
    }
}

/// Writes `bytes` to `path` so that a crash leaves the old content or the new,
/// never a mix: temporary file, fsync, rename, fsync of the folder.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io_error(&format!("create {}", dir.display()), e))?;
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = dir.join(name);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        sync_dir(dir)
    };
    write().map_err(|e| io_error(&format!("write {}", path.display()), e))
}

/// Makes renames and removals in `dir` durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// A local file-system error: retryable, as a full disk or a busy NFS
/// mount may recover.
pub fn io_error(what: &str, e: std::io::Error) -> Error {
    Error::external(format!("cannot {what}: {e}")).with_source(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_replaces_the_previous_one() {
        let dir = std::env::temp_dir().join(format!("trib-rec-{}", std::process::id()));
        let file = RecordFile::new(dir.join("a/commit.json"));
        let mut commit = EpochCommit {
            pipeline_id: "p".into(),
            epoch: 1,
            offsets: Offsets::new(serde_json::json!({"position": 5})),
            watermark_micros: Some(7),
        };
        file.write(&CommitRecord::new(&commit, 5, 5, vec!["f".into()]))
            .unwrap();
        commit.epoch = 2;
        file.write(&CommitRecord::new(&commit, 1, 6, vec![]))
            .unwrap();
        let read = file.read().unwrap().unwrap();
        assert_eq!(read.committed(), commit);
        assert_eq!(read.total_rows, 6);
        assert!(!dir.join("a/commit.json.tmp").exists());
        std::fs::write(file.path(), b"{not json").unwrap();
        let err = file.read().unwrap_err();
        assert!(err.to_string().contains("is damaged"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
