//! Arrow ⇄ WIT 0.1.0 (rows of values): the batch a 0.1.0 guest sees, and the
//! Arrow batch its answer becomes. (0.2.0 guests: [`crate::columnar`].)
//!
//! Guests see rows of WIT `value`s for the fields they asked for. Their answer
//! (`keep` / `update` / `insert`) is assembled into an Arrow batch with every
//! field of the input plus any field the transform added: untouched columns
//! are gathered with Arrow's `take`, touched ones rebuilt from values.

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch, UInt32Array};
use arrow_schema::{DataType, Field, Schema, TimeUnit};

use super::bindings_v1::tributary::transform::types::{
    Batch, Emit, Field as WitField, FieldType, Value,
};

const UTC: &str = "+00:00";

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

fn micros(unit: &TimeUnit, v: i64) -> i64 {
    match unit {
        TimeUnit::Second => v.saturating_mul(1_000_000),
        TimeUnit::Millisecond => v.saturating_mul(1_000),
        TimeUnit::Microsecond => v,
        TimeUnit::Nanosecond => v / 1_000,
    }
}

/// The value at `row` of `array`.
pub fn value_at(array: &dyn Array, row: usize) -> Value {
    if array.is_null(row) {
        return Value::Null;
    }
    match array.data_type() {
        DataType::Boolean => Value::Boolean(array.as_boolean().value(row)),
        DataType::Int8 => Value::Int(array.as_primitive::<Int8Type>().value(row).into()),
        DataType::Int16 => Value::Int(array.as_primitive::<Int16Type>().value(row).into()),
        DataType::Int32 => Value::Int(array.as_primitive::<Int32Type>().value(row).into()),
        DataType::Int64 => Value::Int(array.as_primitive::<Int64Type>().value(row)),
        DataType::UInt8 => Value::Int(array.as_primitive::<UInt8Type>().value(row).into()),
        DataType::UInt16 => Value::Int(array.as_primitive::<UInt16Type>().value(row).into()),
        DataType::UInt32 => Value::Int(array.as_primitive::<UInt32Type>().value(row).into()),
        DataType::UInt64 => Value::Int(array.as_primitive::<UInt64Type>().value(row) as i64),
        DataType::Float32 => Value::Float(array.as_primitive::<Float32Type>().value(row).into()),
        DataType::Float64 => Value::Float(array.as_primitive::<Float64Type>().value(row)),
        DataType::Utf8 => Value::Text(array.as_string::<i32>().value(row).to_string()),
        DataType::LargeUtf8 => Value::Text(array.as_string::<i64>().value(row).to_string()),
        DataType::Utf8View => Value::Text(array.as_string_view().value(row).to_string()),
        DataType::Binary => Value::Bytes(array.as_binary::<i32>().value(row).to_vec()),
        DataType::LargeBinary => Value::Bytes(array.as_binary::<i64>().value(row).to_vec()),
        DataType::Timestamp(unit, _) => {
            let v = match unit {
                TimeUnit::Second => array
                    .as_primitive::<arrow_array::types::TimestampSecondType>()
                    .value(row),
                TimeUnit::Millisecond => array
                    .as_primitive::<arrow_array::types::TimestampMillisecondType>()
                    .value(row),
                TimeUnit::Microsecond => array
                    .as_primitive::<arrow_array::types::TimestampMicrosecondType>()
                    .value(row),
                TimeUnit::Nanosecond => array
                    .as_primitive::<arrow_array::types::TimestampNanosecondType>()
                    .value(row),
            };
            Value::Timestamp(micros(unit, v))
        }
        DataType::Date32 => Value::Timestamp(
            i64::from(
                array
                    .as_primitive::<arrow_array::types::Date32Type>()
                    .value(row),
            )
            .saturating_mul(86_400_000_000),
        ),
        DataType::Date64 => Value::Timestamp(
            array
                .as_primitive::<arrow_array::types::Date64Type>()
                .value(row)
                .saturating_mul(1000),
        ),
        _ => Value::Json(json_of(array, row).to_string()),
    }
}

