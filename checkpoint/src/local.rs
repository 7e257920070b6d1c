//! The embedded default store: one directory per pipeline, one file per epoch
//! (`epoch-<20 digits>.ckpt`), plus an `owner` file naming the pipeline and
//! `lease.json`, the run that owns it now ([`CheckpointStore::claim`]);
//! claims and fenced writes hold an exclusive lock on `lease.lock` (`flock`).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{
    Checkpoint, CheckpointError, CheckpointStore, Claim, Owner, Result, StateWriter, decode_owned,
    encode_into, encode_streamed, fenced,
};

#[derive(Debug)]
pub struct LocalDirStore {
    dir: PathBuf,
    /// The claim this store made, whose writes it fences.
    claimed: Option<(String, Owner)>,
}

impl LocalDirStore {
    /// Opens (creating it when missing) a checkpoint directory.
    pub fn open(dir: PathBuf) -> Result<Self> {
        fs::create_dir_all(&dir).map_err(|e| io(&dir, "cannot create the directory", e))?;
        let store = Self { dir, claimed: None };
        store.clean_temp_files();
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file(&self, epoch: u64) -> PathBuf {
        self.dir.join(format!("epoch-{epoch:020}.ckpt"))
    }

    /// Leftovers of a write a crash interrupted: never read, safe to remove
    /// once old. A young one may be another process's write in progress (a
    /// second instance starting while the first still runs): removing it
    /// would fail that write's rename.
    fn clean_temp_files(&self) {
        const LEFTOVER_AGE: Duration = Duration::from_secs(600);
        if let Ok(entries) = fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                let old = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > LEFTOVER_AGE);
                if e.file_name().to_string_lossy().ends_with(".tmp") && old {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
    }

    /// The run that claimed the pipeline last, if any.
    fn read_lease(&self) -> Result<Option<Owner>> {
        let path = self.dir.join("lease.json");
        match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| CheckpointError::Damaged {
                        location: path.display().to_string(),
                        what: format!("unreadable owner: {e}"),
                        fix: "Remove the file: the next run to start claims the pipeline again"
                            .into(),
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path, "cannot read", e)),
        }
    }

    /// Runs `f` holding an exclusive lock on `lease.lock`.
    fn locked<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let path = self.dir.join("lease.lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io(&path, "cannot open", e))?;
        file.lock().map_err(|e| io(&path, "cannot lock", e))?;
        let out = f();
        let _ = file.unlock();
        out
    }

    /// The first pipeline to write here owns the directory.
    fn check_owner(&self, pipeline: &str, claim: bool) -> Result<()> {
        let owner = self.dir.join("owner");
        match fs::read_to_string(&owner) {
            Ok(found) if found.trim() == pipeline => Ok(()),
            Ok(found) => Err(CheckpointError::WrongPipeline {
                location: self.dir.display().to_string(),
                found: found.trim().to_string(),
                expected: pipeline.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if claim {
                    write_atomically(&self.dir, &owner, |w| w.write_all(pipeline.as_bytes()))?;
                }
                Ok(())
            }
            Err(e) => Err(io(&owner, "cannot read", e)),
        }
    }
}

fn io(path: &Path, what: &str, e: std::io::Error) -> CheckpointError {
    use std::io::ErrorKind;
    let message = if matches!(e.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded) {
        format!(
            "{what}: no space left on the disk holding it ({e}); free space there and run the \
             pipeline again: it resumes from its last commit"
        )
    } else {
        format!("{what}: {e}")
    };
    CheckpointError::Io {
        location: path.display().to_string(),
        message,
        retryable: false,
    }
}

