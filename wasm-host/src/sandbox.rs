//! The sandbox, in one place: what a guest may touch and how much it may
//! use. Everything else in this crate runs guests; this module says where the
//! walls are.
//!
//! - **Capabilities**: WASI with no preopened folders, no network, no
//!   environment and no arguments; stdout goes nowhere, stderr is kept (64 KiB)
//!   to explain a trap ([`wasi_ctx`]).
//! - **Memory**: a cap per instance ([`Limits::memory_bytes`], from a
//!   transform's `limits.memory_mb`: default [`DEFAULT_MEMORY_MB`], at most
//!   [`MAX_MEMORY_MB`]), enforced by a `ResourceLimiter` that also caps
//!   tables and instances.
//! - **Time**: a wall-clock limit per call ([`Limits::call_timeout`], from
//!   `limits.call_timeout_ms`: default [`DEFAULT_CALL_TIMEOUT_MS`]), enforced by
//!   wasmtime's epoch interruption: one ticker thread per engine advances the
//!   epoch every [`TICK`].
//!
//! ```
//! use tributary_wasm_host::sandbox::Limits;
//! let limits = Limits::from_config(256, 5_000);
//! assert_eq!(limits.memory_bytes, 256 * 1024 * 1024);
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::Engine;
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

/// The memory cap of a transform that names none, in MiB.
pub const DEFAULT_MEMORY_MB: u64 = 256;
/// The largest memory cap a transform may ask for, in MiB.
pub const MAX_MEMORY_MB: u64 = 4096;
/// The time limit of one call when a transform names none, in milliseconds.
pub const DEFAULT_CALL_TIMEOUT_MS: u64 = 5_000;

/// Epoch ticks per second: the time limit's resolution.
pub const TICK: Duration = Duration::from_millis(10);

/// Sandbox limits of one instance.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub memory_bytes: u64,
    pub call_timeout: Duration,
}

impl Limits {
    /// The limits a pipeline's `limits` block asks for.
    pub fn from_config(memory_mb: u64, call_timeout_ms: u64) -> Self {
        Self {
            memory_bytes: memory_mb * 1024 * 1024,
            call_timeout: Duration::from_millis(call_timeout_ms),
        }
    }

    /// The epoch deadline of one call, in ticks: the time limit rounded up,
    /// plus one (the tick in progress when the call starts).
    pub(crate) fn deadline_ticks(&self) -> u64 {
        (self.call_timeout.as_millis() as u64)
            .div_ceil(TICK.as_millis() as u64)
            .max(1)
            + 1
    }
}

/// The WASI context of one guest: nothing but a stderr kept in memory.
pub(crate) fn wasi_ctx(stderr: MemoryOutputPipe) -> WasiCtx {
    // No preopened folders, no network, no environment, no arguments;
    // stdout goes nowhere, stderr is kept to explain a trap.
    WasiCtx::builder().stderr(stderr).build()
}

/// Caps memory (and notes when it had to say no, to name the failure). The
/// cap is on the sum of every linear memory of the Store: a component may
/// hold several (one per core module), and a cap per memory would let it
/// take the cap times their number.
pub(crate) struct Limiter {
    memory_bytes: usize,
    /// Bytes of all memories of the Store so far (they only grow, and all go
    /// with the Store).
    memory_used: usize,
    /// Set when a memory grow was refused: names the failure of the call.
    pub(crate) denied: bool,
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

impl Limiter {
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            memory_bytes: limits.memory_bytes as usize,
            memory_used: 0,
            denied: false,
        }
    }
}

/// The thread advancing an engine's epoch every [`TICK`]; it stops when this
/// is dropped or the engine is gone.
pub(crate) struct Ticker {
    stop: Arc<AtomicBool>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Ticker {
    pub(crate) fn start(engine: &Engine) -> std::io::Result<Self> {
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
            })?;
        Ok(Self { stop })
    }
}
