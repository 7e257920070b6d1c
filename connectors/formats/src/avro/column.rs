//! Cells → Arrow arrays: one growing column per batch field, built only
//! when the batch is finished (its schema final by then).

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, FixedSizeBinaryBuilder,
    Float32Builder, Float64Builder, Int32Builder, Int64Builder, StringBuilder,
    Time64MicrosecondBuilder, TimestampMicrosecondBuilder, TimestampNanosecondBuilder,
};
use arrow_array::{ArrayRef, ListArray, MapArray, NullArray, StructArray};
use arrow_buffer::{NullBufferBuilder, OffsetBuffer};
use arrow_schema::{DataType, TimeUnit};

use super::cell::Cell;

/// A column being built from cells, shaped like its Arrow type.
pub(crate) enum Col {
    Null(usize),
    Bool(BooleanBuilder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Utf8(StringBuilder),
    Binary(BinaryBuilder),
    Fixed(FixedSizeBinaryBuilder),
    Decimal(Decimal128Builder),
    Date(Date32Builder),
    Time(Time64MicrosecondBuilder),
    TsMicros(TimestampMicrosecondBuilder),
    TsNanos(TimestampNanosecondBuilder),
    List {
        lengths: Vec<usize>,
        nulls: NullBufferBuilder,
        items: Box<Col>,
    },
    Map {
        lengths: Vec<usize>,
        nulls: NullBufferBuilder,
        keys: StringBuilder,
        values: Box<Col>,
    },
    Struct {
        names: Vec<String>,
        nulls: NullBufferBuilder,
        children: Vec<Col>,
        len: usize,
    },
}

impl Col {
    pub(crate) fn new(t: &DataType) -> Self {
        use DataType as D;
        match t {
            D::Boolean => Self::Bool(BooleanBuilder::new()),
            D::Int32 => Self::Int32(Int32Builder::new()),
            D::Int64 => Self::Int64(Int64Builder::new()),
            D::Float32 => Self::Float32(Float32Builder::new()),
            D::Float64 => Self::Float64(Float64Builder::new()),
            D::Utf8 => Self::Utf8(StringBuilder::new()),
            D::Binary => Self::Binary(BinaryBuilder::new()),
            D::FixedSizeBinary(n) => Self::Fixed(FixedSizeBinaryBuilder::new(*n)),
            D::Decimal128(..) => Self::Decimal(Decimal128Builder::new()),
            D::Date32 => Self::Date(Date32Builder::new()),
            D::Time64(_) => Self::Time(Time64MicrosecondBuilder::new()),
            D::Timestamp(TimeUnit::Nanosecond, _) => {
                Self::TsNanos(TimestampNanosecondBuilder::new())
            }
            D::Timestamp(..) => Self::TsMicros(TimestampMicrosecondBuilder::new()),
            D::List(item) => Self::List {
                lengths: Vec::new(),
                nulls: NullBufferBuilder::new(0),
                items: Box::new(Col::new(item.data_type())),
            },
            D::Map(entries, _) => {
                let value_type = match entries.data_type() {
                    D::Struct(kv) if kv.len() == 2 => kv[1].data_type().clone(),
                    _ => D::Null,
                };
                Self::Map {
                    lengths: Vec::new(),
                    nulls: NullBufferBuilder::new(0),
                    keys: StringBuilder::new(),
                    values: Box::new(Col::new(&value_type)),
                }
            }
            D::Struct(fields) => Self::Struct {
                names: fields.iter().map(|f| f.name().clone()).collect(),
                nulls: NullBufferBuilder::new(0),
                children: fields.iter().map(|f| Col::new(f.data_type())).collect(),
                len: 0,
            },
            // Only types `Mapper::map` produces reach here; anything else
            // (Null included) is kept as an all-null column.
            _ => Self::Null(0),
        }
    }

    /// Appends one cell. The schema merge guarantees the cell fits the
    /// column (an int in a long column is widened); a cell that does not is
    /// a bug and is appended as null rather than panicking in production.
    pub(crate) fn append(&mut self, c: Cell) {
        match (self, c) {
            (Self::Null(n), _) => *n += 1,
            (Self::Bool(b), Cell::Bool(x)) => b.append_value(x),
            (Self::Int32(b), Cell::Int(x)) => b.append_value(x),
            (Self::Date(b), Cell::Int(x)) => b.append_value(x),
            (Self::Int64(b), Cell::Long(x)) => b.append_value(x),
            (Self::Time(b), Cell::Long(x)) => b.append_value(x),
            (Self::TsMicros(b), Cell::Long(x)) => b.append_value(x),
            (Self::TsNanos(b), Cell::Long(x)) => b.append_value(x),
            (Self::Int64(b), Cell::Int(x)) => b.append_value(i64::from(x)),
            (Self::Float32(b), Cell::Float(x)) => b.append_value(x),
            (Self::Float64(b), Cell::Double(x)) => b.append_value(x),
            (Self::Float64(b), Cell::Float(x)) => b.append_value(f64::from(x)),
            (Self::Utf8(b), Cell::Str(s)) => b.append_value(s),
            (Self::Binary(b), Cell::Bytes(x)) => b.append_value(x),
            (Self::Fixed(b), Cell::Bytes(x)) => {
                if b.append_value(&x).is_err() {
                    debug_assert!(false, "fixed value of the wrong size");
                    b.append_null();
                }
            }
            (Self::Decimal(b), Cell::Decimal(x)) => b.append_value(x),
            (
                Self::List {
                    lengths,
                    nulls,
                    items,
                },
                Cell::List(xs),
            ) => {
                lengths.push(xs.len());
                nulls.append_non_null();
                for x in xs {
                    items.append(x);
                }
            }
            (
                Self::Map {
                    lengths,
                    nulls,
                    keys,
                    values,
                },
                Cell::Map(entries),
            ) => {
                lengths.push(entries.len());
                nulls.append_non_null();
                for (k, v) in entries {
                    keys.append_value(k);
                    values.append(v);
                }
            }
            (
                Self::Struct {
                    names,
                    nulls,
                    children,
                    len,
                },
                Cell::Struct(mut values),
            ) => {
                nulls.append_non_null();
                *len += 1;
                for (i, (name, child)) in names.iter().zip(children.iter_mut()).enumerate() {
                    // Usually the value is at the same position; look further
                    // only when writer schemas order fields differently.
                    let at = match values.get(i) {
                        Some((n, _)) if n == name => Some(i),
                        _ => values.iter().position(|(n, _)| n == name),
                    };
                    child.append(match at {
                        Some(j) => std::mem::replace(&mut values[j].1, Cell::Null),
                        None => Cell::Null,
                    });
                }
            }
            (col, c) => {
                debug_assert!(
                    matches!(c, Cell::Null),
                    "cell {c:?} does not fit its column"
                );
                col.append_null();
            }
        }
    }

