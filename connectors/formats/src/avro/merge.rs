//! Schema evolution: a new writer schema's fields merged into the batch
//! schema (new fields appended, the widenings Iceberg allows taken, other
//! type changes refused).

use std::sync::Arc;

use arrow_schema::{DataType, Field};

use super::path::PathError;
use super::schema::map_type;

/// Merges one writer schema's top-level fields into the batch schema: the
/// grown fields, and the column of each writer field.
pub(crate) fn merge_top_level(
    current: &[Field],
    writer: &[Field],
) -> Result<(Vec<Field>, Vec<usize>), PathError> {
    let mut fields = current.to_vec();
    let mut columns = Vec::with_capacity(writer.len());
    for w in writer {
        match fields.iter().position(|f| f.name() == w.name()) {
            Some(i) => {
                let merged = merge_field(&fields[i], w).map_err(|e| e.within(w.name()))?;
                fields[i] = merged;
                columns.push(i);
            }
            None => {
                fields.push(w.clone());
                columns.push(fields.len() - 1);
            }
        }
    }
    Ok((fields, columns))
}

/// One field as two writer schemas see it → the field that holds both.
pub(crate) fn merge_field(old: &Field, new: &Field) -> Result<Field, PathError> {
    let t = merge_type(old.data_type(), new.data_type())?;
    let nullable = old.is_nullable() || new.is_nullable() || t == DataType::Null;
    Ok(Field::new(old.name(), t, nullable))
}

pub(crate) fn merge_type(old: &DataType, new: &DataType) -> Result<DataType, PathError> {
    use DataType as D;
    Ok(match (old, new) {
        (a, b) if a == b => a.clone(),
        // A field that was only ever null (Avro `null`) takes the first real
        // type; its earlier rows stay null.
        (D::Null, t) | (t, D::Null) => t.clone(),
        // The promotions Iceberg allows.
        (D::Int32, D::Int64) | (D::Int64, D::Int32) => D::Int64,
        (D::Float32, D::Float64) | (D::Float64, D::Float32) => D::Float64,
        (D::Decimal128(p1, s1), D::Decimal128(p2, s2)) if s1 == s2 => {
            D::Decimal128(*p1.max(p2), *s1)
        }
        (D::Struct(a), D::Struct(b)) => {
            let mut out: Vec<Field> = Vec::with_capacity(a.len().max(b.len()));
            for f in a.iter() {
                match b.iter().find(|g| g.name() == f.name()) {
                    Some(g) => out.push(merge_field(f, g).map_err(|e| e.within(f.name()))?),
                    // Missing from the new writer: its rows have no value.
                    None => out.push(f.as_ref().clone().with_nullable(true)),
                }
            }
            for g in b.iter() {
                if !a.iter().any(|f| f.name() == g.name()) {
                    out.push(g.as_ref().clone().with_nullable(true));
                }
            }
            D::Struct(out.into())
        }
        (D::List(a), D::List(b)) => D::List(Arc::new(merge_field(a, b)?)),
        (D::Map(a, _), D::Map(b, _)) => {
            let (D::Struct(ea), D::Struct(eb)) = (a.data_type(), b.data_type()) else {
                return Err(clash(old, new));
            };
            map_type(merge_field(&ea[1], &eb[1])?)
        }
        _ => return Err(clash(old, new)),
    })
}

pub(crate) fn clash(old: &DataType, new: &DataType) -> PathError {
    PathError::new(format!(
        "this writer schema makes it {} but an earlier writer schema made it {}; a field cannot \
         change to a type that does not hold the old values — give the new type a new field name",
        type_name(new),
        type_name(old)
    ))
}

/// The Avro name of an Arrow type where there is one, for messages.
pub(crate) fn type_name(t: &DataType) -> String {
    match t {
        DataType::Boolean => "boolean".into(),
        DataType::Int32 => "int".into(),
        DataType::Int64 => "long".into(),
        DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Utf8 => "string".into(),
        DataType::Binary => "bytes".into(),
        DataType::Struct(_) => "a record".into(),
        DataType::List(_) => "an array".into(),
        DataType::Map(..) => "a map".into(),
        other => other.to_string(),
    }
}
