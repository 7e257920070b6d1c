//! `tributary serve`: a long-running worker hosting many pipelines, managed
//! over a REST API with Kafka Connect's paths and envelopes (the `config` of a
//! connector is a Tributary pipeline).
//!
//! **Isolation.** Each pipeline runs on its own threads (source, pipeline
//! loop, sink); a pipeline that fails (or panics) is marked `FAILED` with its
//! error as the task's `trace`, and the others go on.
//!
//! **Durable state.** Every deployed connector is a file in the worker's
//! state folder (`--data`, `connectors/<name>.json`: the config as given,
//! with its `${…}` references unresolved, and the target state), written
//! atomically. A worker that restarts — even after SIGKILL — starts every
//! `RUNNING` connector again, each resuming from its last commit exactly
//! once; paused and stopped ones stay so.
//!
//! **Secrets.** Configs are kept and shown as they were given: a secret
//! written as `${env:VAR}` or `${file:/path:key}` is resolved only when the
//! pipeline starts, and never appears in a response or a log.
//!
//! **States.** A connector is `RUNNING`, `PAUSED` (stopped with a final
//! commit; `resume` goes on from it), `STOPPED` (the same, and its offsets
//! may then be altered or reset), `FAILED` (the trace says why;
//! `restart` tries again) or `FINISHED` (a bounded source such as the
//! generator reached its end: a Tributary addition to Connect's states).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tributary_connector::Offsets;

use crate::allowed_paths::AllowedRoots;
use crate::config::{self, LoadedPipeline};
use crate::metrics::{Metrics, render_prometheus};
use crate::pipeline::{OffsetsOverride, Pipeline, RunOptions};
use crate::registry;
use crate::wasm::TransformEngine;

/// How `tributary serve` was asked to run.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// The worker's state folder (deployed connectors); relative paths in
    /// configs resolve against it.
    pub data: PathBuf,
    /// Bearer token every request but `/health` must carry.
    pub auth_token: Option<String>,
}

/// A deployed connector's wanted state, as kept on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
enum Target {
    Running,
    Paused,
    Stopped,
}

/// What is kept on disk per connector.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Stored {
    name: String,
    config: Value,
    target: Target,
    /// An offset reset or alteration not yet committed by a run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    offsets_override: Option<StoredOverride>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct StoredOverride {
    after_epoch: u64,
    offsets: Option<Value>,
}

struct Connector {
    stored: Stored,
    run: Option<Run>,
    /// Why the last run failed (the task's trace).
    failure: Option<String>,
    /// The last run ended because its source did.
    finished: bool,
    /// The current (or last) run's metrics.
    metrics: Arc<Metrics>,
}

struct Run {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Result<(), String>>,
}

/// An error as Kafka Connect's REST API shapes it.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
    fn not_found(name: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("Connector {name} not found"))
    }
    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error_code": self.status.as_u16(), "message": self.message});
        (self.status, axum::Json(body)).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// The worker: every deployed connector and what runs them.
pub struct Worker {
    data: PathBuf,
    /// The folders configs may name (`--data` and `--allow-path`).
    roots: AllowedRoots,
    worker_id: String,
    engine: TransformEngine,
    connectors: Mutex<BTreeMap<String, Connector>>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("data", &self.data)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// Opens the state folder and starts every connector whose target is
    /// `RUNNING`. Configs may name local paths only inside `data` and the
    /// folders of `allow` (`--allow-path`).
    pub fn open(data: PathBuf, allow: &[PathBuf], worker_id: String) -> Result<Arc<Self>, String> {
        let dir = data.join("connectors");
        std::fs::create_dir_all(&dir).map_err(|e| {
            format!(
                "cannot create the worker state folder {}: {e}",
                dir.display()
            )
        })?;
        let mut roots = vec![data.clone()];
        roots.extend(allow.iter().cloned());
        let roots = AllowedRoots::new(&roots)?;
        let engine = TransformEngine::new(None).map_err(|e| e.to_string())?;
        let worker = Arc::new(Self {
            roots,
            data,
            worker_id,
            engine,
            connectors: Mutex::new(BTreeMap::new()),
        });
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        entries.sort();
        let mut connectors = worker.lock();
        for path in entries {
            let stored: Stored = match std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            {
                Ok(s) => s,
                Err(e) => {
                    // Not deleted: a person may want to repair it.
                    tracing::error!("worker state {}: {e}; not loaded", path.display());
                    continue;
                }
            };
            let name = stored.name.clone();
            let mut c = Connector {
                stored,
                run: None,
                failure: None,
                finished: false,
                metrics: Arc::new(Metrics::default()),
            };
            if c.stored.target == Target::Running {
                worker.start(&name, &mut c);
            }
            tracing::info!("connector {name}: loaded ({:?})", c.stored.target);
            connectors.insert(name, c);
        }
        drop(connectors);
        // The input-rate gauges are moving windows sampled once a second.
        let weak = Arc::downgrade(&worker);
        let _ = std::thread::Builder::new()
            .name("worker-rates".into())
            .spawn(move || {
                while let Some(w) = weak.upgrade() {
                    for c in w.lock().values() {
                        c.metrics.sample_rate();
                    }
                    drop(w);
                    std::thread::sleep(std::time::Duration::from_secs(1));
                }
            });
        Ok(worker)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Connector>> {
        self.connectors.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn state_path(&self, name: &str) -> PathBuf {
        self.data.join("connectors").join(format!("{name}.json"))
    }

    fn persist(&self, stored: &Stored) -> ApiResult<()> {
        let path = self.state_path(&stored.name);
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(stored).expect("state serializes");
        // Synced, renamed, and the folder synced: a power cut after the
        // answer cannot bring back the previous state.
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
            .and_then(|()| std::fs::rename(&tmp, &path))
            .and_then(|()| std::fs::File::open(self.data.join("connectors"))?.sync_all())
            .map_err(|e| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("cannot save the worker state {}: {e}", path.display()),
                )
            })
    }