    pub(crate) fn append_null(&mut self) {
        match self {
            Self::Null(n) => *n += 1,
            Self::Bool(b) => b.append_null(),
            Self::Int32(b) => b.append_null(),
            Self::Date(b) => b.append_null(),
            Self::Int64(b) => b.append_null(),
            Self::Time(b) => b.append_null(),
            Self::TsMicros(b) => b.append_null(),
            Self::TsNanos(b) => b.append_null(),
            Self::Float32(b) => b.append_null(),
            Self::Float64(b) => b.append_null(),
            Self::Utf8(b) => b.append_null(),
            Self::Binary(b) => b.append_null(),
            Self::Fixed(b) => b.append_null(),
            Self::Decimal(b) => b.append_null(),
            Self::List { lengths, nulls, .. } | Self::Map { lengths, nulls, .. } => {
                lengths.push(0);
                nulls.append_null();
            }
            Self::Struct {
                nulls,
                children,
                len,
                ..
            } => {
                // Children need an entry too; it is hidden by the struct's
                // own null.
                nulls.append_null();
                *len += 1;
                for c in children {
                    c.append_null();
                }
            }
        }
    }

    pub(crate) fn finish(self, t: &DataType) -> Result<ArrayRef, arrow_schema::ArrowError> {
        use DataType as D;
        Ok(match (self, t) {
            (Self::Null(n), _) => Arc::new(NullArray::new(n)),
            (Self::Bool(mut b), _) => Arc::new(b.finish()),
            (Self::Int32(mut b), _) => Arc::new(b.finish()),
            (Self::Int64(mut b), _) => Arc::new(b.finish()),
            (Self::Float32(mut b), _) => Arc::new(b.finish()),
            (Self::Float64(mut b), _) => Arc::new(b.finish()),
            (Self::Utf8(mut b), _) => Arc::new(b.finish()),
            (Self::Binary(mut b), _) => Arc::new(b.finish()),
            (Self::Fixed(mut b), _) => Arc::new(b.finish()),
            (Self::Decimal(b), D::Decimal128(p, s)) => {
                let mut b = b.with_precision_and_scale(*p, *s)?;
                Arc::new(b.finish())
            }
            (Self::Date(mut b), _) => Arc::new(b.finish()),
            (Self::Time(mut b), _) => Arc::new(b.finish()),
            (Self::TsMicros(b), D::Timestamp(_, tz)) => {
                Arc::new(b.with_timezone_opt(tz.clone()).finish())
            }
            (Self::TsNanos(b), D::Timestamp(_, tz)) => {
                Arc::new(b.with_timezone_opt(tz.clone()).finish())
            }
            (
                Self::List {
                    lengths,
                    mut nulls,
                    items,
                },
                D::List(item),
            ) => Arc::new(ListArray::try_new(
                item.clone(),
                OffsetBuffer::from_lengths(lengths),
                items.finish(item.data_type())?,
                nulls.finish(),
            )?),
            (
                Self::Map {
                    lengths,
                    mut nulls,
                    mut keys,
                    values,
                },
                D::Map(entries, sorted),
            ) => {
                let D::Struct(kv) = entries.data_type() else {
                    return Err(arrow_schema::ArrowError::SchemaError(
                        "map entries are not a struct".into(),
                    ));
                };
                let values = values.finish(kv[1].data_type())?;
                let entries_array =
                    StructArray::try_new(kv.clone(), vec![Arc::new(keys.finish()), values], None)?;
                Arc::new(MapArray::try_new(
                    entries.clone(),
                    OffsetBuffer::from_lengths(lengths),
                    entries_array,
                    nulls.finish(),
                    *sorted,
                )?)
            }
            (
                Self::Struct {
                    mut nulls,
                    children,
                    len,
                    ..
                },
                D::Struct(fields),
            ) => {
                let arrays = fields
                    .iter()
                    .zip(children)
                    .map(|(f, c)| c.finish(f.data_type()))
                    .collect::<Result<Vec<_>, _>>()?;
                Arc::new(StructArray::try_new_with_length(
                    fields.clone(),
                    arrays,
                    nulls.finish(),
                    len,
                )?)
            }
            (_, t) => {
                return Err(arrow_schema::ArrowError::SchemaError(format!(
                    "no column builder for {t}"
                )));
            }
        })
    }
}
