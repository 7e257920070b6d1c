//! Message values → Arrow record batches.
//!
//! The consumer hands every message value to a batch builder, one at a time,
//! and asks for a batch at the end of a poll:
//!
//! - [`AvroBatchBuilder`]: Avro in the Confluent wire format (`0x00`, a 4-byte
//!   big-endian schema id, the Avro binary body); writer schemas come from a
//!   Schema Registry, and the batch schema grows as new writer versions appear.
//! - [`JsonBatchBuilder`]: one JSON object per value, with a schema declared in
//!   the config (the same rules as the `file` source).
//!
//! Both answer a value they cannot read with a [`DecodeError`] that says whether
//! the record is at fault (dead-letter it, or stop, by the pipeline's error
//! policy) or the registry is (try the same message again later).
//!
//! ```
//! use tributary_kafka::format::{DecodeError, JsonBatchBuilder};
//! use tributary_file::{FieldKind, FieldSpec, UnknownFields};
//! let fields = vec![FieldSpec { name: "id".into(), kind: FieldKind::String, required: true }];
//! let mut json = JsonBatchBuilder::new(fields, UnknownFields::Ignore).unwrap();
//! json.push(br#"{"id": "a1"}"#).unwrap();
//! assert!(matches!(json.push(b"[1, 2]"), Err(DecodeError::Bad(_))));
//! assert_eq!(json.finish().unwrap().num_rows(), 1);
//! ```

use std::fmt;

pub mod avro;
pub mod json;

pub use avro::AvroBatchBuilder;
pub use json::JsonBatchBuilder;

/// Why a message value did not become a row. Either way, nothing of it was
/// appended.
#[derive(Debug)]
pub enum DecodeError {
    /// This record is bad: a wrong magic byte, a schema id the registry does
    /// not know, a truncated or corrupt body, a value that does not fit its
    /// column. Retrying cannot help; it goes to the dead-letter output with
    /// this reason, or stops the pipeline, by its error policy.
    Bad(String),
    /// The registry could not be asked (unreachable, a 5xx, refused
    /// credentials). The record may be fine: nothing was consumed, and
    /// retrying the same message later may work when the error is retryable.
    Unavailable(tributary_connector::Error),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bad(reason) => f.write_str(reason),
            Self::Unavailable(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Bad(_) => None,
            Self::Unavailable(e) => Some(e),
        }
    }
}
