//! What a call produces, built up row by row.
//!
//! Rows are emitted in the order of the calls. An input row that is neither
//! emitted (`keep`, `update`), dropped nor rejected is dropped as `filtered`
//! by the host; saying so with [`Output::drop`] keeps the intent readable.

use crate::bindings::tributary::transform::types as wit;
use crate::{DropReason, Dropped, Emit, Rejected, Value};

/// The output of one `process` or `on_watermark` call.
#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    inner: wit::Output,
}

impl Default for Output {
    fn default() -> Self {
        Self {
            inner: wit::Output {
                emit: Vec::new(),
                dropped: Vec::new(),
                rejected: Vec::new(),
            },
        }
    }
}

fn assignments<N: Into<String>>(
    sets: impl IntoIterator<Item = (N, Value)>,
) -> Vec<(String, Value)> {
    sets.into_iter().map(|(name, v)| (name.into(), v)).collect()
}

impl Output {
    pub fn new() -> Self {
        Self::default()
    }

    /// Room for `additional` more emitted rows (for a transform that emits
    /// about one row per input row).
    pub fn reserve(&mut self, additional: usize) {
        self.inner.emit.reserve(additional);
    }

    /// Emits input row `row` unchanged, with all of its fields (not only the
    /// ones the transform read).
    pub fn keep(&mut self, row: u32) {
        self.inner.emit.push(Emit::Keep(row));
    }

    /// Emits input row `row` with these fields set; a field it does not have
    /// is added.
    pub fn update<N: Into<String>>(
        &mut self,
        row: u32,
        sets: impl IntoIterator<Item = (N, Value)>,
    ) {
        self.inner.emit.push(Emit::Update((row, assignments(sets))));
    }

    /// Emits a new row with these fields; every other field is null.
    pub fn insert<N: Into<String>>(&mut self, fields: impl IntoIterator<Item = (N, Value)>) {
        self.inner.emit.push(Emit::Insert(assignments(fields)));
    }

    /// Drops input row `row` on purpose, counted under `reason` in the host's
    /// metrics.
    pub fn drop(&mut self, row: u32, reason: DropReason) {
        self.inner.dropped.push(Dropped { row, reason });
    }

    /// Refuses input row `row` (bad data, not a bug): it goes to the
    /// pipeline's dead-letter output with `reason`, or stops the pipeline, by
    /// the pipeline's error policy.
    pub fn reject(&mut self, row: u32, reason: impl Into<String>) {
        self.inner.rejected.push(Rejected {
            row,
            reason: reason.into(),
        });
    }

    /// The emitted rows, in order.
    pub fn emitted(&self) -> &[Emit] {
        &self.inner.emit
    }

    pub fn dropped(&self) -> &[Dropped] {
        &self.inner.dropped
    }

    pub fn rejected(&self) -> &[Rejected] {
        &self.inner.rejected
    }

    /// Nothing emitted, dropped or rejected.
    pub fn is_empty(&self) -> bool {
        self.inner.emit.is_empty()
            && self.inner.dropped.is_empty()
            && self.inner.rejected.is_empty()
    }

    pub(crate) fn into_wit(self) -> wit::Output {
        self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_go_where_they_are_sent_in_order() {
        let mut out = Output::new();
        assert!(out.is_empty());
        out.keep(0);
        out.update(
            1,
            [("n", Value::Int(2)), ("who", Value::Text("a***".into()))],
        );
        out.drop(2, DropReason::Duplicate);
        out.reject(3, "missing `id`");
        out.insert([("id".to_string(), Value::Text("x".into()))]);
        out.drop(4, DropReason::Late);
        assert_eq!(
            out.emitted(),
            [
                Emit::Keep(0),
                Emit::Update((
                    1,
                    vec![
                        ("n".into(), Value::Int(2)),
                        ("who".into(), Value::Text("a***".into()))
                    ]
                )),
                Emit::Insert(vec![("id".into(), Value::Text("x".into()))]),
            ]
        );
        assert_eq!(
            out.dropped(),
            [
                Dropped {
                    row: 2,
                    reason: DropReason::Duplicate
                },
                Dropped {
                    row: 4,
                    reason: DropReason::Late
                },
            ]
        );
        assert_eq!(
            out.rejected(),
            [Rejected {
                row: 3,
                reason: "missing `id`".into()
            }]
        );
        assert!(!out.is_empty());
        let wit = out.clone().into_wit();
        assert_eq!(
            (wit.emit.len(), wit.dropped.len(), wit.rejected.len()),
            (3, 2, 1)
        );
    }

    #[test]
    fn an_update_with_nothing_set_is_still_emitted() {
        let mut out = Output::new();
        out.update(0, Vec::<(String, Value)>::new());
        assert_eq!(out.emitted(), [Emit::Update((0, vec![]))]);
    }
}
