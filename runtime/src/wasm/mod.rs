//! The wasmtime host of the `tributary:transform` WIT world.
//!
//! - [`TransformEngine`]: one wasmtime `Engine` per process — epoch
//!   interruption driven by a ticker thread, and the compile cache on disk
//!   ([`cache`]: keyed by component and engine, loading only entries it wrote),
//!   so a large guest compiles once per machine, not once per start.
//! - [`TransformInstance`]: one sandboxed guest. WASI without files, network,
//!   environment or arguments; a memory cap; a time limit per call. A call that
//!   traps, times out or runs out of memory discards the whole `Store` (a fresh
//!   one is made for the next call) and rolls back its state changes.
//! - [`TransformChain`]: the transforms of a pipeline in order, the watermark,
//!   and the snapshot/restore of everything for checkpoints.

pub mod cache;
mod convert;
pub mod state;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arrow_array::RecordBatch;
pub use convert::rows_as_json;
use serde_json::Value as Json;
use state::KeyedState;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

mod bindings {
    wasmtime::component::bindgen!({ path: "../wit", world: "transform" });
}

use bindings::exports::tributary::transform::processor::Output;
use bindings::tributary::transform::types::{DropReason, Emit};
use bindings::{Transform, TransformPre};

/// Epoch ticks per second: the time limit's resolution.
const TICK: Duration = Duration::from_millis(10);

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

/// Sandbox limits of one instance.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub memory_bytes: u64,
    pub call_timeout: Duration,
}

/// One transform to instantiate.
#[derive(Clone, Debug)]
pub struct TransformSpec {
    pub name: String,
    pub bytes: Vec<u8>,
    pub config: Json,
    pub limits: Limits,
}

/// The process-wide engine.
#[derive(Clone)]
pub struct TransformEngine {
    engine: Engine,
    cache: Option<Arc<cache::CompileCache>>,
    linker: Arc<Linker<Host>>,
    _ticker: Arc<Ticker>,
}

impl std::fmt::Debug for TransformEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TransformEngine")
    }
}

struct Ticker {
    stop: Arc<AtomicBool>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The version of the WIT package this host implements.
pub const WIT_PACKAGE: &str = "tributary:transform";
pub const WIT_VERSION: &str = "0.1.0";

/// What a component implements, as `tributary transform inspect` shows it.
#[derive(Debug)]
pub struct ComponentInfo {
    pub imports: Vec<String>,
    pub exports: Vec<String>,
}

impl TransformEngine {
    /// Reads a component's imports and exports without running it. Errors
    /// say what the bytes are instead (a core module, not WebAssembly).
    pub fn describe(&self, bytes: &[u8]) -> Result<ComponentInfo, String> {
        let (component, _) = self.compile(bytes).map_err(|e| {
            let text = format!("{e:#}");
            if bytes.starts_with(b"\0asm") && bytes.get(4..8) == Some(&[1, 0, 0, 0]) {
                format!("a core WebAssembly module, not a component: build it as a component (e.g. for wasm32-wasip2, or with componentize-py): {text}")
            } else {
                format!("not a valid WebAssembly component: {text}")
            }
        })?;
        let ty = component.component_type();
        Ok(ComponentInfo {
            imports: ty
                .imports(&self.engine)
                .map(|(n, _)| n.to_string())
                .collect(),
            exports: ty
                .exports(&self.engine)
                .map(|(n, _)| n.to_string())
                .collect(),
        })
    }
}

impl TransformEngine {
    /// The compiled component, and whether it came from the compile cache.
    pub fn compile(&self, bytes: &[u8]) -> wasmtime::Result<(Component, bool)> {
        match &self.cache {
            Some(cache) => cache.load(&self.engine, bytes),
            None => Ok((Component::new(&self.engine, bytes)?, false)),
        }
    }

    /// What the compile cache did so far (none: no cache).
    pub fn cache_stats(&self) -> Option<cache::CacheStats> {
        self.cache.as_ref().map(|c| c.stats())
    }
}

/// Where compiled guests are cached: `$TRIBUTARY_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/tributary/wasm`, else `~/.cache/tributary/wasm`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("TRIBUTARY_CACHE_DIR") {
        return Some(PathBuf::from(d));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("tributary").join("wasm"))
}

