//! Where a pipeline's progress is kept between commits: source offsets, the
//! watermark and every transform's state, one [`Checkpoint`] per epoch.
//!
//! The sink's last commit says *which* epoch is current; the store holds that
//! epoch's state. The pipeline writes epoch `e` here before committing `e` to
//! the sink, and prunes older epochs after. Two backends pass one conformance
//! suite:
//!
//! - [`LocalDirStore`] — the embedded default: a directory, like Spark's
//!   `checkpointLocation`; atomic writes (temp file, fsync, rename, fsync dir)
//!   with a checksum, so a torn or damaged file is detected, never misread.
//! - [`PostgresStore`] — the shared store: many pipelines, many machines.
//!
//! The format of one checkpoint, in a file or a `bytea` column:
//!
//! ```text
//! "TRBCKPT1" | u32 LE header length | header (JSON) | state bytes… | u32 LE crc32 of everything before it
//! ```
//!
//! The header carries pipeline id, epoch, offsets, watermark and the length of
//! each transform's state; state bytes stay binary (they can be megabytes).
//!
//! **Changelogs.** A checkpoint's transform states are either full snapshots
//! or, when its `base` names an earlier epoch, changelogs over the state of
//! that epoch: what the epoch changed, so its cost follows the keys it
//! changed, not the keys alive. [`CheckpointStore::load_chain`] gives the
//! last full checkpoint and the changelogs after it, oldest first; restore
//! folds them in that order. The pipeline writes a full snapshot from time
//! to time and prunes only what is older than the full snapshot its newest
//! commit builds on.
//!
//! **Owners.** A run takes its pipeline over with [`CheckpointStore::claim`]:
//! the store hands out the next generation, atomically, and from then on
//! that store's [`CheckpointStore::put`] for the pipeline checks — in the
//! same lock or transaction as the write — that no newer run has claimed it
//! since, and fails with [`CheckpointError::Fenced`] naming that run. So of
//! two instances of one pipeline, the older one cannot overwrite the newer
//! one's checkpoints, and stops at its next checkpoint.
//!
//! [`testing`] is the conformance suite, public for stores written elsewhere.

#![forbid(unsafe_code)]

mod local;
mod postgres;

use std::io::Write;
use std::path::Path;

pub use local::LocalDirStore;
pub use postgres::PostgresStore;
use serde::{Deserialize, Serialize};
pub use tributary_connector::Owner;

/// What [`CheckpointStore::claim`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The claiming run, with the generation the store gave it.
    pub owner: Owner,
    /// The run that owned the pipeline before, if any.
    pub previous: Option<Owner>,
}

/// One epoch's progress.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub pipeline_id: String,
    pub epoch: u64,
    pub offsets: serde_json::Value,
    pub watermark_micros: Option<i64>,
    pub transforms: Vec<TransformSnapshot>,
    pub created_at_ms: i64,
    /// None: `transforms` hold full snapshots. `Some(b)`: they hold
    /// changelogs over the state of epoch `b` (an earlier epoch).
    pub base: Option<u64>,
}

/// One transform's state, as its host snapshotted it.
#[derive(Clone, Debug, PartialEq)]
pub struct TransformSnapshot {
    pub name: String,
    pub state: Vec<u8>,
}

/// A checkpoint store failure.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Stored bytes are not a valid checkpoint.
    #[error("checkpoint {location} is damaged ({what}). {fix}")]
    Damaged {
        location: String,
        what: String,
        fix: String,
    },
    /// The location belongs to another pipeline.
    #[error(
        "checkpoint location {location} holds checkpoints of pipeline `{found}`, not `{expected}`: give each pipeline its own checkpoint location"
    )]
    WrongPipeline {
        location: String,
        found: String,
        expected: String,
    },
    /// A newer run has claimed the pipeline: this one may not write (the
    /// message names the newer run and what to do).
    #[error("{0}")]
    Fenced(String),
    /// The store could not be reached or written.
    #[error("checkpoint store {location}: {message}")]
    Io {
        location: String,
        message: String,
        retryable: bool,
    },
    /// The location is not usable as given.
    #[error("checkpoint.location `{0}`")]
    Config(String),
    /// The sink committed an epoch the store has no checkpoint of.
    #[error("there is no checkpoint for epoch {epoch} in {location}")]
    Missing { location: String, epoch: u64 },
}

