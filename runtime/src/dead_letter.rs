//! The dead-letter output: records the pipeline could not process, with why.
//!
//! One JSON-lines file per pipeline and epoch, `<pipeline>-epoch-<n>.jsonl`,
//! so pipelines may share a folder without touching each other's files.
//! Letters become visible **with their epoch's commit**, as the rows do:
//!
//! 1. before the sink commit they are written durably to a hidden pending
//!    file, `.<pipeline>-epoch-<n>.jsonl.pending` (temp file, fsync, rename,
//!    fsync of the folder), which readers of `*.jsonl` do not see;
//! 2. after the commit the pending file is renamed to its visible name (and
//!    the folder synced).
//!
//! A crash between the two leaves a pending file of a committed epoch: the
//! next start publishes it ([`DeadLetterOutput::recover`]). Pending files of
//! an epoch that was not committed are removed, and that epoch is processed
//! again. So every bad record is in the output once, never twice, never lost.
//!
//! Each line: `{"pipeline", "epoch", "stage", "reason", "position"?, "record"?, "raw"?}`
//! where `stage` is `source`, `transform:<name>` or `sink` (a row the sink
//! could not write: a value that does not fit its column, a required field
//! that is null), `record` the row as JSON
//! (when it was readable), and the bytes as read when it was not: `raw` when
//! they are UTF-8 text (a malformed JSON line), else `raw_base64` (a binary
//! Avro message), so the record can be replayed byte for byte.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// One record that went wrong.
#[derive(Clone, Debug, PartialEq)]
pub struct DeadLetter {
    pub stage: String,
    pub reason: String,
    pub position: Option<String>,
    pub record: Option<Value>,
    pub raw: Option<Vec<u8>>,
}

impl DeadLetter {
    /// The rows of `batch` the sink refused to write
    /// ([`tributary_connector::Sink::write_or_refuse`]), stage `sink`, each
    /// with the row as JSON and the sink's reason.
    pub fn refused_by_sink(
        batch: &arrow_array::RecordBatch,
        refused: Vec<tributary_connector::RefusedRow>,
    ) -> Vec<DeadLetter> {
        refused
            .into_iter()
            .map(|r| DeadLetter {
                stage: "sink".into(),
                reason: r.reason,
                position: None,
                record: tributary_wasm_host::rows_as_json(&batch.slice(r.row, 1))
                    .into_iter()
                    .next(),
                raw: None,
            })
            .collect()
    }
}

/// Collects an epoch's dead letters and writes them at the epoch's end.
#[derive(Debug)]
pub struct DeadLetterOutput {
    dir: PathBuf,
    pipeline: String,
    pending: Vec<DeadLetter>,
}

