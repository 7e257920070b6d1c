//! Arrow ⇄ WIT 0.2.0: columns in, a selection or patched columns out.
//!
//! A batch travels down the chain as a [`View`]: the Arrow batch that came
//! from the source and, once a transform has filtered it, the row numbers
//! still in it. A 0.2.0 guest is shown the view's columns gathered straight
//! from Arrow's buffers (one copy per column: a typed list, or for strings
//! one offsets list and one byte buffer). A guest that only keeps or drops
//! rows answers with row numbers, which compose with the view's; nothing is
//! copied until a guest changes or adds a field, or the chain hands the rows
//! to the sink ([`View::materialize`], one `take` per column).

use std::sync::Arc;

use arrow_array::builder::BooleanBufferBuilder;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray, UInt32Array, new_null_array,
};
use arrow_buffer::{NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use serde_json::Value as Json;

use crate::bindings::tributary::transform::types::{
    Batch, Column, Field as WitField, FieldType, Packed, Patch, Values,
};
use crate::bindings_v1::tributary::transform::types::Value as V1Value;
use crate::convert::{BadEmit, rows_as_json, value_at};

const UTC: &str = "+00:00";

/// Rows of a batch on their way down the chain: `base`, or the rows of
/// `base` that `selection` lists, in its order.
#[derive(Clone, Debug)]
pub struct View {
    base: RecordBatch,
    selection: Option<Arc<[u32]>>,
}

impl View {
    pub fn new(base: RecordBatch) -> Self {
        Self {
            base,
            selection: None,
        }
    }

    pub fn num_rows(&self) -> usize {
        self.selection
            .as_ref()
            .map_or(self.base.num_rows(), |s| s.len())
    }

    /// The row of `base` that row `i` of the view is.
    fn base_row(&self, i: usize) -> usize {
        self.selection.as_ref().map_or(i, |s| s[i] as usize)
    }

    /// Rows `offset..offset + len` of the view.
    pub fn slice(&self, offset: usize, len: usize) -> View {
        match &self.selection {
            None => View::new(self.base.slice(offset, len)),
            Some(s) => View {
                base: self.base.clone(),
                selection: Some(s[offset..offset + len].into()),
            },
        }
    }

    /// The view's rows as one Arrow batch (gathered once, when selected).
    pub fn materialize(&self) -> RecordBatch {
        match &self.selection {
            None => self.base.clone(),
            Some(s) => {
                let idx = UInt32Array::from(s.to_vec());
                let columns = self
                    .base
                    .columns()
                    .iter()
                    .map(|c| arrow_select::take::take(c.as_ref(), &idx, None))
                    .collect::<Result<Vec<_>, _>>()
                    .expect("selected rows are within the batch");
                RecordBatch::try_new(self.base.schema(), columns)
                    .expect("taking rows keeps the schema")
            }
        }
    }

    /// Row `i` as JSON (for dead letters and late rows).
    pub fn row_json(&self, i: usize) -> Json {
        if i >= self.num_rows() {
            return Json::Null;
        }
        rows_as_json(&self.base.slice(self.base_row(i), 1))
            .into_iter()
            .next()
            .unwrap_or(Json::Null)
    }

    /// Every row as JSON.
    pub fn rows_json(&self) -> Vec<Json> {
        rows_as_json(&self.materialize())
    }
}

fn field_type(dt: &DataType) -> FieldType {
    match dt {
        DataType::Boolean => FieldType::Boolean,
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => FieldType::Int,
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => FieldType::Int,
        DataType::Float32 | DataType::Float64 => FieldType::Float,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => FieldType::Text,
        DataType::Binary | DataType::LargeBinary => FieldType::Bytes,
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => FieldType::Timestamp,
        _ => FieldType::Json,
    }
}

/// The view's rows of `array`, gathered with `rows`.
struct Gather<'a> {
    array: &'a dyn Array,
    rows: Option<&'a [u32]>,
    len: usize,
}

