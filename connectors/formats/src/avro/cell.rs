//! Avro value → cell: one decoded value converted to what its Arrow column
//! stores, checked against what the column can hold.

use std::collections::HashMap;

use apache_avro::Schema as AvroSchema;
use apache_avro::schema::Name;
use apache_avro::types::Value;

use super::path::PathError;
use super::schema::{avro_kind, json_union};

/// One value, converted to what its column stores. Logical types are already
/// in the column's unit (timestamps in µs), so appending cannot fail.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Null,
    Bool(bool),
    /// int, date.
    Int(i32),
    /// long, times and timestamps in the column's unit.
    Long(i64),
    Float(f32),
    Double(f64),
    Str(String),
    /// bytes, fixed, duration.
    Bytes(Vec<u8>),
    Decimal(i128),
    List(Vec<Cell>),
    /// Sorted by key, so equal maps give equal rows.
    Map(Vec<(String, Cell)>),
    /// Fields by name: the struct's column may have more fields (from other
    /// writer schemas) or order them differently.
    Struct(Vec<(String, Cell)>),
}

/// Converts a value decoded with `schema` into a cell, checking what the
/// column cannot hold (a decimal with too many digits, a timestamp that
/// overflows in µs).
pub(crate) fn cell(
    schema: &AvroSchema,
    names: &HashMap<Name, AvroSchema>,
    value: Value,
) -> Result<Cell, PathError> {
    use AvroSchema as S;
    Ok(match (schema, value) {
        (S::Ref { name }, v) => {
            let target = names
                .get(name)
                .ok_or_else(|| PathError::new(format!("unknown named type `{name}`")))?;
            cell(target, names, v)?
        }
        (S::Union(u), Value::Union(i, inner)) => {
            if json_union(u).is_some() {
                match *inner {
                    Value::Null => Cell::Null,
                    v => Cell::Str(to_json(v)?),
                }
            } else {
                let branch = u.variants().get(i as usize).ok_or_else(|| {
                    PathError::new(format!("union branch {i} is not in the writer schema"))
                })?;
                cell(branch, names, *inner)?
            }
        }
        (_, Value::Null) => Cell::Null,
        (S::Boolean, Value::Boolean(b)) => Cell::Bool(b),
        (S::Int, Value::Int(x)) | (S::Date, Value::Date(x)) => Cell::Int(x),
        (S::Long, Value::Long(x))
        | (S::TimeMicros, Value::TimeMicros(x))
        | (S::TimestampMicros, Value::TimestampMicros(x))
        | (S::LocalTimestampMicros, Value::LocalTimestampMicros(x))
        | (S::TimestampNanos, Value::TimestampNanos(x))
        | (S::LocalTimestampNanos, Value::LocalTimestampNanos(x)) => Cell::Long(x),
        (S::TimeMillis, Value::TimeMillis(x)) => Cell::Long(i64::from(x) * 1000),
        (S::TimestampMillis, Value::TimestampMillis(x))
        | (S::LocalTimestampMillis, Value::LocalTimestampMillis(x)) => {
            Cell::Long(x.checked_mul(1000).ok_or_else(|| {
                PathError::new(format!(
                    "timestamp {x} ms is outside the range of microseconds in 64 bits"
                ))
            })?)
        }
        (S::Float, Value::Float(x)) => Cell::Float(x),
        (S::Double, Value::Double(x)) => Cell::Double(x),
        (S::String, Value::String(s)) | (S::Enum(_), Value::Enum(_, s)) => Cell::Str(s),
        (S::Uuid(_), Value::Uuid(u)) => Cell::Str(u.hyphenated().to_string()),
        (S::BigDecimal, Value::BigDecimal(d)) => Cell::Str(d.to_string()),
        (S::Bytes, Value::Bytes(b)) | (S::Fixed(_), Value::Fixed(_, b)) => Cell::Bytes(b),
        (S::Duration(_), Value::Duration(d)) => Cell::Bytes(<[u8; 12]>::from(d).to_vec()),
        (S::Decimal(d), Value::Decimal(x)) => Cell::Decimal(decimal(&x, d.precision)?),
        (S::Array(a), Value::Array(items)) => Cell::List(
            items
                .into_iter()
                .map(|v| cell(&a.items, names, v))
                .collect::<Result<_, _>>()?,
        ),
        (S::Map(m), Value::Map(entries)) => {
            let mut out = entries
                .into_iter()
                .map(|(k, v)| Ok((k, cell(&m.types, names, v)?)))
                .collect::<Result<Vec<_>, PathError>>()?;
            out.sort_by(|a, b| a.0.cmp(&b.0));
            Cell::Map(out)
        }
        (S::Record(r), Value::Record(values)) => Cell::Struct(
            r.fields
                .iter()
                .zip(values)
                .map(|(f, (name, v))| {
                    let c = cell(&f.schema, names, v).map_err(|e| e.within(&name))?;
                    Ok((name, c))
                })
                .collect::<Result<_, PathError>>()?,
        ),
        (s, v) => {
            // The value was decoded with this very schema, so this is a bug
            // (ours or the decoder's), not bad data; still better one bad
            // record than a wrong row.
            return Err(PathError::new(format!(
                "decoded value {v:?} does not match its writer schema {}",
                avro_kind(s)
            )));
        }
    })
}

/// The value of a multi-branch union as JSON text.
pub(crate) fn to_json(v: Value) -> Result<String, PathError> {
    serde_json::Value::try_from(v)
        .map(|j| j.to_string())
        .map_err(|e| PathError::new(format!("cannot be written as JSON text: {e}")))
}

/// An Avro decimal's unscaled value, checked against its precision.
pub(crate) fn decimal(d: &apache_avro::Decimal, precision: usize) -> Result<i128, PathError> {
    // A decoded decimal keeps the length of its Avro bytes and always fits
    // them, except zero written as no bytes at all, which apache-avro cannot
    // turn back into bytes.
    let Ok(bytes) = Vec::<u8>::try_from(d) else {
        return Ok(0);
    };
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    let sign = if negative { 0xff } else { 0 };
    // Big-endian two's complement; longer than 16 bytes is fine when the
    // extra leading bytes are only sign extension.
    let cut = bytes.len().saturating_sub(16);
    let too_big = || {
        PathError::new(format!(
            "decimal value has more than the {precision} digits its schema allows"
        ))
    };
    if bytes[..cut].iter().any(|b| *b != sign) {
        return Err(too_big());
    }
    let mut buf = [sign; 16];
    let tail = &bytes[cut..];
    buf[16 - tail.len()..].copy_from_slice(tail);
    let unscaled = i128::from_be_bytes(buf);
    if tail.first().is_some_and(|b| (b & 0x80 != 0) != negative) && cut > 0 {
        return Err(too_big());
    }
    if unscaled.unsigned_abs() >= 10u128.pow(precision as u32) {
        return Err(too_big());
    }
    Ok(unscaled)
}