impl CheckpointError {
    /// Whether trying the same call again may succeed (the store was
    /// unreachable, not wrong): such an error is never damage.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Io {
                retryable: true,
                ..
            }
        )
    }

    /// Whether the stored content itself is bad or missing. Only this may
    /// be answered with `on_damaged: "table"`.
    pub fn is_damage(&self) -> bool {
        matches!(self, Self::Damaged { .. } | Self::Missing { .. })
    }
}

pub type Result<T, E = CheckpointError> = std::result::Result<T, E>;

const DAMAGED_FIX: &str = "Restore it from a backup, or set \"checkpoint\": {\"on_damaged\": \"table\"} to resume from the \
    offsets and watermark committed in the sink with empty transform state (dedup forgets the keys it has seen)";

/// Where checkpoints live. Synchronous: the pipeline thread calls it between
/// epochs, and a blocking call there is exactly the ordering we want.
pub trait CheckpointStore: Send {
    /// Takes `pipeline` over for a run: stores `owner` with a generation one
    /// higher than the last one stored (`owner.generation` is ignored),
    /// atomically, and returns it. From then on [`CheckpointStore::put`] of
    /// this store for `pipeline` fails with [`CheckpointError::Fenced`] once
    /// a newer claim is made, checked atomically with the write.
    fn claim(&mut self, pipeline: &str, owner: &Owner) -> Result<Claim>;
    /// Stores a checkpoint durably (replacing one of the same epoch).
    fn put(&mut self, checkpoint: &Checkpoint) -> Result<()>;
    /// The checkpoint of `epoch`, if stored.
    fn get(&mut self, pipeline: &str, epoch: u64) -> Result<Option<Checkpoint>>;
    /// Stored epochs, ascending.
    fn epochs(&mut self, pipeline: &str) -> Result<Vec<u64>>;
    /// Removes the epochs before `keep_from`.
    fn prune(&mut self, pipeline: &str, keep_from: u64) -> Result<()>;
    /// For messages: where this store is.
    fn describe(&self) -> String;

    /// Stores `checkpoint` with its transform states written by
    /// `state(i, w)` (exactly `lens[i]` bytes for the `i`-th; its `state`
    /// field is ignored): how a full snapshot of millions of keys reaches the
    /// store without first being made in memory. The default makes them in
    /// memory and calls [`put`](Self::put); a store that writes a stream
    /// overrides it.
    fn put_streamed(
        &mut self,
        checkpoint: &Checkpoint,
        lens: &[u64],
        state: &mut StateWriter<'_>,
    ) -> Result<()> {
        let mut whole = checkpoint.clone();
        for (i, t) in whole.transforms.iter_mut().enumerate() {
            let mut bytes = Vec::with_capacity(lens.get(i).copied().unwrap_or(0) as usize);
            state(i, &mut bytes).map_err(|e| CheckpointError::Io {
                location: self.describe(),
                message: format!("cannot make the state of transform `{}`: {e}", t.name),
                retryable: false,
            })?;
            if bytes.len() as u64 != lens.get(i).copied().unwrap_or(0) {
                return Err(CheckpointError::Io {
                    location: self.describe(),
                    message: format!(
                        "the state of transform `{}` was {} bytes, not the {} announced",
                        t.name,
                        bytes.len(),
                        lens.get(i).copied().unwrap_or(0)
                    ),
                    retryable: false,
                });
            }
            t.state = bytes;
        }
        self.put(&whole)
    }

