//! One sandboxed guest: its `Store` and what the host gives it (state,
//! watermark, log), the calls under the limits of [`crate::sandbox`], and how
//! a failure is named.

use serde_json::Value as Json;
use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store};

use crate::columnar::{self, View};
use crate::engine::{TransformEngine, TransformSpec, WIT_VERSIONS};
use crate::error::TransformError;
use crate::host::Host;
use crate::sandbox::{self, Limiter, Limits};
use crate::state::KeyedState;
use crate::{bindings, bindings_v1, convert};

/// A component ready to instantiate, by the contract version it speaks.
enum Pre {
    V2(bindings::TransformPre<Host>),
    V1(bindings_v1::TransformPre<Host>),
}

/// A live instance's exports, by version.
enum Exports {
    V2(bindings::Transform),
    V1(bindings_v1::Transform),
}

/// A guest's answer to `process` or `on-watermark`, by version.
pub(crate) enum Answer {
    V2(bindings::exports::tributary::transform::processor::Output),
    V1(bindings_v1::exports::tributary::transform::processor::Output),
}

impl Answer {
    /// No row emitted or rejected (an `on-watermark` with nothing to say).
    pub(crate) fn emits_nothing(&self) -> bool {
        match self {
            Answer::V2(a) => a.rows.as_ref().is_none_or(Vec::is_empty) && a.rejected.is_empty(),
            Answer::V1(a) => a.emit.is_empty() && a.rejected.is_empty(),
        }
    }
}

/// One sandboxed transform.
pub struct TransformInstance {
    pub(crate) name: String,
    engine: Engine,
    pre: Pre,
    limits: Limits,
    config: Vec<(String, String)>,
    projection: Option<Vec<String>>,
    live: Option<(Store<Host>, Exports)>,
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
        let exports: Vec<String> = component
            .component_type()
            .exports(&engine.engine)
            .map(|(n, _)| n.to_string())
            .collect();
        let processor = exports
            .iter()
            .find(|n| n.starts_with("tributary:transform/processor@"));
        let version = processor
            .and_then(|n| n.rsplit_once('@'))
            .map(|(_, v)| v.to_string());
        if let (Some(other), Some(version)) = (processor, &version)
            && !WIT_VERSIONS.contains(&version.as_str())
        {
            return Err(load(format!(
                "the module implements tributary:transform@{version}, but this tributary hosts \
                 tributary:transform@{}: rebuild it against the wit/ folder of this version \
                 (it exports {other})",
                WIT_VERSIONS.join(" and @")
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
                "it does not fit the world tributary:transform/transform@{}: {e:#}",
                version.as_deref().unwrap_or(crate::WIT_VERSION)
            ))
        })?;
        let pre = match version.as_deref() {
            Some("0.1.0") => bindings_v1::TransformPre::new(pre).map(Pre::V1),
            _ => bindings::TransformPre::new(pre).map(Pre::V2),
        }
        .map_err(|e| {
            load(format!(
                "it does not export tributary:transform/processor@{}: {e:#}",
                crate::WIT_VERSION
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
            wasi: sandbox::wasi_ctx(stderr.clone()),
            stderr,
            table: ResourceTable::new(),
            limiter: Limiter::new(&self.limits),
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
        let result = match &self.pre {
            Pre::V2(pre) => pre.instantiate(&mut store).and_then(|t| {
                t.tributary_transform_processor()
                    .call_init(&mut store, &self.config)
                    .map(|r| (Exports::V2(t), r))
            }),
            Pre::V1(pre) => pre.instantiate(&mut store).and_then(|t| {
                t.tributary_transform_processor()
                    .call_init(&mut store, &self.config)
                    .map(|r| (Exports::V1(t), r))
            }),
        };
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
        self.limits.deadline_ticks()
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
        f: impl FnOnce(&Exports, &mut Store<Host>) -> wasmtime::Result<Result<R, String>>,
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
    /// proposal. A 0.2.0 guest is shown the batch as columns gathered
    /// straight from the view; a 0.1.0 guest, as rows of values.
    pub(crate) fn process(
        &mut self,
        batch: &View,
        watermark: Option<i64>,
    ) -> Result<(Answer, Option<i64>), TransformError> {
        self.ensure_live()?;
        match self.live.as_ref().map(|(_, e)| e) {
            Some(Exports::V1(_)) => {
                let wit = convert::to_wit(&batch.materialize(), self.projection.as_deref());
                self.call(watermark, |t, store| match t {
                    Exports::V1(t) => t
                        .tributary_transform_processor()
                        .call_process(store, &wit)
                        .map(|r| r.map(Answer::V1)),
                    Exports::V2(_) => unreachable!("the instance speaks 0.1.0"),
                })
            }
            _ => {
                let wit = columnar::to_wit(batch, self.projection.as_deref());
                self.call(watermark, |t, store| match t {
                    Exports::V2(t) => t
                        .tributary_transform_processor()
                        .call_process(store, &wit)
                        .map(|r| r.map(Answer::V2)),
                    Exports::V1(_) => unreachable!("the instance speaks 0.2.0"),
                })
            }
        }
    }

    /// `on-watermark` after the watermark moved.
    pub(crate) fn on_watermark(&mut self, watermark: i64) -> Result<Answer, TransformError> {
        self.call(Some(watermark), |t, store| match t {
            Exports::V2(t) => t
                .tributary_transform_processor()
                .call_on_watermark(store, watermark)
                .map(|r| r.map(Answer::V2)),
            Exports::V1(t) => t
                .tributary_transform_processor()
                .call_on_watermark(store, watermark)
                .map(|r| r.map(Answer::V1)),
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

    /// The length of [`snapshot`](Self::snapshot).
    pub fn snapshot_len(&self) -> usize {
        self.state().map_or(0, KeyedState::snapshot_len)
    }

    /// Writes [`snapshot`](Self::snapshot) to `w` without making it.
    pub fn write_snapshot(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        match self.state() {
            Some(state) => state.write_snapshot(w),
            None => Ok(()),
        }
    }

    /// What changed in the state since the last checkpoint (see
    /// [`KeyedState::changelog`]).
    pub fn changelog(&self) -> Vec<u8> {
        match self.state() {
            Some(state) => state.changelog(),
            None => KeyedState::default().changelog(),
        }
    }

    /// Keys changed since the last checkpoint.
    pub fn changes(&self) -> usize {
        self.state().map_or(0, KeyedState::changes)
    }

    /// The state as it is now has been checkpointed.
    pub fn clear_changes(&mut self) {
        self.state_mut().clear_changes();
    }

    /// Replays a checkpointed changelog over the restored state.
    pub fn apply_changelog(&mut self, bytes: &[u8]) -> Result<(), TransformError> {
        let name = self.name.clone();
        self.state_mut()
            .apply_changelog(bytes)
            .map_err(|e| TransformError::Load {
                transform: name,
                message: format!("checkpointed changelog: {e}"),
            })
    }

    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), TransformError> {
        let restored = KeyedState::restore(bytes).map_err(|e| TransformError::Load {
            transform: self.name.clone(),
            message: format!("checkpointed {e}"),
        })?;
        *self.state_mut() = restored;
        Ok(())
    }

    pub fn evict_expired(&mut self, watermark: i64) -> usize {
        self.state_mut().evict_expired(watermark)
    }
}