    /// A connector's config, interpolated and checked, with every local
    /// path in it inside the folders this worker may use.
    fn load(&self, name: &str, config: &Value) -> Result<LoadedPipeline, String> {
        let label = format!("connector {name}");
        let loaded = config::load_value(config, &self.data, &label).map_err(|e| e.to_string())?;
        self.roots
            .check_pipeline(&loaded)
            .map_err(|e| format!("{label}: {e}"))?;
        Ok(loaded)
    }

    /// Checks a config the way `tributary validate` does: its shape and
    /// meaning, its connectors' configs, and that every module loads.
    fn validate(&self, name: &str, config: &Value) -> Result<(), String> {
        let loaded = self.load(name, config)?;
        if loaded.config.name != name {
            return Err(format!(
                "config.name `{}` differs from the connector name `{name}`; leave it out or make them equal",
                loaded.config.name
            ));
        }
        crate::pipeline::build_parts(&loaded, &self.engine)
            .map(|_| ())
            .map_err(|e| format!("connector {name}: {e}"))
    }

    /// Starts a run of `c` in the background; a failure to build it is the
    /// connector's failure (state `FAILED`), not the caller's.
    fn start(&self, name: &str, c: &mut Connector) {
        c.failure = None;
        c.finished = false;
        let built = self
            .load(name, &c.stored.config)
            .and_then(|loaded| Pipeline::build(loaded, &self.engine).map_err(|e| e.to_string()));
        let pipeline = match built {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("connector {name}: cannot start: {e}");
                c.failure = Some(e);
                return;
            }
        };
        c.metrics = pipeline.metrics.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let options = RunOptions {
            available_now: false,
            progress_every: None,
            offsets_override: c.stored.offsets_override.as_ref().map(|o| OffsetsOverride {
                after_epoch: o.after_epoch,
                offsets: o.offsets.clone().map(Offsets::new),
            }),
        };
        let stop2 = stop.clone();
        let label = name.to_string();
        let spawned = std::thread::Builder::new()
            .name(format!("connector-{name}"))
            .spawn(move || {
                tracing::info!("connector {label}: running");
                pipeline
                    .run(options, stop2)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            });
        match spawned {
            Ok(handle) => c.run = Some(Run { stop, handle }),
            Err(e) => c.failure = Some(format!("cannot start a thread: {e}")),
        }
    }

    /// Stops a run gracefully (final commit) and waits for it.
    fn halt(c: &mut Connector) {
        if let Some(run) = c.run.take() {
            run.stop.store(true, Relaxed);
            Self::settle(c, run.handle);
        }
    }

    /// Records how a finished run ended.
    fn settle(c: &mut Connector, handle: JoinHandle<Result<(), String>>) {
        match handle.join() {
            Ok(Ok(())) => c.finished = c.failure.is_none() && c.stored.target == Target::Running,
            Ok(Err(e)) => c.failure = Some(e),
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown panic".into());
                c.failure = Some(format!("the pipeline panicked: {msg}"));
            }
        }
    }

    /// Collects runs that ended by themselves (failed, or source done).
    fn reap(c: &mut Connector) {
        if c.run.as_ref().is_some_and(|r| r.handle.is_finished()) {
            let run = c.run.take().expect("checked");
            Self::settle(c, run.handle);
            if let Some(e) = &c.failure {
                tracing::error!("connector {}: FAILED: {e}", c.stored.name);
            }
        }
    }

    fn state(c: &Connector) -> &'static str {
        match c.stored.target {
            Target::Paused => "PAUSED",
            Target::Stopped => "STOPPED",
            Target::Running if c.failure.is_some() => "FAILED",
            Target::Running if c.run.is_some() => "RUNNING",
            Target::Running if c.finished => "FINISHED",
            Target::Running => "UNASSIGNED",
        }
    }

    fn status_of(&self, name: &str, c: &mut Connector) -> Value {
        Self::reap(c);
        let state = Self::state(c);
        let mut task = json!({"id": 0, "state": state, "worker_id": self.worker_id});
        if let (Some(trace), "FAILED") = (&c.failure, state) {
            task["trace"] = json!(trace);
        }
        json!({
            "name": name,
            "connector": {"state": state, "worker_id": self.worker_id},
            "tasks": [task],
            "type": "pipeline",
        })
    }

    fn info_of(name: &str, c: &Connector) -> Value {
        json!({
            "name": name,
            "config": c.stored.config,
            "tasks": [{"connector": name, "task": 0}],
            "type": "pipeline",
        })
    }

    /// `config` as given, with `name` filled in when it was left out.
    fn normalize(name: &str, config: Value) -> ApiResult<Value> {
        let Value::Object(mut map) = config else {
            return Err(ApiError::bad_request(
                "config must be a JSON object: a Tributary pipeline",
            ));
        };
        map.entry("name").or_insert_with(|| json!(name));
        Ok(Value::Object(map))
    }

    /// A pipeline name's rule, and no `.` or `..` (it names a state file).
    fn check_name(name: &str) -> ApiResult<()> {
        config::check_name("connector name", name)
            .and_then(|()| {
                if name == "." || name == ".." {
                    Err(format!(
                        "connector name `{name}` must be 1-128 letters, digits, `_`, `-` or `.`"
                    ))
                } else {
                    Ok(())
                }
            })
            .map_err(ApiError::bad_request)
    }

    /// `POST /connectors` and `PUT /connectors/{name}/config`. Returns
    /// whether it was created.
    fn put(&self, name: &str, config: Value, must_be_new: bool) -> ApiResult<(bool, Value)> {
        Self::check_name(name)?;
        let config = Self::normalize(name, config)?;
        self.validate(name, &config).map_err(|e| {
            ApiError::bad_request(format!(
                "Connector configuration is invalid and contains the following 1 error(s):\n{e}"
            ))
        })?;
        let mut connectors = self.lock();
        let created = !connectors.contains_key(name);
        if !created && must_be_new {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("Connector {name} already exists"),
            ));
        }
        let c = connectors
            .entry(name.to_string())
            .or_insert_with(|| Connector {
                stored: Stored {
                    name: name.to_string(),
                    config: config.clone(),
                    target: Target::Running,
                    offsets_override: None,
                },
                run: None,
                failure: None,
                finished: false,
                metrics: Arc::new(Metrics::default()),
            });
        // An update restarts the pipeline from its last commit.
        Self::halt(c);
        c.stored.config = config;
        self.persist(&c.stored)?;
        if c.stored.target == Target::Running {
            self.start(name, c);
        }
        tracing::info!(
            "connector {name}: {}",
            if created { "created" } else { "updated" }
        );
        Ok((created, Self::info_of(name, c)))
    }

    fn with<T>(
        &self,
        name: &str,
        f: impl FnOnce(&Self, &mut Connector) -> ApiResult<T>,
    ) -> ApiResult<T> {
        let mut connectors = self.lock();
        let c = connectors
            .get_mut(name)
            .ok_or_else(|| ApiError::not_found(name))?;
        f(self, c)
    }

    fn set_target(&self, name: &str, target: Target, restart: bool) -> ApiResult<()> {
        self.with(name, |w, c| {
            if c.stored.target == target && !restart && c.run.is_some() {
                return Ok(());
            }
            Self::halt(c);
            c.stored.target = target;
            w.persist(&c.stored)?;
            if target == Target::Running {
                w.start(name, c);
            }
            tracing::info!("connector {name}: {target:?}");
            Ok(())
        })
    }

    fn delete(&self, name: &str) -> ApiResult<()> {
        let mut connectors = self.lock();
        let mut c = connectors
            .remove(name)
            .ok_or_else(|| ApiError::not_found(name))?;
        Self::halt(&mut c);
        let _ = std::fs::remove_file(self.state_path(name));
        tracing::info!("connector {name}: deleted");
        Ok(())
    }

    /// The last committed offsets (from the sink, the truth), or the ones an
    /// operator set and no run has committed yet.
    fn committed(&self, name: &str, config: &Value) -> ApiResult<(u64, Option<Value>, String)> {
        let loaded = self.load(name, config).map_err(ApiError::bad_request)?;
        let ctx = loaded.connector_context();
        let mut sink =
            registry::sink(&loaded.config.sink.kind, &loaded.config.sink.fields, &ctx)
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        let last = sink
            .last_commit(name)
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        Ok((
            last.as_ref().map_or(0, |l| l.epoch),
            last.map(|l| l.offsets.as_json().clone()),
            loaded.config.source.kind,
        ))
    }

    fn offsets(&self, name: &str) -> ApiResult<Value> {
        let (config, pending) = self.with(name, |_, c| {
            Ok((c.stored.config.clone(), c.stored.offsets_override.clone()))
        })?;
        let (epoch, committed, kind) = self.committed(name, &config)?;
        let offsets = match pending.filter(|p| p.after_epoch == epoch) {
            Some(p) => p.offsets,
            None => committed,
        };
        Ok(json!({"offsets": to_connect(&kind, offsets.as_ref())}))
    }

    /// `PATCH` (alter) and `DELETE` (reset) of the offsets of a stopped
    /// connector: the next run resumes there, with fresh transform state.
    fn set_offsets(&self, name: &str, patch: Option<&Value>) -> ApiResult<Value> {
        let config = self.with(name, |_, c| {
            if c.stored.target != Target::Stopped || c.run.is_some() {
                return Err(ApiError::bad_request(format!(
                    "Connectors must be in the STOPPED state before their offsets can be modified: \
                     PUT /connectors/{name}/stop first"
                )));
            }
            Ok(c.stored.config.clone())
        })?;
        let (epoch, committed, kind) = self.committed(name, &config)?;
        let offsets = match patch {
            None => None,
            Some(body) => Some(from_connect(&kind, body, committed.as_ref())?),
        };
        self.with(name, |w, c| {
            c.stored.offsets_override = Some(StoredOverride {
                after_epoch: epoch,
                offsets: offsets.clone(),
            });
            w.persist(&c.stored)
        })?;
        let message = match patch {
            None => "The offsets for this connector have been reset successfully",
            Some(_) => "The offsets for this connector have been altered successfully",
        };
        Ok(json!({"message": message}))
    }

    /// Every connector's metrics, for `/metrics`.
    fn metrics(&self) -> String {
        let connectors = self.lock();
        let rows: Vec<(&str, &Metrics)> = connectors
            .iter()
            .map(|(n, c)| (n.as_str(), c.metrics.as_ref()))
            .collect();
        render_prometheus(&rows)
    }

    /// Stops every pipeline with a final commit (on SIGTERM).
    pub fn shutdown(&self) {
        let mut connectors = self.lock();
        for c in connectors.values_mut() {
            if let Some(run) = &c.run {
                run.stop.store(true, Relaxed);
            }
        }
        for c in connectors.values_mut() {
            Self::halt(c);
        }
    }
}