impl Gather<'_> {
    fn indices(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.len).map(move |i| self.rows.map_or(i, |r| r[i] as usize))
    }

    fn validity(&self) -> Option<Vec<u8>> {
        let nulls = self.array.logical_nulls()?;
        if nulls.null_count() == 0 {
            return None;
        }
        let mut bits = vec![0u8; self.len.div_ceil(8)];
        let mut any_null = false;
        for (i, row) in self.indices().enumerate() {
            if nulls.is_valid(row) {
                bits[i / 8] |= 1 << (i % 8);
            } else {
                any_null = true;
            }
        }
        any_null.then_some(bits)
    }

    fn primitive<T: arrow_array::ArrowPrimitiveType>(
        &self,
        f: impl Fn(T::Native) -> i64,
    ) -> Vec<i64> {
        let values = self.array.as_primitive::<T>().values();
        self.indices().map(|r| f(values[r])).collect()
    }

    fn floats<T: arrow_array::ArrowPrimitiveType>(&self, f: impl Fn(T::Native) -> f64) -> Vec<f64> {
        let values = self.array.as_primitive::<T>().values();
        self.indices().map(|r| f(values[r])).collect()
    }

    /// Variable-length values, packed; `value(row)` reads one.
    fn packed<'b>(
        &'b self,
        value: impl Fn(usize) -> &'b [u8],
        nulls: Option<&NullBuffer>,
    ) -> Packed {
        let mut offsets = Vec::with_capacity(self.len + 1);
        let mut data = Vec::new();
        offsets.push(0u32);
        for r in self.indices() {
            if nulls.is_none_or(|n| n.is_valid(r)) {
                data.extend_from_slice(value(r));
            }
            offsets.push(data.len() as u32);
        }
        Packed { offsets, data }
    }

    /// Contiguous `i32`-offset values with no selection: one copy of the
    /// used part of the buffer, offsets rebased to 0.
    fn packed_contiguous(offsets: &[i32], values: &[u8]) -> Packed {
        let first = offsets[0];
        let start = first as usize;
        let end = offsets[offsets.len() - 1] as usize;
        Packed {
            offsets: offsets.iter().map(|o| (o - first) as u32).collect(),
            data: values[start..end].to_vec(),
        }
    }

    fn values(&self) -> Values {
        let a = self.array;
        let micros = |unit: &TimeUnit| -> i64 {
            match unit {
                TimeUnit::Second => 1_000_000,
                TimeUnit::Millisecond => 1_000,
                TimeUnit::Microsecond | TimeUnit::Nanosecond => 1,
            }
        };
        match a.data_type() {
            DataType::Boolean => {
                let b = a.as_boolean();
                Values::Boolean(self.indices().map(|r| b.value(r)).collect())
            }
            DataType::Int8 => Values::Int(self.primitive::<Int8Type>(i64::from)),
            DataType::Int16 => Values::Int(self.primitive::<Int16Type>(i64::from)),
            DataType::Int32 => Values::Int(self.primitive::<Int32Type>(i64::from)),
            DataType::Int64 => Values::Int(match self.rows {
                None => a.as_primitive::<Int64Type>().values().to_vec(),
                Some(_) => self.primitive::<Int64Type>(|v| v),
            }),
            DataType::UInt8 => Values::Int(self.primitive::<UInt8Type>(i64::from)),
            DataType::UInt16 => Values::Int(self.primitive::<UInt16Type>(i64::from)),
            DataType::UInt32 => Values::Int(self.primitive::<UInt32Type>(i64::from)),
            DataType::UInt64 => Values::Int(self.primitive::<UInt64Type>(|v| v as i64)),
            DataType::Float32 => Values::Float(self.floats::<Float32Type>(f64::from)),
            DataType::Float64 => Values::Float(self.floats::<Float64Type>(|v| v)),
            DataType::Utf8 => {
                let s = a.as_string::<i32>();
                Values::Text(match self.rows {
                    None => Self::packed_contiguous(s.value_offsets(), s.values()),
                    Some(_) => self.packed(|r| s.value(r).as_bytes(), s.nulls()),
                })
            }
            DataType::LargeUtf8 => {
                let s = a.as_string::<i64>();
                Values::Text(self.packed(|r| s.value(r).as_bytes(), s.nulls()))
            }
            DataType::Utf8View => {
                let s = a.as_string_view();
                Values::Text(self.packed(|r| s.value(r).as_bytes(), s.nulls()))
            }
            DataType::Binary => {
                let b = a.as_binary::<i32>();
                Values::Bytes(match self.rows {
                    None => Self::packed_contiguous(b.value_offsets(), b.values()),
                    Some(_) => self.packed(|r| b.value(r), b.nulls()),
                })
            }
            DataType::LargeBinary => {
                let b = a.as_binary::<i64>();
                Values::Bytes(self.packed(|r| b.value(r), b.nulls()))
            }
            DataType::Timestamp(unit, _) => {
                let m = micros(unit);
                Values::Timestamp(match unit {
                    TimeUnit::Second => {
                        self.primitive::<TimestampSecondType>(|v| v.saturating_mul(m))
                    }
                    TimeUnit::Millisecond => {
                        self.primitive::<TimestampMillisecondType>(|v| v.saturating_mul(m))
                    }
                    TimeUnit::Microsecond => self.primitive::<TimestampMicrosecondType>(|v| v),
                    TimeUnit::Nanosecond => {
                        self.primitive::<TimestampNanosecondType>(|v| v / 1_000)
                    }
                })
            }
            DataType::Date32 => Values::Timestamp(
                self.primitive::<Date32Type>(|d| i64::from(d).saturating_mul(86_400_000_000)),
            ),
            DataType::Date64 => {
                Values::Timestamp(self.primitive::<Date64Type>(|d| d.saturating_mul(1000)))
            }
            // Nested data: each value as a JSON document (rare; per row).
            _ => {
                let docs: Vec<Option<String>> = self
                    .indices()
                    .map(|r| match value_at(a, r) {
                        V1Value::Json(j) => Some(j),
                        _ => None,
                    })
                    .collect();
                let mut offsets = vec![0u32];
                let mut data = Vec::new();
                for d in &docs {
                    if let Some(d) = d {
                        data.extend_from_slice(d.as_bytes());
                    }
                    offsets.push(data.len() as u32);
                }
                Values::Json(Packed { offsets, data })
            }
        }
    }
}

