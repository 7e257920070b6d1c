//! A pipeline's transforms in order ([`TransformChain`]): one batch through
//! all of them, the watermark, and the snapshot/restore of everything for
//! checkpoints.
//!
//! **Failures are isolated to records** when the pipeline dead-letters
//! ([`TransformChain::isolate_failures`]): a transform that fails on a batch
//! (trap, guest error, time or memory limit, invalid answer) has that call
//! rolled back (its state changes undone, a trapped instance replaced) and is
//! called again on each half of the batch, down to single records, which it
//! then rejects with the failure as the reason. The rows it accepted go on
//! down the chain. So every row lands in the sink or the dead-letter output,
//! including rows an earlier transform released at a watermark move, and
//! the earlier transforms' state stays true to what they emitted. A failure
//! of `on-watermark` itself has no record to blame: the chain fails, and the
//! pipeline stops and replays from its last checkpoint.

use arrow_array::RecordBatch;
use serde_json::Value as Json;

use crate::bindings::tributary::transform::types as v2;
use crate::bindings_v1::tributary::transform::types as v1;
use crate::columnar::{self, View};
use crate::convert;
use crate::engine::{TransformEngine, TransformSpec};
use crate::error::TransformError;
use crate::instance::{Answer, TransformInstance};

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
    /// Rows a failing transform was found to fail on alone, by splitting
    /// the batch (also in `rejected`).
    pub isolated: u64,
}

/// How many failed calls isolating the failing rows of one batch may cost
/// (shared by every transform of the chain). Each failure splits a piece in
/// two, so k bad rows in n take about 2·k·log2(n) calls; once the budget is
/// spent, pieces not yet tried are rejected whole, which bounds the cost of
/// a transform that fails on everything (at most the budget in failed calls
/// per batch, four for one that always times out).
const ISOLATION_BUDGET: u32 = 32;

