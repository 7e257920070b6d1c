//! JSON objects → Arrow rows with a declared schema.
//!
//! [`JsonRows`] checks each object against the declared [`FieldSpec`]s and
//! appends it as one row, or says why it cannot. The JSON-lines `file` source
//! uses it for lines and the Kafka source (through [`crate::json`]) for JSON
//! message values, so both read JSON the same way.
//!
//! A row is checked completely before anything is appended, so a bad object
//! leaves the columns as they were.
//!
//! ```
//! use tributary_formats::rows::{FieldKind, FieldSpec, JsonRows, UnknownFields};
//! let fields = vec![FieldSpec { name: "id".into(), kind: FieldKind::String, required: true }];
//! let mut rows = JsonRows::new("example", fields, UnknownFields::Ignore).unwrap();
//! rows.push_text(r#"{"id": "a"}"#).unwrap();
//! assert_eq!(rows.push_text(r#"{"n": 1}"#).unwrap_err().0, "required field `id` is missing");
//! assert_eq!(rows.finish().unwrap().num_rows(), 1);
//! ```

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::Deserialize;
use serde_json::{Map, Value};
use tributary_connector::{Error, Result, UTC};

use crate::error::BadRecord;

/// One column.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    pub name: String,
    /// `string`, `long`, `double`, `boolean`, `timestamp` (RFC 3339 text or
    /// integer microseconds since the Unix epoch) or `json` (any value, kept as
    /// JSON text).
    #[serde(rename = "type")]
    pub kind: FieldKind,
    /// A row without a value for it is a bad record.
    #[serde(default)]
    pub required: bool,
}

/// The type of a declared column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldKind {
    String,
    Long,
    Double,
    Boolean,
    Timestamp,
    Json,
}

/// What to do with object fields that are not in the declared schema.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownFields {
    #[default]
    Ignore,
    Reject,
}

impl FieldKind {
    /// The Arrow type of the column.
    pub fn data_type(self) -> DataType {
        match self {
            Self::String | Self::Json => DataType::Utf8,
            Self::Long => DataType::Int64,
            Self::Double => DataType::Float64,
            Self::Boolean => DataType::Boolean,
            Self::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
        }
    }
}

/// Column builders for a declared schema, filled one JSON object at a time.
#[derive(Debug)]
pub struct JsonRows {
    fields: Vec<FieldSpec>,
    unknown_fields: UnknownFields,
    schema: SchemaRef,
    cols: Vec<Col>,
    rows: usize,
}

impl JsonRows {
    /// Checks the declared fields (at least one, no name twice). `what` names
    /// the connector in error messages, e.g. `file source`.
    pub fn new(what: &str, fields: Vec<FieldSpec>, unknown_fields: UnknownFields) -> Result<Self> {
        if fields.is_empty() {
            return Err(Error::config(format!("{what}: schema lists no fields")));
        }
        let mut seen = std::collections::HashSet::new();
        for f in &fields {
            if !seen.insert(f.name.as_str()) {
                return Err(Error::config(format!(
                    "{what}: schema names field `{}` twice",
                    f.name
                )));
            }
        }
        let schema = Arc::new(Schema::new(
            fields
                .iter()
                .map(|f| Field::new(&f.name, f.kind.data_type(), !f.required))
                .collect::<Vec<_>>(),
        ));
        let cols = fields.iter().map(|f| Col::new(f.kind)).collect();
        Ok(Self {
            fields,
            unknown_fields,
            schema,
            cols,
            rows: 0,
        })
    }

    /// The schema of the batches [`JsonRows::finish`] returns.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Rows appended since the last [`JsonRows::finish`].
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Parses `text` as one JSON object and appends it; otherwise says why not
    /// (and appends nothing).
    pub fn push_text(&mut self, text: &str) -> Result<(), BadRecord> {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(row)) => self.push_object(&row),
            Ok(other) => Err(format!("expected a JSON object, got {}", describe(&other)).into()),
            Err(e) => Err(format!("not valid JSON: {e}").into()),
        }
    }

    /// Appends one object as a row, or says why it does not fit the declared
    /// schema (and appends nothing).
    pub fn push_object(&mut self, row: &Map<String, Value>) -> Result<(), BadRecord> {
        let mut cells = Vec::with_capacity(self.cols.len());
        for spec in &self.fields {
            cells.push(cell(spec, row.get(&spec.name))?);
        }
        if self.unknown_fields == UnknownFields::Reject
            && let Some(k) = row
                .keys()
                .find(|k| !self.fields.iter().any(|f| &f.name == *k))
        {
            return Err(
                format!("field `{k}` is not in the schema (unknown_fields = \"reject\")").into(),
            );
        }
        for (col, c) in self.cols.iter_mut().zip(cells) {
            append(col, c);
        }
        self.rows += 1;
        Ok(())
    }

    /// The rows appended since the last call, as one batch; starts over empty.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = self.cols.iter_mut().map(Col::finish).collect();
        self.rows = 0;
        RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(|e| Error::internal(format!("JSON rows do not fit their own schema: {e}")))
    }
}

#[derive(Debug)]
enum Col {
    Str(StringBuilder),
    Long(Int64Builder),
    Double(Float64Builder),
    Bool(BooleanBuilder),
    Ts(TimestampMicrosecondBuilder),
}