/// The WIT batch of `fields` (all when `None`) of the view's rows.
pub fn to_wit(view: &View, fields: Option<&[String]>) -> Batch {
    let schema = view.base.schema();
    let len = view.num_rows();
    let rows = view.selection.as_deref();
    let column = |i: usize| {
        let g = Gather {
            array: view.base.column(i).as_ref(),
            rows,
            len,
        };
        Column {
            values: g.values(),
            validity: g.validity(),
        }
    };
    let wit_field = |f: &Field| WitField {
        name: f.name().clone(),
        type_: field_type(f.data_type()),
        nullable: f.is_nullable(),
    };
    let (fields, columns) = match fields {
        None => (0..schema.fields().len())
            .map(|i| (wit_field(schema.field(i)), column(i)))
            .unzip(),
        Some(names) => names
            .iter()
            .map(|n| match schema.index_of(n) {
                Ok(i) => (wit_field(schema.field(i)), column(i)),
                // Asked for but absent: shown as an all-null column.
                Err(_) => (
                    WitField {
                        name: n.clone(),
                        type_: FieldType::Json,
                        nullable: true,
                    },
                    Column {
                        values: Values::Json(Packed {
                            offsets: vec![0; len + 1],
                            data: Vec::new(),
                        }),
                        validity: Some(vec![0; len.div_ceil(8)]),
                    },
                ),
            })
            .unzip(),
    };
    Batch {
        fields,
        len: len as u32,
        columns,
    }
}

/// Bit `i` of an LSB-first bitmap.
fn bit(bits: &[u8], i: usize) -> bool {
    bits.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
}

fn kind_name(v: &Values) -> &'static str {
    match v {
        Values::Boolean(_) => "boolean",
        Values::Int(_) => "int",
        Values::Float(_) => "float",
        Values::Text(_) => "text",
        Values::Bytes(_) => "bytes",
        Values::Timestamp(_) => "timestamp",
        Values::Json(_) => "json",
    }
}

fn values_len(v: &Values) -> usize {
    match v {
        Values::Boolean(x) => x.len(),
        Values::Int(x) | Values::Timestamp(x) => x.len(),
        Values::Float(x) => x.len(),
        Values::Text(p) | Values::Bytes(p) | Values::Json(p) => p.offsets.len().saturating_sub(1),
    }
}

