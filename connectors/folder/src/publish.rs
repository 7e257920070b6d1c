//! The commit protocol of the folder sinks.
//!
//! ```text
//! <path>/<pipeline>-e<epoch, 20 digits>-<seq, 5 digits>.<ext>   visible data files
//! <path>/_tributary/<pipeline>/commit.json                      the commit record
//! <path>/_tributary/<pipeline>/owner.json                       the run that owns the pipeline
//! <path>/_tributary/<pipeline>/lock                             held while fencing or committing
//! <path>/_tributary/<pipeline>/staging/<n>.tmp                  files being written
//! ```
//!
//! At the end of an epoch: every staged file is synced, renamed to its data
//! file name (names depend only on the pipeline, the epoch and the file's
//! place in it), the folder is synced, and the commit record is replaced
//! atomically ([`RecordFile::write`]). The record is the commit point.
//!
//! When the run that owns the pipeline opens the folder ([`Folder::open`]:
//! the sink's `recover`, or its first write), files of the epoch after the
//! recorded one are removed: they are what a crash between the renames and
//! the record left behind, and the epoch is about to be written again.
//! Staging leftovers go too. A data file of a later epoch still is not a
//! crash's leftover but a commit record that was removed or replaced: that
//! stops the sink, as deleting data on a guess would be wrong. Anyone else
//! only reads the record ([`Folder::read_last`]): a running commit's staged
//! and just-renamed files look exactly like such leftovers.
//!
//! **Owners.** The run that owns the pipeline fences the folder first
//! ([`Folder::fence`]): it writes `_tributary/<pipeline>/owner.json` (its
//! generation and who it is). Fencing and committing hold an exclusive lock
//! on `_tributary/<pipeline>/lock` (`flock`), and a commit checks, under that
//! lock, that no newer owner has claimed the pipeline and that the record on
//! disk is still the one this run last saw, so of two instances of one
//! pipeline only the newer one commits; the older one stops, naming it.
//!
//! A commit that fails part-way (some files renamed, then an error) is
//! retried with the same staged files: the ones already moved are not moved
//! again. A commit of another epoch while one is unfinished is refused.

use std::path::{Path, PathBuf};

use tributary_connector::commit_record::write_atomically;
use tributary_connector::commit_record::{CommitRecord, RecordFile, io_error, sync_dir};
use tributary_connector::{CommitOutcome, EpochCommit, Error, Owner, Result, crash_point, fenced};

/// A pipeline's share of an output folder.
#[derive(Debug)]
pub struct Folder {
    dir: PathBuf,
    pipeline: String,
    ext: &'static str,
    record: RecordFile,
    staging: PathBuf,
    claim: PathBuf,
    lock: PathBuf,
    /// This run, once it has fenced the folder.
    owner: Option<Owner>,
    last: Option<CommitRecord>,
    opened: bool,
    next_staged: u64,
    /// The epoch whose commit failed part-way, until it succeeds.
    unfinished: Option<u64>,
}