impl TransformEngine {
    /// `cache_dir`: where compiled guests are kept (`None`: the default).
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Self, TransformError> {
        let engine_err =
            |what: &str, e: wasmtime::Error| TransformError::Engine(format!("{what}: {e:#}"));
        let mut config = wasmtime::Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .concurrency_support(false);
        let engine = Engine::new(&config)
            .map_err(|e| engine_err("cannot start the WebAssembly engine", e))?;
        let cache = cache_dir.or_else(default_cache_dir).and_then(|dir| {
            cache::CompileCache::open(&dir, &engine)
                .map_err(|e| tracing::warn!("compile cache disabled: {e}"))
                .ok()
                .map(Arc::new)
        });
        let mut linker = Linker::<Host>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| engine_err("WASI", e))?;
        Transform::add_to_linker::<_, HasSelf<_>>(&mut linker, |h| h)
            .map_err(|e| engine_err("host imports", e))?;

        let stop = Arc::new(AtomicBool::new(false));
        let (weak, stop2) = (engine.weak(), stop.clone());
        std::thread::Builder::new()
            .name("tributary-epoch".into())
            .spawn(move || {
                while !stop2.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    match weak.upgrade() {
                        Some(e) => e.increment_epoch(),
                        None => return,
                    }
                }
            })
            .map_err(|e| TransformError::Engine(format!("cannot start the epoch ticker: {e}")))?;
        Ok(Self {
            engine,
            cache,
            linker: Arc::new(linker),
            _ticker: Arc::new(Ticker { stop }),
        })
    }
}

/// What a guest's `Store` holds.
pub struct Host {
    wasi: WasiCtx,
    /// What the guest printed to stderr (a panic message, say), to explain a trap.
    stderr: wasmtime_wasi::p2::pipe::MemoryOutputPipe,
    table: ResourceTable,
    limiter: Limiter,
    state: KeyedState,
    watermark: Option<i64>,
    proposal: Option<i64>,
    name: String,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps memory (and notes when it had to say no, to name the failure). The
/// cap is on the sum of every linear memory of the Store: a component may
/// hold several (one per core module), and a cap per memory would let it
/// take the cap times their number.
struct Limiter {
    memory_bytes: usize,
    /// Bytes of all memories of the Store so far (they only grow, and all go
    /// with the Store).
    memory_used: usize,
    denied: bool,
}

impl Limiter {
    fn new(memory_bytes: usize) -> Self {
        Self {
            memory_bytes,
            memory_used: 0,
            denied: false,
        }
    }
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self
            .memory_used
            .saturating_add(desired.saturating_sub(current));
        if total > self.memory_bytes {
            self.denied = true;
            return Ok(false);
        }
        self.memory_used = total;
        Ok(true)
    }
    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
    fn instances(&self) -> usize {
        // Interpreted guests (Python, JS) bundle many core instances.
        1_000
    }
    fn memories(&self) -> usize {
        100
    }
    fn tables(&self) -> usize {
        1_000
    }
}

impl bindings::tributary::transform::types::Host for Host {}

impl bindings::tributary::transform::state::Host for Host {
    fn get(&mut self, key: String) -> Option<Vec<u8>> {
        self.state.get(&key).map(<[u8]>::to_vec)
    }
    fn put(&mut self, key: String, value: Vec<u8>, expires_at: Option<i64>) {
        self.state.put(&key, value, expires_at)
    }
    fn put_if_absent(&mut self, key: String, value: Vec<u8>, expires_at: Option<i64>) -> bool {
        self.state.put_if_absent(&key, value, expires_at)
    }
    fn remove(&mut self, key: String) -> bool {
        self.state.remove(&key)
    }
    fn len(&mut self) -> u64 {
        self.state.len() as u64
    }
    fn take_expired(&mut self) -> Vec<(String, Vec<u8>)> {
        match self.watermark {
            Some(w) => self.state.take_expired(w),
            None => Vec::new(),
        }
    }
}

impl bindings::tributary::transform::watermark::Host for Host {
    fn current(&mut self) -> Option<i64> {
        self.watermark
    }
    fn advance(&mut self, to: i64) {
        self.proposal = Some(self.proposal.map_or(to, |p| p.max(to)));
    }
}

