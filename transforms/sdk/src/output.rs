//! What a call produces, built up row by row.
//!
//! Rows are emitted in the order of the calls. An input row that is neither
//! emitted (`keep`, `update`), dropped nor rejected is dropped as `filtered`
//! by the host; saying so with [`Output::drop`] keeps the intent readable.

use crate::bindings::tributary::transform::types as wit;
use crate::{DropReason, Dropped, Rejected, Value};

/// One output row, as [`Output`] records it.
#[derive(Clone, Debug, PartialEq)]
pub enum Emit {
    /// Input row `n`, unchanged (all of its fields, not only those shown).
    Keep(u32),
    /// Input row `n` with these fields set; a field it does not have is added.
    Update((u32, Vec<(String, Value)>)),
    /// A new row with these fields; every other field is null.
    Insert(Vec<(String, Value)>),
}

/// What the output holds; the rows are turned into the contract's columns
/// once, when the call returns ([`Output::into_wit`]).
#[derive(Clone, Debug, PartialEq, Default)]
struct Inner {
    emit: Vec<Emit>,
    dropped: Vec<Dropped>,
    rejected: Vec<Rejected>,
}

/// The output of one `process` or `on_watermark` call.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Output {
    inner: Inner,
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

    /// The contract's answer to a batch of `len` rows: the output rows as
    /// row numbers (none at all when every row is kept in order), and each
    /// field the rows set as columns.
    pub(crate) fn into_wit(self, len: usize) -> wit::Output {
        let Inner {
            emit,
            dropped,
            rejected,
        } = self.inner;
        let all_kept = emit.len() == len
            && emit
                .iter()
                .enumerate()
                .all(|(i, e)| matches!(e, Emit::Keep(r) if *r as usize == i));
        if all_kept {
            return wit::Output {
                rows: None,
                patches: Vec::new(),
                dropped,
                rejected,
            };
        }
        let mut rows = Vec::with_capacity(emit.len());
        let mut patches = Patches::default();
        let mut inserted = len as u32;
        let m = emit.len();
        for (at, e) in emit.into_iter().enumerate() {
            let sets = match e {
                Emit::Keep(r) => {
                    rows.push(r);
                    continue;
                }
                Emit::Update((r, sets)) => {
                    rows.push(r);
                    sets
                }
                Emit::Insert(sets) => {
                    rows.push(inserted);
                    inserted += 1;
                    sets
                }
            };
            for (k, (name, value)) in sets.iter().enumerate() {
                // A field set twice on one row: the last value wins.
                if sets[k + 1..].iter().any(|(n, _)| n == name) {
                    continue;
                }
                patches.set(name, at, value, m);
            }
        }
        wit::Output {
            rows: Some(rows),
            patches: patches.finish(),
            dropped,
            rejected,
        }
    }
}

/// The fields an output's rows set, as the contract's patches: one per field
/// and type of value (a field set to an int on one row and to text on
/// another is two patches, so the host can refuse the rows that do not fit
/// the column), in the order first set.
#[derive(Default)]
struct Patches {
    patches: Vec<PatchBuilder>,
}

struct PatchBuilder {
    name: String,
    /// The type of the values; none while only nulls were set.
    kind: Option<Kind>,
    /// (output row, value) in row order.
    cells: Vec<(usize, Value)>,
    rows: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Boolean,
    Int,
    Float,
    Text,
    Bytes,
    Timestamp,
    Json,
}

fn kind(v: &Value) -> Option<Kind> {
    Some(match v {
        Value::Null => return None,
        Value::Boolean(_) => Kind::Boolean,
        Value::Int(_) => Kind::Int,
        Value::Float(_) => Kind::Float,
        Value::Text(_) => Kind::Text,
        Value::Bytes(_) => Kind::Bytes,
        Value::Timestamp(_) => Kind::Timestamp,
        Value::Json(_) => Kind::Json,
    })
}

impl Patches {
    fn set(&mut self, name: &str, row: usize, value: &Value, rows: usize) {
        let k = kind(value);
        let found = self
            .patches
            .iter()
            .position(|p| p.name == name && (k.is_none() || p.kind.is_none() || p.kind == k));
        let at = match found {
            Some(at) => at,
            None => {
                self.patches.push(PatchBuilder {
                    name: name.to_string(),
                    kind: None,
                    cells: Vec::new(),
                    rows,
                });
                self.patches.len() - 1
            }
        };
        let p = &mut self.patches[at];
        if p.kind.is_none() {
            p.kind = k;
        }
        p.cells.push((row, value.clone()));
    }

    fn finish(self) -> Vec<wit::Patch> {
        self.patches.into_iter().map(PatchBuilder::finish).collect()
    }
}