impl Folder {
    /// `ext` is the data files' extension without the dot (`parquet`).
    pub fn new(dir: PathBuf, pipeline: &str, ext: &'static str) -> Result<Self> {
        if pipeline.is_empty() || pipeline == "." || pipeline == ".." || pipeline.contains('/') {
            return Err(Error::config(format!(
                "pipeline name `{pipeline}` cannot name files: use letters, digits, `_`, `-` and `.`"
            )));
        }
        let meta = dir.join("_tributary").join(pipeline);
        Ok(Self {
            record: RecordFile::new(meta.join("commit.json")),
            staging: meta.join("staging"),
            claim: meta.join("owner.json"),
            lock: meta.join("lock"),
            owner: None,
            dir,
            pipeline: pipeline.to_string(),
            ext,
            last: None,
            opened: false,
            next_staged: 0,
            unfinished: None,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn pipeline(&self) -> &str {
        &self.pipeline
    }

    /// Reads the commit record and removes what an interrupted commit left
    /// behind. Does the work once; later calls return the same record.
    pub fn open(&mut self) -> Result<Option<&CommitRecord>> {
        if !self.opened {
            self.recover()?;
            self.opened = true;
        }
        Ok(self.last.as_ref())
    }

    /// The last committed epoch's record (after [`Folder::open`]).
    pub fn last(&self) -> Option<&CommitRecord> {
        self.last.as_ref()
    }

    /// The commit record as it is on disk, changing nothing: what a reader
    /// that does not own the pipeline (the worker's offsets call) may do
    /// while the owner is in the middle of a commit.
    pub fn read_last(&self) -> Result<Option<CommitRecord>> {
        if self.opened {
            return Ok(self.last.clone());
        }
        let last = self.record.read()?;
        if let Some(r) = &last
            && r.pipeline_id != self.pipeline
        {
            return Err(Error::data(format!(
                "{} belongs to pipeline `{}`, not `{}`",
                self.record.path().display(),
                r.pipeline_id,
                self.pipeline
            )));
        }
        Ok(last)
    }

    fn recover(&mut self) -> Result<()> {
        std::fs::create_dir_all(&self.staging)
            .map_err(|e| io_error(&format!("create {}", self.staging.display()), e))?;
        let last = self.read_last()?;
        let last_epoch = last.as_ref().map_or(0, |r| r.epoch);
        for entry in read_dir(&self.staging)? {
            std::fs::remove_file(&entry)
                .map_err(|e| io_error(&format!("remove {}", entry.display()), e))?;
        }
        // Every file of ours past the record, checked before any is removed.
        let mut ahead = Vec::new();
        for path in read_dir(&self.dir)? {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            match self.epoch_of(name) {
                Some(epoch) if epoch > last_epoch => ahead.push((epoch, path)),
                _ => {}
            }
        }
        if let Some((epoch, path)) = ahead.iter().find(|(e, _)| *e > last_epoch + 1) {
            return Err(Error::data(format!(
                "{} is a file of epoch {epoch} of pipeline `{}`, but its commit record {} says epoch {last_epoch} \
                 was the last committed: the record was removed or replaced. Restore it, or remove the \
                 pipeline's files ({}/{}-e*.{}) to write everything again",
                path.display(),
                self.pipeline,
                self.record.path().display(),
                self.dir.display(),
                self.pipeline,
                self.ext
            )));
        }
        let removed = !ahead.is_empty();
        for (epoch, path) in ahead {
            tracing::warn!(
                "removing {}: epoch {epoch} was made visible but not committed (a crash); it is written again",
                path.display()
            );
            std::fs::remove_file(&path)
                .map_err(|e| io_error(&format!("remove {}", path.display()), e))?;
        }
        if removed {
            sync_dir(&self.dir)
                .map_err(|e| io_error(&format!("sync {}", self.dir.display()), e))?;
        }
        self.last = last;
        Ok(())
    }

    /// Takes the pipeline over for `owner` (see the module's docs): fails,
    /// naming it, when a newer owner has claimed it already.
    pub fn fence(&mut self, owner: &Owner) -> Result<()> {
        with_lock(&self.lock, || {
            if let Some(claim) = self.read_claim()?
                && claim.generation > owner.generation
            {
                return Err(fenced(
                    &self.pipeline,
                    owner,
                    &claim,
                    &format!("its claim in {}", self.claim.display()),
                ));
            }
            let bytes = serde_json::to_vec_pretty(owner)
                .map_err(|e| Error::internal(format!("encode the owner: {e}")))?;
            write_atomically(&self.claim, &bytes)
        })?;
        self.owner = Some(owner.clone());
        Ok(())
    }

    /// The owner claimed in `owner.json`, if any.
    fn read_claim(&self) -> Result<Option<Owner>> {
        let bytes = match std::fs::read(&self.claim) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(&format!("read {}", self.claim.display()), e)),
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::data(format!(
                "{} is damaged ({e}); remove it (the next run to start claims the pipeline again)",
                self.claim.display()
            ))
        })
    }

