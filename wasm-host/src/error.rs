//! [`TransformError`]: what went wrong in a transform, naming it.

/// What went wrong in a transform. Every message names the transform.
#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    #[error("transform `{transform}`: {message}")]
    Load { transform: String, message: String },
    #[error("transform `{transform}` refused its config: {message}")]
    Config { transform: String, message: String },
    #[error("transform `{transform}` failed on a batch: {message}")]
    Guest { transform: String, message: String },
    #[error("transform `{transform}` trapped: {message}")]
    Trap { transform: String, message: String },
    #[error(
        "transform `{transform}` exceeded its {limit_ms} ms time limit on one batch and was stopped (limits.call_timeout_ms)"
    )]
    Timeout { transform: String, limit_ms: u64 },
    #[error(
        "transform `{transform}` exceeded its {limit_mb} MiB memory limit and was stopped (limits.memory_mb)"
    )]
    OutOfMemory { transform: String, limit_mb: u64 },
    #[error("transform `{transform}` returned an invalid answer: {message}")]
    Output { transform: String, message: String },
    #[error("{0}")]
    Engine(String),
}

impl TransformError {
    /// The transform at fault (empty for engine errors).
    pub fn transform(&self) -> &str {
        match self {
            Self::Load { transform, .. }
            | Self::Config { transform, .. }
            | Self::Guest { transform, .. }
            | Self::Trap { transform, .. }
            | Self::Timeout { transform, .. }
            | Self::OutOfMemory { transform, .. }
            | Self::Output { transform, .. } => transform,
            Self::Engine(_) => "",
        }
    }

    /// A failure of one batch (the next batch gets a fresh instance), as
    /// opposed to a transform that cannot run at all.
    pub fn is_batch_failure(&self) -> bool {
        matches!(
            self,
            Self::Guest { .. }
                | Self::Trap { .. }
                | Self::Timeout { .. }
                | Self::OutOfMemory { .. }
                | Self::Output { .. }
        )
    }
}
