//! Why a pipeline stopped: [`PipelineError`], shared by the epoch loop and
//! the code that builds a pipeline's parts.

use tributary_wasm_host::TransformError;

/// Why a pipeline stopped with an error. Each message names the thing and the fix.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("{0}")]
    Config(String),
    #[error("source: {0}")]
    Source(tributary_connector::Error),
    #[error("sink: {0}")]
    Sink(tributary_connector::Error),
    #[error("{0}")]
    Transform(#[from] TransformError),
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    #[error("{0}")]
    BadInput(String),
    #[error("dead-letter output: {0}")]
    DeadLetter(std::io::Error),
}