impl PatchBuilder {
    fn finish(self) -> wit::Patch {
        let m = self.rows;
        let mut set = vec![0u8; m.div_ceil(8)];
        let mut validity = vec![0u8; m.div_ceil(8)];
        let mut any_null = false;
        for (row, v) in &self.cells {
            set[row / 8] |= 1 << (row % 8);
            if v.is_null() {
                any_null = true;
            } else {
                validity[row / 8] |= 1 << (row % 8);
            }
        }
        let all_set = self.cells.len() == m;
        // One value per output row; rows the patch does not set hold a
        // placeholder.
        let mut numbers = vec![0i64; 0];
        let mut floats = vec![0f64; 0];
        let mut bools = vec![false; 0];
        let mut packed = wit::Packed {
            offsets: vec![0],
            data: Vec::new(),
        };
        let kind = self.kind.unwrap_or(Kind::Json);
        match kind {
            Kind::Int | Kind::Timestamp => numbers = vec![0; m],
            Kind::Float => floats = vec![0.0; m],
            Kind::Boolean => bools = vec![false; m],
            _ => packed.offsets.reserve(m),
        }
        let mut cells = self.cells.into_iter().peekable();
        for row in 0..m {
            let value = match cells.peek() {
                Some((r, _)) if *r == row => cells.next().map(|(_, v)| v),
                _ => None,
            };
            match (kind, value) {
                (Kind::Int, Some(Value::Int(x))) | (Kind::Timestamp, Some(Value::Timestamp(x))) => {
                    numbers[row] = x
                }
                (Kind::Float, Some(Value::Float(x))) => floats[row] = x,
                (Kind::Boolean, Some(Value::Boolean(x))) => bools[row] = x,
                (Kind::Text, Some(Value::Text(s))) | (Kind::Json, Some(Value::Json(s))) => {
                    packed.data.extend_from_slice(s.as_bytes())
                }
                (Kind::Bytes, Some(Value::Bytes(b))) => packed.data.extend_from_slice(&b),
                _ => {}
            }
            if matches!(kind, Kind::Text | Kind::Bytes | Kind::Json) {
                packed.offsets.push(packed.data.len() as u32);
            }
        }
        let values = match kind {
            Kind::Int => wit::Values::Int(numbers),
            Kind::Timestamp => wit::Values::Timestamp(numbers),
            Kind::Float => wit::Values::Float(floats),
            Kind::Boolean => wit::Values::Boolean(bools),
            Kind::Text => wit::Values::Text(packed),
            Kind::Bytes => wit::Values::Bytes(packed),
            Kind::Json => wit::Values::Json(packed),
        };
        // Rows not set are null in `validity` too; it is left out only when
        // every row is set to a value.
        let validity = (any_null || !all_set).then_some(validity);
        wit::Patch {
            name: self.name,
            column: wit::Column { values, validity },
            set: (!all_set).then_some(set),
        }
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
        let wit = out.clone().into_wit(5);
        assert_eq!(wit.rows, Some(vec![0, 1, 5]));
        assert_eq!(
            (wit.patches.len(), wit.dropped.len(), wit.rejected.len()),
            (3, 2, 1)
        );
        // `n` on row 1; `who` on row 1; `id` on the inserted row 2.
        let names: Vec<&str> = wit.patches.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["n", "who", "id"]);
        assert_eq!(wit.patches[0].set, Some(vec![0b010]));
        assert_eq!(
            wit.patches[0].column.values,
            wit::Values::Int(vec![0, 2, 0])
        );
        assert_eq!(
            wit.patches[2].column.values,
            wit::Values::Text(wit::Packed {
                offsets: vec![0, 0, 0, 1],
                data: b"x".to_vec()
            })
        );
    }

    #[test]
    fn keeping_every_row_in_order_sends_no_rows_at_all() {
        let mut out = Output::new();
        (0..3).for_each(|r| out.keep(r));
        assert_eq!(out.clone().into_wit(3).rows, None);
        assert_eq!(out.into_wit(4).rows, Some(vec![0, 1, 2]), "row 3 filtered");
    }

    /// A field set to values of two types is two patches, so the host can
    /// refuse only the rows whose value does not fit; a null joins either.
    #[test]
    fn mixed_types_become_one_patch_per_type() {
        let mut out = Output::new();
        out.update(0, [("n", Value::Int(1))]);
        out.update(1, [("n", Value::Text("x".into()))]);
        out.update(2, [("n", Value::Null), ("n", Value::Int(3))]);
        out.update(3, [("n", Value::Null)]);
        let wit = out.into_wit(4);
        assert_eq!(wit.patches.len(), 2);
        assert_eq!(
            wit.patches[0].column.values,
            wit::Values::Int(vec![1, 0, 3, 0])
        );
        assert_eq!(wit.patches[0].set, Some(vec![0b1101]));
        assert_eq!(wit.patches[0].column.validity, Some(vec![0b0101]));
        assert_eq!(wit.patches[1].set, Some(vec![0b0010]));
    }

    #[test]
    fn an_update_with_nothing_set_is_still_emitted() {
        let mut out = Output::new();
        out.update(0, Vec::<(String, Value)>::new());
        assert_eq!(out.emitted(), [Emit::Update((0, vec![]))]);
    }
}
