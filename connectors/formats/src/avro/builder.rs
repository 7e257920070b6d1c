//! Avro message values in the Confluent wire format, decoded into Arrow.
//!
//! A value is `0x00` (the magic byte), the writer schema's id in the Schema
//! Registry (4 bytes, big-endian) and the Avro binary body. The registry is
//! asked for each schema id once: `schema_registry_converter`'s blocking
//! [`AvroDecoder`] fetches, caches and decodes with it, and this module turns
//! the decoded value into a row.
//!
//! **The batch schema is the union of every writer schema seen so far** in this
//! process: top-level fields in first-seen order, every one nullable. When a
//! producer moves to a new writer schema (say v2 adds an optional field), the
//! next batch has one more column and rows written with v1 read null there.
//! Nested records grow the same way. A writer schema that gives a field a type
//! that cannot hold the earlier one (string then long) makes its records bad;
//! the widenings Iceberg allows are taken instead: int → long, float → double,
//! a decimal's precision at the same scale.
//!
//! | Avro | Arrow |
//! |---|---|
//! | boolean, int, long, float, double | Boolean, Int32, Int64, Float32, Float64 |
//! | string, enum (its symbol), uuid | Utf8 |
//! | bytes / fixed(n) | Binary / FixedSizeBinary(n) |
//! | decimal(p, s) on bytes or fixed | Decimal128(p, s) (p ≤ 38, else the record is bad) |
//! | big-decimal | Utf8 (its decimal text) |
//! | date | Date32 |
//! | time-millis, time-micros | Time64(µs) |
//! | timestamp-millis, timestamp-micros | Timestamp(µs, "+00:00") — Iceberg `timestamptz` |
//! | local-timestamp-millis, local-timestamp-micros | Timestamp(µs) — Iceberg `timestamp` |
//! | timestamp-nanos / local-timestamp-nanos | Timestamp(ns, "+00:00") / Timestamp(ns) |
//! | duration | FixedSizeBinary(12), the Avro bytes |
//! | `[null, T]`, `[T, null]`, `[T]` | T, nullable when null is a branch |
//! | a union of several non-null types | **Utf8 holding the value as JSON text** (no branch name) |
//! | record / array / map | Struct / List / Map (Utf8 keys, entries sorted by key) |
//!
//! Neither `schema_registry_converter` nor apache-avro 0.22 turns values into
//! Arrow (`arrow-avro` does, but only for the arrow 60 line), so the mapping is
//! written here.
//!
//! Rows are kept as typed cells until [`AvroBatchBuilder::finish`] and only
//! then appended to Arrow builders: by then the batch schema is final, so a
//! writer schema that adds a column half-way through a batch needs no
//! rebuilding of builders, and a bad record never leaves half a row behind.
//!
//! ```no_run
//! use tributary_kafka::format::{AvroBatchBuilder, DecodeError};
//! # fn messages() -> Vec<Vec<u8>> { Vec::new() }
//! let mut avro = AvroBatchBuilder::new("http://127.0.0.1:8081")?;
//! for value in messages() {
//!     match avro.push(&value) {
//!         Ok(()) => {}
//!         Err(DecodeError::Bad(reason)) => eprintln!("dead-letter: {reason}"),
//!         Err(DecodeError::Unavailable(e)) => return Err(e), // retry later
//!     }
//! }
//! let batch = avro.finish()?;
//! # Ok::<(), tributary_connector::Error>(())
//! ```
//!
//! The registry client is reqwest's blocking one: build and use the builder on
//! a plain thread (the source's), not inside an async task.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use apache_avro::Schema as AvroSchema;
use apache_avro::schema::{Name, ResolvedSchema, UnionSchema};
use apache_avro::types::Value;
use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, FixedSizeBinaryBuilder,
    Float32Builder, Float64Builder, Int32Builder, Int64Builder, StringBuilder,
    Time64MicrosecondBuilder, TimestampMicrosecondBuilder, TimestampNanosecondBuilder,
};
use arrow_array::{
    ArrayRef, ListArray, MapArray, NullArray, RecordBatch, RecordBatchOptions, StructArray,
};
use arrow_buffer::{NullBufferBuilder, OffsetBuffer};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use schema_registry_converter::blocking::avro::AvroDecoder;
use schema_registry_converter::blocking::schema_registry::SrSettings;
use schema_registry_converter::error::SRCError;
use tributary_connector::{Error, Result, UTC, redact_uri};

use super::DecodeError;

/// How long one registry request may take. The source thread waits for it,
/// so this bounds how long a poll can hang on a registry that accepts
/// connections but does not answer.
const REGISTRY_TIMEOUT: Duration = Duration::from_secs(10);

/// Arrow's Decimal128 holds at most 38 digits (as does Iceberg's decimal).
const MAX_DECIMAL_PRECISION: usize = 38;

/// Decodes Confluent-framed Avro values into rows of a growing Arrow schema.
pub struct AvroBatchBuilder {
    /// The registry URL without credentials, for messages.
    registry: String,
    decoder: AvroDecoder,
    /// What each writer schema id maps to, or why it cannot be read.
    writers: HashMap<u32, Result<Arc<Writer>, String>>,
    /// For writer schemas already merged into `fields`: the column of each of
    /// their fields. Columns are only ever appended, so these stay valid.
    columns_of: HashMap<u32, Vec<usize>>,
    /// The batch schema: the union of every writer schema merged so far.
    fields: Vec<Field>,
    /// Rows since the last finish, as (column, cell) pairs.
    rows: Vec<Vec<(usize, Cell)>>,
}

impl std::fmt::Debug for AvroBatchBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AvroBatchBuilder")
            .field("registry", &self.registry)
            .field("writer_schemas", &self.writers.len())
            .field("columns", &self.fields.len())
            .field("rows", &self.rows.len())
            .finish()
    }
}

/// One writer schema, mapped.
struct Writer {
    /// The parsed writer schema (a record).
    schema: AvroSchema,
    /// Named types it defines, to follow `Ref`s (a named type used twice).
    names: HashMap<Name, AvroSchema>,
    /// Its top-level fields as Arrow fields (all nullable).
    fields: Vec<Field>,
}