/// One cell as JSON, through arrow-json (nested types included).
fn json_of(array: &dyn Array, row: usize) -> serde_json::Value {
    let slice = array.slice(row, 1);
    let schema = Arc::new(Schema::new(vec![Field::new(
        "v",
        slice.data_type().clone(),
        true,
    )]));
    let Ok(batch) = RecordBatch::try_new(schema, vec![slice]) else {
        return serde_json::Value::Null;
    };
    rows_as_json(&batch)
        .into_iter()
        .next()
        .and_then(|mut o| o.get_mut("v").map(serde_json::Value::take))
        .unwrap_or_default()
}

/// Every row of a batch as a JSON object (for dead letters and errors).
pub fn rows_as_json(batch: &RecordBatch) -> Vec<serde_json::Value> {
    let mut writer = arrow_json::ArrayWriter::new(Vec::new());
    if writer.write(batch).is_err() || writer.finish().is_err() {
        return vec![serde_json::Value::Null; batch.num_rows()];
    }
    let bytes = writer.into_inner();
    if bytes.is_empty() {
        return Vec::new();
    }
    match serde_json::from_slice(&bytes) {
        Ok(serde_json::Value::Array(rows)) => rows,
        _ => vec![serde_json::Value::Null; batch.num_rows()],
    }
}

/// The WIT batch of `fields` (all when `None`) of `batch`.
pub fn to_wit(batch: &RecordBatch, fields: Option<&[String]>) -> Batch {
    let schema = batch.schema();
    let columns: Vec<(WitField, Option<&ArrayRef>)> = match fields {
        None => schema
            .fields()
            .iter()
            .zip(batch.columns())
            .map(|(f, c)| {
                (
                    WitField {
                        name: f.name().clone(),
                        type_: field_type(f.data_type()),
                        nullable: f.is_nullable(),
                    },
                    Some(c),
                )
            })
            .collect(),
        Some(names) => names
            .iter()
            .map(|n| match schema.index_of(n) {
                Ok(i) => {
                    let f = schema.field(i);
                    (
                        WitField {
                            name: n.clone(),
                            type_: field_type(f.data_type()),
                            nullable: f.is_nullable(),
                        },
                        Some(batch.column(i)),
                    )
                }
                // Asked for but absent: shown as an all-null column.
                Err(_) => (
                    WitField {
                        name: n.clone(),
                        type_: FieldType::Json,
                        nullable: true,
                    },
                    None,
                ),
            })
            .collect(),
    };
    let rows = (0..batch.num_rows())
        .map(|r| {
            columns
                .iter()
                .map(|(_, c)| c.map_or(Value::Null, |c| value_at(c.as_ref(), r)))
                .collect()
        })
        .collect();
    Batch {
        fields: columns.into_iter().map(|(f, _)| f).collect(),
        rows,
    }
}

fn value_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Boolean(_) => "boolean",
        Value::Int(_) => "int",
        Value::Float(_) => "float",
        Value::Text(_) => "text",
        Value::Bytes(_) => "bytes",
        Value::Timestamp(_) => "timestamp",
        Value::Json(_) => "json",
    }
}

/// The Arrow type a new field gets from its first value.
fn type_for(v: &Value) -> Option<DataType> {
    Some(match v {
        Value::Null => return None,
        Value::Boolean(_) => DataType::Boolean,
        Value::Int(_) => DataType::Int64,
        Value::Float(_) => DataType::Float64,
        Value::Text(_) | Value::Json(_) => DataType::Utf8,
        Value::Bytes(_) => DataType::Binary,
        Value::Timestamp(_) => DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
    })
}

/// Whether `v` can be stored in a column of type `dt` by [`build`].
fn fits(v: &Value, dt: &DataType) -> bool {
    matches!(
        (v, dt),
        (Value::Null, _)
            | (Value::Boolean(_), DataType::Boolean)
            | (Value::Int(_), DataType::Int64)
            | (Value::Float(_) | Value::Int(_), DataType::Float64)
            | (Value::Text(_) | Value::Json(_), DataType::Utf8)
            | (Value::Bytes(_), DataType::Binary)
            | (
                Value::Timestamp(_) | Value::Int(_),
                DataType::Timestamp(TimeUnit::Microsecond, _)
            )
    )
}