impl bindings::tributary::transform::log::Host for Host {
    fn write(&mut self, level: bindings::tributary::transform::log::Level, message: String) {
        use bindings::tributary::transform::log::Level;
        let t = &self.name;
        match level {
            Level::Debug => tracing::debug!(transform = %t, "{message}"),
            Level::Info => tracing::info!(transform = %t, "{message}"),
            Level::Warn => tracing::warn!(transform = %t, "{message}"),
            Level::Error => tracing::error!(transform = %t, "{message}"),
        }
    }
}

/// One sandboxed transform.
pub struct TransformInstance {
    name: String,
    engine: Engine,
    pre: TransformPre<Host>,
    limits: Limits,
    config: Vec<(String, String)>,
    projection: Option<Vec<String>>,
    live: Option<(Store<Host>, Transform)>,
    /// The state while no Store is live.
    parked: Option<KeyedState>,
}

/// Flattens a transform's `config` object for `init`: strings as they are,
/// everything else as JSON text.
fn flatten_config(config: &Json) -> Vec<(String, String)> {
    match config {
        Json::Object(map) => map
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    match v {
                        Json::String(s) => s.clone(),
                        other => other.to_string(),
                    },
                )
            })
            .collect(),
        _ => Vec::new(),
    }
}

impl TransformInstance {
    /// Compiles (or loads from the cache) and instantiates a guest, and calls
    /// its `init`.
    pub fn new(engine: &TransformEngine, spec: TransformSpec) -> Result<Self, TransformError> {
        let load = |message: String| TransformError::Load {
            transform: spec.name.clone(),
            message,
        };
        let started = std::time::Instant::now();
        let (component, cached) = engine.compile(&spec.bytes).map_err(|e| {
            let text = format!("{e:#}");
            if text.contains("component") && text.contains("module") {
                load(format!("the module is a core WebAssembly module, not a component ({text}); build it as a component (e.g. for wasm32-wasip2)"))
            } else {
                load(format!("not a valid WebAssembly component: {text}"))
            }
        })?;
        if let Some(other) = component
            .component_type()
            .exports(&engine.engine)
            .map(|(n, _)| n.to_string())
            .find(|n| {
                n.starts_with("tributary:transform/processor@")
                    && !n.ends_with(&format!("@{WIT_VERSION}"))
            })
        {
            let version = other.rsplit_once('@').map_or("?", |(_, v)| v);
            return Err(load(format!(
                "the module implements tributary:transform@{version}, but this tributary hosts \
                 tributary:transform@{WIT_VERSION}: rebuild it against the wit/ folder of this version \
                 (it exports {other}, the host needs tributary:transform/processor@{WIT_VERSION})"
            )));
        }
        tracing::info!(
            "transform `{}`: {} in {} ms",
            spec.name,
            if cached {
                "loaded from the compile cache"
            } else {
                "compiled"
            },
            started.elapsed().as_millis()
        );
        let pre = engine.linker.instantiate_pre(&component).map_err(|e| {
            load(format!(
                "it does not fit the world tributary:transform/transform@0.1.0: {e:#}"
            ))
        })?;
        let pre = TransformPre::new(pre).map_err(|e| {
            load(format!(
                "it does not export tributary:transform/processor@0.1.0: {e:#}"
            ))
        })?;
        let mut instance = Self {
            name: spec.name.clone(),
            engine: engine.engine.clone(),
            pre,
            limits: spec.limits,
            config: flatten_config(&spec.config),
            projection: None,
            live: None,
            parked: Some(KeyedState::default()),
        };
        instance.ensure_live()?;
        Ok(instance)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn new_store(&self, state: KeyedState) -> Store<Host> {
        let stderr = wasmtime_wasi::p2::pipe::MemoryOutputPipe::new(64 * 1024);
        let host = Host {
            // No preopened folders, no network, no environment, no arguments;
            // stdout goes nowhere, stderr is kept to explain a trap.
            wasi: WasiCtx::builder().stderr(stderr.clone()).build(),
            stderr,
            table: ResourceTable::new(),
            limiter: Limiter::new(self.limits.memory_bytes as usize),
            state,
            watermark: None,
            proposal: None,
            name: self.name.clone(),
        };
        let mut store = Store::new(&self.engine, host);
        store.limiter(|h| &mut h.limiter);
        store
    }

    /// Makes sure a Store and instance exist (after a discard, a fresh one,
    /// initialised again with the same config).
    fn ensure_live(&mut self) -> Result<(), TransformError> {
        if self.live.is_some() {
            return Ok(());
        }
        let state = self.parked.take().unwrap_or_default();
        let mut store = self.new_store(state);
        store.set_epoch_deadline(self.deadline_ticks());
        store.epoch_deadline_trap();
        let result = self.pre.instantiate(&mut store).and_then(|t| {
            t.tributary_transform_processor()
                .call_init(&mut store, &self.config)
                .map(|r| (t, r))
        });
        match result {
            Ok((t, Ok(projection))) => {
                self.projection = projection;
                self.live = Some((store, t));
                Ok(())
            }
            Ok((_, Err(message))) => {
                self.parked = Some(store.into_data().state);
                Err(TransformError::Config {
                    transform: self.name.clone(),
                    message,
                })
            }
            Err(e) => {
                let (denied, said) = (store.data().limiter.denied, store.data().stderr.contents());
                self.parked = Some(store.into_data().state);
                Err(self.classify(e, denied, &said))
            }
        }
    }

    fn deadline_ticks(&self) -> u64 {
        (self.limits.call_timeout.as_millis() as u64)
            .div_ceil(TICK.as_millis() as u64)
            .max(1)
            + 1
    }

    fn classify(&self, e: wasmtime::Error, memory_denied: bool, stderr: &[u8]) -> TransformError {
        let transform = self.name.clone();
        if let Some(wasmtime::Trap::Interrupt) = e.downcast_ref::<wasmtime::Trap>() {
            return TransformError::Timeout {
                transform,
                limit_ms: self.limits.call_timeout.as_millis() as u64,
            };
        }
        if memory_denied {
            return TransformError::OutOfMemory {
                transform,
                limit_mb: self.limits.memory_bytes / (1024 * 1024),
            };
        }
        let mut message = match e.downcast_ref::<wasmtime::Trap>() {
            Some(trap) => trap.to_string(),
            None => format!("{e:#}")
                .lines()
                .next()
                .unwrap_or("unknown failure")
                .to_string(),
        };
        // The guest's last words (a Rust panic prints "thread … panicked at
        // file:line:" then the message, then a backtrace note we skip).
        let said = String::from_utf8_lossy(stderr);
        let mut last: Vec<&str> = said
            .lines()
            .rev()
            .filter(|l| !l.trim().is_empty() && !l.starts_with("note:"))
            .take(2)
            .collect();
        last.reverse();
        if !last.is_empty() {
            let text: String = last.join(" ").chars().take(300).collect();
            message.push_str(&format!(" (the guest said: {text})"));
        }
        TransformError::Trap { transform, message }
    }

    /// Runs one guest call under the limits, with the state journaled: a
    /// failure of any kind rolls the state back, and a trap discards the Store.
    fn call<R>(
        &mut self,
        watermark: Option<i64>,
        f: impl FnOnce(&Transform, &mut Store<Host>) -> wasmtime::Result<Result<R, String>>,
    ) -> Result<(R, Option<i64>), TransformError> {
        self.ensure_live()?;
        let ticks = self.deadline_ticks();
        let (store, bindings) = self.live.as_mut().expect("live");
        store.set_epoch_deadline(ticks);
        {
            let host = store.data_mut();
            host.watermark = watermark;
            host.proposal = None;
            host.limiter.denied = false;
            host.state.begin();
        }
        let result = f(bindings, store);
        match result {
            Ok(Ok(r)) => {
                let host = store.data_mut();
                host.state.commit();
                Ok((r, host.proposal.take()))
            }
            Ok(Err(message)) => {
                store.data_mut().state.rollback();
                Err(TransformError::Guest {
                    transform: self.name.clone(),
                    message,
                })
            }
            Err(e) => {
                let (store, _) = self.live.take().expect("live");
                let mut host = store.into_data();
                let (denied, said) = (host.limiter.denied, host.stderr.contents());
                host.state.rollback();
                self.parked = Some(host.state);
                let err = self.classify(e, denied, &said);
                tracing::warn!("{err}; a fresh instance will take the next batch");
                Err(err)
            }
        }
    }

    /// `process` on one batch; returns the guest's answer and its watermark
    /// proposal.
    pub fn process(
        &mut self,
        batch: &RecordBatch,
        watermark: Option<i64>,
    ) -> Result<(Output, Option<i64>), TransformError> {
        let wit = convert::to_wit(batch, self.projection.as_deref());
        self.call(watermark, |t, store| {
            t.tributary_transform_processor().call_process(store, &wit)
        })
    }

    /// `on-watermark` after the watermark moved.
    pub fn on_watermark(&mut self, watermark: i64) -> Result<Output, TransformError> {
        self.call(Some(watermark), |t, store| {
            t.tributary_transform_processor()
                .call_on_watermark(store, watermark)
        })
        .map(|(o, _)| o)
    }

    fn state_mut(&mut self) -> &mut KeyedState {
        match self.live.as_mut() {
            Some((store, _)) => &mut store.data_mut().state,
            None => self.parked.get_or_insert_with(KeyedState::default),
        }
    }

    fn state(&self) -> Option<&KeyedState> {
        match self.live.as_ref() {
            Some((store, _)) => Some(&store.data().state),
            None => self.parked.as_ref(),
        }
    }

    /// Entries in the state store.
    pub fn state_len(&self) -> usize {
        self.state().map_or(0, KeyedState::len)
    }

    pub fn snapshot(&self) -> Vec<u8> {
        self.state().map(KeyedState::snapshot).unwrap_or_default()
    }

    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), TransformError> {
        let restored = KeyedState::restore(bytes).map_err(|message| TransformError::Load {
            transform: self.name.clone(),
            message: format!("checkpointed {message}"),
        })?;
        *self.state_mut() = restored;
        Ok(())
    }