/// Our offsets as Connect's `[{"partition", "offset"}]` list: one entry per
/// Kafka partition for the `kafka` source, else one entry holding them all.
fn to_connect(kind: &str, offsets: Option<&Value>) -> Value {
    let Some(offsets) = offsets.filter(|o| !o.is_null()) else {
        return json!([]);
    };
    if kind == "kafka"
        && let Some(topics) = offsets.as_object()
    {
        let mut out = Vec::new();
        for (topic, parts) in topics {
            for (p, o) in parts.as_object().into_iter().flatten() {
                out.push(json!({
                    "partition": {"kafka_topic": topic, "kafka_partition": p.parse::<i64>().unwrap_or(-1)},
                    "offset": {"kafka_offset": o},
                }));
            }
        }
        return Value::Array(out);
    }
    json!([{"partition": {}, "offset": offsets}])
}

/// A Connect `{"offsets": [...]}` body as our offsets: Kafka partitions are
/// merged into the committed ones (those not named keep theirs).
fn from_connect(kind: &str, body: &Value, committed: Option<&Value>) -> ApiResult<Value> {
    let list = body["offsets"].as_array().ok_or_else(|| {
        ApiError::bad_request(
            "the body must be {\"offsets\": [{\"partition\": {...}, \"offset\": {...}}]}",
        )
    })?;
    if kind != "kafka" {
        return match list.as_slice() {
            [one] => Ok(one["offset"].clone()),
            _ => Err(ApiError::bad_request(format!(
                "a `{kind}` source has one offset entry: {{\"offsets\": [{{\"partition\": {{}}, \"offset\": <its offsets>}}]}}"
            ))),
        };
    }
    let mut merged = committed
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for entry in list {
        let topic = entry["partition"]["kafka_topic"].as_str();
        let partition = entry["partition"]["kafka_partition"].as_i64();
        let offset = entry["offset"]["kafka_offset"].as_i64();
        let (Some(topic), Some(partition), Some(offset)) = (topic, partition, offset) else {
            return Err(ApiError::bad_request(format!(
                "offset entry {entry} must be {{\"partition\": {{\"kafka_topic\": \"t\", \"kafka_partition\": 0}}, \
                 \"offset\": {{\"kafka_offset\": 42}}}}"
            )));
        };
        if offset < 0 {
            return Err(ApiError::bad_request(format!(
                "kafka_offset {offset} is negative"
            )));
        }
        merged
            .entry(topic.to_string())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .map(|parts| parts.insert(partition.to_string(), json!(offset)));
    }
    Ok(Value::Object(merged))
}

