//! The REST surface: Confluent's paths and envelopes mapped onto [`Registry`].
//!
//! Every answer, errors included, has content type
//! `application/vnd.schemaregistry.v1+json`. Request bodies are read as JSON
//! whatever their content type says, as long as it is a JSON type (Confluent's
//! own, `application/json`, or none): clients differ in what they send, and the
//! body is what matters.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::compat::CompatibilityLevel;
use crate::store::{ApiError, Registry, SchemaRequest, VersionRef};

pub(crate) const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

type Shared = Arc<Mutex<Registry>>;
type Params = Query<HashMap<String, String>>;

pub(crate) fn router(registry: Registry) -> Router {
    let shared: Shared = Arc::new(Mutex::new(registry));
    Router::new()
        .route("/", get(|| async { reply(Ok(json!({}))) }))
        .route("/subjects", get(list_subjects))
        .route("/subjects/{subject}", post(lookup).delete(delete_subject))
        .route(
            "/subjects/{subject}/versions",
            get(list_versions).post(register),
        )
        .route(
            "/subjects/{subject}/versions/{version}",
            get(get_version).delete(delete_version),
        )
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(get_version_schema),
        )
        .route("/schemas/ids/{id}", get(get_schema))
        .route("/schemas/ids/{id}/versions", get(get_id_versions))
        .route("/config", get(get_global_config).put(put_global_config))
        .route(
            "/config/{subject}",
            get(get_subject_config)
                .put(put_subject_config)
                .delete(delete_subject_config),
        )
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(test_compatibility_all),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(test_compatibility),
        )
        // Read-only clients (and some libraries at start-up) ask for the mode.
        .route(
            "/mode",
            get(|| async { reply(Ok(json!({"mode": "READWRITE"}))) }),
        )
        .fallback(|| async {
            reply::<Value>(Err(ApiError {
                status: 404,
                code: 404,
                message: "HTTP 404 Not Found".into(),
            }))
        })
        .with_state(shared)
}

/// Runs `f` on the registry. Changes write and fsync a file, so they run on
/// the blocking pool rather than stalling the async workers.
async fn with_registry<T: Send + 'static>(
    shared: &Shared,
    f: impl FnOnce(&mut Registry) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let shared = Arc::clone(shared);
    tokio::task::spawn_blocking(move || {
        // A panic while holding the lock cannot leave a half-applied change:
        // `Registry::commit` swaps state in only after the write succeeded.
        let mut registry = shared.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut registry)
    })
    .await
    .unwrap_or_else(|e| {
        Err(ApiError {
            status: 500,
            code: 50001,
            message: format!("registry task failed: {e}"),
        })
    })
}

fn reply<T: serde::Serialize>(result: Result<T, ApiError>) -> Response {
    let (status, body) = match result {
        Ok(value) => (StatusCode::OK, serde_json::to_vec(&value)),
        Err(err) => (
            StatusCode::from_u16(err.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            serde_json::to_vec(&json!({"error_code": err.code, "message": err.message})),
        ),
    };
    let body = body.unwrap_or_else(|_| b"{}".to_vec());
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        body,
    )
        .into_response()
}

/// Parses a JSON body; refuses content types that are clearly not JSON.
fn body<T: for<'de> Deserialize<'de>>(headers: &HeaderMap, bytes: &Bytes) -> Result<T, ApiError> {
    if let Some(kind) = headers.get(header::CONTENT_TYPE) {
        let kind = kind.to_str().unwrap_or_default().to_ascii_lowercase();
        let essence = kind.split(';').next().unwrap_or_default().trim();
        let json_like = essence == "application/json"
            || essence == "application/octet-stream"
            || (essence.starts_with("application/") && essence.ends_with("+json"));
        if !json_like {
            return Err(ApiError {
                status: 415,
                code: 415,
                message: format!(
                    "Content type '{essence}' is not supported: send {CONTENT_TYPE} or application/json."
                ),
            });
        }
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("Request body is not the expected JSON: {e}")))
}

fn flag(params: &Params, name: &str) -> bool {
    params
        .get(name)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

fn parse_id(raw: &str) -> Result<u32, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::schema_id_not_found(&format!("'{raw}'")))
}

async fn list_subjects(State(s): State<Shared>, params: Params) -> Response {
    let deleted = flag(&params, "deleted");
    reply(with_registry(&s, move |r| Ok(r.subjects(deleted))).await)
}

async fn register(
    State(s): State<Shared>,
    Path(subject): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let request: SchemaRequest = match body(&headers, &bytes) {
        Ok(r) => r,
        Err(e) => return reply::<Value>(Err(e)),
    };
    reply(with_registry(&s, move |r| r.register(&subject, &request)).await)
}

async fn lookup(
    State(s): State<Shared>,
    Path(subject): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let request: SchemaRequest = match body(&headers, &bytes) {
        Ok(r) => r,
        Err(e) => return reply::<Value>(Err(e)),
    };
    reply(with_registry(&s, move |r| r.lookup(&subject, &request)).await)
}

