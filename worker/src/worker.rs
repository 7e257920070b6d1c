//! The worker's life cycle: every deployed connector is a file in the state
//! folder and, while `RUNNING`, a pipeline on its own threads. The HTTP side
//! is [`crate::http`]; this module knows nothing of HTTP: its errors are
//! typed [`ApiError`]s, and [`ApiError::status`] maps them to statuses.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tributary_connector::Offsets;
use tributary_runtime::config::{self, ConfigError, ErrorConfig, LoadedPipeline};
use tributary_runtime::error::PipelineError;
use tributary_runtime::metrics::{Metrics, escape_label, render_prometheus};
use tributary_runtime::pipeline::{OffsetsOverride, Pipeline, RunOptions};
use tributary_runtime::registry::Registry;
use tributary_wasm_host::TransformEngine;

use crate::allowed_paths::AllowedRoots;
use crate::connect::{from_connect, to_connect};
use crate::console;
use crate::error::{ApiError, ApiResult, InvalidConnector, StartError};
use crate::history::History;

/// How `tributary serve` was asked to run.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// The worker's state folder (deployed connectors); relative paths in
    /// configs resolve against it.
    pub data: PathBuf,
    /// Bearer token every request but `/health` and the console's assets
    /// must carry.
    pub auth_token: Option<String>,
}

/// A deployed connector's wanted state, as kept on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub(crate) enum Target {
    Running,
    Paused,
    Stopped,
}

/// What is kept on disk per connector.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Stored {
    pub(crate) name: String,
    pub(crate) config: Value,
    pub(crate) target: Target,
    /// An offset reset or alteration not yet committed by a run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) offsets_override: Option<StoredOverride>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct StoredOverride {
    after_epoch: u64,
    offsets: Option<Value>,
}

pub(crate) struct Connector {
    pub(crate) stored: Stored,
    run: Option<Run>,
    /// Why the last run failed (the task's trace).
    failure: Option<String>,
    /// Whether that failure may pass by itself (then it is restarted).
    retryable: bool,
    /// The restart policy of the config last started, and its state.
    restarts: Restarts,
    /// The last run ended because its source did.
    finished: bool,
    /// The current (or last) run's metrics.
    metrics: Arc<Metrics>,
    /// What the console charts, sampled from `metrics` once a second.
    history: History,
    /// Where the last run started wrote its dead letters.
    dead_letter_dir: Option<PathBuf>,
}

struct Run {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Result<(), PipelineError>>,
    started: Instant,
}

/// How a connector that failed on something transient is restarted, as
/// Kafka Connect's `errors.retry.timeout` and `errors.retry.delay.max.ms`
/// bound its retries: waits from 1 s, doubling up to `delay_max`, for at most
/// `timeout` from the first failure of a streak (`None`: forever). A run that
/// stayed up longer than `delay_max` had recovered; its failure starts a new
/// streak.
#[derive(Debug)]
struct Restarts {
    timeout: Option<Duration>,
    delay_max: Duration,
    /// Restarts since the worker loaded the connector (status, metrics).
    total: u64,
    /// When the current streak of failures began.
    streak_since: Option<Instant>,
    delay: Duration,
    /// When the next restart is due.
    next_at: Option<Instant>,
    /// Why no restart will come, for the trace.
    gave_up: Option<String>,
}

impl Restarts {
    fn new(errors: &ErrorConfig) -> Self {
        Self {
            timeout: u64::try_from(errors.retry_timeout_ms)
                .ok()
                .map(Duration::from_millis),
            delay_max: Duration::from_millis(errors.retry_delay_max_ms),
            total: 0,
            streak_since: None,
            delay: Duration::ZERO,
            next_at: None,
            gave_up: None,
        }
    }