/// An array of type `dt` from values that all [`fit`](fits) it.
fn build(dt: &DataType, values: &[Value]) -> ArrayRef {
    let n = values.len();
    match dt {
        DataType::Boolean => {
            let mut b = BooleanBuilder::with_capacity(n);
            values.iter().for_each(|v| {
                b.append_option(if let Value::Boolean(x) = v {
                    Some(*x)
                } else {
                    None
                })
            });
            Arc::new(b.finish())
        }
        DataType::Int64 => {
            let mut b = Int64Builder::with_capacity(n);
            values.iter().for_each(|v| {
                b.append_option(if let Value::Int(x) = v {
                    Some(*x)
                } else {
                    None
                })
            });
            Arc::new(b.finish())
        }
        DataType::Float64 => {
            let mut b = Float64Builder::with_capacity(n);
            values.iter().for_each(|v| {
                b.append_option(match v {
                    Value::Float(x) => Some(*x),
                    Value::Int(x) => Some(*x as f64),
                    _ => None,
                })
            });
            Arc::new(b.finish())
        }
        DataType::Utf8 => {
            let mut b = StringBuilder::with_capacity(n, n * 16);
            values.iter().for_each(|v| match v {
                Value::Text(s) | Value::Json(s) => b.append_value(s),
                _ => b.append_null(),
            });
            Arc::new(b.finish())
        }
        DataType::Binary => {
            let mut b = BinaryBuilder::with_capacity(n, n * 16);
            values.iter().for_each(|v| {
                b.append_option(if let Value::Bytes(x) = v {
                    Some(x)
                } else {
                    None
                })
            });
            Arc::new(b.finish())
        }
        DataType::Timestamp(TimeUnit::Microsecond, tz) => {
            let mut b = TimestampMicrosecondBuilder::with_capacity(n).with_timezone_opt(tz.clone());
            values.iter().for_each(|v| {
                b.append_option(match v {
                    Value::Timestamp(x) | Value::Int(x) => Some(*x),
                    _ => None,
                })
            });
            Arc::new(b.finish())
        }
        other => arrow_array::new_null_array(other, n),
    }
}

/// A row the assembly refused, with why.
#[derive(Debug)]
pub struct Refused {
    pub row: RowRef,
    pub reason: String,
}

/// Where an output row came from: an input row, or an insert (index into the
/// emit list).
#[derive(Clone, Copy, Debug)]
pub enum RowRef {
    Input(u32),
    Inserted(usize),
}

/// A field name and the value a transform gave it.
pub type Assignments = Vec<(String, Value)>;

/// What [`assemble`] made of a guest's answer.
#[derive(Debug)]
pub struct Assembled {
    pub batch: RecordBatch,
    /// Rows refused because a value did not fit its column.
    pub refused: Vec<Refused>,
    /// The inserted rows' assignments, by emit index (to show refused ones).
    pub inserted: Vec<(usize, Assignments)>,
}

/// A guest's `emit` list that cannot be applied to its input (a guest bug):
/// what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadEmit(pub String);

