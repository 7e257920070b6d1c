//! The REST API over [`Worker`]: axum handlers with Kafka Connect's paths
//! and envelopes, the bearer-token check, and the route list the OpenAPI
//! description is checked against.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use tributary_runtime::registry::Origin;

use crate::worker::{Target, Worker};

/// The worker, as the handlers share it.
pub type Shared = Arc<Worker>;

/// Runs a blocking worker operation off the async threads.
async fn blocking<T: Send + 'static>(
    worker: &Shared,
    f: impl FnOnce(&Worker) -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    let worker = worker.clone();
    tokio::task::spawn_blocking(move || f(&worker))
        .await
        .map_err(|e| ApiError::Task(e.to_string()))?
}

/// The body as JSON, whatever Content-Type says (`curl -d` without `-H`
/// sends a form type; the body is what matters).
fn parse_body(bytes: &Bytes) -> ApiResult<Value> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))
}

async fn root() -> impl IntoResponse {
    axum::Json(
        json!({"version": env!("CARGO_PKG_VERSION"), "commit": "", "kafka_cluster_id": null}),
    )
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    expand: Vec<String>,
}

async fn list(
    State(w): State<Shared>,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult<Response> {
    let q = ListQuery {
        expand: q
            .into_iter()
            .filter(|(k, _)| k == "expand")
            .map(|(_, v)| v)
            .collect(),
    };
    // A typo would otherwise answer with the plain list, as if no expand
    // had been asked for.
    if let Some(bad) = q
        .expand
        .iter()
        .find(|e| !matches!(e.as_str(), "status" | "info"))
    {
        return Err(ApiError::bad_request(format!(
            "expand={bad} is not known: use expand=status and/or expand=info"
        )));
    }
    blocking(&w, move |w| {
        let mut connectors = w.lock();
        if q.expand.is_empty() {
            let names: Vec<&String> = connectors.keys().collect();
            return Ok(axum::Json(json!(names)).into_response());
        }
        let mut out = serde_json::Map::new();
        let names: Vec<String> = connectors.keys().cloned().collect();
        for name in names {
            let c = connectors.get_mut(&name).expect("listed");
            let mut entry = serde_json::Map::new();
            if q.expand.iter().any(|e| e == "status") {
                entry.insert("status".into(), w.status_of(&name, c));
            }
            if q.expand.iter().any(|e| e == "info") {
                entry.insert("info".into(), Worker::info_of(&name, c));
            }
            out.insert(name, Value::Object(entry));
        }
        Ok(axum::Json(Value::Object(out)).into_response())
    })
    .await
}

async fn create(State(w): State<Shared>, bytes: Bytes) -> ApiResult<Response> {
    let body = parse_body(&bytes)?;
    let name = body["name"]
        .as_str()
        .ok_or_else(|| {
            ApiError::bad_request(
                "the body must be {\"name\": \"...\", \"config\": {...}}: `name` is missing",
            )
        })?
        .to_string();
    let config = body.get("config").cloned().ok_or_else(|| {
        ApiError::bad_request(
            "the body must be {\"name\": \"...\", \"config\": {...}}: `config` is missing",
        )
    })?;
    let (_, info) = blocking(&w, move |w| w.put(&name, config, true)).await?;
    Ok((StatusCode::CREATED, axum::Json(info)).into_response())
}

async fn get_info(State(w): State<Shared>, UrlPath(name): UrlPath<String>) -> ApiResult<Response> {
    blocking(&w, move |w| {
        w.with(&name, |_, c| {
            Ok(axum::Json(Worker::info_of(&name, c)).into_response())
        })
    })
    .await
}

async fn get_config(
    State(w): State<Shared>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<Response> {
    blocking(&w, move |w| {
        w.with(&name, |_, c| {
            Ok(axum::Json(c.stored.config.clone()).into_response())
        })
    })
    .await
}

async fn put_config(
    State(w): State<Shared>,
    UrlPath(name): UrlPath<String>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let config = parse_body(&bytes)?;
    let (created, info) = blocking(&w, move |w| w.put(&name, config, false)).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(info)).into_response())
}

