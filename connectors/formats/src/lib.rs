//! The value formats of Tributary's connectors, apart from any connector:
//! bytes in, Arrow record batches out (and back), used by the Kafka source
//! and sink and the JSON-lines `file` source.
//!
//! The decoders take one value at a time and give a batch at the end of a
//! poll:
//!
//! - [`avro::AvroBatchBuilder`]: Avro in the Confluent wire format
//!   ([`confluent`]: `0x00`, a 4-byte big-endian schema id, the Avro binary
//!   body); writer schemas come from a Schema Registry, and the batch schema
//!   grows as new writer versions appear.
//! - [`json::JsonBatchBuilder`]: one JSON object per value, with a declared
//!   schema; the row logic is [`rows::JsonRows`], shared with the `file`
//!   source.
//! - [`value::ValueDecoder`]: one of those, or raw bytes, chosen by a
//!   connector's `format` ([`value::ValueFormat`]).
//!
//! Each answers a value it cannot read with a [`DecodeError`] that says
//! whether the record is at fault (dead-letter it, or stop, by the
//! pipeline's error policy) or the registry is (try the same message again
//! later). [`encode`] goes the other way: Arrow rows to JSON or Avro values.
//!
//! ```
//! use tributary_formats::DecodeError;
//! use tributary_formats::json::JsonBatchBuilder;
//! use tributary_formats::rows::{FieldKind, FieldSpec, UnknownFields};
//! let fields = vec![FieldSpec { name: "id".into(), kind: FieldKind::String, required: true }];
//! let mut json = JsonBatchBuilder::new(fields, UnknownFields::Ignore).unwrap();
//! json.push(br#"{"id": "a1"}"#).unwrap();
//! assert!(matches!(json.push(b"[1, 2]"), Err(DecodeError::Bad(_))));
//! assert_eq!(json.finish().unwrap().num_rows(), 1);
//! ```

#![forbid(unsafe_code)]

pub mod avro;
pub mod confluent;
pub mod encode;
pub mod error;
pub mod json;
pub mod registry;
pub mod rows;
pub mod value;

pub use error::{BadRecord, DecodeError};
