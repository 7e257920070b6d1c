//! The dead-letter output: records the pipeline could not process, with why.
//!
//! One JSON-lines file per epoch, `epoch-<n>.jsonl`, written atomically (temp
//! file, fsync, rename) *before* the epoch's sink commit. An epoch that is
//! processed again after a crash rewrites (or removes) its own file, so the
//! dead-letter output is exactly-once like the table: every bad record is in it
//! once, never twice, never lost.
//!
//! Each line: `{"pipeline", "epoch", "stage", "reason", "position"?, "record"?, "raw"?}`
//! where `stage` is `source` or `transform:<name>`, `record` the row as JSON
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

    fn file(&self, epoch: u64) -> PathBuf {
        self.dir.join(format!("epoch-{epoch:020}.jsonl"))
    }

    /// Writes the epoch's file durably (or removes a stale one when the epoch
    /// has nothing), then forgets the pending letters.
    pub fn flush(&mut self, epoch: u64) -> std::io::Result<usize> {
        let path = self.file(epoch);
        let count = self.pending.len();
        if self.pending.is_empty() {
            match fs::remove_file(&path) {
                Ok(()) => sync_dir(&self.dir)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            return Ok(0);
        }
        let tmp = self.dir.join(format!(".epoch-{epoch:020}.jsonl.tmp"));
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

    #[test]
    fn epoch_files_are_rewritten_not_appended() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = DeadLetterOutput::new(dir.path().join("dlq"), "p").unwrap();
        out.push(letter("first try"));
        out.push(letter("first try 2"));
        assert_eq!(out.flush(7).unwrap(), 2);
        // The epoch is processed again after a crash: its file is replaced.
        out.push(letter("second try"));
        assert_eq!(out.flush(7).unwrap(), 1);
        let text =
            fs::read_to_string(dir.path().join("dlq/epoch-00000000000000000007.jsonl")).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["reason"], "second try");
        assert_eq!(lines[0]["position"], "a.jsonl:3");
        assert_eq!(lines[0]["raw"], "{oops");
        // Bytes that are not text are kept exactly, as base64.
        out.push(DeadLetter {
            raw: Some(vec![0x00, 0xff, 0x10]),
            ..letter("binary")
        });
        out.flush(8).unwrap();
        let text =
            fs::read_to_string(dir.path().join("dlq/epoch-00000000000000000008.jsonl")).unwrap();
        let line: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["raw_base64"], "AP8Q");
        assert!(line.get("raw").is_none());
        // And a replay with nothing to report removes the stale file.
        assert_eq!(out.flush(7).unwrap(), 0);
        assert!(
            !dir.path()
                .join("dlq/epoch-00000000000000000007.jsonl")
                .exists()
        );
    }
}
