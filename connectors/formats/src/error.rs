//! [`DecodeError`]: why a value did not become a row — a bad record, or a
//! schema registry that cannot be asked now.

use std::fmt;

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

/// Why one record cannot become a row (a JSON line that is not an object, a
/// value that does not fit its column): the reason, as the dead-letter output
/// records it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadRecord(pub String);

impl From<String> for BadRecord {
    fn from(reason: String) -> Self {
        Self(reason)
    }
}

impl From<&str> for BadRecord {
    fn from(reason: &str) -> Self {
        Self(reason.to_string())
    }
}
