//! [`TransformEngine`]: the process-wide wasmtime engine (epoch ticker,
//! compile cache, the linker with WASI and the host imports), and what it
//! says about a component before running it.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value as Json;
use wasmtime::Engine;
use wasmtime::component::{Component, HasSelf, Linker};

use crate::cache;
use crate::error::TransformError;
use crate::host::Host;
use crate::sandbox::{Limits, Ticker};
use crate::{bindings, bindings_v1};

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
    pub(crate) engine: Engine,
    cache: Option<Arc<cache::CompileCache>>,
    pub(crate) linker: Arc<Linker<Host>>,
    _ticker: Arc<Ticker>,
}

impl std::fmt::Debug for TransformEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TransformEngine")
    }
}

/// The WIT package this host implements, the version guests are built
/// against today, and every version it runs (newest first).
pub const WIT_PACKAGE: &str = "tributary:transform";
pub const WIT_VERSION: &str = "0.2.0";
pub const WIT_VERSIONS: &[&str] = &["0.2.0", "0.1.0"];

/// What a component implements, as `tributary transform inspect` shows it.
#[derive(Debug)]
pub struct ComponentInfo {
    pub imports: Vec<String>,
    pub exports: Vec<String>,
}

impl TransformEngine {
    /// Reads a component's imports and exports without running it. Errors
    /// say what the bytes are instead (a core module, not WebAssembly).
    pub fn describe(&self, bytes: &[u8]) -> Result<ComponentInfo, TransformError> {
        let (component, _) = self.compile(bytes).map_err(|e| {
            let text = format!("{e:#}");
            TransformError::Engine(if bytes.starts_with(b"\0asm") && bytes.get(4..8) == Some(&[1, 0, 0, 0]) {
                format!("a core WebAssembly module, not a component: build it as a component (e.g. for wasm32-wasip2, or with componentize-py): {text}")
            } else {
                format!("not a valid WebAssembly component: {text}")
            })
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
        // Both versions' imports: their interface names carry the version,
        // so they live side by side in one linker.
        bindings::Transform::add_to_linker::<_, HasSelf<_>>(&mut linker, |h| h)
            .map_err(|e| engine_err("host imports", e))?;
        bindings_v1::Transform::add_to_linker::<_, HasSelf<_>>(&mut linker, |h| h)
            .map_err(|e| engine_err("host imports (0.1.0)", e))?;

        let ticker = Ticker::start(&engine)
            .map_err(|e| TransformError::Engine(format!("cannot start the epoch ticker: {e}")))?;
        Ok(Self {
            engine,
            cache,
            linker: Arc::new(linker),
            _ticker: Arc::new(ticker),
        })
    }
}
