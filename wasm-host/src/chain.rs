//! A pipeline's transforms in order ([`TransformChain`]): one batch through
//! all of them, the watermark, and the snapshot/restore of everything for
//! checkpoints.

use arrow_array::RecordBatch;
use serde_json::Value as Json;

use crate::bindings::exports::tributary::transform::processor::Output;
use crate::bindings::tributary::transform::types::{DropReason, Emit};
use crate::convert::{self, rows_as_json};
use crate::engine::{TransformEngine, TransformSpec};
use crate::error::TransformError;
use crate::instance::TransformInstance;

/// A late row, as JSON, with the transform that dropped it.
#[derive(Clone, Debug)]
pub struct LateRow {
    pub transform: String,
    pub record: Json,
}

/// A rejected row, with who rejected it and why.
#[derive(Clone, Debug)]
pub struct RejectedRow {
    pub transform: String,
    pub reason: String,
    pub record: Json,
}

/// What one batch became.
#[derive(Debug, Default)]
pub struct ChainOutput {
    /// Rows for the sink (several batches when a transform emitted rows on a
    /// watermark move; their schemas may differ by added fields).
    pub batches: Vec<RecordBatch>,
    pub late: Vec<LateRow>,
    pub duplicates: u64,
    pub filtered: u64,
    pub rejected: Vec<RejectedRow>,
}

/// Everything a chain needs to resume: the watermark and each transform's
/// state, by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChainState {
    pub watermark: Option<i64>,
    pub transforms: Vec<(String, Vec<u8>)>,
}

/// A pipeline's transforms, in order, and its watermark.
pub struct TransformChain {
    instances: Vec<TransformInstance>,
    watermark: Option<i64>,
}

impl std::fmt::Debug for TransformChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransformChain")
            .field("watermark", &self.watermark)
            .finish_non_exhaustive()
    }
}

impl TransformChain {
    pub fn new(
        engine: &TransformEngine,
        specs: Vec<TransformSpec>,
    ) -> Result<Self, TransformError> {
        let instances = specs
            .into_iter()
            .map(|s| TransformInstance::new(engine, s))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            instances,
            watermark: None,
        })
    }

    pub fn watermark(&self) -> Option<i64> {
        self.watermark
    }

    /// Whether a lost checkpoint would lose anything (any transform at all:
    /// their state is opaque to the host).
    pub fn is_stateful(&self) -> bool {
        !self.instances.is_empty()
    }

    pub fn snapshot(&self) -> ChainState {
        ChainState {
            watermark: self.watermark,
            transforms: self
                .instances
                .iter()
                .map(|i| (i.name.clone(), i.snapshot()))
                .collect(),
        }
    }

    pub fn restore(&mut self, state: ChainState) -> Result<(), TransformError> {
        self.watermark = state.watermark;
        for (name, bytes) in &state.transforms {
            match self.instances.iter_mut().find(|i| &i.name == name) {
                Some(i) => i.restore(bytes)?,
                None => tracing::warn!(
                    "the checkpoint has state of transform `{name}`, which the pipeline no longer has; ignored"
                ),
            }
        }
        Ok(())
    }

    /// Entries in every transform's state store.
    pub fn state_entries(&self) -> usize {
        self.instances
            .iter()
            .map(TransformInstance::state_len)
            .sum()
    }

    /// Runs `batch` through transforms `from..`, collecting into `out`.
    fn run_from(
        &mut self,
        from: usize,
        batch: RecordBatch,
        proposal: &mut Option<i64>,
        out: &mut ChainOutput,
    ) -> Result<Option<RecordBatch>, TransformError> {
        let mut current = batch;
        for instance in &mut self.instances[from..] {
            if current.num_rows() == 0 {
                return Ok(None);
            }
            let (answer, p) = instance.process(&current, self.watermark)?;
            if let Some(p) = p {
                *proposal = Some(proposal.map_or(p, |q: i64| q.max(p)));
            }
            current = apply(instance.name(), &current, answer, out)?;
        }
        Ok((current.num_rows() > 0).then_some(current))
    }

    /// One batch through every transform; then, if the watermark moved, the
    /// `on-watermark` calls and state eviction.
    pub fn run(&mut self, batch: &RecordBatch) -> Result<ChainOutput, TransformError> {
        let mut out = ChainOutput::default();
        let mut proposal = None;
        if let Some(b) = self.run_from(0, batch.clone(), &mut proposal, &mut out)? {
            out.batches.push(b);
        }
        if let Some(p) = proposal
            && self.watermark.is_none_or(|w| p > w)
        {
            self.watermark = Some(p);
            for i in 0..self.instances.len() {
                let answer = self.instances[i].on_watermark(p)?;
                if answer.emit.is_empty() && answer.rejected.is_empty() {
                    continue;
                }
                let empty = RecordBatch::new_empty(batch.schema());
                let name = self.instances[i].name.clone();
                let emitted = apply(&name, &empty, answer, &mut out)?;
                let mut ignored = None;
                if let Some(b) = self.run_from(i + 1, emitted, &mut ignored, &mut out)? {
                    out.batches.push(b);
                }
            }
            for instance in &mut self.instances {
                instance.evict_expired(p);
            }
        }
        Ok(out)
    }
}

