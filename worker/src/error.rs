//! The worker's errors: what failed, typed, and [`ApiError::status`], the one
//! place an error gets its HTTP status. Bodies are shaped as Kafka Connect's
//! REST API shapes them (`{"error_code", "message"}`).

use std::path::PathBuf;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tributary_runtime::config::ConfigError;
use tributary_runtime::error::PipelineError;

use crate::allowed_paths::PathNotAllowed;

/// Why a connector's config cannot be run by this worker.
#[derive(Debug, thiserror::Error)]
pub enum InvalidConnector {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("connector {name}: {source}")]
    Path {
        name: String,
        #[source]
        source: PathNotAllowed,
    },
    #[error(
        "config.name `{found}` differs from the connector name `{name}`; leave it out or make them equal"
    )]
    NameMismatch { name: String, found: String },
    #[error("connector {name}: {source}")]
    Build {
        name: String,
        #[source]
        source: Box<PipelineError>,
    },
}

/// Why a worker cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot {action} the worker state folder {}: {source}", path.display())]
    StateFolder {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Path(#[from] PathNotAllowed),
    #[error(transparent)]
    Engine(#[from] tributary_wasm_host::TransformError),
}

/// A worker operation's failure.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Connector {0} not found")]
    NotFound(String),
    #[error("no such path; see docs/rest-api.md")]
    NoRoute,
    #[error("Connector {0} already exists")]
    AlreadyExists(String),
    #[error("missing or wrong bearer token (Authorization: Bearer <token from --auth-token-file>)")]
    Unauthorized,
    /// The request itself is malformed (not JSON, a wrong shape, a state
    /// that does not allow the call); the message says what to send.
    #[error("{0}")]
    BadRequest(String),
    #[error("Connector configuration is invalid and contains the following 1 error(s):\n{0}")]
    InvalidConfig(#[source] Box<InvalidConnector>),
    /// A connector call made for the request (reading committed offsets).
    #[error("{0}")]
    Connector(#[from] tributary_connector::Error),
    #[error("cannot save the worker state {}: {source}", path.display())]
    State {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the worker's request task failed: {0}")]
    Task(String),
}

impl ApiError {
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }

    /// The HTTP status of each error: the one place it is decided.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound(_) | Self::NoRoute => StatusCode::NOT_FOUND,
            Self::AlreadyExists(_) => StatusCode::CONFLICT,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::BadRequest(_) | Self::InvalidConfig(_) => StatusCode::BAD_REQUEST,
            Self::Connector(_) | Self::State { .. } | Self::Task(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = json!({"error_code": status.as_u16(), "message": self.to_string()});
        (status, axum::Json(body)).into_response()
    }
}

/// A worker operation's result.
pub type ApiResult<T> = Result<T, ApiError>;
