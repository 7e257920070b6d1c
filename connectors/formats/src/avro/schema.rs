//! Avro schema → Arrow: a writer schema mapped to the batch's fields
//! ([`Writer`]), following named types and refusing recursive ones.

use std::collections::HashMap;
use std::sync::Arc;

use apache_avro::Schema as AvroSchema;
use apache_avro::schema::{Name, ResolvedSchema, UnionSchema};
use arrow_schema::{DataType, Field, TimeUnit};
use tributary_connector::UTC;

use super::path::PathError;
use crate::error::BadRecord;

/// Arrow's Decimal128 holds at most 38 digits (as does Iceberg's decimal).
pub(crate) const MAX_DECIMAL_PRECISION: usize = 38;

/// One writer schema, mapped.
pub(crate) struct Writer {
    /// The parsed writer schema (a record).
    pub(crate) schema: AvroSchema,
    /// Named types it defines, to follow `Ref`s (a named type used twice).
    pub(crate) names: HashMap<Name, AvroSchema>,
    /// Its top-level fields as Arrow fields (all nullable).
    pub(crate) fields: Vec<Field>,
}

impl Writer {
    pub(crate) fn new(schema: AvroSchema) -> Result<Self, BadRecord> {
        let AvroSchema::Record(record) = &schema else {
            return Err(format!(
                "the top-level Avro schema must be a record, not {}",
                avro_kind(&schema)
            )
            .into());
        };
        let names = ResolvedSchema::try_from(&schema)
            .map_err(|e| format!("cannot resolve its named types: {e}"))?
            .get_names()
            .iter()
            .map(|(n, s)| (n.clone(), (*s).clone()))
            .collect();
        let mut mapper = Mapper {
            names: &names,
            open: vec![record.name.clone()],
        };
        let mut fields = Vec::with_capacity(record.fields.len());
        for f in &record.fields {
            let (data_type, _) = mapper
                .map(&f.schema)
                .map_err(|e| e.within(&f.name).to_string())?;
            // Every top-level column is nullable, whatever the writer says: a
            // later writer schema may drop the field (its rows then read
            // null), and Iceberg adds new columns as optional anyway.
            fields.push(Field::new(&f.name, data_type, true));
        }
        Ok(Self {
            schema,
            names,
            fields,
        })
    }
}

pub(crate) fn avro_kind(schema: &AvroSchema) -> String {
    match schema {
        AvroSchema::Record(r) => format!("record {}", r.name),
        AvroSchema::Enum(e) => format!("enum {}", e.name),
        AvroSchema::Fixed(f) => format!("fixed {}", f.name),
        AvroSchema::Ref { name } => name.to_string(),
        other => {
            // The canonical form is the JSON text; for a primitive that is
            // `"long"`, for an array `{"type":"array",...}`.
            let text = other.canonical_form();
            text.trim_matches('"').chars().take(60).collect()
        }
    }
}

/// Avro schema → Arrow type, following `Ref`s and refusing recursive types
/// (a column has a fixed depth).
pub(crate) struct Mapper<'a> {
    pub(crate) names: &'a HashMap<Name, AvroSchema>,
    /// Named records being mapped, outermost first.
    pub(crate) open: Vec<Name>,
}