impl Col {
    fn new(kind: FieldKind) -> Self {
        match kind {
            FieldKind::String | FieldKind::Json => Self::Str(StringBuilder::new()),
            FieldKind::Long => Self::Long(Int64Builder::new()),
            FieldKind::Double => Self::Double(Float64Builder::new()),
            FieldKind::Boolean => Self::Bool(BooleanBuilder::new()),
            FieldKind::Timestamp => Self::Ts(TimestampMicrosecondBuilder::new().with_timezone(UTC)),
        }
    }
    /// Takes what was built; the builder starts over empty.
    fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Str(b) => Arc::new(b.finish()),
            Self::Long(b) => Arc::new(b.finish()),
            Self::Double(b) => Arc::new(b.finish()),
            Self::Bool(b) => Arc::new(b.finish()),
            Self::Ts(b) => Arc::new(b.finish()),
        }
    }
}

/// A typed cell, checked before anything is appended so a bad row leaves
/// the builders untouched.
enum Cell {
    Null,
    Str(String),
    Long(i64),
    Double(f64),
    Bool(bool),
    Ts(i64),
}

/// A value for a message, cut to 40 characters.
pub(crate) fn describe(v: &Value) -> String {
    let text = v.to_string();
    if text.len() > 40 {
        format!(
            "{}…",
            &text[..text.char_indices().nth(40).map_or(text.len(), |(i, _)| i)]
        )
    } else {
        text
    }
}

fn cell(spec: &FieldSpec, v: Option<&Value>) -> Result<Cell, BadRecord> {
    let v = match v {
        None | Some(Value::Null) if spec.required => {
            return Err(format!("required field `{}` is missing", spec.name).into());
        }
        None | Some(Value::Null) => return Ok(Cell::Null),
        Some(v) => v,
    };
    let wrong = |want: &str| {
        format!(
            "field `{}`: expected {want}, got {}",
            spec.name,
            describe(v)
        )
    };
    Ok(match spec.kind {
        FieldKind::String => Cell::Str(v.as_str().ok_or_else(|| wrong("a string"))?.to_string()),
        FieldKind::Json => Cell::Str(v.to_string()),
        FieldKind::Long => Cell::Long(v.as_i64().ok_or_else(|| wrong("an integer"))?),
        FieldKind::Double => Cell::Double(v.as_f64().ok_or_else(|| wrong("a number"))?),
        FieldKind::Boolean => Cell::Bool(v.as_bool().ok_or_else(|| wrong("true or false"))?),
        FieldKind::Timestamp => match v {
            Value::String(s) => Cell::Ts(
                chrono::DateTime::parse_from_rfc3339(s)
                    .map_err(|_| wrong("an RFC 3339 timestamp"))?
                    .timestamp_micros(),
            ),
            Value::Number(n) => Cell::Ts(
                n.as_i64()
                    .ok_or_else(|| wrong("an RFC 3339 timestamp or integer microseconds"))?,
            ),
            _ => return Err(wrong("an RFC 3339 timestamp").into()),
        },
    })
}

fn append(col: &mut Col, c: Cell) {
    match (col, c) {
        (Col::Str(b), Cell::Str(s)) => b.append_value(s),
        (Col::Long(b), Cell::Long(x)) => b.append_value(x),
        (Col::Double(b), Cell::Double(x)) => b.append_value(x),
        (Col::Bool(b), Cell::Bool(x)) => b.append_value(x),
        (Col::Ts(b), Cell::Ts(x)) => b.append_value(x),
        (Col::Str(b), _) => b.append_null(),
        (Col::Long(b), _) => b.append_null(),
        (Col::Double(b), _) => b.append_null(),
        (Col::Bool(b), _) => b.append_null(),
        (Col::Ts(b), _) => b.append_null(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, Int64Array, StringArray};

    fn rows() -> JsonRows {
        let fields: Vec<FieldSpec> = serde_json::from_value(serde_json::json!([
            {"name": "id", "type": "string", "required": true},
            {"name": "n", "type": "long"},
        ]))
        .unwrap();
        JsonRows::new("test", fields, UnknownFields::Reject).unwrap()
    }

    #[test]
    fn a_bad_object_appends_nothing() {
        let mut r = rows();
        r.push_text(r#"{"id": "a", "n": 1}"#).unwrap();
        // `id` is fine but `n` is not: the row must not leave `a2` behind.
        let err = r.push_text(r#"{"id": "a2", "n": "x"}"#).unwrap_err();
        assert_eq!(err.0, "field `n`: expected an integer, got \"x\"");
        let err = r.push_text(r#"{"id": "a3", "z": 1}"#).unwrap_err().0;
        assert!(err.contains("field `z` is not in the schema"), "{err}");
        r.push_text(r#"{"id": "b"}"#).unwrap();
        assert_eq!(r.len(), 2);
        let batch = r.finish().unwrap();
        let ids = batch
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        let ns = batch
            .column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(ids.iter().collect::<Vec<_>>(), [Some("a"), Some("b")]);
        assert_eq!(ns.iter().collect::<Vec<_>>(), [Some(1), None]);
        assert_eq!(r.len(), 0);
        assert_eq!(r.finish().unwrap().num_rows(), 0);
    }

    #[test]
    fn duplicate_names_are_a_config_error() {
        let f = FieldSpec {
            name: "id".into(),
            kind: FieldKind::String,
            required: false,
        };
        let err = JsonRows::new("kafka source", vec![f.clone(), f], UnknownFields::Ignore)
            .err()
            .unwrap();
        assert_eq!(err.message(), "kafka source: schema names field `id` twice");
    }
}