async fn delete_subject(
    State(s): State<Shared>,
    Path(subject): Path<String>,
    params: Params,
) -> Response {
    let permanent = flag(&params, "permanent");
    reply(with_registry(&s, move |r| r.delete_subject(&subject, permanent)).await)
}

async fn list_versions(State(s): State<Shared>, Path(subject): Path<String>) -> Response {
    reply(with_registry(&s, move |r| r.versions(&subject)).await)
}

async fn get_version(
    State(s): State<Shared>,
    Path((subject, version)): Path<(String, String)>,
) -> Response {
    reply(
        with_registry(&s, move |r| {
            r.version(&subject, VersionRef::parse(&version)?)
        })
        .await,
    )
}

async fn delete_version(
    State(s): State<Shared>,
    Path((subject, version)): Path<(String, String)>,
) -> Response {
    reply(
        with_registry(&s, move |r| {
            r.delete_version(&subject, VersionRef::parse(&version)?)
        })
        .await,
    )
}

async fn get_version_schema(
    State(s): State<Shared>,
    Path((subject, version)): Path<(String, String)>,
) -> Response {
    let result = with_registry(&s, move |r| {
        r.version_schema(&subject, VersionRef::parse(&version)?)
    })
    .await;
    match result {
        // The schema text is itself JSON: send it as is, not as a JSON string.
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
            text,
        )
            .into_response(),
        Err(e) => reply::<Value>(Err(e)),
    }
}

/// `?subject=` and `?fetchMaxId=` are accepted and ignored: ids are global here.
async fn get_schema(State(s): State<Shared>, Path(id): Path<String>) -> Response {
    reply(with_registry(&s, move |r| r.schema_by_id(parse_id(&id)?)).await)
}

async fn get_id_versions(State(s): State<Shared>, Path(id): Path<String>) -> Response {
    reply(with_registry(&s, move |r| r.id_versions(parse_id(&id)?)).await)
}

async fn get_global_config(State(s): State<Shared>) -> Response {
    reply(with_registry(&s, |r| Ok(r.global_config())).await)
}

#[derive(Deserialize)]
struct ConfigRequest {
    compatibility: Option<String>,
}

fn level_from(headers: &HeaderMap, bytes: &Bytes) -> Result<CompatibilityLevel, ApiError> {
    let request: ConfigRequest = body(headers, bytes)?;
    let raw = request.compatibility.ok_or_else(|| {
        ApiError::invalid_compatibility("(missing: send {\"compatibility\": \"BACKWARD\"})")
    })?;
    CompatibilityLevel::parse(&raw).ok_or_else(|| ApiError::invalid_compatibility(&raw))
}

async fn put_global_config(State(s): State<Shared>, headers: HeaderMap, bytes: Bytes) -> Response {
    let level = match level_from(&headers, &bytes) {
        Ok(l) => l,
        Err(e) => return reply::<Value>(Err(e)),
    };
    reply(with_registry(&s, move |r| r.set_config(None, level)).await)
}

async fn get_subject_config(
    State(s): State<Shared>,
    Path(subject): Path<String>,
    params: Params,
) -> Response {
    let default_to_global = flag(&params, "defaultToGlobal");
    reply(with_registry(&s, move |r| r.subject_config(&subject, default_to_global)).await)
}

async fn put_subject_config(
    State(s): State<Shared>,
    Path(subject): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let level = match level_from(&headers, &bytes) {
        Ok(l) => l,
        Err(e) => return reply::<Value>(Err(e)),
    };
    reply(with_registry(&s, move |r| r.set_config(Some(&subject), level)).await)
}

async fn delete_subject_config(State(s): State<Shared>, Path(subject): Path<String>) -> Response {
    reply(with_registry(&s, move |r| r.delete_subject_config(&subject)).await)
}

async fn test_compatibility(
    State(s): State<Shared>,
    Path((subject, version)): Path<(String, String)>,
    params: Params,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let verbose = flag(&params, "verbose");
    let request: SchemaRequest = match body(&headers, &bytes) {
        Ok(r) => r,
        Err(e) => return reply::<Value>(Err(e)),
    };
    reply(
        with_registry(&s, move |r| {
            let version = VersionRef::parse(&version)?;
            r.test_compatibility(&subject, Some(version), &request, verbose)
        })
        .await,
    )
}

async fn test_compatibility_all(
    State(s): State<Shared>,
    Path(subject): Path<String>,
    params: Params,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let verbose = flag(&params, "verbose");
    let request: SchemaRequest = match body(&headers, &bytes) {
        Ok(r) => r,
        Err(e) => return reply::<Value>(Err(e)),
    };
    reply(
        with_registry(&s, move |r| {
            r.test_compatibility(&subject, None, &request, verbose)
        })
        .await,
    )
}