impl Mapper<'_> {
    /// The Arrow type of `schema` and whether it may be null.
    pub(crate) fn map(&mut self, schema: &AvroSchema) -> Result<(DataType, bool), PathError> {
        use AvroSchema as S;
        let ts = |unit, tz: bool| DataType::Timestamp(unit, tz.then(|| UTC.into()));
        Ok(match schema {
            S::Null => (DataType::Null, true),
            S::Boolean => (DataType::Boolean, false),
            S::Int => (DataType::Int32, false),
            S::Long => (DataType::Int64, false),
            S::Float => (DataType::Float32, false),
            S::Double => (DataType::Float64, false),
            S::Bytes => (DataType::Binary, false),
            S::String | S::Enum(_) | S::Uuid(_) | S::BigDecimal => (DataType::Utf8, false),
            S::Fixed(f) => (fixed_type(f.size)?, false),
            S::Duration(_) => (DataType::FixedSizeBinary(12), false),
            S::Decimal(d) => {
                if d.precision == 0 || d.precision > MAX_DECIMAL_PRECISION {
                    return Err(PathError::new(format!(
                        "decimal precision {} is outside 1..={MAX_DECIMAL_PRECISION}, which \
                         Arrow's Decimal128 and Iceberg can hold",
                        d.precision
                    )));
                }
                if d.scale > d.precision {
                    return Err(PathError::new(format!(
                        "decimal scale {} is larger than its precision {}",
                        d.scale, d.precision
                    )));
                }
                (
                    DataType::Decimal128(d.precision as u8, d.scale as i8),
                    false,
                )
            }
            S::Date => (DataType::Date32, false),
            S::TimeMillis | S::TimeMicros => (DataType::Time64(TimeUnit::Microsecond), false),
            S::TimestampMillis | S::TimestampMicros => (ts(TimeUnit::Microsecond, true), false),
            S::LocalTimestampMillis | S::LocalTimestampMicros => {
                (ts(TimeUnit::Microsecond, false), false)
            }
            S::TimestampNanos => (ts(TimeUnit::Nanosecond, true), false),
            S::LocalTimestampNanos => (ts(TimeUnit::Nanosecond, false), false),
            S::Array(a) => {
                let (item, nullable) = self.map(&a.items)?;
                (
                    DataType::List(Arc::new(Field::new("item", item, nullable))),
                    false,
                )
            }
            S::Map(m) => {
                let (value, nullable) = self.map(&m.types)?;
                (map_type(Field::new("value", value, nullable)), false)
            }
            S::Union(u) => match json_union(u) {
                Some(has_null) => (DataType::Utf8, has_null),
                None => {
                    let has_null = u.variants().iter().any(|v| matches!(v, S::Null));
                    match u.variants().iter().find(|v| !matches!(v, S::Null)) {
                        Some(inner) => {
                            let (t, nullable) = self.map(inner)?;
                            (t, nullable || has_null)
                        }
                        None => (DataType::Null, true),
                    }
                }
            },
            S::Record(r) => {
                if self.open.contains(&r.name) {
                    return Err(recursive(&r.name));
                }
                self.open.push(r.name.clone());
                let mut children = Vec::with_capacity(r.fields.len());
                for f in &r.fields {
                    let (t, nullable) = self.map(&f.schema).map_err(|e| e.within(&f.name))?;
                    children.push(Field::new(&f.name, t, nullable));
                }
                self.open.pop();
                (DataType::Struct(children.into()), false)
            }
            S::Ref { name } => {
                if self.open.contains(name) {
                    return Err(recursive(name));
                }
                let target = self.names.get(name).ok_or_else(|| {
                    PathError::new(format!("refers to the unknown named type `{name}`"))
                })?;
                self.map(target)?
            }
        })
    }
}

pub(crate) fn recursive(name: &Name) -> PathError {
    PathError::new(format!(
        "the record `{name}` contains itself; a recursive type has no fixed set of columns"
    ))
}

pub(crate) fn fixed_type(size: usize) -> Result<DataType, PathError> {
    i32::try_from(size)
        .map(DataType::FixedSizeBinary)
        .map_err(|_| PathError::new(format!("fixed size {size} is too large")))
}

/// Arrow's canonical map layout: `entries: struct<key: utf8, value>`.
pub(crate) fn map_type(value: Field) -> DataType {
    let entries = Field::new(
        "entries",
        DataType::Struct(vec![Field::new("key", DataType::Utf8, false), value].into()),
        false,
    );
    DataType::Map(Arc::new(entries), false)
}

/// `Some(has_null)` for a union with several non-null branches, which becomes
/// one JSON text column; `None` for a union of at most one non-null branch.
pub(crate) fn json_union(u: &UnionSchema) -> Option<bool> {
    let non_null = u
        .variants()
        .iter()
        .filter(|v| !matches!(v, AvroSchema::Null))
        .count();
    (non_null > 1).then(|| non_null < u.variants().len())
}