/// temp file → fsync → rename → fsync the directory: a reader sees the old file
/// or the whole new one, even across a power cut.
fn write_atomically(
    dir: &Path,
    path: &Path,
    contents: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    // A name of its own per write: two processes writing the same epoch (a
    // second instance) must not rename each other's half-written file.
    let tmp = path.with_extension(format!(
        "{}.{}.tmp",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    let f = fs::File::create(&tmp).map_err(|e| io(&tmp, "cannot create", e))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, &f);
    let written = contents(&mut w)
        .and_then(|()| w.flush())
        .map_err(|e| io(&tmp, "cannot write", e))
        .and_then(|()| f.sync_all().map_err(|e| io(&tmp, "cannot fsync", e)));
    drop(w);
    drop(f);
    if let Err(e) = written {
        // Half a checkpoint is of no use to anyone; on a full disk it holds
        // space the next attempt needs.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, path).map_err(|e| io(path, "cannot rename into place", e))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, "cannot fsync the directory", e))
}

impl LocalDirStore {
    /// Writes epoch `checkpoint.epoch`'s file with `contents`, checking (in
    /// the lock) that no newer run has claimed the pipeline.
    fn put_with(
        &mut self,
        checkpoint: &Checkpoint,
        contents: &mut dyn FnMut(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<()> {
        self.check_owner(&checkpoint.pipeline_id, true)?;
        let write = || write_atomically(&self.dir, &self.file(checkpoint.epoch), contents);
        match &self.claimed {
            Some((pipeline, me)) if *pipeline == checkpoint.pipeline_id => {
                self.locked(|| match self.read_lease()? {
                    Some(lease) if lease.generation != me.generation => Err(fenced(
                        pipeline,
                        me,
                        &lease,
                        &self.dir.join("lease.json").display().to_string(),
                    )),
                    _ => write(),
                })
            }
            _ => write(),
        }
    }
}

impl CheckpointStore for LocalDirStore {
    fn claim(&mut self, pipeline: &str, owner: &Owner) -> Result<Claim> {
        self.check_owner(pipeline, true)?;
        let claim = self.locked(|| {
            let previous = self.read_lease()?;
            let owner = Owner {
                generation: previous.as_ref().map_or(0, |p| p.generation) + 1,
                ..owner.clone()
            };
            let bytes = serde_json::to_vec_pretty(&owner).expect("an owner always serialises");
            write_atomically(&self.dir, &self.dir.join("lease.json"), |w| {
                w.write_all(&bytes)
            })?;
            Ok(Claim { owner, previous })
        })?;
        self.claimed = Some((pipeline.to_string(), claim.owner.clone()));
        Ok(claim)
    }

    fn put(&mut self, checkpoint: &Checkpoint) -> Result<()> {
        // Streamed into the file: a full snapshot of millions of keys is not
        // copied into one more buffer first.
        self.put_with(checkpoint, &mut |w| encode_into(checkpoint, w))
    }

    fn put_streamed(
        &mut self,
        checkpoint: &Checkpoint,
        lens: &[u64],
        state: &mut StateWriter<'_>,
    ) -> Result<()> {
        self.put_with(checkpoint, &mut |w| {
            encode_streamed(checkpoint, lens, state, w)
        })
    }

    fn get(&mut self, pipeline: &str, epoch: u64) -> Result<Option<Checkpoint>> {
        self.check_owner(pipeline, false)?;
        let path = self.file(epoch);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path, "cannot read", e)),
        };
        let c = decode_owned(bytes, &path.display().to_string())?;
        if c.pipeline_id != pipeline {
            return Err(CheckpointError::WrongPipeline {
                location: path.display().to_string(),
                found: c.pipeline_id,
                expected: pipeline.to_string(),
            });
        }
        if c.epoch != epoch {
            return Err(CheckpointError::Damaged {
                location: path.display().to_string(),
                what: format!("it holds epoch {} under the name of epoch {epoch}", c.epoch),
                fix: "Move the file aside and run again".into(),
            });
        }
        Ok(Some(c))
    }

    fn epochs(&mut self, pipeline: &str) -> Result<Vec<u64>> {
        self.check_owner(pipeline, false)?;
        let entries = fs::read_dir(&self.dir).map_err(|e| io(&self.dir, "cannot list", e))?;
        let mut epochs: Vec<u64> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_prefix("epoch-")?
                    .strip_suffix(".ckpt")?
                    .parse()
                    .ok()
            })
            .collect();
        epochs.sort_unstable();
        Ok(epochs)
    }

    fn prune(&mut self, pipeline: &str, keep_from: u64) -> Result<()> {
        for epoch in self.epochs(pipeline)? {
            if epoch < keep_from {
                let path = self.file(epoch);
                fs::remove_file(&path).map_err(|e| io(&path, "cannot remove", e))?;
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("checkpoint directory {}", self.dir.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_named_with_the_fix() {
        let full = std::io::Error::from_raw_os_error(28);
        let e = io(Path::new("/chk/epoch-1.tmp"), "cannot write", full);
        let text = e.to_string();
        assert!(
            text.contains("/chk/epoch-1.tmp: cannot write: no space left on the disk")
                && text.contains("run the pipeline again"),
            "{text}"
        );
        assert!(!e.is_retryable() && !e.is_damage());
    }
}