/// What a failed call takes from the budget: a timeout costs the whole time
/// limit, so it counts as several.
fn isolation_cost(e: &TransformError) -> u32 {
    match e {
        TransformError::Timeout { .. } => 8,
        _ => 1,
    }
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
    /// Reject the rows a transform fails on instead of failing the chain.
    isolate: bool,
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
            isolate: false,
        })
    }

    /// Whether a transform's failure on a batch is narrowed down to the rows
    /// it fails on, which it then rejects (see the module's notes), rather
    /// than failing the whole call. For pipelines that dead-letter; off by
    /// default, so a failure stops the pipeline.
    pub fn isolate_failures(&mut self, on: bool) {
        self.isolate = on;
    }

    /// Sets the watermark a restored checkpoint carried.
    pub fn restore_watermark(&mut self, watermark: Option<i64>) {
        self.watermark = watermark;
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

    /// Each transform's name and the length of its snapshot, in order: what
    /// a store needs before [`write_snapshot`](Self::write_snapshot) streams
    /// the snapshots themselves.
    pub fn snapshot_lens(&self) -> Vec<(String, u64)> {
        self.instances
            .iter()
            .map(|i| (i.name.clone(), i.snapshot_len() as u64))
            .collect()
    }

    /// Writes the snapshot of the `i`-th transform to `w`.
    pub fn write_snapshot(&self, i: usize, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        match self.instances.get(i) {
            Some(instance) => instance.write_snapshot(w),
            None => Ok(()),
        }
    }

    /// Like [`snapshot`](Self::snapshot), but each transform's state is a
    /// changelog: only the keys changed since the last
    /// [`clear_changes`](Self::clear_changes).
    pub fn changelog(&self) -> ChainState {
        ChainState {
            watermark: self.watermark,
            transforms: self
                .instances
                .iter()
                .map(|i| (i.name.clone(), i.changelog()))
                .collect(),
        }
    }

    /// Keys changed in every transform's state since the last checkpoint.
    pub fn changes(&self) -> usize {
        self.instances.iter().map(TransformInstance::changes).sum()
    }

    /// Marks the state as it is now checkpointed: the next
    /// [`changelog`](Self::changelog) starts from here.
    pub fn clear_changes(&mut self) {
        for i in &mut self.instances {
            i.clear_changes();
        }
    }

    /// Replays changelogs (what [`changelog`](Self::changelog) gave) over
    /// the state restored last, and takes their watermark.
    pub fn apply_changelog(&mut self, changes: ChainState) -> Result<(), TransformError> {
        self.load(changes, TransformInstance::apply_changelog)
    }

    pub fn restore(&mut self, state: ChainState) -> Result<(), TransformError> {
        self.load(state, TransformInstance::restore)
    }

    /// Takes a checkpoint's watermark and hands each transform its state
    /// bytes with `load`; a state of a transform the pipeline no longer has
    /// is ignored, with a warning.
    fn load(
        &mut self,
        state: ChainState,
        load: fn(&mut TransformInstance, &[u8]) -> Result<(), TransformError>,
    ) -> Result<(), TransformError> {
        self.watermark = state.watermark;
        for (name, bytes) in &state.transforms {
            match self.instances.iter_mut().find(|i| &i.name == name) {
                Some(i) => load(i, bytes)?,
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

    /// Runs `batch` through transforms `from..`; what comes out of the last
    /// goes to `out.batches`, gathered there once (the transforms before
    /// only narrowed its selection, unless one changed a field).
    fn run_from(
        &mut self,
        from: usize,
        batch: View,
        step: &mut Step,
        out: &mut ChainOutput,
    ) -> Result<(), TransformError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if from == self.instances.len() {
            out.batches.push(batch.materialize());
            return Ok(());
        }
        for piece in self.call_process(from, batch, step, out)? {
            self.run_from(from + 1, piece, step, out)?;
        }
        Ok(())
    }

    /// Transform `i` on `batch`: the rows it passed on, in order (several
    /// pieces when a failure was isolated). The recursion halves the batch
    /// at each level, so it is at most log2(rows) deep.
    fn call_process(
        &mut self,
        i: usize,
        batch: View,
        step: &mut Step,
        out: &mut ChainOutput,
    ) -> Result<Vec<View>, TransformError> {
        let instance = &mut self.instances[i];
        let failure = match instance.process(&batch, self.watermark) {
            Ok((answer, p)) => {
                if let Some(p) = p {
                    step.proposal = Some(step.proposal.map_or(p, |q| q.max(p)));
                }
                // An invalid answer is isolated like a failed call; the
                // state changes of that call stay (the call itself ended).
                match apply(&instance.name, &batch, answer, out) {
                    Ok(passed) => return Ok(vec![passed]),
                    Err(e) => e,
                }
            }
            Err(e) => e,
        };
        if !(self.isolate && failure.is_batch_failure()) {
            return Err(failure);
        }
        step.budget = step.budget.saturating_sub(isolation_cost(&failure));
        let n = batch.num_rows();
        if n == 1 {
            out.isolated += 1;
            let reason = format!(
                "{failure}; this record alone makes it fail (isolated by splitting its batch)"
            );
            self.reject(i, &batch, &reason, out);
            return Ok(Vec::new());
        }
        let half = n / 2;
        let mut passed = Vec::new();
        for piece in [batch.slice(0, half), batch.slice(half, n - half)] {
            if step.budget == 0 {
                // Out of budget: the rest is rejected untried, so a
                // transform that fails on everything (or times out) costs a
                // bounded number of calls per batch.
                let reason = format!(
                    "{failure}; one of these {} records makes it fail (splitting the batch to \
                     find which stopped after {ISOLATION_BUDGET} failed calls' worth)",
                    piece.num_rows()
                );
                self.reject(i, &piece, &reason, out);
            } else {
                passed.extend(self.call_process(i, piece, step, out)?);
            }
        }
        Ok(passed)
    }

    /// Every row of `batch`, rejected by transform `i` for `reason`.
    fn reject(&self, i: usize, batch: &View, reason: &str, out: &mut ChainOutput) {
        let transform = &self.instances[i].name;
        out.rejected
            .extend(batch.rows_json().into_iter().map(|record| RejectedRow {
                transform: transform.clone(),
                reason: reason.to_string(),
                record,
            }));
    }

    /// One batch through every transform; then, if the watermark moved, the
    /// `on-watermark` calls and state eviction.
    pub fn run(&mut self, batch: &RecordBatch) -> Result<ChainOutput, TransformError> {
        let mut out = ChainOutput::default();
        let mut step = Step {
            proposal: None,
            budget: ISOLATION_BUDGET,
        };
        self.run_from(0, View::new(batch.clone()), &mut step, &mut out)?;
        if let Some(p) = step.proposal
            && self.watermark.is_none_or(|w| p > w)
        {
            self.watermark = Some(p);
            for i in 0..self.instances.len() {
                let answer = self.instances[i].on_watermark(p)?;
                if answer.emits_nothing() {
                    continue;
                }
                let empty = View::new(RecordBatch::new_empty(batch.schema()));
                let name = self.instances[i].name.clone();
                let emitted = apply(&name, &empty, answer, &mut out)?;
                // Rows released at this watermark propose nothing more.
                let mut released = Step {
                    proposal: None,
                    budget: step.budget,
                };
                self.run_from(i + 1, emitted, &mut released, &mut out)?;
                step.budget = released.budget;
            }
            for instance in &mut self.instances {
                instance.evict_expired(p);
            }
        }
        Ok(out)
    }
}

/// What one [`TransformChain::run`] carries along its calls.
struct Step {
    /// The largest watermark a transform proposed.
    proposal: Option<i64>,
    /// Failed calls the isolation may still cost.
    budget: u32,
}

/// A row a guest dropped, and why.
type RowDrop = (u32, v2::DropReason);
/// A row a guest rejected, and why.
type RowRejection = (u32, String);

/// Applies a guest's answer to its input: counts and collects drops and
/// rejections, and assembles the rows it emitted.
fn apply(
    name: &str,
    input: &View,
    answer: Answer,
    out: &mut ChainOutput,
) -> Result<View, TransformError> {
    let bad = |message: String| TransformError::Output {
        transform: name.to_string(),
        message,
    };
    let n = input.num_rows();
    let mut accounted = vec![false; n];
    // What the guest said of each row, whatever its version: the rows it
    // passed on, and its drops and rejections.
    let (dropped, rejected): (Vec<RowDrop>, Vec<RowRejection>) = match &answer {
        Answer::V2(a) => {
            match &a.rows {
                None => accounted.iter_mut().for_each(|x| *x = true),
                Some(rows) => rows.iter().for_each(|r| {
                    if let Some(x) = accounted.get_mut(*r as usize) {
                        *x = true;
                    }
                }),
            }
            (
                a.dropped.iter().map(|d| (d.row, d.reason)).collect(),
                a.rejected
                    .iter()
                    .map(|r| (r.row, r.reason.clone()))
                    .collect(),
            )
        }
        Answer::V1(a) => {
            for e in &a.emit {
                if let v1::Emit::Keep(i) | v1::Emit::Update((i, _)) = e
                    && let Some(x) = accounted.get_mut(*i as usize)
                {
                    *x = true;
                }
            }
            (
                a.dropped
                    .iter()
                    .map(|d| {
                        let reason = match d.reason {
                            v1::DropReason::Late => v2::DropReason::Late,
                            v1::DropReason::Duplicate => v2::DropReason::Duplicate,
                            v1::DropReason::Filtered => v2::DropReason::Filtered,
                        };
                        (d.row, reason)
                    })
                    .collect(),
                a.rejected
                    .iter()
                    .map(|r| (r.row, r.reason.clone()))
                    .collect(),
            )
        }
    };
    for (row, reason) in dropped {
        let i = row as usize;
        if i >= n {
            return Err(bad(format!("dropped row {i} of a {n}-row batch")));
        }
        accounted[i] = true;
        match reason {
            // One row at a time: a batch with a single late row (the common
            // case) must not pay for writing every row of it as JSON.
            v2::DropReason::Late => out.late.push(LateRow {
                transform: name.to_string(),
                record: input.row_json(i),
            }),
            v2::DropReason::Duplicate => out.duplicates += 1,
            v2::DropReason::Filtered => out.filtered += 1,
        }
    }
    for (row, reason) in rejected {
        let i = row as usize;
        if i >= n {
            return Err(bad(format!("rejected row {i} of a {n}-row batch")));
        }
        accounted[i] = true;
        out.rejected.push(RejectedRow {
            transform: name.to_string(),
            reason,
            record: input.row_json(i),
        });
    }
    out.filtered += accounted.iter().filter(|a| !**a).count() as u64;
    let reject = |out: &mut ChainOutput, reason: String, record: Json| {
        out.rejected.push(RejectedRow {
            transform: name.to_string(),
            reason,
            record,
        })
    };
    match answer {
        Answer::V2(a) => {
            let columnar::Assembled { view, refused } =
                columnar::assemble(input, a.rows, a.patches).map_err(|e| bad(e.0))?;
            for (record, reason) in refused {
                reject(out, reason, record);
            }
            Ok(view)
        }
        Answer::V1(a) => {
            let convert::Assembled {
                batch,
                refused,
                inserted,
            } = convert::assemble(&input.materialize(), a.emit).map_err(|e| bad(e.0))?;
            for r in refused {
                let record = match r.row {
                    convert::RowRef::Input(i) => input.row_json(i as usize),
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
                reject(out, r.reason, record);
            }
            Ok(View::new(batch))
        }
    }
}