/// Applies a guest's answer to its input: counts and collects drops and
/// rejections, and assembles the rows it emitted.
fn apply(
    name: &str,
    input: &RecordBatch,
    answer: Output,
    out: &mut ChainOutput,
) -> Result<RecordBatch, TransformError> {
    let bad = |message: String| TransformError::Output {
        transform: name.to_string(),
        message,
    };
    let n = input.num_rows();
    let mut accounted = vec![false; n];
    // One row at a time: a batch with a single late row (the common case)
    // must not pay for writing every row of it as JSON.
    let row_json = |i: usize| -> Json {
        if i >= input.num_rows() {
            return Json::Null;
        }
        rows_as_json(&input.slice(i, 1))
            .into_iter()
            .next()
            .unwrap_or(Json::Null)
    };
    for e in &answer.emit {
        if let Emit::Keep(i) | Emit::Update((i, _)) = e
            && let Some(a) = accounted.get_mut(*i as usize)
        {
            *a = true;
        }
    }
    for d in &answer.dropped {
        let i = d.row as usize;
        if i >= n {
            return Err(bad(format!("dropped row {i} of a {n}-row batch")));
        }
        accounted[i] = true;
        match d.reason {
            DropReason::Late => out.late.push(LateRow {
                transform: name.to_string(),
                record: row_json(i),
            }),
            DropReason::Duplicate => out.duplicates += 1,
            DropReason::Filtered => out.filtered += 1,
        }
    }
    for r in &answer.rejected {
        let i = r.row as usize;
        if i >= n {
            return Err(bad(format!("rejected row {i} of a {n}-row batch")));
        }
        accounted[i] = true;
        out.rejected.push(RejectedRow {
            transform: name.to_string(),
            reason: r.reason.clone(),
            record: row_json(i),
        });
    }
    out.filtered += accounted.iter().filter(|a| !**a).count() as u64;
    let convert::Assembled {
        batch,
        refused,
        inserted,
    } = convert::assemble(input, answer.emit).map_err(|e| bad(e.0))?;
    for r in refused {
        let record = match r.row {
            convert::RowRef::Input(i) => row_json(i as usize),
            convert::RowRef::Inserted(k) => inserted
                .iter()
                .find(|(idx, _)| *idx == k)
                .map(|(_, a)| {
                    Json::Object(
                        a.iter()
                            .map(|(n, v)| (n.clone(), Json::String(format!("{v:?}"))))
                            .collect(),
                    )
                })
                .unwrap_or(Json::Null),
        };
        out.rejected.push(RejectedRow {
            transform: name.to_string(),
            reason: r.reason,
            record,
        });
    }
    Ok(batch)
}
