//! JSON message values with a declared schema.
//!
//! Each value must be one JSON object; its fields become columns by the
//! declared [`FieldSpec`]s, exactly as the `file` source reads a line (the
//! column logic is [`crate::rows::JsonRows`], shared, not copied).
//!
//! ```
//! use tributary_formats::json::JsonBatchBuilder;
//! use tributary_formats::rows::{FieldKind, FieldSpec, UnknownFields};
//! let fields = vec![FieldSpec { name: "n".into(), kind: FieldKind::Long, required: false }];
//! let mut json = JsonBatchBuilder::new(fields, UnknownFields::Ignore).unwrap();
//! json.push(br#"{"n": 7, "other": true}"#).unwrap();
//! assert_eq!(json.push(br#"{"n": "7"}"#).unwrap_err().to_string(),
//!            "field `n`: expected an integer, got \"7\"");
//! assert_eq!(json.len(), 1);
//! ```

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use tributary_connector::Result;

use crate::error::DecodeError;
use crate::rows::{FieldSpec, JsonRows, UnknownFields};

/// Turns JSON message values into rows of a declared schema.
#[derive(Debug)]
pub struct JsonBatchBuilder {
    rows: JsonRows,
}

impl JsonBatchBuilder {
    /// Checks the declared fields (at least one, no name twice).
    pub fn new(fields: Vec<FieldSpec>, unknown_fields: UnknownFields) -> Result<Self> {
        Ok(Self {
            rows: JsonRows::new("kafka source", fields, unknown_fields)?,
        })
    }

    /// The schema of every batch: the declared fields, in order.
    pub fn schema(&self) -> SchemaRef {
        self.rows.schema()
    }

    /// Parses one message value and appends it as a row. All or nothing: a
    /// value that is not a JSON object, or has a field of the wrong type, is
    /// [`DecodeError::Bad`] and appends nothing.
    pub fn push(&mut self, payload: &[u8]) -> Result<(), DecodeError> {
        let text = std::str::from_utf8(payload).map_err(|e| {
            DecodeError::Bad(format!("not valid JSON: the value is not UTF-8 text ({e})"))
        })?;
        self.rows.push_text(text).map_err(|e| DecodeError::Bad(e.0))
    }

    /// Rows pushed since the last [`JsonBatchBuilder::finish`].
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows pushed since the last call, as one batch.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        self.rows.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, BooleanArray, StringArray, TimestampMicrosecondArray};

    fn builder() -> JsonBatchBuilder {
        let fields: Vec<FieldSpec> = serde_json::from_value(serde_json::json!([
            {"name": "id", "type": "string", "required": true},
            {"name": "at", "type": "timestamp"},
            {"name": "ok", "type": "boolean"},
        ]))
        .unwrap();
        JsonBatchBuilder::new(fields, UnknownFields::Ignore).unwrap()
    }

    fn bad(r: Result<(), DecodeError>) -> String {
        match r {
            Err(DecodeError::Bad(reason)) => reason,
            other => panic!("expected Bad, got {other:?}"),
        }
    }

    #[test]
    fn objects_become_rows_and_everything_else_is_bad() {
        let mut b = builder();
        b.push(br#"{"id": "a", "at": "2026-01-02T03:04:05.5Z", "ok": true}"#)
            .unwrap();
        assert!(bad(b.push(b"\"just a string\"")).starts_with("expected a JSON object"));
        assert!(bad(b.push(b"{not json")).starts_with("not valid JSON"));
        assert!(bad(b.push(b"\xff\xfe")).contains("not UTF-8"));
        assert_eq!(
            bad(b.push(br#"{"id": "b", "ok": "yes"}"#)),
            "field `ok`: expected true or false, got \"yes\""
        );
        assert_eq!(
            bad(b.push(br#"{"at": 5}"#)),
            "required field `id` is missing"
        );
        b.push(br#"{"id": "c", "at": 1000000}"#).unwrap();
        assert_eq!(b.len(), 2);

        let batch = b.finish().unwrap();
        assert_eq!(batch.num_rows(), 2);
        let id = batch
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        let at = batch
            .column(1)
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap();
        let ok = batch
            .column(2)
            .as_any()
            .downcast_ref::<BooleanArray>()
            .unwrap();
        assert_eq!(id.iter().collect::<Vec<_>>(), [Some("a"), Some("c")]);
        // 2026-01-02T03:04:05.5Z in µs since the epoch.
        assert_eq!(at.value(0), 1_767_323_045_500_000);
        assert_eq!(at.value(1), 1_000_000);
        assert_eq!(ok.iter().collect::<Vec<_>>(), [Some(true), None]);
        assert!(b.is_empty());
    }
}