    pub fn evict_expired(&mut self, watermark: i64) -> usize {
        self.state_mut().evict_expired(watermark)
    }
}

/// A late row, as JSON, with the transform that dropped it.
#[derive(Clone, Debug)]
pub struct LateRow {
    pub transform: String,
    pub record: Json,
}

/// A rejected row, with who rejected it and why.
#[derive(Clone, Debug)]
pub struct RejectedRow {
    pub transform: String,
    pub reason: String,
    pub record: Json,
}

/// What one batch became.
#[derive(Debug, Default)]
pub struct ChainOutput {
    /// Rows for the sink (several batches when a transform emitted rows on a
    /// watermark move; their schemas may differ by added fields).
    pub batches: Vec<RecordBatch>,
    pub late: Vec<LateRow>,
    pub duplicates: u64,
    pub filtered: u64,
    pub rejected: Vec<RejectedRow>,
}

/// Everything a chain needs to resume: the watermark and each transform's
/// state, by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChainState {
    pub watermark: Option<i64>,
    pub transforms: Vec<(String, Vec<u8>)>,
}

/// A pipeline's transforms, in order, and its watermark.
pub struct TransformChain {
    instances: Vec<TransformInstance>,
    watermark: Option<i64>,
}

impl std::fmt::Debug for TransformChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransformChain")
            .field("watermark", &self.watermark)
            .finish_non_exhaustive()
    }
}