    /// Under the lock, before a commit of this fenced run: no newer owner
    /// has claimed the pipeline, and nobody committed since this run read
    /// the record.
    fn check_owner(&self, me: &Owner) -> Result<()> {
        if let Some(claim) = self.read_claim()?
            && claim.generation > me.generation
        {
            return Err(fenced(
                &self.pipeline,
                me,
                &claim,
                &format!("its claim in {}", self.claim.display()),
            ));
        }
        let on_disk = self.record.read()?;
        let epoch = |r: &Option<CommitRecord>| r.as_ref().map_or(0, |r| r.epoch);
        if epoch(&on_disk) != epoch(&self.last) {
            let other = match on_disk.as_ref().and_then(|r| r.owner.clone()) {
                Some(o) => o.to_string(),
                None => "another run".to_string(),
            };
            return Err(fenced(
                &self.pipeline,
                me,
                &other,
                &format!(
                    "it committed epoch {} to {} after this run read epoch {}",
                    epoch(&on_disk),
                    self.record.path().display(),
                    epoch(&self.last)
                ),
            ));
        }
        Ok(())
    }

    /// A fresh path in the staging folder, where readers do not look.
    pub fn staging_file(&mut self) -> Result<PathBuf> {
        self.open()?;
        self.next_staged += 1;
        Ok(self.staging.join(format!("{:05}.tmp", self.next_staged)))
    }

    /// The visible name of file `seq` of `epoch`.
    pub fn data_file_name(&self, epoch: u64, seq: usize) -> String {
        format!("{}-e{epoch:020}-{seq:05}.{}", self.pipeline, self.ext)
    }

    /// The epoch of one of this pipeline's data files; `None` for any other
    /// name (other pipelines' files, files nobody of ours wrote).
    pub fn epoch_of(&self, name: &str) -> Option<u64> {
        let rest = name
            .strip_prefix(self.pipeline.as_str())?
            .strip_prefix("-e")?
            .strip_suffix(self.ext)?
            .strip_suffix('.')?;
        let (epoch, seq) = rest.split_once('-')?;
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        (digits(epoch, 20) && digits(seq, 5)).then(|| epoch.parse().ok())?
    }

    /// Makes `staged` (synced, complete files) visible as `commit.epoch`'s
    /// files and records the commit. Idempotent: an epoch at or before the
    /// recorded one is not committed again (its staged files are dropped).
    /// On an error the staged files stay the caller's, to be passed again
    /// with the same `commit` (files already moved are not moved twice);
    /// another epoch is refused until that one is committed.
    pub fn commit(
        &mut self,
        commit: &EpochCommit,
        staged: &[PathBuf],
        rows: u64,
    ) -> Result<CommitOutcome> {
        self.open()?;
        match self.owner.clone() {
            Some(me) => {
                let lock = self.lock.clone();
                with_lock(&lock, || {
                    self.check_owner(&me)?;
                    self.commit_owned(commit, staged, rows)
                })
            }
            None => self.commit_owned(commit, staged, rows),
        }
    }

    fn commit_owned(
        &mut self,
        commit: &EpochCommit,
        staged: &[PathBuf],
        rows: u64,
    ) -> Result<CommitOutcome> {
        if let Some(unfinished) = self.unfinished.filter(|e| *e != commit.epoch) {
            return Err(Error::internal(format!(
                "{}: the commit of epoch {unfinished} of pipeline `{}` failed part-way and epoch {} came                  next; stopping so that the next start undoes the partial commit and writes epoch                  {unfinished} again",
                self.dir.display(),
                self.pipeline,
                commit.epoch
            ))
            .retryable(false));
        }
        let last_epoch = self.last.as_ref().map_or(0, |r| r.epoch);
        if commit.epoch <= last_epoch {
            self.discard(staged);
            return Ok(CommitOutcome::AlreadyCommitted);
        }
        self.unfinished = Some(commit.epoch);
        let names = self.publish(commit.epoch, staged)?;
        crash_point("files-published");
        let total = self.last.as_ref().map_or(0, |r| r.total_rows) + rows;
        let record = CommitRecord::new(commit, rows, total, names).with_owner(self.owner.clone());
        self.record.write(&record)?;
        self.last = Some(record);
        self.unfinished = None;
        Ok(CommitOutcome::Committed)
    }