impl AvroBatchBuilder {
    /// A builder that fetches writer schemas from the Schema Registry at
    /// `registry_url` (e.g. `http://127.0.0.1:8081`; several URLs separated by
    /// commas are tried in order, as Confluent's `schema.registry.url`).
    /// Nothing is fetched until the first value arrives.
    pub fn new(registry_url: &str) -> Result<Self> {
        let registry = redact_uri(registry_url);
        let urls: Vec<&str> = registry_url
            .split(',')
            .map(|u| u.trim().trim_end_matches('/'))
            .collect();
        if let Some(bad) = urls
            .iter()
            .find(|u| !(u.starts_with("http://") || u.starts_with("https://")))
        {
            return Err(Error::config(format!(
                "kafka source: schema registry URL `{}` must start with http:// or https://",
                redact_uri(bad)
            )));
        }
        let mut builder = SrSettings::new_builder(urls[0].to_string());
        for more in &urls[1..] {
            builder.add_url(more.to_string());
        }
        let settings = builder.set_timeout(REGISTRY_TIMEOUT).build().map_err(|e| {
            Error::config(format!(
                "kafka source: cannot set up a client for the schema registry {registry}: {}",
                describe_src(&e)
            ))
        })?;
        Ok(Self {
            registry,
            decoder: AvroDecoder::new(settings),
            writers: HashMap::new(),
            columns_of: HashMap::new(),
            fields: Vec::new(),
            rows: Vec::new(),
        })
    }

    /// Decodes one framed value and appends it as a row. All or nothing: on
    /// error no partial row stays appended and the batch schema is unchanged.
    pub fn push(&mut self, payload: &[u8]) -> Result<(), DecodeError> {
        let id = frame(payload)?;
        let decoded = match self.decoder.decode_with_schema(Some(payload)) {
            Ok(Some(decoded)) => decoded,
            Ok(None) => return Err(DecodeError::Bad("empty value".into())),
            Err(e) => return Err(self.registry_error(id, e)),
        };
        let writer = match self.writers.get(&id) {
            Some(known) => known.clone(),
            None => {
                let mapped = Writer::new(decoded.schema.parsed.clone()).map(Arc::new);
                self.writers.insert(id, mapped.clone());
                mapped
            }
        }
        .map_err(|reason| DecodeError::Bad(format!("writer schema id {id}: {reason}")))?;

        // Work out the grown schema first, the row second, and keep either
        // only when both succeed.
        let grown = match self.columns_of.get(&id) {
            Some(_) => None,
            None => Some(
                merge_top_level(&self.fields, &writer.fields).map_err(|reason| {
                    DecodeError::Bad(format!("writer schema id {id}: {reason}"))
                })?,
            ),
        };
        let Value::Record(values) = decoded.value else {
            return Err(DecodeError::Bad(format!(
                "writer schema id {id}: the decoded value is not a record"
            )));
        };
        let AvroSchema::Record(record) = &writer.schema else {
            unreachable!("Writer::new accepts records only")
        };
        let mut cells = Vec::with_capacity(values.len());
        for (field, (name, value)) in record.fields.iter().zip(values) {
            let c = cell(&field.schema, &writer.names, value)
                .map_err(|e| DecodeError::Bad(e.within(&name).to_string()))?;
            cells.push(c);
        }
        if let Some((fields, columns)) = grown {
            self.fields = fields;
            self.columns_of.insert(id, columns);
        }
        let columns = &self.columns_of[&id];
        self.rows
            .push(columns.iter().copied().zip(cells).collect::<Vec<_>>());
        Ok(())
    }

    /// Rows pushed since the last [`AvroBatchBuilder::finish`].
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The batch schema as it stands: every writer schema seen so far.
    pub fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(self.fields.clone()))
    }

    /// The rows pushed since the last finish, as one batch. Its schema is the
    /// union of every writer schema seen so far in this process (fields in
    /// first-seen order), so rows of older writer schemas read as null in the
    /// fields newer ones added.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let schema = self.schema();
        let rows = std::mem::take(&mut self.rows);
        let n = rows.len();
        let mut cols: Vec<Col> = self
            .fields
            .iter()
            .map(|f| Col::new(f.data_type()))
            .collect();
        let mut row_cells: Vec<Cell> = Vec::new();
        for row in rows {
            row_cells.clear();
            row_cells.resize_with(cols.len(), || Cell::Null);
            for (i, c) in row {
                row_cells[i] = c;
            }
            for (col, c) in cols.iter_mut().zip(row_cells.drain(..)) {
                col.append(c);
            }
        }
        let columns = self
            .fields
            .iter()
            .zip(cols)
            .map(|(f, c)| c.finish(f.data_type()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                Error::internal(format!(
                    "kafka source: Avro rows do not fit their schema: {e}"
                ))
            })?;
        RecordBatch::try_new_with_options(
            schema,
            columns,
            &RecordBatchOptions::new().with_row_count(Some(n)),
        )
        .map_err(|e| {
            Error::internal(format!(
                "kafka source: Avro rows do not fit their schema: {e}"
            ))
        })
    }

    /// Sorts a failed registry lookup or decode into "this record is bad" and
    /// "the registry is unavailable".
    fn registry_error(&self, id: u32, e: SRCError) -> DecodeError {
        let registry = &self.registry;
        let status = http_status(&e.error);
        if e.retriable || status.is_some_and(|s| s >= 500) {
            // The decoder caches errors it thinks permanent, a 500 among
            // them; a registry that was down for a moment must not make this
            // id unreadable for the life of the process.
            self.decoder.remove_errors_from_cache();
            return DecodeError::Unavailable(
                Error::external(format!(
                    "kafka source: schema registry {registry} is unavailable (looking up writer \
                     schema id {id}): {}; retry the same message when it answers",
                    describe_src(&e)
                ))
                .with_source(e),
            );
        }
        if matches!(status, Some(401 | 403)) {
            self.decoder.remove_errors_from_cache();
            return DecodeError::Unavailable(
                Error::config(format!(
                    "kafka source: schema registry {registry} refused to give writer schema id \
                     {id}: {}; check the registry credentials in the URL or config",
                    describe_src(&e)
                ))
                .with_source(e),
            );
        }
        let cause = e.cause.as_deref().unwrap_or("");
        if status == Some(404) && !cause.contains("40403") {
            // A 404 without the registry's "schema not found" code: the URL
            // is not a Schema Registry (or has a wrong path). Dead-lettering
            // every record would hide that.
            self.decoder.remove_errors_from_cache();
            return DecodeError::Unavailable(Error::config(format!(
                "kafka source: {registry} answered 404 without Confluent's error code 40403 \
                 looking up writer schema id {id} ({}): is it the Schema Registry's base URL?",
                describe_src(&e)
            )));
        }
        if status == Some(404) {
            return DecodeError::Bad(format!(
                "writer schema id {id} is not in the schema registry {registry} ({}): was the \
                 message written against another registry?",
                e.cause.as_deref().unwrap_or("not found")
            ));
        }
        if e.error.starts_with("Could not transform bytes") {
            return DecodeError::Bad(format!(
                "the Avro body does not decode with writer schema id {id} (truncated or \
                 corrupt?): {}",
                e.cause.as_deref().unwrap_or(&e.error)
            ));
        }
        DecodeError::Bad(format!(
            "writer schema id {id} from the schema registry {registry} cannot be used: {}",
            describe_src(&e)
        ))
    }
}