    /// A run failed on something transient after `ran` (none: it never
    /// started): schedules the next restart, or gives up.
    fn failed(&mut self, ran: Option<Duration>) {
        let now = Instant::now();
        let recovered = ran.is_some_and(|r| r > self.delay_max);
        let since = match self.streak_since {
            Some(since) if !recovered => {
                self.delay = (self.delay * 2).min(self.delay_max);
                since
            }
            _ => {
                self.delay = Duration::from_secs(1).min(self.delay_max);
                self.streak_since = Some(now);
                now
            }
        };
        match self.timeout {
            Some(t) if now.duration_since(since) + self.delay > t => {
                self.next_at = None;
                self.gave_up = Some(if t.is_zero() {
                    "not restarted: errors.retry_timeout_ms is 0".into()
                } else {
                    format!(
                        "not restarted again: failing for {:.0?} with {} restart(s) exceeds errors.retry_timeout_ms ({} ms); \
                         fix the cause, then POST /connectors/<name>/restart",
                        now.duration_since(since),
                        self.total,
                        t.as_millis()
                    )
                });
            }
            _ => {
                self.next_at = Some(now + self.delay);
                self.gave_up = None;
            }
        }
    }

    /// An operator's restart, pause, stop or new config: a fresh streak.
    fn reset(&mut self) {
        self.streak_since = None;
        self.next_at = None;
        self.gave_up = None;
    }
}