    /// Renames the staged files to their visible names (step one of
    /// [`Folder::commit`]; public for the crash tests). A file already
    /// moved by an earlier, failed attempt at the same commit is left.
    pub fn publish(&mut self, epoch: u64, staged: &[PathBuf]) -> Result<Vec<String>> {
        let mut names = Vec::with_capacity(staged.len());
        for (seq, from) in staged.iter().enumerate() {
            let name = self.data_file_name(epoch, seq);
            let to = self.dir.join(&name);
            if let Err(e) = std::fs::rename(from, &to) {
                let moved_before =
                    e.kind() == std::io::ErrorKind::NotFound && !from.exists() && to.is_file();
                if !moved_before {
                    return Err(io_error(
                        &format!("move {} to {}", from.display(), to.display()),
                        e,
                    ));
                }
            }
            names.push(name);
        }
        if !names.is_empty() {
            sync_dir(&self.dir)
                .map_err(|e| io_error(&format!("sync {}", self.dir.display()), e))?;
        }
        Ok(names)
    }

    /// Forgets staged files.
    pub fn discard(&mut self, staged: &[PathBuf]) {
        for path in staged {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Runs `f` holding an exclusive lock on the file `lock` (created when
/// missing), so that fencing and committing of one pipeline's folder never
/// interleave between processes.
fn with_lock<T>(lock: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    if let Some(dir) = lock.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| io_error(&format!("create {}", dir.display()), e))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock)
        .map_err(|e| io_error(&format!("open {}", lock.display()), e))?;
    file.lock()
        .map_err(|e| io_error(&format!("lock {}", lock.display()), e))?;
    let out = f();
    let _ = file.unlock();
    out
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| io_error(&format!("list {}", dir.display()), e))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_error(&format!("list {}", dir.display()), e))?;
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_connector::Offsets;

    fn commit(epoch: u64) -> EpochCommit {
        EpochCommit {
            pipeline_id: "p-1".into(),
            epoch,
            offsets: Offsets::new(serde_json::json!({"position": epoch * 10})),
            watermark_micros: Some(epoch as i64),
        }
    }

    fn stage(folder: &mut Folder, text: &str) -> PathBuf {
        let path = folder.staging_file().unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    fn visible(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".jsonl"))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn names_parse_back_only_for_this_pipeline() {
        let f = Folder::new("out".into(), "p-1", "parquet").unwrap();
        let name = f.data_file_name(42, 3);
        assert_eq!(name, "p-1-e00000000000000000042-00003.parquet");
        assert_eq!(f.epoch_of(&name), Some(42));
        let other = Folder::new("out".into(), "p", "parquet").unwrap();
        assert_eq!(other.epoch_of(&name), None, "pipeline `p` is not `p-1`");
        assert_eq!(f.epoch_of("p-1-e42-3.parquet"), None);
        assert_eq!(f.epoch_of("p-1-e00000000000000000042-00003.jsonl"), None);
        assert!(Folder::new("out".into(), "..", "parquet").is_err());
    }

