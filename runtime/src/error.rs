//! Why a pipeline stopped: [`PipelineError`], shared by the epoch loop and
//! the code that builds a pipeline's parts. Each variant carries the typed
//! error of the part that failed, so callers can ask whether trying again
//! may help ([`PipelineError::is_retryable`]) instead of parsing messages.

use tributary_checkpoint::CheckpointError;
use tributary_wasm_host::TransformError;

use crate::config::ConfigError;

/// Why a pipeline stopped with an error. Each message names the thing and the fix.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("source: {0}")]
    Source(tributary_connector::Error),
    #[error("sink: {0}")]
    Sink(tributary_connector::Error),
    #[error("{0}")]
    Transform(#[from] TransformError),
    /// The store failed; `context` says what that means for this run.
    #[error("checkpoint: {error}{}", context.as_deref().map(|c| format!(". {c}")).unwrap_or_default())]
    Checkpoint {
        #[source]
        error: CheckpointError,
        context: Option<String>,
    },
    /// The checkpoint store holds epochs the sink says were never committed:
    /// the sink lost commits; resuming would write records twice.
    #[error("checkpoint: {0}")]
    StoreAheadOfSink(String),
    #[error("{0}")]
    BadInput(String),
    #[error("dead-letter output: {0}")]
    DeadLetter(std::io::Error),
}

impl From<CheckpointError> for PipelineError {
    fn from(error: CheckpointError) -> Self {
        Self::Checkpoint {
            error,
            context: None,
        }
    }
}

impl PipelineError {
    /// A checkpoint error with what it means for this run.
    pub fn checkpoint(error: CheckpointError, context: impl Into<String>) -> Self {
        Self::Checkpoint {
            error,
            context: Some(context.into()),
        }
    }

    /// Whether running the pipeline again may succeed without anyone
    /// changing anything: an external system (broker, catalog, store) was
    /// unreachable. Config errors, bad input, damaged state and bugs are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Source(e) | Self::Sink(e) => e.is_retryable(),
            Self::Checkpoint { error, .. } => error.is_retryable(),
            Self::Config(_)
            | Self::Transform(_)
            | Self::StoreAheadOfSink(_)
            | Self::BadInput(_)
            | Self::DeadLetter(_) => false,
        }
    }
}