/// The schema id of a Confluent-framed value, or why it is not one.
fn frame(payload: &[u8]) -> Result<u32, DecodeError> {
    match payload {
        [0, a, b, c, d, ..] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
        [] => Err(DecodeError::Bad(
            "empty value: expected the Confluent wire format (0x00, a 4-byte schema id, Avro)"
                .into(),
        )),
        [0, ..] => Err(DecodeError::Bad(format!(
            "value of {} bytes is too short for the Confluent wire format (0x00, a 4-byte \
             schema id, Avro)",
            payload.len()
        ))),
        [first, ..] => Err(DecodeError::Bad(format!(
            "first byte is {first:#04x}, not the Confluent magic byte 0x00: the value was not \
             written with a Schema Registry Avro serializer"
        ))),
    }
}

/// `HTTP request to schema registry failed with status 404 Not Found` → 404.
fn http_status(error: &str) -> Option<u16> {
    let rest = error.split("with status ").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

fn describe_src(e: &SRCError) -> String {
    match &e.cause {
        Some(cause) => format!("{}: {cause}", e.error),
        None => e.error.clone(),
    }
}

impl Writer {
    fn new(schema: AvroSchema) -> Result<Self, String> {
        let AvroSchema::Record(record) = &schema else {
            return Err(format!(
                "the top-level Avro schema must be a record, not {}",
                avro_kind(&schema)
            ));
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

/// A problem at a place in a value or schema: `field `a.b`: ...`.
#[derive(Debug)]
struct PathError {
    /// Field names, innermost first.
    path: Vec<String>,
    reason: String,
}

impl PathError {
    fn new(reason: impl Into<String>) -> Self {
        Self {
            path: Vec::new(),
            reason: reason.into(),
        }
    }
    fn within(mut self, field: &str) -> Self {
        self.path.push(field.to_string());
        self
    }
}

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path: Vec<&str> = self.path.iter().rev().map(String::as_str).collect();
        write!(f, "field `{}`: {}", path.join("."), self.reason)
    }
}

fn avro_kind(schema: &AvroSchema) -> String {
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
struct Mapper<'a> {
    names: &'a HashMap<Name, AvroSchema>,
    /// Named records being mapped, outermost first.
    open: Vec<Name>,
}

impl Mapper<'_> {
    /// The Arrow type of `schema` and whether it may be null.
    fn map(&mut self, schema: &AvroSchema) -> Result<(DataType, bool), PathError> {
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

fn recursive(name: &Name) -> PathError {
    PathError::new(format!(
        "the record `{name}` contains itself; a recursive type has no fixed set of columns"
    ))
}

fn fixed_type(size: usize) -> Result<DataType, PathError> {
    i32::try_from(size)
        .map(DataType::FixedSizeBinary)
        .map_err(|_| PathError::new(format!("fixed size {size} is too large")))
}

/// Arrow's canonical map layout: `entries: struct<key: utf8, value>`.
fn map_type(value: Field) -> DataType {
    let entries = Field::new(
        "entries",
        DataType::Struct(vec![Field::new("key", DataType::Utf8, false), value].into()),
        false,
    );
    DataType::Map(Arc::new(entries), false)
}

/// `Some(has_null)` for a union with several non-null branches, which becomes
/// one JSON text column; `None` for a union of at most one non-null branch.
fn json_union(u: &UnionSchema) -> Option<bool> {
    let non_null = u
        .variants()
        .iter()
        .filter(|v| !matches!(v, AvroSchema::Null))
        .count();
    (non_null > 1).then(|| non_null < u.variants().len())
}

/// One value, converted to what its column stores. Logical types are already
/// in the column's unit (timestamps in µs), so appending cannot fail.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
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
fn cell(
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
fn to_json(v: Value) -> Result<String, PathError> {
    serde_json::Value::try_from(v)
        .map(|j| j.to_string())
        .map_err(|e| PathError::new(format!("cannot be written as JSON text: {e}")))
}

/// An Avro decimal's unscaled value, checked against its precision.
fn decimal(d: &apache_avro::Decimal, precision: usize) -> Result<i128, PathError> {
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

/// Merges one writer schema's top-level fields into the batch schema: the
/// grown fields, and the column of each writer field.
fn merge_top_level(
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
fn merge_field(old: &Field, new: &Field) -> Result<Field, PathError> {
    let t = merge_type(old.data_type(), new.data_type())?;
    let nullable = old.is_nullable() || new.is_nullable() || t == DataType::Null;
    Ok(Field::new(old.name(), t, nullable))
}

fn merge_type(old: &DataType, new: &DataType) -> Result<DataType, PathError> {
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

fn clash(old: &DataType, new: &DataType) -> PathError {
    PathError::new(format!(
        "this writer schema makes it {} but an earlier writer schema made it {}; a field cannot \
         change to a type that does not hold the old values — give the new type a new field name",
        type_name(new),
        type_name(old)
    ))
}

/// The Avro name of an Arrow type where there is one, for messages.
fn type_name(t: &DataType) -> String {
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

/// A column being built from cells, shaped like its Arrow type.
enum Col {
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
    fn new(t: &DataType) -> Self {
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
    fn append(&mut self, c: Cell) {
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

    fn append_null(&mut self) {
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

    fn finish(self, t: &DataType) -> Result<ArrayRef, arrow_schema::ArrowError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::types::Value as V;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{
        Date32Type, Decimal128Type, Float32Type, Float64Type, Int32Type, Int64Type,
        Time64MicrosecondType, TimestampMicrosecondType,
    };
    use arrow_array::{Array, StringArray};
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::Mutex;

    /// A Schema Registry that answers `GET /schemas/ids/{id}` and nothing
    /// else, enough to exercise the lookups of this module. (The real registry
    /// and third-party producers are tested end to end elsewhere.)
    #[derive(Clone, Default)]
    struct Stub {
        schemas: Arc<Mutex<HashMap<u32, String>>>,
        /// When set, every request gets this status instead.
        fail_with: Arc<Mutex<Option<u16>>>,
        requests: Arc<Mutex<usize>>,
    }

    impl Stub {
        fn start() -> (Self, String) {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            (Self::serve(listener), url)
        }

        fn serve(listener: TcpListener) -> Self {
            let stub = Self::default();
            let s = stub.clone();
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    let Ok(conn) = conn else { continue };
                    s.answer(conn);
                }
            });
            stub
        }

        fn register(&self, id: u32, schema: &str) {
            self.schemas.lock().unwrap().insert(id, schema.to_string());
        }

        fn answer(&self, mut conn: TcpStream) {
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            *self.requests.lock().unwrap() += 1;
            let line = String::from_utf8_lossy(&req)
                .lines()
                .next()
                .unwrap_or("")
                .to_string();
            let path = line.split_whitespace().nth(1).unwrap_or("");
            let id: Option<u32> = path
                .strip_prefix("/schemas/ids/")
                .and_then(|rest| rest.split('?').next())
                .and_then(|id| id.parse().ok());
            let schema = id.and_then(|id| self.schemas.lock().unwrap().get(&id).cloned());
            let fail = *self.fail_with.lock().unwrap();
            let (status, body) = match (fail, schema) {
                (Some(code), _) => (
                    format!("{code} Oops"),
                    serde_json::json!({"error_code": 50001, "message": "store is down"}),
                ),
                (None, Some(schema)) => ("200 OK".into(), serde_json::json!({"schema": schema})),
                (None, None) => (
                    "404 Not Found".into(),
                    serde_json::json!({"error_code": 40403, "message": "Schema not found"}),
                ),
            };
            let body = body.to_string();
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    }

    /// `value` in the Confluent wire format with writer schema `id`.
    fn framed(id: u32, schema: &str, value: V) -> Vec<u8> {
        let schema = AvroSchema::parse_str(schema).unwrap();
        let mut out = vec![0];
        out.extend_from_slice(&id.to_be_bytes());
        let writer = apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
            .build()
            .unwrap();
        out.extend(writer.write_value_to_vec(value).unwrap());
        out
    }

    fn record(fields: &[(&str, V)]) -> V {
        V::Record(
            fields
                .iter()
                .map(|(n, v)| (n.to_string(), v.clone()))
                .collect(),
        )
    }

    fn bad(r: Result<(), DecodeError>) -> String {
        match r {
            Err(DecodeError::Bad(reason)) => reason,
            other => panic!("expected Bad, got {other:?}"),
        }
    }

    fn strings(a: &dyn Array) -> Vec<Option<String>> {
        a.as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .iter()
            .map(|s| s.map(str::to_string))
            .collect()
    }

    const ALL_TYPES: &str = r#"{"type": "record", "name": "All", "namespace": "t", "fields": [
        {"name": "b", "type": "boolean"},
        {"name": "i", "type": "int"},
        {"name": "l", "type": "long"},
        {"name": "f", "type": "float"},
        {"name": "d", "type": "double"},
        {"name": "s", "type": "string"},
        {"name": "raw", "type": "bytes"},
        {"name": "fx", "type": {"type": "fixed", "name": "Four", "size": 4}},
        {"name": "e", "type": {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN"]}},
        {"name": "ts_ms", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "ts_us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "lts_ms", "type": {"type": "long", "logicalType": "local-timestamp-millis"}},
        {"name": "lts_us", "type": {"type": "long", "logicalType": "local-timestamp-micros"}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "t_ms", "type": {"type": "int", "logicalType": "time-millis"}},
        {"name": "t_us", "type": {"type": "long", "logicalType": "time-micros"}},
        {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
        {"name": "qty", "type": {"type": "fixed", "name": "Q", "size": 8, "logicalType": "decimal", "precision": 18, "scale": 4}},
        {"name": "uid", "type": {"type": "string", "logicalType": "uuid"}}
    ]}"#;

    fn all_types_value(price: &[u8]) -> V {
        record(&[
            ("b", V::Boolean(true)),
            ("i", V::Int(-7)),
            ("l", V::Long(1 << 40)),
            ("f", V::Float(1.5)),
            ("d", V::Double(-2.25)),
            ("s", V::String("héllo".into())),
            ("raw", V::Bytes(vec![0, 255])),
            ("fx", V::Fixed(4, vec![1, 2, 3, 4])),
            ("e", V::Enum(1, "GREEN".into())),
            ("ts_ms", V::TimestampMillis(1_767_323_045_123)),
            ("ts_us", V::TimestampMicros(1_767_323_045_123_456)),
            ("lts_ms", V::LocalTimestampMillis(1_000)),
            ("lts_us", V::LocalTimestampMicros(2_000_001)),
            ("day", V::Date(20_455)),
            ("t_ms", V::TimeMillis(3_600_000)),
            ("t_us", V::TimeMicros(1_000_001)),
            ("price", V::Decimal(apache_avro::Decimal::from(price))),
            // -12.3456 at scale 4, sign-extended to 8 bytes.
            (
                "qty",
                V::Decimal(apache_avro::Decimal::from((-123_456i64).to_be_bytes())),
            ),
            (
                "uid",
                V::Uuid("67e55044-10b1-426f-9247-bb680e5fe0c8".parse().unwrap()),
            ),
        ])
    }

    #[test]
    fn every_type_maps_to_its_arrow_type_and_value() {
        let (stub, url) = Stub::start();
        stub.register(1, ALL_TYPES);
        let mut avro = AvroBatchBuilder::new(&url).unwrap();
        // 12345.67 as an unscaled big-endian two's complement integer.
        let price = 1_234_567i32.to_be_bytes();
        avro.push(&framed(1, ALL_TYPES, all_types_value(&price)))
            .unwrap();
        assert_eq!(avro.len(), 1);
        let batch = avro.finish().unwrap();
        assert_eq!(avro.len(), 0);
        let schema = batch.schema();
        let t = |name: &str| schema.field_with_name(name).unwrap().data_type().clone();
        let utc = Some(UTC.into());
        assert_eq!(t("b"), DataType::Boolean);
        assert_eq!(t("i"), DataType::Int32);
        assert_eq!(t("l"), DataType::Int64);
        assert_eq!(t("f"), DataType::Float32);
        assert_eq!(t("d"), DataType::Float64);
        assert_eq!(t("s"), DataType::Utf8);
        assert_eq!(t("raw"), DataType::Binary);
        assert_eq!(t("fx"), DataType::FixedSizeBinary(4));
        assert_eq!(t("e"), DataType::Utf8);
        assert_eq!(
            t("ts_ms"),
            DataType::Timestamp(TimeUnit::Microsecond, utc.clone())
        );
        assert_eq!(t("ts_us"), DataType::Timestamp(TimeUnit::Microsecond, utc));
        assert_eq!(
            t("lts_ms"),
            DataType::Timestamp(TimeUnit::Microsecond, None)
        );
        assert_eq!(
            t("lts_us"),
            DataType::Timestamp(TimeUnit::Microsecond, None)
        );
        assert_eq!(t("day"), DataType::Date32);
        assert_eq!(t("t_ms"), DataType::Time64(TimeUnit::Microsecond));
        assert_eq!(t("t_us"), DataType::Time64(TimeUnit::Microsecond));
        assert_eq!(t("price"), DataType::Decimal128(10, 2));
        assert_eq!(t("qty"), DataType::Decimal128(18, 4));
        assert_eq!(t("uid"), DataType::Utf8);
        assert!(schema.fields().iter().all(|f| f.is_nullable()));

        let col = |name: &str| batch.column_by_name(name).unwrap().clone();
        assert!(col("b").as_boolean().value(0));
        assert_eq!(col("i").as_primitive::<Int32Type>().value(0), -7);
        assert_eq!(col("l").as_primitive::<Int64Type>().value(0), 1 << 40);
        assert_eq!(col("f").as_primitive::<Float32Type>().value(0), 1.5);
        assert_eq!(col("d").as_primitive::<Float64Type>().value(0), -2.25);
        assert_eq!(strings(&col("s")), [Some("héllo".to_string())]);
        assert_eq!(col("raw").as_binary::<i32>().value(0), [0, 255]);
        assert_eq!(col("fx").as_fixed_size_binary().value(0), [1, 2, 3, 4]);
        assert_eq!(strings(&col("e")), [Some("GREEN".to_string())]);
        // Millis and micros both land as µs.
        let ts = |name: &str| {
            col(name)
                .as_primitive::<TimestampMicrosecondType>()
                .value(0)
        };
        assert_eq!(ts("ts_ms"), 1_767_323_045_123_000);
        assert_eq!(ts("ts_us"), 1_767_323_045_123_456);
        assert_eq!(ts("lts_ms"), 1_000_000);
        assert_eq!(ts("lts_us"), 2_000_001);
        assert_eq!(col("day").as_primitive::<Date32Type>().value(0), 20_455);
        let time = |name: &str| col(name).as_primitive::<Time64MicrosecondType>().value(0);
        assert_eq!(time("t_ms"), 3_600_000_000);
        assert_eq!(time("t_us"), 1_000_001);
        let price = col("price");
        let price = price.as_primitive::<Decimal128Type>();
        assert_eq!(price.value(0), 1_234_567);
        assert_eq!(price.value_as_string(0), "12345.67");
        let qty = col("qty");
        assert_eq!(
            qty.as_primitive::<Decimal128Type>().value_as_string(0),
            "-12.3456"
        );
        assert_eq!(
            strings(&col("uid")),
            [Some("67e55044-10b1-426f-9247-bb680e5fe0c8".to_string())]
        );
        // One lookup for the id, then the cache.
        avro.push(&framed(1, ALL_TYPES, all_types_value(&price_bytes(5))))
            .unwrap();
        assert_eq!(*stub.requests.lock().unwrap(), 1);
    }

    fn price_bytes(x: i32) -> [u8; 4] {
        x.to_be_bytes()
    }

    #[test]
    fn a_decimal_with_too_many_digits_is_bad_and_appends_nothing() {
        let (stub, url) = Stub::start();
        stub.register(1, ALL_TYPES);
        let mut avro = AvroBatchBuilder::new(&url).unwrap();
        avro.push(&framed(1, ALL_TYPES, all_types_value(&price_bytes(-5))))
            .unwrap();
        // 11 digits where decimal(10, 2) allows 10.
        let too_big = 99_999_999_999i64.to_be_bytes();
        let reason = bad(avro.push(&framed(1, ALL_TYPES, all_types_value(&too_big))));
        assert!(reason.contains("field `price`"), "{reason}");
        assert!(reason.contains("more than the 10 digits"), "{reason}");
        assert_eq!(avro.len(), 1);
        let batch = avro.finish().unwrap();
        let price = batch.column_by_name("price").unwrap();
        assert_eq!(
            price.as_primitive::<Decimal128Type>().value_as_string(0),
            "-0.05"
        );
    }

    #[test]
    fn nested_records_arrays_maps_and_unions() {
        let schema = r#"{"type": "record", "name": "Article", "fields": [
            {"name": "author", "type": {"type": "record", "name": "Person", "fields": [
                {"name": "name", "type": "string"},
                {"name": "age", "type": ["null", "int"]}]}},
            {"name": "editor", "type": ["null", "Person"]},
            {"name": "scores", "type": {"type": "array", "items": ["null", "long"]}},
            {"name": "people", "type": {"type": "array", "items": "Person"}},
            {"name": "labels", "type": {"type": "map", "values": "string"}},
            {"name": "maybe", "type": ["string", "null"]},
            {"name": "either", "type": ["int", "string"]},
            {"name": "any", "type": ["null", "int", "string", {"type": "array", "items": "int"}]}
        ]}"#;
        let (stub, url) = Stub::start();
        stub.register(7, schema);
        let mut avro = AvroBatchBuilder::new(&url).unwrap();
        let person = |name: &str, age: Option<i32>| {
            record(&[
                ("name", V::String(name.into())),
                (
                    "age",
                    match age {
                        Some(a) => V::Union(1, Box::new(V::Int(a))),
                        None => V::Union(0, Box::new(V::Null)),
                    },
                ),
            ])
        };
        let labels = |pairs: &[(&str, &str)]| {
            V::Map(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), V::String(v.to_string())))
                    .collect(),
            )
        };
        avro.push(&framed(
            7,
            schema,
            record(&[
                ("author", person("ada", Some(36))),
                ("editor", V::Union(0, Box::new(V::Null))),
                (
                    "scores",
                    V::Array(vec![
                        V::Union(1, Box::new(V::Long(3))),
                        V::Union(0, Box::new(V::Null)),
                    ]),
                ),
                (
                    "people",
                    V::Array(vec![person("bo", None), person("cy", Some(5))]),
                ),
                ("labels", labels(&[("z", "last"), ("a", "first")])),
                ("maybe", V::Union(0, Box::new(V::String("yes".into())))),
                ("either", V::Union(0, Box::new(V::Int(42)))),
                (
                    "any",
                    V::Union(3, Box::new(V::Array(vec![V::Int(1), V::Int(2)]))),
                ),
            ]),
        ))
        .unwrap();
        avro.push(&framed(
            7,
            schema,
            record(&[
                ("author", person("bea", None)),
                ("editor", V::Union(1, Box::new(person("ed", Some(50))))),
                ("scores", V::Array(vec![])),
                ("people", V::Array(vec![])),
                ("labels", labels(&[])),
                ("maybe", V::Union(1, Box::new(V::Null))),
                ("either", V::Union(1, Box::new(V::String("x".into())))),
                ("any", V::Union(0, Box::new(V::Null))),
            ]),
        ))
        .unwrap();
        let batch = avro.finish().unwrap();
        assert_eq!(batch.num_rows(), 2);
        let schema = batch.schema();

        let person_type = DataType::Struct(
            vec![
                Field::new("name", DataType::Utf8, false),
                Field::new("age", DataType::Int32, true),
            ]
            .into(),
        );
        assert_eq!(
            schema.field_with_name("author").unwrap().data_type(),
            &person_type
        );
        // The named type used a second time (a reference) maps the same.
        assert_eq!(
            schema.field_with_name("editor").unwrap().data_type(),
            &person_type
        );

        let author = batch.column_by_name("author").unwrap().as_struct();
        assert_eq!(
            strings(author.column(0).as_ref()),
            [Some("ada".into()), Some("bea".into())]
        );
        let age = author.column(1).as_primitive::<Int32Type>();
        assert_eq!(age.iter().collect::<Vec<_>>(), [Some(36), None]);

        let editor = batch.column_by_name("editor").unwrap().as_struct();
        assert!(editor.is_null(0));
        assert!(editor.is_valid(1));
        assert_eq!(strings(editor.column(0).as_ref())[1], Some("ed".into()));

        let scores = batch.column_by_name("scores").unwrap().as_list::<i32>();
        let first = scores.value(0);
        assert_eq!(
            first.as_primitive::<Int64Type>().iter().collect::<Vec<_>>(),
            [Some(3), None]
        );
        assert_eq!(scores.value(1).len(), 0);

        let people = batch.column_by_name("people").unwrap().as_list::<i32>();
        let row0 = people.value(0);
        let row0 = row0.as_struct();
        assert_eq!(
            strings(row0.column(0).as_ref()),
            [Some("bo".into()), Some("cy".into())]
        );
        assert_eq!(
            row0.column(1)
                .as_primitive::<Int32Type>()
                .iter()
                .collect::<Vec<_>>(),
            [None, Some(5)]
        );

        let labels = batch.column_by_name("labels").unwrap().as_map();
        assert_eq!(
            schema.field_with_name("labels").unwrap().data_type(),
            &map_type(Field::new("value", DataType::Utf8, false))
        );
        let entries = labels.value(0);
        assert_eq!(
            strings(entries.column(0).as_ref()),
            [Some("a".into()), Some("z".into())]
        );
        assert_eq!(
            strings(entries.column(1).as_ref()),
            [Some("first".into()), Some("last".into())]
        );
        assert_eq!(labels.value(1).len(), 0);

        assert_eq!(
            strings(batch.column_by_name("maybe").unwrap().as_ref()),
            [Some("yes".into()), None]
        );
        // Several non-null branches: the value as JSON text.
        let either = schema.field_with_name("either").unwrap();
        assert_eq!(either.data_type(), &DataType::Utf8);
        assert_eq!(
            strings(batch.column_by_name("either").unwrap().as_ref()),
            [Some("42".into()), Some("\"x\"".into())]
        );
        assert_eq!(
            strings(batch.column_by_name("any").unwrap().as_ref()),
            [Some("[1,2]".into()), None]
        );
    }

    const V1: &str = r#"{"type": "record", "name": "Article", "fields": [
        {"name": "id", "type": "string"},
        {"name": "title", "type": "string"},
        {"name": "meta", "type": {"type": "record", "name": "Meta", "fields": [
            {"name": "words", "type": "int"}]}}
    ]}"#;
    /// v1 + an optional `lang`, `meta.source`, and `words` widened to long.
    const V2: &str = r#"{"type": "record", "name": "Article", "fields": [
        {"name": "id", "type": "string"},
        {"name": "title", "type": "string"},
        {"name": "meta", "type": {"type": "record", "name": "Meta", "fields": [
            {"name": "words", "type": "long"},
            {"name": "source", "type": ["null", "string"], "default": null}]}},
        {"name": "lang", "type": ["null", "string"], "default": null}
    ]}"#;
    /// `title` changed from string to long: not an evolution we can hold.
    const V3: &str = r#"{"type": "record", "name": "Article", "fields": [
        {"name": "id", "type": "string"},
        {"name": "title", "type": "long"}
    ]}"#;

    fn v1(id: &str, words: i32) -> V {
        record(&[
            ("id", V::String(id.into())),
            ("title", V::String(format!("t{id}"))),
            ("meta", record(&[("words", V::Int(words))])),
        ])
    }

    fn v2(id: &str, lang: &str) -> V {
        record(&[
            ("id", V::String(id.into())),
            ("title", V::String(format!("t{id}"))),
            (
                "meta",
                record(&[
                    ("words", V::Long(1 << 33)),
                    ("source", V::Union(1, Box::new(V::String("wire".into())))),
                ]),
            ),
            ("lang", V::Union(1, Box::new(V::String(lang.into())))),
        ])
    }

    #[test]
    fn new_writer_schemas_grow_the_batch_schema() {
        let (stub, url) = Stub::start();
        stub.register(1, V1);
        stub.register(2, V2);
        stub.register(3, V3);
        let mut avro = AvroBatchBuilder::new(&url).unwrap();

        avro.push(&framed(1, V1, v1("a", 10))).unwrap();
        let first = avro.finish().unwrap();
        let names: Vec<_> = first
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(names, ["id", "title", "meta"]);

        avro.push(&framed(1, V1, v1("b", 20))).unwrap();
        avro.push(&framed(2, V2, v2("c", "en"))).unwrap();
        avro.push(&framed(1, V1, v1("d", 40))).unwrap();

        // string → long for `title`: bad, naming the field and both types,
        // and the batch is as it was.
        let reason = bad(avro.push(&framed(
            3,
            V3,
            record(&[("id", V::String("e".into())), ("title", V::Long(5))]),
        )));
        assert!(reason.contains("writer schema id 3"), "{reason}");
        assert!(reason.contains("field `title`"), "{reason}");
        assert!(reason.contains("makes it long"), "{reason}");
        assert!(reason.contains("made it string"), "{reason}");
        assert_eq!(avro.len(), 3);

        let batch = avro.finish().unwrap();
        let schema = batch.schema();
        let names: Vec<_> = schema.fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(names, ["id", "title", "meta", "lang"]);
        assert_eq!(
            strings(batch.column_by_name("id").unwrap().as_ref()),
            [Some("b".into()), Some("c".into()), Some("d".into())]
        );
        // v1 rows read null in the column v2 added.
        assert_eq!(
            strings(batch.column_by_name("lang").unwrap().as_ref()),
            [None, Some("en".into()), None]
        );
        let meta = batch.column_by_name("meta").unwrap().as_struct();
        assert_eq!(
            schema.field_with_name("meta").unwrap().data_type(),
            &DataType::Struct(
                vec![
                    Field::new("words", DataType::Int64, false),
                    Field::new("source", DataType::Utf8, true),
                ]
                .into()
            )
        );
        // int widened to long; the nested field v2 added is null for v1.
        assert_eq!(
            meta.column(0)
                .as_primitive::<Int64Type>()
                .iter()
                .collect::<Vec<_>>(),
            [Some(20), Some(1 << 33), Some(40)]
        );
        assert_eq!(
            strings(meta.column(1).as_ref()),
            [None, Some("wire".into()), None]
        );
    }

    #[test]
    fn framing_and_body_errors_are_bad_records() {
        let (stub, url) = Stub::start();
        stub.register(1, V1);
        let mut avro = AvroBatchBuilder::new(&url).unwrap();
        let good = framed(1, V1, v1("a", 1));

        let mut magic = good.clone();
        magic[0] = 1;
        assert!(
            bad(avro.push(&magic)).contains("first byte is 0x01, not the Confluent magic byte")
        );
        assert!(bad(avro.push(br#"{"id": 1}"#)).contains("first byte is 0x7b"));
        assert!(bad(avro.push(&[])).contains("empty value"));
        assert!(bad(avro.push(&[0, 0, 0])).contains("too short"));

        let truncated = &good[..good.len() - 3];
        let reason = bad(avro.push(truncated));
        assert!(
            reason.contains("does not decode with writer schema id 1"),
            "{reason}"
        );
        assert_eq!(avro.len(), 0);
        avro.push(&good).unwrap();
        assert_eq!(avro.finish().unwrap().num_rows(), 1);
    }

    #[test]
    fn a_top_level_schema_that_is_not_a_record_is_bad() {
        let (stub, url) = Stub::start();
        stub.register(4, r#""string""#);
        let mut avro = AvroBatchBuilder::new(&url).unwrap();
        let payload = framed(4, r#""string""#, V::String("hi".into()));
        let reason = bad(avro.push(&payload));
        assert_eq!(
            reason,
            "writer schema id 4: the top-level Avro schema must be a record, not string"
        );
        // Cached: asking again does not hit the registry again.
        bad(avro.push(&payload));
        assert_eq!(*stub.requests.lock().unwrap(), 1);
        assert_eq!(avro.finish().unwrap().num_columns(), 0);
    }

    #[test]
    fn a_recursive_schema_is_bad() {
        let schema = r#"{"type": "record", "name": "Node", "fields": [
            {"name": "next", "type": ["null", "Node"]}]}"#;
        let (stub, url) = Stub::start();
        stub.register(5, schema);
        let mut avro = AvroBatchBuilder::new(&url).unwrap();
        let reason = bad(avro.push(&framed(
            5,
            schema,
            record(&[("next", V::Union(0, Box::new(V::Null)))]),
        )));
        assert!(reason.contains("field `next`"), "{reason}");
        assert!(reason.contains("`Node` contains itself"), "{reason}");
    }

    #[test]
    fn an_unknown_schema_id_is_bad() {
        let (_stub, url) = Stub::start();
        let mut avro = AvroBatchBuilder::new(&url).unwrap();
        let reason = bad(avro.push(&framed(99, V1, v1("a", 1))));
        assert!(
            reason.starts_with("writer schema id 99 is not in the schema registry"),
            "{reason}"
        );
        assert!(reason.contains("40403"), "{reason}");
    }

    #[test]
    fn an_unreachable_registry_is_unavailable_and_retryable_and_not_cached() {
        // A port with nobody listening: bind, note the port, let it go.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let mut avro = AvroBatchBuilder::new(&url).unwrap();
        let payload = framed(1, V1, v1("a", 1));
        match avro.push(&payload) {
            Err(DecodeError::Unavailable(e)) => {
                assert!(e.retryable, "{e}");
                assert_eq!(e.kind, tributary_connector::ErrorKind::External);
                assert!(e.message.contains("is unavailable"), "{e}");
                assert!(e.message.contains(&url), "{e}");
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
        assert_eq!(avro.len(), 0);

        // The registry comes back on the same address: the same message reads.
        let stub = Stub::serve(TcpListener::bind(("127.0.0.1", port)).unwrap());
        stub.register(1, V1);
        avro.push(&payload).unwrap();
        assert_eq!(avro.len(), 1);
    }

    #[test]
    fn a_registry_5xx_is_unavailable_and_does_not_poison_the_cache() {
        let (stub, url) = Stub::start();
        stub.register(1, V1);
        let mut avro = AvroBatchBuilder::new(&url).unwrap();
        let payload = framed(1, V1, v1("a", 1));
        // 500 is one the decoder itself would cache as permanent.
        for code in [500, 503] {
            *stub.fail_with.lock().unwrap() = Some(code);
            match avro.push(&payload) {
                Err(DecodeError::Unavailable(e)) => assert!(e.retryable, "{e}"),
                other => panic!("{code}: expected Unavailable, got {other:?}"),
            }
        }
        *stub.fail_with.lock().unwrap() = Some(401);
        match avro.push(&payload) {
            Err(DecodeError::Unavailable(e)) => {
                assert!(!e.retryable, "{e}");
                assert!(e.message.contains("credentials"), "{e}");
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
        *stub.fail_with.lock().unwrap() = None;
        avro.push(&payload).unwrap();
        assert_eq!(avro.len(), 1);
    }

    #[test]
    fn a_404_without_40403_is_a_wrong_url_not_a_bad_record() {
        let (stub, url) = Stub::start();
        *stub.fail_with.lock().unwrap() = Some(404);
        let mut avro = AvroBatchBuilder::new(&format!("{url}/")).unwrap();
        match avro.push(&framed(1, V1, v1("a", 1))) {
            Err(DecodeError::Unavailable(e)) => {
                assert_eq!(e.kind, tributary_connector::ErrorKind::Config);
                assert!(e.message.contains("base URL"), "{e}");
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }

    #[test]
    fn urls_are_checked_and_a_second_registry_url_is_tried() {
        let err = AvroBatchBuilder::new("http://a:1,localhost:8081").unwrap_err();
        assert_eq!(
            err.message,
            "kafka source: schema registry URL `localhost:8081` must start with http:// or https://"
        );
        let dead = TcpListener::bind("127.0.0.1:0").unwrap();
        let dead_url = format!("http://{}", dead.local_addr().unwrap());
        drop(dead);
        let (stub, url) = Stub::start();
        stub.register(1, V1);
        let mut avro = AvroBatchBuilder::new(&format!("{dead_url}, {url}")).unwrap();
        avro.push(&framed(1, V1, v1("a", 1))).unwrap();
        assert_eq!(avro.len(), 1);
    }

    #[test]
    fn a_null_only_field_takes_a_later_type() {
        let v1 = r#"{"type": "record", "name": "R", "fields": [{"name": "x", "type": "null"}]}"#;
        let v2 = r#"{"type": "record", "name": "R", "fields": [{"name": "x", "type": ["null", "long"]}]}"#;
        let (stub, url) = Stub::start();
        stub.register(1, v1);
        stub.register(2, v2);
        let mut avro = AvroBatchBuilder::new(&url).unwrap();
        avro.push(&framed(1, v1, record(&[("x", V::Null)])))
            .unwrap();
        avro.push(&framed(
            2,
            v2,
            record(&[("x", V::Union(1, Box::new(V::Long(9))))]),
        ))
        .unwrap();
        let batch = avro.finish().unwrap();
        assert_eq!(batch.schema().field(0).data_type(), &DataType::Int64);
        let x = batch.column(0).as_primitive::<Int64Type>();
        assert_eq!(x.iter().collect::<Vec<_>>(), [None, Some(9)]);
    }

    #[test]
    fn the_builder_can_move_to_the_source_thread() {
        fn send<T: Send>() {}
        send::<AvroBatchBuilder>();
        send::<super::super::JsonBatchBuilder>();
    }

    #[test]
    fn decimals_convert_exactly_at_the_edges() {
        let d = |bytes: &[u8], p| decimal(&apache_avro::Decimal::from(bytes), p);
        assert_eq!(d(&[0xff], 2).unwrap(), -1);
        assert_eq!(d(&[0x00, 0x80], 3).unwrap(), 128);
        assert_eq!(d(&[], 1).unwrap(), 0);
        // 10^38 - 1 fits 38 digits; sign-extended past 16 bytes it still does.
        let max = 10i128.pow(38) - 1;
        let mut wide = vec![0u8; 4];
        wide.extend(max.to_be_bytes());
        assert_eq!(d(&wide, 38).unwrap(), max);
        let mut neg = vec![0xffu8; 4];
        neg.extend((-max).to_be_bytes());
        assert_eq!(d(&neg, 38).unwrap(), -max);
        assert!(d(&(10i128.pow(38)).to_be_bytes(), 38).is_err());
        let mut huge = vec![1u8];
        huge.extend([0u8; 16]);
        assert!(d(&huge, 38).is_err());
        assert!(d(&[0x03, 0xe8], 3).is_err()); // 1000 has 4 digits
    }
}