/// Assembles the guest's `emit` list over `input` into an Arrow batch. Rows
/// whose assigned values do not fit their columns are refused with a reason;
/// an `emit` naming a row that does not exist is a guest bug (`Err`).
pub fn assemble(input: &RecordBatch, emit: Vec<Emit>) -> Result<Assembled, BadEmit> {
    let n = input.num_rows() as u32;
    let schema = input.schema();
    // Fast path: only keeps.
    if emit.iter().all(|e| matches!(e, Emit::Keep(_))) {
        let idx: Vec<u32> = emit
            .iter()
            .map(|e| if let Emit::Keep(i) = e { *i } else { 0 })
            .collect();
        if let Some(bad) = idx.iter().find(|i| **i >= n) {
            return Err(BadEmit(format!(
                "emitted keep({bad}) but the batch has {n} rows"
            )));
        }
        if idx.len() == input.num_rows() && idx.iter().enumerate().all(|(a, b)| a as u32 == *b) {
            return Ok(Assembled {
                batch: input.clone(),
                refused: Vec::new(),
                inserted: Vec::new(),
            });
        }
        let idx = UInt32Array::from(idx);
        let columns = input
            .columns()
            .iter()
            .map(|c| {
                arrow_select::take::take(c.as_ref(), &idx, None).map_err(|e| BadEmit(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let batch = RecordBatch::try_new(schema, columns).map_err(|e| BadEmit(e.to_string()))?;
        return Ok(Assembled {
            batch,
            refused: Vec::new(),
            inserted: Vec::new(),
        });
    }

    // General path. Output fields: the input's, then new ones in first-seen order.
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    let mut inserted_rows = Vec::new();
    let mut rows: Vec<(RowRef, Option<u32>, Assignments)> = Vec::with_capacity(emit.len());
    for (k, e) in emit.into_iter().enumerate() {
        let (source, assigns) = match e {
            Emit::Keep(i) => (Some(i), Vec::new()),
            Emit::Update((i, a)) => (Some(i), a),
            Emit::Insert(a) => (None, a),
        };
        if let Some(i) = source
            && i >= n
        {
            return Err(BadEmit(format!(
                "emitted row {i} but the batch has {n} rows"
            )));
        }
        for (name, v) in &assigns {
            if !fields.iter().any(|f| f.name() == name)
                && let Some(dt) = type_for(v)
            {
                fields.push(Field::new(name, dt, true));
            }
        }
        let rref = match source {
            Some(i) => RowRef::Input(i),
            None => {
                inserted_rows.push((k, assigns.clone()));
                RowRef::Inserted(k)
            }
        };
        rows.push((rref, source, assigns));
    }
    // Refuse rows whose assignments do not fit.
    let mut refused = Vec::new();
    rows.retain(|(rref, _, assigns)| {
        for (name, v) in assigns {
            if let Some(f) = fields.iter().find(|f| f.name() == name)
                && !fits(v, f.data_type())
            {
                refused.push(Refused {
                    row: *rref,
                    reason: format!(
                        "set field `{name}` to a {} value, but the column is {}",
                        value_type_name(v),
                        f.data_type()
                    ),
                });
                return false;
            }
        }
        true
    });
    let take_idx = UInt32Array::from(
        rows.iter()
            .map(|(_, s, _)| *s)
            .collect::<Vec<Option<u32>>>(),
    );
    let mut columns = Vec::with_capacity(fields.len());
    for (ci, field) in fields.iter().enumerate() {
        let touched = rows
            .iter()
            .any(|(_, _, a)| a.iter().any(|(name, _)| name == field.name()));
        let existing = (ci < input.num_columns()).then(|| input.column(ci));
        let column = match (existing, touched) {
            (Some(col), false) => arrow_select::take::take(col.as_ref(), &take_idx, None)
                .map_err(|e| BadEmit(e.to_string()))?,
            _ => {
                let values: Vec<Value> = rows
                    .iter()
                    .map(|(_, src, assigns)| {
                        match assigns.iter().rev().find(|(name, _)| name == field.name()) {
                            Some((_, v)) => v.clone(),
                            None => match (existing, src) {
                                (Some(col), Some(i)) => value_at(col.as_ref(), *i as usize),
                                _ => Value::Null,
                            },
                        }
                    })
                    .collect();
                if existing.is_some() && values.iter().any(|v| !fits(v, field.data_type())) {
                    return Err(BadEmit(format!(
                        "field `{}` of type {} cannot be changed by a transform yet",
                        field.name(),
                        field.data_type()
                    )));
                }
                build(field.data_type(), &values)
            }
        };
        columns.push(column);
    }
    // Inserted and updated rows may leave a required column empty: relax it.
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
    Ok(Assembled {
        batch,
        refused,
        inserted: inserted_rows,
    })
}

#[cfg(test)]
mod tests {
    use arrow_array::{Int64Array, StringArray, TimestampMicrosecondArray};

    use super::*;

    fn input() -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("n", DataType::Int64, true),
            Field::new(
                "t",
                DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
                true,
            ),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(vec!["a", "b", "c"])),
                Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])),
                Arc::new(TimestampMicrosecondArray::from(vec![10, 20, 30]).with_timezone(UTC)),
            ],
        )
        .unwrap()
    }

    #[test]
    fn projection_and_types() {
        let b = to_wit(&input(), Some(&["t".to_string(), "missing".to_string()]));
        assert_eq!(b.fields[0].name, "t");
        assert!(matches!(b.fields[0].type_, FieldType::Timestamp));
        assert!(matches!(b.rows[1][0], Value::Timestamp(20)));
        assert!(matches!(b.rows[1][1], Value::Null));
        let all = to_wit(&input(), None);
        assert_eq!(all.fields.len(), 3);
        assert!(matches!(all.rows[1][1], Value::Null));
        assert!(matches!(&all.rows[2][0], Value::Text(s) if s == "c"));
    }

    /// Found by the `wit_convert` fuzz target: a date beyond ±292,000
    /// years (an Avro `date` is any 32-bit count of days) overflowed its
    /// conversion to microseconds, and a release build showed the guest a
    /// wrapped time (which could move the watermark anywhere). It saturates
    /// now, as the other time types do.
    #[test]
    fn far_dates_saturate_instead_of_wrapping() {
        let days = arrow_array::Date32Array::from(vec![i32::MAX, i32::MIN, 20_455]);
        assert!(matches!(value_at(&days, 0), Value::Timestamp(i64::MAX)));
        assert!(matches!(value_at(&days, 1), Value::Timestamp(i64::MIN)));
        assert!(matches!(
            value_at(&days, 2),
            Value::Timestamp(1_767_312_000_000_000)
        ));
    }

    #[test]
    fn keeps_filter_and_reorder() {
        let Assembled {
            batch: b, refused, ..
        } = assemble(&input(), vec![Emit::Keep(2), Emit::Keep(0)]).unwrap();
        assert!(refused.is_empty());
        let ids = b.column(0).as_string::<i32>();
        assert_eq!((ids.value(0), ids.value(1)), ("c", "a"));
        assert!(
            assemble(&input(), vec![Emit::Keep(3)])
                .unwrap_err()
                .0
                .contains("3 rows")
        );
    }

    #[test]
    fn updates_inserts_and_new_fields() {
        let emit = vec![
            Emit::Update((
                0,
                vec![
                    ("n".into(), Value::Int(100)),
                    ("tag".into(), Value::Text("x".into())),
                ],
            )),
            Emit::Keep(1),
            Emit::Insert(vec![
                ("id".into(), Value::Text("new".into())),
                ("t".into(), Value::Timestamp(99)),
            ]),
            Emit::Update((2, vec![("n".into(), Value::Text("oops".into()))])),
        ];
        let Assembled {
            batch: b,
            refused,
            inserted,
        } = assemble(&input(), emit).unwrap();
        assert_eq!(b.num_rows(), 3);
        assert_eq!(refused.len(), 1);
        assert!(
            refused[0]
                .reason
                .contains("set field `n` to a text value, but the column is Int64"),
            "{}",
            refused[0].reason
        );
        assert_eq!(inserted.len(), 1);
        assert_eq!(b.schema().field(3).name(), "tag");
        let rows = rows_as_json(&b);
        assert_eq!(rows[0]["n"], 100);
        assert_eq!(rows[0]["tag"], "x");
        assert_eq!(rows[1]["id"], "b");
        assert!(rows[1].get("n").is_none_or(|v| v.is_null()));
        assert_eq!(rows[2]["id"], "new");
        assert!(rows[2].get("tag").is_none_or(|v| v.is_null()));
    }
}