async fn delete(State(w): State<Shared>, UrlPath(name): UrlPath<String>) -> ApiResult<StatusCode> {
    blocking(&w, move |w| w.delete(&name)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn status(State(w): State<Shared>, UrlPath(name): UrlPath<String>) -> ApiResult<Response> {
    blocking(&w, move |w| {
        w.with(&name, |w, c| {
            Ok(axum::Json(w.status_of(&name, c)).into_response())
        })
    })
    .await
}

async fn pause(State(w): State<Shared>, UrlPath(name): UrlPath<String>) -> ApiResult<StatusCode> {
    blocking(&w, move |w| w.set_target(&name, Target::Paused, false)).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn resume(State(w): State<Shared>, UrlPath(name): UrlPath<String>) -> ApiResult<StatusCode> {
    blocking(&w, move |w| w.set_target(&name, Target::Running, false)).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn stop(State(w): State<Shared>, UrlPath(name): UrlPath<String>) -> ApiResult<StatusCode> {
    blocking(&w, move |w| w.set_target(&name, Target::Stopped, false)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn restart(State(w): State<Shared>, UrlPath(name): UrlPath<String>) -> ApiResult<StatusCode> {
    blocking(&w, move |w| {
        let target = w.with(&name, |_, c| Ok(c.stored.target))?;
        w.set_target(&name, target, true)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_offsets(
    State(w): State<Shared>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<Response> {
    let body = blocking(&w, move |w| w.offsets(&name)).await?;
    Ok(axum::Json(body).into_response())
}

async fn patch_offsets(
    State(w): State<Shared>,
    UrlPath(name): UrlPath<String>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let body = parse_body(&bytes)?;
    let out = blocking(&w, move |w| w.set_offsets(&name, Some(&body))).await?;
    Ok(axum::Json(out).into_response())
}

async fn delete_offsets(
    State(w): State<Shared>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<Response> {
    let out = blocking(&w, move |w| w.set_offsets(&name, None)).await?;
    Ok(axum::Json(out).into_response())
}

/// Built-in sources and sinks, the built-in transforms, and the connectors
/// loaded from the plugin folder.
async fn plugins(State(w): State<Shared>) -> impl IntoResponse {
    let version = env!("CARGO_PKG_VERSION");
    let entries = w.registry().entries();
    let mut out: Vec<Value> = entries
        .iter()
        .filter(|e| e.origin == Origin::BuiltIn)
        .map(|e| json!({"class": e.name, "type": e.maker.role(), "version": version}))
        .collect();
    for name in tributary_wasm_host::builtin::BUILTIN_NAMES {
        out.push(json!({"class": format!("builtin:{name}"), "type": "transformation", "version": version}));
    }
    for e in entries {
        if let Origin::Plugin { path, .. } = &e.origin {
            out.push(json!({"class": e.name, "type": e.maker.role(), "version": "plugin", "location": path}));
        }
    }
    axum::Json(out)
}

/// Connect's validation response shape, with our messages: one config
/// entry (`config`, the pipeline) carrying the errors.
async fn validate(
    State(w): State<Shared>,
    UrlPath(plugin): UrlPath<String>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let config = parse_body(&bytes)?;
    if !config.is_object() {
        return Err(ApiError::bad_request(
            "the body must be a JSON object: a Tributary pipeline (docs/pipeline.md)",
        ));
    }
    let plugin2 = plugin.clone();
    let errors = blocking(&w, move |w| {
        let name = config["name"].as_str().unwrap_or("validate").to_string();
        let mut errors = Vec::new();
        match Worker::normalize(&name, config) {
            Err(e) => errors.push(e.to_string()),
            Ok(config) => {
                let source = config["source"]["type"].as_str().unwrap_or_default();
                let sink = config["sink"]["type"].as_str().unwrap_or_default();
                if plugin2 != source && plugin2 != sink {
                    errors.push(format!(
                        "the pipeline's source is `{source}` and its sink `{sink}`, not `{plugin2}`"
                    ));
                }
                if let Err(e) = w.validate(&name, &config) {
                    errors.push(e.to_string());
                }
            }
        }
        Ok(errors)
    })
    .await?;
    Ok(axum::Json(json!({
        "name": plugin,
        "error_count": errors.len(),
        "groups": ["pipeline"],
        "configs": [{
            "definition": {"name": "config", "type": "STRING", "required": true, "group": "pipeline",
                           "documentation": "A Tributary pipeline (docs/pipeline.md)"},
            "value": {"name": "config", "value": null, "recommended_values": [], "errors": errors, "visible": true},
        }],
    }))
    .into_response())
}

async fn metrics(State(w): State<Shared>) -> impl IntoResponse {
    let text = w.metrics();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

async fn health() -> impl IntoResponse {
    axum::Json(json!({"status": "healthy"}))
}

async fn require_token(token: Arc<String>, req: Request, next: Next) -> Response {
    // The console's assets hold no data; what they fetch needs the token.
    if req.uri().path() == "/health" || crate::console::is_asset(req.uri().path()) {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // Constant-time comparison: the token is a secret.
    let ok = given.is_some_and(|g| {
        g.len() == token.len()
            && g.bytes()
                .zip(token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    });
    if ok {
        next.run(req).await
    } else {
        ApiError::Unauthorized.into_response()
    }
}

/// The REST routes, for the server and for the test that checks the
/// OpenAPI description against them. The console's (`/ui/…`,
/// [`crate::console`]) are the page's own, not part of the API.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/connectors"),
    ("POST", "/connectors"),
    ("GET", "/connectors/{name}"),
    ("DELETE", "/connectors/{name}"),
    ("GET", "/connectors/{name}/config"),
    ("PUT", "/connectors/{name}/config"),
    ("GET", "/connectors/{name}/status"),
    ("PUT", "/connectors/{name}/pause"),
    ("PUT", "/connectors/{name}/resume"),
    ("PUT", "/connectors/{name}/stop"),
    ("POST", "/connectors/{name}/restart"),
    ("GET", "/connectors/{name}/offsets"),
    ("PATCH", "/connectors/{name}/offsets"),
    ("DELETE", "/connectors/{name}/offsets"),
    ("GET", "/connector-plugins"),
    ("PUT", "/connector-plugins/{type}/config/validate"),
    ("GET", "/metrics"),
    ("GET", "/health"),
];

pub fn router(worker: Shared, auth_token: Option<String>) -> Router {
    let router = Router::new()
        .route("/", get(root))
        .route("/connectors", get(list).post(create))
        .route("/connectors/{name}", get(get_info).delete(delete))
        .route("/connectors/{name}/config", get(get_config).put(put_config))
        .route("/connectors/{name}/status", get(status))
        .route("/connectors/{name}/pause", put(pause))
        .route("/connectors/{name}/resume", put(resume))
        .route("/connectors/{name}/stop", put(stop))
        .route("/connectors/{name}/restart", axum::routing::post(restart))
        .route(
            "/connectors/{name}/offsets",
            get(get_offsets).patch(patch_offsets).delete(delete_offsets),
        )
        .route("/connector-plugins", get(plugins))
        .route("/connector-plugins/{type}/config/validate", put(validate))
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .merge(crate::console::api_routes())
        .fallback(|| async { ApiError::NoRoute })
        .with_state(worker)
        .merge(crate::console::asset_routes());
    match auth_token {
        Some(token) => {
            let token = Arc::new(token);
            router.layer(middleware::from_fn(move |req, next| {
                require_token(token.clone(), req, next)
            }))
        }
        None => router,
    }
}

/// Reads the bearer token: the file's first line, trimmed.
pub fn read_token(path: &Path) -> Result<String, TokenFileError> {
    let text = std::fs::read_to_string(path).map_err(|e| TokenFileError {
        path: path.to_path_buf(),
        problem: e.to_string(),
    })?;
    let token = text.lines().next().unwrap_or_default().trim().to_string();
    if token.len() < 16 {
        return Err(TokenFileError {
            path: path.to_path_buf(),
            problem: "the token must be at least 16 characters".into(),
        });
    }
    Ok(token)
}

/// `--auth-token-file` cannot be used: what is wrong with the file.
#[derive(Debug, thiserror::Error)]
#[error("--auth-token-file {}: {problem}", path.display())]
pub struct TokenFileError {
    path: std::path::PathBuf,
    problem: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docs/openapi.json` describes exactly the routes the router serves
    /// (the end-to-end test calls each one on a live worker).
    #[test]
    fn openapi_description_lists_every_route() {
        let spec: Value = serde_json::from_str(include_str!("../../docs/openapi.json"))
            .expect("openapi.json parses");
        let mut described: Vec<(String, String)> = Vec::new();
        for (path, ops) in spec["paths"].as_object().expect("paths") {
            for method in ops.as_object().expect("operations").keys() {
                described.push((method.to_uppercase(), path.clone()));
            }
        }
        described.sort();
        let mut served: Vec<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        served.sort();
        assert_eq!(described, served);
    }

    /// Found by Schemathesis: with `--auth-token-file` every path but
    /// `/health` answers 401 without the token, so the description must say
    /// so; and `PUT …/config` creates (201) as well as updates.
    #[test]
    fn openapi_description_declares_401_and_201() {
        let spec: Value = serde_json::from_str(include_str!("../../docs/openapi.json"))
            .expect("openapi.json parses");
        for (path, ops) in spec["paths"].as_object().expect("paths") {
            for (method, op) in ops.as_object().expect("operations") {
                let open = op["security"].as_array().is_some_and(Vec::is_empty);
                assert_eq!(
                    op["responses"].get("401").is_some(),
                    !open,
                    "{method} {path}: 401 declared exactly when a token is needed"
                );
            }
        }
        assert!(spec["paths"]["/connectors/{name}/config"]["put"]["responses"]["201"].is_object());
    }
}