/// The worker: every deployed connector and what runs them.
pub struct Worker {
    data: PathBuf,
    /// The folders configs may name (`--data` and `--allow-path`).
    roots: AllowedRoots,
    worker_id: String,
    engine: TransformEngine,
    registry: Arc<Registry>,
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
    pub fn open(
        data: PathBuf,
        allow: &[PathBuf],
        worker_id: String,
        registry: Arc<Registry>,
    ) -> Result<Arc<Self>, StartError> {
        let dir = data.join("connectors");
        std::fs::create_dir_all(&dir).map_err(|source| StartError::StateFolder {
            action: "create",
            path: dir.clone(),
            source,
        })?;
        let mut roots = vec![data.clone()];
        roots.extend(allow.iter().cloned());
        let roots = AllowedRoots::new(&roots)?;
        let engine = TransformEngine::new(None)?;
        let worker = Arc::new(Self {
            roots,
            data,
            worker_id,
            engine,
            registry,
            connectors: Mutex::new(BTreeMap::new()),
        });
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|source| StartError::StateFolder {
                action: "read",
                path: dir.clone(),
                source,
            })?
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
                retryable: false,
                restarts: Restarts::new(&ErrorConfig::default()),
                finished: false,
                metrics: Arc::new(Metrics::default()),
                history: History::default(),
                dead_letter_dir: None,
            };
            if c.stored.target == Target::Running {
                worker.start(&name, &mut c);
            }
            tracing::info!("connector {name}: loaded ({:?})", c.stored.target);
            connectors.insert(name, c);
        }
        drop(connectors);
        // The input-rate gauges are moving windows sampled once a second,
        // and so is the console's history.
        let weak = Arc::downgrade(&worker);
        let _ = std::thread::Builder::new()
            .name("worker-rates".into())
            .spawn(move || {
                while let Some(w) = weak.upgrade() {
                    w.supervise();
                    for c in w.lock().values_mut() {
                        c.metrics.sample_rate();
                        c.history.sample(&c.metrics);
                    }
                    drop(w);
                    std::thread::sleep(std::time::Duration::from_secs(1));
                }
            });
        Ok(worker)
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Connector>> {
        self.connectors.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn state_path(&self, name: &str) -> PathBuf {
        self.data.join("connectors").join(format!("{name}.json"))
    }

    pub(crate) fn persist(&self, stored: &Stored) -> ApiResult<()> {
        let path = self.state_path(&stored.name);
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(stored).expect("state serializes");
        // Synced, renamed, and the folder synced: a power cut after the
        // answer cannot bring back the previous state.
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
            .and_then(|()| std::fs::rename(&tmp, &path))
            .and_then(|()| std::fs::File::open(self.data.join("connectors"))?.sync_all())
            .map_err(|source| ApiError::State { path, source })
    }

    /// A connector's config, interpolated and checked, with every local
    /// path in it inside the folders this worker may use.
    fn load(&self, name: &str, config: &Value) -> Result<LoadedPipeline, InvalidConnector> {
        let label = format!("connector {name}");
        // `${file:…}` secrets only from inside the worker's folders, as
        // Kafka Connect's FileConfigProvider has `allowed.paths`: else
        // whoever may POST could read any file the worker's user can.
        let read_file = |path: &std::path::Path| {
            self.roots
                .check("the `${file:…}` secrets file", path)
                .map_err(|e| e.to_string())
                .and_then(|real| config::read_secrets_file(&real))
        };
        let loaded = config::load_value_with(config, &self.data, &label, &read_file)?;
        self.roots
            .check_pipeline(&loaded)
            .map_err(|source| InvalidConnector::Path {
                name: name.to_string(),
                source,
            })?;
        Ok(loaded)
    }

    /// Checks a config the way `tributary validate` does: its shape and
    /// meaning, its connectors' configs, and that every module loads.
    pub(crate) fn validate(&self, name: &str, config: &Value) -> Result<(), InvalidConnector> {
        let loaded = self.load(name, config)?;
        if loaded.config.name != name {
            return Err(InvalidConnector::NameMismatch {
                name: name.to_string(),
                found: loaded.config.name,
            });
        }
        tributary_runtime::pipeline::build_parts(&loaded, &self.engine, &self.registry)
            .map(|_| ())
            .map_err(|source| InvalidConnector::Build {
                name: name.to_string(),
                source: Box::new(source),
            })
    }

    /// Starts a run of `c` in the background; a failure to build it is the
    /// connector's failure (state `FAILED`), not the caller's.
    pub(crate) fn start(&self, name: &str, c: &mut Connector) {
        c.failure = None;
        c.retryable = false;
        c.finished = false;
        let loaded = match self.load(name, &c.stored.config) {
            Ok(loaded) => loaded,
            Err(e) => {
                tracing::error!("connector {name}: cannot start: {e}");
                c.failure = Some(e.to_string());
                return;
            }
        };
        c.dead_letter_dir = loaded.dead_letter_dir();
        let (total, streak) = (c.restarts.total, c.restarts.streak_since);
        c.restarts = Restarts {
            total,
            streak_since: streak,
            delay: c.restarts.delay,
            ..Restarts::new(&loaded.config.errors)
        };
        let pipeline = match Pipeline::build(loaded, &self.engine, &self.registry) {
            Ok(p) => p,
            Err(source) => {
                // A store or catalog that is down now is transient.
                c.retryable = source.is_retryable();
                let e = InvalidConnector::Build {
                    name: name.to_string(),
                    source: Box::new(source),
                };
                tracing::error!("connector {name}: cannot start: {e}");
                c.failure = Some(e.to_string());
                if c.retryable {
                    c.restarts.failed(None);
                }
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
                pipeline.run(options, stop2).map(|_| ())
            });
        match spawned {
            Ok(handle) => {
                c.run = Some(Run {
                    stop,
                    handle,
                    started: Instant::now(),
                })
            }
            Err(e) => c.failure = Some(format!("cannot start a thread: {e}")),
        }
    }

    /// Stops a run gracefully (final commit) and waits for it.
    pub(crate) fn halt(c: &mut Connector) {
        if let Some(run) = c.run.take() {
            run.stop.store(true, Relaxed);
            Self::settle(c, run);
        }
    }

    /// Records how a finished run ended.
    fn settle(c: &mut Connector, run: Run) {
        match run.handle.join() {
            Ok(Ok(())) => c.finished = c.failure.is_none() && c.stored.target == Target::Running,
            Ok(Err(e)) => {
                c.failure = Some(e.to_string());
                c.retryable = e.is_retryable();
                if c.retryable && c.stored.target == Target::Running {
                    c.restarts.failed(Some(run.started.elapsed()));
                }
            }
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
    pub(crate) fn reap(c: &mut Connector) {
        if c.run.as_ref().is_some_and(|r| r.handle.is_finished()) {
            let run = c.run.take().expect("checked");
            Self::settle(c, run);
            if let Some(e) = &c.failure {
                tracing::error!("connector {}: FAILED: {e}", c.stored.name);
                if let Some(at) = c.restarts.next_at {
                    tracing::warn!(
                        "connector {}: the failure may pass; restarting in {:.0?} (errors.retry_timeout_ms)",
                        c.stored.name,
                        at.saturating_duration_since(Instant::now())
                    );
                } else if let Some(why) = &c.restarts.gave_up {
                    tracing::error!("connector {}: {why}", c.stored.name);
                }
            }
        }
    }

    /// Restarts `c` when it failed on something transient and its next
    /// restart is due (see [`Restarts`]).
    fn restart_if_due(&self, name: &str, c: &mut Connector) {
        let due = c.run.is_none()
            && c.stored.target == Target::Running
            && c.failure.is_some()
            && c.retryable
            && c.restarts.next_at.is_some_and(|at| at <= Instant::now());
        if !due {
            return;
        }
        c.restarts.next_at = None;
        c.restarts.total += 1;
        tracing::warn!(
            "connector {name}: restart {} after a failure that may pass: {}",
            c.restarts.total,
            c.failure.as_deref().unwrap_or_default()
        );
        self.start(name, c);
    }

    /// Once a second: collects finished runs and restarts what is due.
    fn supervise(&self) {
        let mut connectors = self.lock();
        for (name, c) in connectors.iter_mut() {
            Self::reap(c);
            self.restart_if_due(name, c);
        }
    }

    pub(crate) fn state(c: &Connector) -> &'static str {
        match c.stored.target {
            Target::Paused => "PAUSED",
            Target::Stopped => "STOPPED",
            Target::Running if c.failure.is_some() => "FAILED",
            Target::Running if c.run.is_some() => "RUNNING",
            Target::Running if c.finished => "FINISHED",
            Target::Running => "UNASSIGNED",
        }
    }

    pub(crate) fn status_of(&self, name: &str, c: &mut Connector) -> Value {
        Self::reap(c);
        let state = Self::state(c);
        let mut task = json!({"id": 0, "state": state, "worker_id": self.worker_id,
                              "restarts": c.restarts.total});
        if let Some(trace) = Self::trace(c) {
            task["trace"] = json!(trace);
        }
        json!({
            "name": name,
            "connector": {"state": state, "worker_id": self.worker_id},
            "tasks": [task],
            "type": "pipeline",
        })
    }

    /// Why a `FAILED` connector failed, and whether it will be restarted.
    fn trace(c: &Connector) -> Option<String> {
        let (Some(trace), "FAILED") = (&c.failure, Self::state(c)) else {
            return None;
        };
        let mut trace = trace.clone();
        if let (true, Some(at)) = (c.retryable, c.restarts.next_at) {
            trace.push_str(&format!(
                "\n(the failure may pass: restarting in {:.0?}, errors.retry_timeout_ms)",
                at.saturating_duration_since(Instant::now())
            ));
        } else if let Some(why) = &c.restarts.gave_up {
            trace.push_str(&format!("\n({why})"));
        }
        Some(trace)
    }

    /// The console's view of every connector (`only: None`: a row each) or
    /// of one (its whole page).
    pub(crate) fn console_rows(&self, only: Option<&str>) -> ApiResult<Vec<Value>> {
        let mut connectors = self.lock();
        if let Some(name) = only
            && !connectors.contains_key(name)
        {
            return Err(ApiError::NotFound(name.to_string()));
        }
        let mut rows = Vec::new();
        for (name, c) in connectors.iter_mut() {
            if only.is_some_and(|n| n != name) {
                continue;
            }
            Self::reap(c);
            c.history.absorb_commits(&c.metrics);
            let status = console::Status {
                state: Self::state(c),
                trace: Self::trace(c),
                restarts: c.restarts.total,
                config: &c.stored.config,
            };
            rows.push(match only {
                None => console::summary(name, &status, &c.metrics, &c.history),
                Some(_) => console::detail(
                    name,
                    &status,
                    &c.metrics,
                    &c.history,
                    c.dead_letter_dir.as_deref(),
                ),
            });
        }
        Ok(rows)
    }

    pub(crate) fn info_of(name: &str, c: &Connector) -> Value {
        json!({
            "name": name,
            "config": c.stored.config,
            "tasks": [{"connector": name, "task": 0}],
            "type": "pipeline",
        })
    }

    /// `config` as given, with `name` filled in when it was left out.
    pub(crate) fn normalize(name: &str, config: Value) -> ApiResult<Value> {
        let Value::Object(mut map) = config else {
            return Err(ApiError::bad_request(
                "config must be a JSON object: a Tributary pipeline",
            ));
        };
        map.entry("name").or_insert_with(|| json!(name));
        Ok(Value::Object(map))
    }

    /// A pipeline name's rule, and no `.` or `..` (it names a state file).
    pub(crate) fn check_name(name: &str) -> ApiResult<()> {
        config::check_name("connector name", name)
            .and_then(|()| {
                if name == "." || name == ".." {
                    Err(ConfigError::invalid(format!(
                        "connector name `{name}` must be 1-128 letters, digits, `_`, `-` or `.`"
                    )))
                } else {
                    Ok(())
                }
            })
            .map_err(|e| ApiError::bad_request(e.to_string()))
    }

    /// `POST /connectors` and `PUT /connectors/{name}/config`. Returns
    /// whether it was created.
    pub(crate) fn put(
        &self,
        name: &str,
        config: Value,
        must_be_new: bool,
    ) -> ApiResult<(bool, Value)> {
        Self::check_name(name)?;
        let config = Self::normalize(name, config)?;
        self.validate(name, &config)
            .map_err(|e| ApiError::InvalidConfig(Box::new(e)))?;
        let mut connectors = self.lock();
        let created = !connectors.contains_key(name);
        if !created && must_be_new {
            return Err(ApiError::AlreadyExists(name.to_string()));
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
                retryable: false,
                restarts: Restarts::new(&ErrorConfig::default()),
                finished: false,
                metrics: Arc::new(Metrics::default()),
                history: History::default(),
                dead_letter_dir: None,
            });
        // An update restarts the pipeline from its last commit.
        Self::halt(c);
        c.restarts.reset();
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

    pub(crate) fn with<T>(
        &self,
        name: &str,
        f: impl FnOnce(&Self, &mut Connector) -> ApiResult<T>,
    ) -> ApiResult<T> {
        let mut connectors = self.lock();
        let c = connectors
            .get_mut(name)
            .ok_or_else(|| ApiError::NotFound(name.to_string()))?;
        f(self, c)
    }

    pub(crate) fn set_target(&self, name: &str, target: Target, restart: bool) -> ApiResult<()> {
        self.with(name, |w, c| {
            if c.stored.target == target && !restart && c.run.is_some() {
                return Ok(());
            }
            Self::halt(c);
            c.restarts.reset();
            c.stored.target = target;
            w.persist(&c.stored)?;
            if target == Target::Running {
                w.start(name, c);
            }
            tracing::info!("connector {name}: {target:?}");
            Ok(())
        })
    }

    pub(crate) fn delete(&self, name: &str) -> ApiResult<()> {
        let mut connectors = self.lock();
        let mut c = connectors
            .remove(name)
            .ok_or_else(|| ApiError::NotFound(name.to_string()))?;
        Self::halt(&mut c);
        let _ = std::fs::remove_file(self.state_path(name));
        tracing::info!("connector {name}: deleted");
        Ok(())
    }

    /// The last committed offsets (from the sink, the truth), or the ones an
    /// operator set and no run has committed yet.
    pub(crate) fn committed(
        &self,
        name: &str,
        config: &Value,
    ) -> ApiResult<(u64, Option<Value>, String)> {
        let loaded = self
            .load(name, config)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let ctx = loaded.connector_context();
        let mut sink =
            self.registry
                .sink(&loaded.config.sink.kind, &loaded.config.sink.fields, &ctx)?;
        let last = sink.last_commit(name)?;
        Ok((
            last.as_ref().map_or(0, |l| l.epoch),
            last.map(|l| l.offsets.as_json().clone()),
            loaded.config.source.kind,
        ))
    }

    pub(crate) fn offsets(&self, name: &str) -> ApiResult<Value> {
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
    pub(crate) fn set_offsets(&self, name: &str, patch: Option<&Value>) -> ApiResult<Value> {
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
    pub(crate) fn metrics(&self) -> String {
        let connectors = self.lock();
        let rows: Vec<(&str, &Metrics)> = connectors
            .iter()
            .map(|(n, c)| (n.as_str(), c.metrics.as_ref()))
            .collect();
        let mut text = render_prometheus(&rows);
        text.push_str(
            "# HELP tributary_connector_restarts_total Restarts of a connector after failures that may pass (errors.retry_timeout_ms).\n\
             # TYPE tributary_connector_restarts_total counter\n",
        );
        for (name, c) in connectors.iter() {
            text.push_str(&format!(
                "tributary_connector_restarts_total{{pipeline=\"{}\"}} {}\n",
                escape_label(name),
                c.restarts.total
            ));
        }
        text
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

impl Worker {
    /// The connectors this worker can build.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}