/// A guest's column as an Arrow array of its natural type, or what is wrong
/// with it (a guest bug).
fn to_arrow(column: Column, len: usize) -> Result<ArrayRef, String> {
    let got = values_len(&column.values);
    if got != len {
        return Err(format!(
            "a {} column has {got} values for {len} rows",
            kind_name(&column.values)
        ));
    }
    if let Some(v) = &column.validity
        && v.len() < len.div_ceil(8)
    {
        return Err(format!(
            "a validity bitmap of {} bytes for {len} rows",
            v.len()
        ));
    }
    let nulls = column.validity.map(|bits| {
        let mut b = BooleanBufferBuilder::new(len);
        (0..len).for_each(|i| b.append(bit(&bits, i)));
        NullBuffer::new(b.finish())
    });
    let packed = |p: Packed| -> Result<(OffsetBuffer<i32>, arrow_buffer::Buffer), String> {
        let offsets: Vec<i32> = p
            .offsets
            .iter()
            .map(|o| i32::try_from(*o).map_err(|_| "an offset past 2 GiB".to_string()))
            .collect::<Result<_, _>>()?;
        if offsets.first() != Some(&0)
            || offsets.windows(2).any(|w| w[0] > w[1])
            || offsets.last().is_some_and(|l| *l as usize != p.data.len())
        {
            return Err(
                "packed offsets must start at 0, never decrease and end at the data's length"
                    .into(),
            );
        }
        Ok((
            OffsetBuffer::new(ScalarBuffer::from(offsets)),
            arrow_buffer::Buffer::from_vec(p.data),
        ))
    };
    Ok(match column.values {
        Values::Boolean(x) => Arc::new(BooleanArray::new(x.into_iter().collect(), nulls)),
        Values::Int(x) => Arc::new(Int64Array::new(x.into(), nulls)),
        Values::Float(x) => Arc::new(Float64Array::new(x.into(), nulls)),
        Values::Timestamp(x) => {
            Arc::new(TimestampMicrosecondArray::new(x.into(), nulls).with_timezone(UTC))
        }
        Values::Text(p) | Values::Json(p) => {
            let (offsets, data) = packed(p)?;
            Arc::new(
                StringArray::try_new(offsets, data, nulls)
                    .map_err(|e| format!("a text column that is not UTF-8: {e}"))?,
            )
        }
        Values::Bytes(p) => {
            let (offsets, data) = packed(p)?;
            Arc::new(BinaryArray::try_new(offsets, data, nulls).map_err(|e| e.to_string())?)
        }
    })
}

/// Whether a guest's `kind` of values may be stored in a column of type `dt`
/// (converted by Arrow's cast, row by row: a value that does not fit refuses
/// its row).
fn compatible(kind: &DataType, dt: &DataType) -> bool {
    use DataType as D;
    match kind {
        D::Boolean => matches!(dt, D::Boolean),
        D::Int64 => dt.is_integer() || dt.is_floating() || matches!(dt, D::Timestamp(_, _)),
        D::Float64 => dt.is_floating(),
        D::Utf8 => matches!(dt, D::Utf8 | D::LargeUtf8 | D::Utf8View),
        D::Binary => matches!(dt, D::Binary | D::LargeBinary),
        D::Timestamp(_, _) => matches!(dt, D::Timestamp(_, _) | D::Date32 | D::Date64),
        _ => false,
    }
}

/// What [`assemble`] made of a guest's answer.
#[derive(Debug)]
pub struct Assembled {
    pub view: View,
    /// Output rows refused because a value did not fit its column: the row
    /// as JSON and why.
    pub refused: Vec<(Json, String)>,
}