// ---- HTTP ----

type Shared = Arc<Worker>;

/// Runs a blocking worker operation off the async threads.
async fn blocking<T: Send + 'static>(
    worker: &Shared,
    f: impl FnOnce(&Worker) -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    let worker = worker.clone();
    tokio::task::spawn_blocking(move || f(&worker))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
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
async fn plugins() -> impl IntoResponse {
    let version = env!("CARGO_PKG_VERSION");
    let mut out: Vec<Value> = registry::CONNECTORS
        .iter()
        .map(|(name, kind)| json!({"class": name, "type": kind.role(), "version": version}))
        .collect();
    for name in crate::builtin::BUILTIN_NAMES {
        out.push(json!({"class": format!("builtin:{name}"), "type": "transformation", "version": version}));
    }
    for p in &crate::plugins::installed().plugins {
        out.push(json!({"class": p.name, "type": p.kind, "version": "plugin", "location": p.path}));
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
    let plugin2 = plugin.clone();
    let errors = blocking(&w, move |w| {
        let name = config["name"].as_str().unwrap_or("validate").to_string();
        let mut errors = Vec::new();
        match Worker::normalize(&name, config) {
            Err(e) => errors.push(e.message),
            Ok(config) => {
                let source = config["source"]["type"].as_str().unwrap_or_default();
                let sink = config["sink"]["type"].as_str().unwrap_or_default();
                if plugin2 != source && plugin2 != sink {
                    errors.push(format!(
                        "the pipeline's source is `{source}` and its sink `{sink}`, not `{plugin2}`"
                    ));
                }
                if let Err(e) = w.validate(&name, &config) {
                    errors.push(e);
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
    if req.uri().path() == "/health" {
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
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token (Authorization: Bearer <token from --auth-token-file>)",
        )
        .into_response()
    }
}

/// The REST routes, for the server and for the test that checks the
/// OpenAPI description against them.
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
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "no such path; see docs/rest-api.md")
        })
        .with_state(worker);
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
pub fn read_token(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--auth-token-file {}: {e}", path.display()))?;
    let token = text.lines().next().unwrap_or_default().trim().to_string();
    if token.len() < 16 {
        return Err(format!(
            "--auth-token-file {}: the token must be at least 16 characters",
            path.display()
        ));
    }
    Ok(token)
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

    #[test]
    fn kafka_offsets_convert_both_ways_and_merge() {
        let ours = json!({"t": {"0": 10, "1": 20}});
        let connect = to_connect("kafka", Some(&ours));
        assert_eq!(connect.as_array().unwrap().len(), 2);
        assert_eq!(
            connect[0],
            json!({"partition": {"kafka_topic": "t", "kafka_partition": 0}, "offset": {"kafka_offset": 10}})
        );
        let patch = json!({"offsets": [{"partition": {"kafka_topic": "t", "kafka_partition": 1}, "offset": {"kafka_offset": 5}}]});
        assert_eq!(
            from_connect("kafka", &patch, Some(&ours)).unwrap(),
            json!({"t": {"0": 10, "1": 5}})
        );
        let bad = json!({"offsets": [{"partition": {"kafka_topic": "t"}, "offset": {}}]});
        assert!(from_connect("kafka", &bad, Some(&ours)).is_err());
        assert_eq!(to_connect("generator", None), json!([]));
        let gen_patch = json!({"offsets": [{"partition": {}, "offset": {"position": 7}}]});
        assert_eq!(
            from_connect("generator", &gen_patch, None).unwrap(),
            json!({"position": 7})
        );
    }
}