    #[test]
    fn commits_are_recorded_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = Folder::new(dir.path().into(), "p-1", "jsonl").unwrap();
        assert!(f.open().unwrap().is_none());
        let a = stage(&mut f, "a\n");
        let b = stage(&mut f, "b\n");
        assert!(
            visible(dir.path()).is_empty(),
            "staged files are not visible"
        );
        assert_eq!(
            f.commit(&commit(1), &[a, b], 2).unwrap(),
            CommitOutcome::Committed
        );
        assert_eq!(
            visible(dir.path()),
            [
                "p-1-e00000000000000000001-00000.jsonl",
                "p-1-e00000000000000000001-00001.jsonl"
            ]
        );
        let again = stage(&mut f, "a\n");
        assert_eq!(
            f.commit(&commit(1), std::slice::from_ref(&again), 1)
                .unwrap(),
            CommitOutcome::AlreadyCommitted
        );
        assert!(!again.exists(), "the repeated epoch's files are dropped");
        // An empty epoch moves the offsets without a file.
        f.commit(&commit(2), &[], 0).unwrap();
        let mut reopened = Folder::new(dir.path().into(), "p-1", "jsonl").unwrap();
        let last = reopened.open().unwrap().unwrap().clone();
        assert_eq!(last.committed(), commit(2));
        assert_eq!(last.total_rows, 2);
        assert_eq!(visible(dir.path()).len(), 2);
    }

    #[test]
    fn a_crash_between_publishing_and_recording_is_undone_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = Folder::new(dir.path().into(), "p-1", "jsonl").unwrap();
        let a = stage(&mut f, "a\n");
        f.commit(&commit(1), &[a], 1).unwrap();
        // Epoch 2: files made visible, then the process dies before the record.
        let b = stage(&mut f, "b\n");
        let c = stage(&mut f, "c\n");
        f.publish(2, &[b, c]).unwrap();
        // And a file of epoch 3 still in staging.
        let leftover = stage(&mut f, "d\n");
        drop(f);
        // Another pipeline's files in the same folder are not ours to touch.
        std::fs::write(
            dir.path().join("q-e00000000000000000009-00000.jsonl"),
            "x\n",
        )
        .unwrap();
        assert_eq!(visible(dir.path()).len(), 4);

        let mut f = Folder::new(dir.path().into(), "p-1", "jsonl").unwrap();
        assert_eq!(f.open().unwrap().unwrap().epoch, 1);
        assert_eq!(
            visible(dir.path()),
            [
                "p-1-e00000000000000000001-00000.jsonl",
                "q-e00000000000000000009-00000.jsonl"
            ]
        );
        assert!(!leftover.exists(), "staging is emptied");
        // Epoch 2 again, as the runtime replays it: one file this time.
        let b = stage(&mut f, "b\nc\n");
        f.commit(&commit(2), &[b], 2).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("p-1-e00000000000000000002-00000.jsonl"))
                .unwrap(),
            "b\nc\n"
        );
        assert!(
            !dir.path()
                .join("p-1-e00000000000000000002-00001.jsonl")
                .exists()
        );
    }

    #[test]
    fn a_commit_failing_part_way_is_retried_with_the_same_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = Folder::new(dir.path().into(), "p-1", "jsonl").unwrap();
        let staged = [stage(&mut f, "a\n"), stage(&mut f, "b\n")];
        // The second file's visible name is taken by a folder: the first file
        // moves, the second cannot.
        let blocker = dir.path().join(f.data_file_name(1, 1));
        std::fs::create_dir_all(blocker.join("x")).unwrap();
        assert!(f.commit(&commit(1), &staged, 2).unwrap_err().is_retryable());
        let err = f.commit(&commit(2), &[], 0).unwrap_err();
        assert!(
            !err.is_retryable() && err.to_string().contains("failed part-way"),
            "{err}"
        );
        std::fs::remove_dir_all(&blocker).unwrap();
        assert_eq!(
            f.commit(&commit(1), &staged, 2).unwrap(),
            CommitOutcome::Committed
        );
        assert_eq!(f.last().unwrap().files.len(), 2);
        let text: String = visible(dir.path())
            .iter()
            .map(|n| std::fs::read_to_string(dir.path().join(n)).unwrap())
            .collect();
        assert_eq!(text, "a\nb\n");
        f.commit(&commit(2), &[], 0).unwrap();
    }

    #[test]
    fn reading_the_record_removes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut owner = Folder::new(dir.path().into(), "p-1", "jsonl").unwrap();
        let a = stage(&mut owner, "a\n");
        owner.commit(&commit(1), &[a], 1).unwrap();
        // The owner is mid-commit of epoch 2: a file staged, one published.
        let staged = stage(&mut owner, "b\n");
        let published = stage(&mut owner, "c\n");
        owner.publish(2, &[published]).unwrap();
        let reader = Folder::new(dir.path().into(), "p-1", "jsonl").unwrap();
        assert_eq!(reader.read_last().unwrap().unwrap().epoch, 1);
        assert!(staged.exists());
        assert_eq!(visible(dir.path()).len(), 2);
    }

    fn owner(generation: u64) -> Owner {
        Owner {
            generation,
            run_id: format!("run-{generation}"),
            host: "h".into(),
            pid: 100 + generation as u32,
            started_at: "2026-11-30T00:00:00Z".into(),
        }
    }

    #[test]
    fn only_the_newest_owner_commits() {
        let dir = tempfile::tempdir().unwrap();
        let mut old = Folder::new(dir.path().into(), "p-1", "jsonl").unwrap();
        old.fence(&owner(1)).unwrap();
        let a = stage(&mut old, "a\n");
        old.commit(&commit(1), &[a], 1).unwrap();
        let b = stage(&mut old, "b\n");
        // A second instance starts and takes over.
        let mut new = Folder::new(dir.path().into(), "p-1", "jsonl").unwrap();
        new.fence(&owner(2)).unwrap();
        assert_eq!(new.open().unwrap().unwrap().epoch, 1);
        let err = old.commit(&commit(2), &[b], 1).unwrap_err();
        assert!(
            !err.is_retryable()
                && err.to_string().contains("is fenced")
                && err.to_string().contains("pid 102"),
            "{err}"
        );
        let err = old.fence(&owner(1)).unwrap_err();
        assert!(err.to_string().contains("pid 102"), "{err}");
        let c = stage(&mut new, "c\n");
        new.commit(&commit(2), &[c], 1).unwrap();
        assert_eq!(visible(dir.path()).len(), 2);
        let record = Folder::new(dir.path().into(), "p-1", "jsonl")
            .unwrap()
            .read_last()
            .unwrap()
            .unwrap();
        assert_eq!((record.epoch, record.owner), (2, Some(owner(2))));
    }

    #[test]
    fn a_commit_after_another_runs_commit_is_fenced() {
        let dir = tempfile::tempdir().unwrap();
        let mut fenced = Folder::new(dir.path().into(), "p-1", "jsonl").unwrap();
        fenced.fence(&owner(3)).unwrap();
        let a = stage(&mut fenced, "a\n");
        // A run that does not fence (an older version) commits meanwhile.
        let mut other = Folder::new(dir.path().into(), "p-1", "jsonl").unwrap();
        other.open().unwrap();
        let b = stage(&mut other, "b\n");
        other.commit(&commit(1), &[b], 1).unwrap();
        let err = fenced.commit(&commit(1), &[a], 1).unwrap_err().to_string();
        assert!(
            err.contains("another run") && err.contains("committed epoch 1"),
            "{err}"
        );
        assert_eq!(visible(dir.path()).len(), 1);
    }

    #[test]
    fn files_ahead_of_a_lost_record_stop_the_sink() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = Folder::new(dir.path().into(), "p-1", "jsonl").unwrap();
        for epoch in 1..=2 {
            let s = stage(&mut f, "a\n");
            f.commit(&commit(epoch), &[s], 1).unwrap();
        }
        std::fs::remove_file(dir.path().join("_tributary/p-1/commit.json")).unwrap();
        let mut f = Folder::new(dir.path().into(), "p-1", "jsonl").unwrap();
        let err = f.open().unwrap_err().to_string();
        assert!(err.contains("the record was removed or replaced"), "{err}");
        assert_eq!(visible(dir.path()).len(), 2, "nothing deleted on a guess");
    }
}