/// Applies a guest's `rows` and `patches` to `input`. A filter's answer
/// (rows of the input, no patches) composes with the view's selection and
/// copies nothing; anything else is gathered and patched into a new batch.
pub fn assemble(
    input: &View,
    rows: Option<Vec<u32>>,
    patches: Vec<Patch>,
) -> Result<Assembled, BadEmit> {
    let n = input.num_rows();
    let rows = match rows {
        None if patches.is_empty() => {
            return Ok(Assembled {
                view: input.clone(),
                refused: Vec::new(),
            });
        }
        None => (0..n as u32).collect(),
        Some(rows) => rows,
    };
    if patches.is_empty() {
        if let Some(bad) = rows.iter().find(|r| **r as usize >= n) {
            return Err(BadEmit(format!(
                "output row {bad} is neither a row of the {n}-row batch nor an inserted row \
                 (an inserted row needs at least one patch)"
            )));
        }
        let selection: Arc<[u32]> = match &input.selection {
            None => rows.into(),
            Some(s) => rows.iter().map(|r| s[*r as usize]).collect(),
        };
        return Ok(Assembled {
            view: View {
                base: input.base.clone(),
                selection: Some(selection),
            },
            refused: Vec::new(),
        });
    }
    let m = rows.len();
    let schema = input.base.schema();
    let take_idx = UInt32Array::from(
        rows.iter()
            .map(|r| ((*r as usize) < n).then(|| input.base_row(*r as usize) as u32))
            .collect::<Vec<Option<u32>>>(),
    );
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    let mut columns: Vec<ArrayRef> = input
        .base
        .columns()
        .iter()
        .map(|c| arrow_select::take::take(c.as_ref(), &take_idx, None))
        .collect::<Result<_, _>>()
        .map_err(|e| BadEmit(e.to_string()))?;
    // The first reason each output row is refused for.
    let mut refused: Vec<Option<String>> = vec![None; m];
    for patch in patches {
        let Patch { name, column, set } = patch;
        let kind = kind_name(&column.values);
        let values = to_arrow(column, m).map_err(|e| BadEmit(format!("patch of `{name}`: {e}")))?;
        if let Some(s) = &set
            && s.len() < m.div_ceil(8)
        {
            return Err(BadEmit(format!(
                "patch of `{name}`: a `set` bitmap of {} bytes for {m} rows",
                s.len()
            )));
        }
        let sets = |i: usize| set.as_ref().is_none_or(|s| bit(s, i));
        match fields.iter().position(|f| f.name() == &name) {
            Some(ci) => {
                let dt = fields[ci].data_type().clone();
                let converted = if &dt == values.data_type() {
                    Some(values.clone())
                } else if compatible(values.data_type(), &dt) {
                    arrow_cast::cast(&values, &dt).ok()
                } else {
                    None
                };
                let mask: Vec<bool> = (0..m)
                    .map(|i| {
                        let fits = converted
                            .as_ref()
                            .is_some_and(|c| values.is_null(i) || c.is_valid(i));
                        if sets(i) && !fits && refused[i].is_none() {
                            refused[i] = Some(format!(
                                "set field `{name}` to a {kind} value{}, but the column is {dt}",
                                if converted.is_some() {
                                    " that does not fit"
                                } else {
                                    ""
                                }
                            ));
                        }
                        sets(i) && fits
                    })
                    .collect();
                if let Some(converted) = converted {
                    columns[ci] =
                        arrow_select::zip::zip(&BooleanArray::from(mask), &converted, &columns[ci])
                            .map_err(|e| BadEmit(e.to_string()))?;
                }
            }
            None => {
                // A new field: typed by its first patch; a patch that sets
                // nothing but nulls adds nothing (as 0.1.0 did).
                if !(0..m).any(|i| sets(i) && values.is_valid(i)) {
                    continue;
                }
                let mask = BooleanArray::from((0..m).map(sets).collect::<Vec<bool>>());
                let nulls = new_null_array(values.data_type(), m);
                let column = arrow_select::zip::zip(&mask, &values, &nulls)
                    .map_err(|e| BadEmit(e.to_string()))?;
                fields.push(Field::new(&name, values.data_type().clone(), true));
                columns.push(column);
            }
        }
    }
    // Inserted rows and patched rows may leave a required column empty:
    // relax it.
    let fields: Vec<Field> = fields
        .into_iter()
        .zip(&columns)
        .map(|(f, c)| {
            if c.null_count() > 0 && !f.is_nullable() {
                f.with_nullable(true)
            } else {
                f
            }
        })
        .collect();
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| BadEmit(e.to_string()))?;
    if refused.iter().all(Option::is_none) {
        return Ok(Assembled {
            view: View::new(batch),
            refused: Vec::new(),
        });
    }
    let json = rows_as_json(&batch);
    let keep = BooleanArray::from(refused.iter().map(Option::is_none).collect::<Vec<_>>());
    let refused = refused
        .into_iter()
        .zip(json)
        .filter_map(|(r, j)| r.map(|r| (j, r)))
        .collect();
    let batch = arrow_select::filter::filter_record_batch(&batch, &keep)
        .map_err(|e| BadEmit(e.to_string()))?;
    Ok(Assembled {
        view: View::new(batch),
        refused,
    })
}