impl DeadLetterOutput {
    pub fn new(dir: PathBuf, pipeline: &str) -> std::io::Result<Self> {
        fs::create_dir_all(&dir)?;
        Ok(Self {
            dir,
            pipeline: pipeline.to_string(),
            pending: Vec::new(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn push(&mut self, letter: DeadLetter) {
        self.pending.push(letter);
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The visible file of `epoch`.
    fn file(&self, epoch: u64) -> PathBuf {
        self.dir
            .join(format!("{}-epoch-{epoch:020}.jsonl", self.pipeline))
    }

    /// The hidden file of `epoch` until its commit.
    fn pending_file(&self, epoch: u64) -> PathBuf {
        self.dir.join(format!(
            ".{}-epoch-{epoch:020}.jsonl.pending",
            self.pipeline
        ))
    }

    /// The epoch of one of this pipeline's pending files.
    fn pending_epoch(&self, name: &str) -> Option<u64> {
        let digits = name
            .strip_prefix('.')?
            .strip_prefix(self.pipeline.as_str())?
            .strip_prefix("-epoch-")?
            .strip_suffix(".jsonl.pending")?;
        (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| digits.parse().ok())?
    }

    /// At start, with the sink's last committed epoch: publishes the pending
    /// letters of committed epochs (a crash came between the commit and
    /// their publication) and removes those of epochs that were not
    /// committed (they are processed again).
    pub fn recover(&mut self, last_committed: u64) -> std::io::Result<()> {
        let mut changed = false;
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(epoch) = self.pending_epoch(&name) else {
                continue;
            };
            if epoch <= last_committed {
                fs::rename(entry.path(), self.file(epoch))?;
            } else {
                fs::remove_file(entry.path())?;
            }
            changed = true;
        }
        if changed {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Before the sink commits `epoch`: writes its letters durably where
    /// readers do not look (nothing when it has none), and forgets them.
    pub fn stage(&mut self, epoch: u64) -> std::io::Result<usize> {
        let path = self.pending_file(epoch);
        let count = self.pending.len();
        if self.pending.is_empty() {
            return Ok(0);
        }
        let tmp = self
            .dir
            .join(format!(".{}-epoch-{epoch:020}.jsonl.tmp", self.pipeline));
        {
            let mut out = std::io::BufWriter::new(fs::File::create(&tmp)?);
            for letter in self.pending.drain(..) {
                let mut line = json!({
                    "pipeline": self.pipeline,
                    "epoch": epoch,
                    "stage": letter.stage,
                    "reason": letter.reason,
                });
                let obj = line.as_object_mut().expect("object literal");
                if let Some(p) = letter.position {
                    obj.insert("position".into(), Value::String(p));
                }
                if let Some(r) = letter.record {
                    obj.insert("record".into(), r);
                }
                if let Some(bytes) = letter.raw {
                    match String::from_utf8(bytes) {
                        Ok(text) => obj.insert("raw".into(), Value::String(text)),
                        Err(e) => {
                            use base64::Engine;
                            let b64 =
                                base64::engine::general_purpose::STANDARD.encode(e.as_bytes());
                            obj.insert("raw_base64".into(), Value::String(b64))
                        }
                    };
                }
                serde_json::to_writer(&mut out, &line)?;
                out.write_all(b"\n")?;
            }
            let file = out.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
        }
        fs::rename(&tmp, &path)?;
        sync_dir(&self.dir)?;
        Ok(count)
    }

    /// After the sink committed `epoch`: makes its staged letters visible.
    pub fn publish(&mut self, epoch: u64) -> std::io::Result<()> {
        match fs::rename(self.pending_file(epoch), self.file(epoch)) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Drops letters gathered for an epoch that will not be committed.
    pub fn discard(&mut self) {
        self.pending.clear();
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(reason: &str) -> DeadLetter {
        DeadLetter {
            stage: "source".into(),
            reason: reason.into(),
            position: Some("a.jsonl:3".into()),
            record: None,
            raw: Some(b"{oops".to_vec()),
        }
    }

    fn visible(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".jsonl"))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn letters_become_visible_with_their_commit_once() {
        let dir = tempfile::tempdir().unwrap();
        let dlq = dir.path().join("dlq");
        let mut out = DeadLetterOutput::new(dlq.clone(), "p").unwrap();
        out.push(letter("first try"));
        out.push(letter("first try 2"));
        assert_eq!(out.stage(7).unwrap(), 2);
        assert!(visible(&dlq).is_empty(), "not visible before the commit");
        // The run crashes before committing epoch 7; the next start finds
        // epoch 6 committed, drops the pending letters, and does 7 again.
        let mut out = DeadLetterOutput::new(dlq.clone(), "p").unwrap();
        out.recover(6).unwrap();
        out.push(letter("second try"));
        out.stage(7).unwrap();
        out.publish(7).unwrap();
        assert_eq!(visible(&dlq), ["p-epoch-00000000000000000007.jsonl"]);
        let text = fs::read_to_string(dlq.join("p-epoch-00000000000000000007.jsonl")).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["reason"], "second try");
        assert_eq!(lines[0]["position"], "a.jsonl:3");
        assert_eq!(lines[0]["raw"], "{oops");
        // Bytes that are not text are kept exactly, as base64; a crash after
        // the commit of 8 but before publishing: the next start publishes.
        out.push(DeadLetter {
            raw: Some(vec![0x00, 0xff, 0x10]),
            ..letter("binary")
        });
        out.stage(8).unwrap();
        let mut out = DeadLetterOutput::new(dlq.clone(), "p").unwrap();
        out.recover(8).unwrap();
        let text = fs::read_to_string(dlq.join("p-epoch-00000000000000000008.jsonl")).unwrap();
        let line: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["raw_base64"], "AP8Q");
        assert!(line.get("raw").is_none());
        // Another pipeline in the same folder: an epoch of its own without
        // letters touches nothing of `p`.
        let mut other = DeadLetterOutput::new(dlq.clone(), "q").unwrap();
        other.recover(0).unwrap();
        assert_eq!(other.stage(7).unwrap(), 0);
        other.publish(7).unwrap();
        assert_eq!(visible(&dlq).len(), 2);
    }
}