impl TransformChain {
    pub fn new(
        engine: &TransformEngine,
        specs: Vec<TransformSpec>,
    ) -> Result<Self, TransformError> {
        let instances = specs
            .into_iter()
            .map(|s| TransformInstance::new(engine, s))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            instances,
            watermark: None,
        })
    }

    pub fn watermark(&self) -> Option<i64> {
        self.watermark
    }

    /// Whether a lost checkpoint would lose anything (any transform at all:
    /// their state is opaque to the host).
    pub fn is_stateful(&self) -> bool {
        !self.instances.is_empty()
    }

    pub fn snapshot(&self) -> ChainState {
        ChainState {
            watermark: self.watermark,
            transforms: self
                .instances
                .iter()
                .map(|i| (i.name.clone(), i.snapshot()))
                .collect(),
        }
    }

    pub fn restore(&mut self, state: ChainState) -> Result<(), TransformError> {
        self.watermark = state.watermark;
        for (name, bytes) in &state.transforms {
            match self.instances.iter_mut().find(|i| &i.name == name) {
                Some(i) => i.restore(bytes)?,
                None => tracing::warn!(
                    "the checkpoint has state of transform `{name}`, which the pipeline no longer has; ignored"
                ),
            }
        }
        Ok(())
    }

    /// Entries in every transform's state store.
    pub fn state_entries(&self) -> usize {
        self.instances
            .iter()
            .map(TransformInstance::state_len)
            .sum()
    }

    /// Runs `batch` through transforms `from..`, collecting into `out`.
    fn run_from(
        &mut self,
        from: usize,
        batch: RecordBatch,
        proposal: &mut Option<i64>,
        out: &mut ChainOutput,
    ) -> Result<Option<RecordBatch>, TransformError> {
        let mut current = batch;
        for instance in &mut self.instances[from..] {
            if current.num_rows() == 0 {
                return Ok(None);
            }
            let (answer, p) = instance.process(&current, self.watermark)?;
            if let Some(p) = p {
                *proposal = Some(proposal.map_or(p, |q: i64| q.max(p)));
            }
            current = apply(instance.name(), &current, answer, out)?;
        }
        Ok((current.num_rows() > 0).then_some(current))
    }

    /// One batch through every transform; then, if the watermark moved, the
    /// `on-watermark` calls and state eviction.
    pub fn run(&mut self, batch: &RecordBatch) -> Result<ChainOutput, TransformError> {
        let mut out = ChainOutput::default();
        let mut proposal = None;
        if let Some(b) = self.run_from(0, batch.clone(), &mut proposal, &mut out)? {
            out.batches.push(b);
        }
        if let Some(p) = proposal
            && self.watermark.is_none_or(|w| p > w)
        {
            self.watermark = Some(p);
            for i in 0..self.instances.len() {
                let answer = self.instances[i].on_watermark(p)?;
                if answer.emit.is_empty() && answer.rejected.is_empty() {
                    continue;
                }
                let empty = RecordBatch::new_empty(batch.schema());
                let name = self.instances[i].name.clone();
                let emitted = apply(&name, &empty, answer, &mut out)?;
                let mut ignored = None;
                if let Some(b) = self.run_from(i + 1, emitted, &mut ignored, &mut out)? {
                    out.batches.push(b);
                }
            }
            for instance in &mut self.instances {
                instance.evict_expired(p);
            }
        }
        Ok(out)
    }
}

