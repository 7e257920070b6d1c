//! Avro schema → Arrow: a writer schema mapped to the batch's fields
//! ([`Writer`]), following named types and refusing recursive ones and ones
//! nested deeper than [`MAX_DEPTH`], before any body is decoded with it.

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::Arc;

use apache_avro::Schema as AvroSchema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema::{Name, ResolvedSchema, UnionSchema};
use apache_avro::types::Value;
use arrow_schema::{DataType, Field, TimeUnit};
use tributary_connector::UTC;

use super::path::PathError;
use crate::error::BadRecord;

/// Arrow's Decimal128 holds at most 38 digits (as does Iceberg's decimal).
pub(crate) const MAX_DECIMAL_PRECISION: usize = 38;

/// How deeply a writer schema may nest (records, arrays, maps, unions, each
/// a level). apache-avro decodes and this module maps by recursion, one
/// stack frame per level, and named types nest without nesting the JSON, so
/// the JSON parser's own depth limit does not bound it: a schema 10,000
/// deep overflowed the stack and killed the process. Real schemas nest a
/// handful of levels; Spark and Flink read far fewer than 64 comfortably.
pub(crate) const MAX_DEPTH: usize = 64;

/// The writer schema, the schemas it references, and the apache-avro reader
/// that borrows them, kept together so the reader (whose resolved names cost
/// a walk of the schema to build) is built once per writer schema rather
/// than once per value.
struct Schemata {
    main: AvroSchema,
    referenced: Vec<AvroSchema>,
}

type DatumReader<'a> = GenericDatumReader<'a>;

self_cell::self_cell!(
    struct Decoding {
        owner: Schemata,
        #[covariant]
        dependent: DatumReader,
    }
);

/// One writer schema, mapped, and ready to decode bodies written with it.
pub(crate) struct Writer {
    decoding: Decoding,
    /// Named types it defines or references, to follow `Ref`s.
    pub(crate) names: HashMap<Name, AvroSchema>,
    /// Its top-level fields as Arrow fields (all nullable).
    pub(crate) fields: Vec<Field>,
}

impl Writer {
    /// `schema` with no references to other registered schemas.
    pub(crate) fn new(schema: AvroSchema) -> Result<Self, BadRecord> {
        Self::with_references(schema, Vec::new())
    }

    /// `schema`, whose named types may be defined in `referenced` (a
    /// Schema Registry's schema references, each after the ones it uses). Refuses what cannot become
    /// columns, recursive and too deeply nested schemas among them, so no
    /// body is ever decoded with those.
    pub(crate) fn with_references(
        schema: AvroSchema,
        referenced: Vec<AvroSchema>,
    ) -> Result<Self, BadRecord> {
        let AvroSchema::Record(record) = &schema else {
            return Err(format!(
                "the top-level Avro schema must be a record, not {}",
                avro_kind(&schema)
            )
            .into());
        };
        // Referenced schemas first: apache-avro resolves names in order.
        let all: Vec<&AvroSchema> = referenced.iter().chain([&schema]).collect();
        let names: HashMap<Name, AvroSchema> = ResolvedSchema::new_with_schemata(all)
            .map_err(|e| format!("cannot resolve its named types: {e}"))?
            .get_names()
            .iter()
            .map(|(n, s)| (n.clone(), (*s).clone()))
            .collect();
        let mut mapper = Mapper {
            names: &names,
            open: vec![record.name.clone()],
            depth: 1,
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
        let decoding = Decoding::try_new(
            Schemata {
                main: schema,
                referenced,
            },
            |s| {
                let all = s.referenced.iter().chain([&s.main]).collect();
                GenericDatumReader::builder(&s.main)
                    .writer_schemata(all)?
                    .build()
            },
        )
        .map_err(|e| format!("cannot read values with it: {e}"))?;
        Ok(Self {
            decoding,
            names,
            fields,
        })
    }

    /// The writer schema (a record).
    pub(crate) fn schema(&self) -> &AvroSchema {
        &self.decoding.borrow_owner().main
    }

    /// One Avro body written with this schema, decoded.
    pub(crate) fn decode(&self, body: &[u8]) -> Result<Value, apache_avro::Error> {
        self.decoding
            .borrow_dependent()
            .read_value(&mut Cursor::new(body))
    }
}

/// What a schema is, in Avro's words, for messages. Written out here rather
/// than taken from apache-avro's `canonical_form`, which panics on some
/// schemas its own parser accepts (found by the `avro_schema` fuzz target:
/// a top-level union whose branch has `"fields": 4`).
pub(crate) fn avro_kind(schema: &AvroSchema) -> String {
    use AvroSchema as S;
    match schema {
        S::Record(r) => format!("record {}", r.name),
        S::Enum(e) => format!("enum {}", e.name),
        S::Fixed(f) => format!("fixed {}", f.name),
        S::Ref { name } => name.to_string(),
        S::Array(_) => "an array".into(),
        S::Map(_) => "a map".into(),
        S::Union(u) => format!("a union of {} types", u.variants().len()),
        S::Null => "null".into(),
        S::Boolean => "boolean".into(),
        S::Int => "int".into(),
        S::Long => "long".into(),
        S::Float => "float".into(),
        S::Double => "double".into(),
        S::Bytes => "bytes".into(),
        S::String => "string".into(),
        S::Decimal(_) => "decimal".into(),
        S::BigDecimal => "big-decimal".into(),
        S::Uuid(_) => "uuid".into(),
        S::Date => "date".into(),
        S::TimeMillis => "time-millis".into(),
        S::TimeMicros => "time-micros".into(),
        S::TimestampMillis => "timestamp-millis".into(),
        S::TimestampMicros => "timestamp-micros".into(),
        S::TimestampNanos => "timestamp-nanos".into(),
        S::LocalTimestampMillis => "local-timestamp-millis".into(),
        S::LocalTimestampMicros => "local-timestamp-micros".into(),
        S::LocalTimestampNanos => "local-timestamp-nanos".into(),
        S::Duration(_) => "duration".into(),
    }
}

/// Avro schema → Arrow type, following `Ref`s and refusing recursive types
/// (a column has a fixed depth).
pub(crate) struct Mapper<'a> {
    pub(crate) names: &'a HashMap<Name, AvroSchema>,
    /// Named records being mapped, outermost first.
    pub(crate) open: Vec<Name>,
    /// Levels entered so far, the top-level record being the first.
    pub(crate) depth: usize,
}

impl Mapper<'_> {
    /// The Arrow type of `schema` and whether it may be null.
    pub(crate) fn map(&mut self, schema: &AvroSchema) -> Result<(DataType, bool), PathError> {
        if self.depth >= MAX_DEPTH {
            return Err(PathError::new(format!(
                "the schema nests more than {MAX_DEPTH} levels deep (records, arrays, maps and \
                 unions inside each other); Tributary reads at most {MAX_DEPTH} levels"
            )));
        }
        self.depth += 1;
        let mapped = self.map_level(schema);
        self.depth -= 1;
        mapped
    }

    fn map_level(&mut self, schema: &AvroSchema) -> Result<(DataType, bool), PathError> {
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
                self.map_level(target)?
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