#[cfg(test)]
mod tests {
    use arrow_array::{Int32Array, Int64Array};

    use super::*;

    fn input() -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("n", DataType::Int64, true),
            Field::new("small", DataType::Int32, true),
            Field::new(
                "t",
                DataType::Timestamp(TimeUnit::Millisecond, Some(UTC.into())),
                true,
            ),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(vec!["a", "bé", "", "d"])),
                Arc::new(Int64Array::from(vec![Some(1), None, Some(3), Some(4)])),
                Arc::new(Int32Array::from(vec![1, 2, 3, 4])),
                Arc::new(
                    arrow_array::TimestampMillisecondArray::from(vec![10, 20, 30, 40])
                        .with_timezone(UTC),
                ),
            ],
        )
        .unwrap()
    }

    /// The numbers of an int or timestamp column (`Values` has no `==`).
    fn numbers(v: &Values) -> (&'static str, Vec<i64>) {
        match v {
            Values::Int(x) => ("int", x.clone()),
            Values::Timestamp(x) => ("timestamp", x.clone()),
            other => (kind_name(other), Vec::new()),
        }
    }

    fn text(p: &Packed, i: usize) -> &str {
        std::str::from_utf8(&p.data[p.offsets[i] as usize..p.offsets[i + 1] as usize]).unwrap()
    }

    fn ids(view: &View) -> Vec<String> {
        view.rows_json()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn columns_cross_typed_with_nulls_and_selections() {
        let view = View::new(input().slice(1, 3));
        let b = to_wit(
            &view,
            Some(&["id".into(), "n".into(), "t".into(), "gone".into()]),
        );
        assert_eq!(b.len, 3);
        let Values::Text(ids) = &b.columns[0].values else {
            panic!("{:?}", b.columns[0])
        };
        assert_eq!((text(ids, 0), text(ids, 1), text(ids, 2)), ("bé", "", "d"));
        assert_eq!(numbers(&b.columns[1].values), ("int", vec![0, 3, 4]));
        assert_eq!(b.columns[1].validity, Some(vec![0b110]));
        assert_eq!(
            numbers(&b.columns[2].values),
            ("timestamp", vec![20_000, 30_000, 40_000])
        );
        assert_eq!(b.columns[3].validity, Some(vec![0]), "absent: all null");

        // A selection gathers, in its order, and drops a validity bitmap
        // the selected rows do not need.
        let selected = assemble(&View::new(input()), Some(vec![3, 0]), Vec::new())
            .unwrap()
            .view;
        let b = to_wit(&selected, None);
        assert_eq!(numbers(&b.columns[1].values), ("int", vec![4, 1]));
        assert_eq!(b.columns[1].validity, None);
        assert_eq!(
            numbers(&b.columns[2].values),
            ("int", vec![4, 1]),
            "int32 as s64"
        );
    }

    #[test]
    fn filters_compose_and_copy_nothing_until_materialized() {
        let first = assemble(&View::new(input()), Some(vec![0, 2, 3]), Vec::new()).unwrap();
        assert!(first.refused.is_empty());
        let second = assemble(&first.view, Some(vec![2, 0]), Vec::new()).unwrap();
        assert_eq!(second.view.selection.as_deref(), Some(&[3, 0][..]));
        assert_eq!(ids(&second.view), ["d", "a"]);
        // Every row kept (`rows` absent): the very same view.
        let same = assemble(&second.view, None, Vec::new()).unwrap();
        assert_eq!(same.view.selection, second.view.selection);
        assert!(
            assemble(&second.view, Some(vec![2]), Vec::new())
                .unwrap_err()
                .0
                .contains("output row 2")
        );
        // A slice of a selected view is a slice of its selection.
        assert_eq!(ids(&second.view.slice(1, 1)), ["a"]);
    }

    fn int_patch(name: &str, values: Vec<i64>, set: Option<Vec<u8>>) -> Patch {
        Patch {
            name: name.into(),
            column: Column {
                values: Values::Int(values),
                validity: None,
            },
            set,
        }
    }

    #[test]
    fn patches_set_change_add_and_refuse_what_does_not_fit() {
        let view = assemble(&View::new(input()), Some(vec![1, 2, 3]), Vec::new())
            .unwrap()
            .view;
        let text_patch = Patch {
            name: "n".into(),
            column: Column {
                values: Values::Text(Packed {
                    offsets: vec![0, 0, 0, 0, 2],
                    data: b"xx".to_vec(),
                }),
                validity: None,
            },
            set: Some(vec![0b1000]),
        };
        let a = assemble(
            &view,
            // Rows 0 and 2 of the view (ids "bé" and "d"), then an inserted row,
            // then row 1 ("").
            Some(vec![0, 2, 3, 1]),
            vec![
                // n set on the first two output rows; kept elsewhere.
                int_patch("n", vec![100, 200, 0, 0], Some(vec![0b0011])),
                // small (Int32) set to an int that fits and one that does not.
                int_patch("small", vec![0, 0, 7, 1 << 40], Some(vec![0b1100])),
                // A new field on every row.
                int_patch("added", vec![1, 2, 3, 4], None),
                // id of the inserted row.
                Patch {
                    name: "id".into(),
                    column: Column {
                        values: Values::Text(Packed {
                            offsets: vec![0, 0, 0, 3, 3],
                            data: b"new".to_vec(),
                        }),
                        validity: None,
                    },
                    set: Some(vec![0b0100]),
                },
                // Text into the Int64 column: refused (row 3 is refused
                // already, by `small`).
                text_patch,
            ],
        )
        .unwrap();
        let rows = a.view.rows_json();
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert_eq!(a.refused.len(), 1, "{:?}", a.refused);
        assert!(
            a.refused[0].1.contains(
                "set field `small` to a int value that does not fit, but the column is Int32"
            ),
            "{}",
            a.refused[0].1
        );
        assert_eq!(a.refused[0].0["id"], "");
        assert_eq!(
            (rows[0]["id"].as_str(), rows[0]["n"].as_i64()),
            (Some("bé"), Some(100))
        );
        assert_eq!(
            (rows[1]["id"].as_str(), rows[1]["n"].as_i64()),
            (Some("d"), Some(200))
        );
        assert_eq!(rows[2]["id"], "new");
        assert_eq!(rows[2]["small"], 7);
        assert!(rows[2].get("n").is_none_or(|v| v.is_null()));
        assert_eq!(
            rows.iter()
                .map(|r| r["added"].as_i64().unwrap())
                .collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert_eq!(rows[0]["small"], 2, "not set on this row: kept");

        // Text set on an Int64 column's row: refused with both types.
        let b = assemble(
            &view,
            Some(vec![0]),
            vec![Patch {
                name: "n".into(),
                column: Column {
                    values: Values::Text(Packed {
                        offsets: vec![0, 1],
                        data: b"x".to_vec(),
                    }),
                    validity: None,
                },
                set: None,
            }],
        )
        .unwrap();
        assert_eq!(b.view.num_rows(), 0);
        assert_eq!(
            b.refused[0].1,
            "set field `n` to a text value, but the column is Int64"
        );
    }

    #[test]
    fn malformed_answers_are_guest_bugs() {
        let view = View::new(input());
        let short = assemble(&view, Some(vec![0, 1]), vec![int_patch("n", vec![1], None)]);
        assert!(short.unwrap_err().0.contains("1 values for 2 rows"));
        let bad_text = assemble(
            &view,
            Some(vec![0]),
            vec![Patch {
                name: "id".into(),
                column: Column {
                    values: Values::Text(Packed {
                        offsets: vec![0, 2],
                        data: vec![0xff, 0xfe],
                    }),
                    validity: None,
                },
                set: None,
            }],
        );
        assert!(bad_text.unwrap_err().0.contains("not UTF-8"));
        let past_end = assemble(
            &view,
            Some(vec![0]),
            vec![Patch {
                name: "id".into(),
                column: Column {
                    values: Values::Text(Packed {
                        offsets: vec![0, 9],
                        data: vec![b'a'],
                    }),
                    validity: None,
                },
                set: None,
            }],
        );
        assert!(past_end.unwrap_err().0.contains("packed offsets"));
    }
}