/// Applies a guest's answer to its input: counts and collects drops and
/// rejections, and assembles the rows it emitted.
fn apply(
    name: &str,
    input: &RecordBatch,
    answer: Output,
    out: &mut ChainOutput,
) -> Result<RecordBatch, TransformError> {
    let bad = |message: String| TransformError::Output {
        transform: name.to_string(),
        message,
    };
    let n = input.num_rows();
    let mut accounted = vec![false; n];
    // One row at a time: a batch with a single late row (the common case)
    // must not pay for writing every row of it as JSON.
    let row_json = |i: usize| -> Json {
        if i >= input.num_rows() {
            return Json::Null;
        }
        rows_as_json(&input.slice(i, 1))
            .into_iter()
            .next()
            .unwrap_or(Json::Null)
    };
    for e in &answer.emit {
        if let Emit::Keep(i) | Emit::Update((i, _)) = e
            && let Some(a) = accounted.get_mut(*i as usize)
        {
            *a = true;
        }
    }
    for d in &answer.dropped {
        let i = d.row as usize;
        if i >= n {
            return Err(bad(format!("dropped row {i} of a {n}-row batch")));
        }
        accounted[i] = true;
        match d.reason {
            DropReason::Late => out.late.push(LateRow {
                transform: name.to_string(),
                record: row_json(i),
            }),
            DropReason::Duplicate => out.duplicates += 1,
            DropReason::Filtered => out.filtered += 1,
        }
    }
    for r in &answer.rejected {
        let i = r.row as usize;
        if i >= n {
            return Err(bad(format!("rejected row {i} of a {n}-row batch")));
        }
        accounted[i] = true;
        out.rejected.push(RejectedRow {
            transform: name.to_string(),
            reason: r.reason.clone(),
            record: row_json(i),
        });
    }
    out.filtered += accounted.iter().filter(|a| !**a).count() as u64;
    let convert::Assembled {
        batch,
        refused,
        inserted,
    } = convert::assemble(input, answer.emit).map_err(bad)?;
    for r in refused {
        let record = match r.row {
            convert::RowRef::Input(i) => row_json(i as usize),
            convert::RowRef::Inserted(k) => inserted
                .iter()
                .find(|(idx, _)| *idx == k)
                .map(|(_, a)| {
                    Json::Object(
                        a.iter()
                            .map(|(n, v)| (n.clone(), Json::String(format!("{v:?}"))))
                            .collect(),
                    )
                })
                .unwrap_or(Json::Null),
        };
        out.rejected.push(RejectedRow {
            transform: name.to_string(),
            reason: r.reason,
            record,
        });
    }
    Ok(batch)
}