    /// The checkpoints that rebuild the state of `epoch`, oldest first: the
    /// last full one, then every changelog over the one before it. None when
    /// `epoch` is not stored; a changelog whose base is gone is damage.
    fn load_chain(&mut self, pipeline: &str, epoch: u64) -> Result<Option<Vec<Checkpoint>>> {
        let Some(newest) = self.get(pipeline, epoch)? else {
            return Ok(None);
        };
        let mut chain = vec![newest];
        while let Some(last) = chain.last()
            && let Some(base) = last.base
        {
            let at = last.epoch;
            let location = self.describe();
            let broken = |what: String| CheckpointError::Damaged {
                location: location.clone(),
                what,
                fix: DAMAGED_FIX.to_string(),
            };
            if base >= at {
                return Err(broken(format!(
                    "the changelog of epoch {at} builds on epoch {base}, which is not earlier"
                )));
            }
            match self.get(pipeline, base)? {
                Some(earlier) => chain.push(earlier),
                None => {
                    return Err(broken(format!(
                        "the changelog of epoch {at} builds on epoch {base}, which is not in the store"
                    )));
                }
            }
        }
        chain.reverse();
        Ok(Some(chain))
    }

    /// The newest stored checkpoint.
    fn latest(&mut self, pipeline: &str) -> Result<Option<Checkpoint>> {
        match self.epochs(pipeline)?.last() {
            Some(&e) => self.get(pipeline, e),
            None => Ok(None),
        }
    }
}

/// Opens the store a `checkpoint.location` names: a `postgres://` URI or a
/// directory (relative to `base_dir`).
pub fn open_store(location: &str, base_dir: &Path) -> Result<Box<dyn CheckpointStore>> {
    if location.starts_with("postgres://") || location.starts_with("postgresql://") {
        return Ok(Box::new(PostgresStore::connect(location)?));
    }
    if location.contains("://") {
        return Err(CheckpointError::Config(format!(
            "{location}: use a directory or a postgres:// URI"
        )));
    }
    Ok(Box::new(LocalDirStore::open(
        tributary_connector::resolve(base_dir, location),
    )?))
}

/// The error of a store whose claim `me` a newer claim `newer` replaced.
fn fenced(pipeline: &str, me: &Owner, newer: &Owner, location: &str) -> CheckpointError {
    CheckpointError::Fenced(
        tributary_connector::fenced(pipeline, me, newer, &format!("its claim in {location}"))
            .to_string(),
    )
}

const MAGIC: &[u8; 8] = b"TRBCKPT1";

#[derive(Serialize, Deserialize)]
struct Header {
    pipeline_id: String,
    epoch: u64,
    offsets: serde_json::Value,
    watermark_micros: Option<i64>,
    created_at_ms: i64,
    /// (name, byte length) of each transform's state, in order.
    transforms: Vec<(String, u64)>,
    /// The epoch whose state the transform states change (absent: they
    /// are full snapshots; checkpoints written before changelogs existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    base: Option<u64>,
}

/// Serialises a checkpoint to the documented format.
pub fn encode(c: &Checkpoint) -> Vec<u8> {
    let state_len: usize = c.transforms.iter().map(|t| t.state.len()).sum();
    let mut out = Vec::with_capacity(state_len + 1024);
    encode_into(c, &mut out).expect("writing to a Vec cannot fail");
    out
}

/// Writes a checkpoint in the documented format to `w`, the checksum
/// computed as it goes (no copy of the state in between).
pub fn encode_into(c: &Checkpoint, w: &mut dyn Write) -> std::io::Result<()> {
    let lens: Vec<u64> = c.transforms.iter().map(|t| t.state.len() as u64).collect();
    encode_streamed(c, &lens, &mut |i, w| w.write_all(&c.transforms[i].state), w)
}

/// What writes the `i`-th transform's state of a streamed checkpoint.
pub type StateWriter<'a> = dyn FnMut(usize, &mut dyn Write) -> std::io::Result<()> + 'a;

/// [`encode_into`] with each transform's state written by `state(i, w)` in
/// place of `c.transforms[i].state`: exactly `lens[i]` bytes, else an
/// `InvalidData` error (the header announced that length).
pub fn encode_streamed(
    c: &Checkpoint,
    lens: &[u64],
    state: &mut StateWriter<'_>,
    w: &mut dyn Write,
) -> std::io::Result<()> {
    let header = Header {
        pipeline_id: c.pipeline_id.clone(),
        epoch: c.epoch,
        offsets: c.offsets.clone(),
        watermark_micros: c.watermark_micros,
        created_at_ms: c.created_at_ms,
        transforms: c
            .transforms
            .iter()
            .zip(lens)
            .map(|(t, len)| (t.name.clone(), *len))
            .collect(),
        base: c.base,
    };
    let header = serde_json::to_vec(&header).expect("a header always serialises");
    let mut out = Checksummed {
        w,
        crc: crc32fast::Hasher::new(),
        written: 0,
    };
    out.write_all(MAGIC)?;
    out.write_all(&(header.len() as u32).to_le_bytes())?;
    out.write_all(&header)?;
    for (i, (t, len)) in c.transforms.iter().zip(lens).enumerate() {
        out.written = 0;
        state(i, &mut out)?;
        if out.written != *len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "the state of transform `{}` was {} bytes, not the {len} announced",
                    t.name, out.written
                ),
            ));
        }
    }
    let crc = out.crc.finalize();
    out.w.write_all(&crc.to_le_bytes())
}

/// A writer that keeps the checksum of, and counts, what goes through it.
struct Checksummed<'a> {
    w: &'a mut dyn Write,
    crc: crc32fast::Hasher,
    written: u64,
}

impl Write for Checksummed<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.w.write(buf)?;
        self.crc.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush()
    }
}

/// Parses the documented format; `location` names the file or row in errors.
pub fn decode(bytes: &[u8], location: &str) -> Result<Checkpoint> {
    decode_owned(bytes.to_vec(), location)
}

/// [`decode`] of bytes it may keep: the largest transform state (a full
/// snapshot of millions of keys) becomes the read buffer itself, moved in
/// place, instead of a copy made while the buffer is still held.
pub fn decode_owned(mut bytes: Vec<u8>, location: &str) -> Result<Checkpoint> {
    let damaged = |what: &str| CheckpointError::Damaged {
        location: location.to_string(),
        what: what.to_string(),
        fix: DAMAGED_FIX.to_string(),
    };
    if bytes.len() < 16 {
        return Err(damaged(&format!("only {} bytes: truncated", bytes.len())));
    }
    if &bytes[..8] != MAGIC {
        return Err(damaged("not a Tributary checkpoint (bad magic bytes)"));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    let crc = u32::from_le_bytes(crc.try_into().expect("4 bytes"));
    if crc32fast::hash(body) != crc {
        return Err(damaged(
            "checksum mismatch: the bytes changed after they were written, or the write was torn",
        ));
    }
    let header_len = u32::from_le_bytes(body[8..12].try_into().expect("4 bytes")) as usize;
    let header_end = 12usize
        .checked_add(header_len)
        .filter(|e| *e <= body.len())
        .ok_or_else(|| damaged("header length out of range"))?;
    let header: Header = serde_json::from_slice(&body[12..header_end])
        .map_err(|e| damaged(&format!("unreadable header: {e}")))?;
    let mut at = header_end;
    let mut ranges = Vec::with_capacity(header.transforms.len());
    for (_, len) in &header.transforms {
        let end = at
            .checked_add(*len as usize)
            .filter(|e| *e <= body.len())
            .ok_or_else(|| damaged("state length out of range"))?;
        ranges.push(at..end);
        at = end;
    }
    if at != body.len() {
        return Err(damaged("trailing bytes after the transform state"));
    }
    let largest = (0..ranges.len()).max_by_key(|&i| ranges[i].len());
    let mut states: Vec<Vec<u8>> = ranges
        .iter()
        .enumerate()
        .map(|(i, r)| {
            if Some(i) == largest {
                Vec::new()
            } else {
                bytes[r.clone()].to_vec()
            }
        })
        .collect();
    if let Some(i) = largest {
        let r = ranges[i].clone();
        bytes.truncate(r.end);
        bytes.drain(..r.start);
        states[i] = bytes;
    }
    let transforms = header
        .transforms
        .into_iter()
        .zip(states)
        .map(|((name, _), state)| TransformSnapshot { name, state })
        .collect();
    Ok(Checkpoint {
        pipeline_id: header.pipeline_id,
        epoch: header.epoch,
        offsets: header.offsets,
        watermark_micros: header.watermark_micros,
        transforms,
        created_at_ms: header.created_at_ms,
        base: header.base,
    })
}

pub mod testing;
