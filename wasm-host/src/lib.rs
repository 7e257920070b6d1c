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
//! - [`sandbox`]: the limits, in one module: what a guest may touch, how much
//!   memory and time it gets.
//! - [`builtin`]: the transforms compiled into the binary (`builtin:dedup`).
//!
//! Two versions of the contract are hosted: `tributary:transform@0.2.0`,
//! whose batches cross as columns and whose filters answer with row numbers
//! (`columnar`: Arrow columns in, a selection or patched columns out; the
//! selections of consecutive filters compose, and a batch is gathered once,
//! before the sink), and `@0.1.0`, rows of values (`convert`), for
//! components built before it.
//!
//! ```no_run
//! use tributary_wasm_host::{Limits, TransformChain, TransformEngine, TransformSpec, builtin};
//! let engine = TransformEngine::new(None).unwrap();
//! let spec = TransformSpec {
//!     name: "dedup".into(),
//!     bytes: builtin::builtin("dedup").unwrap().to_vec(),
//!     config: serde_json::json!({"key": "id", "event_time": "ts", "within": "1 hour"}),
//!     limits: Limits::from_config(256, 5_000),
//! };
//! let chain = TransformChain::new(&engine, vec![spec]).unwrap();
//! # drop(chain);
//! ```

pub mod builtin;
pub mod cache;
mod chain;
mod columnar;
mod convert;
mod engine;
mod error;
mod host;
mod instance;
pub mod sandbox;
pub mod state;

/// `tributary:transform@0.2.0` (columnar), the version guests are built
/// against today.
mod bindings {
    wasmtime::component::bindgen!({ path: "../wit", world: "transform" });
}

/// `tributary:transform@0.1.0` (rows of values): components built before
/// 0.2.0 keep running through these bindings, with the same host behind them.
mod bindings_v1 {
    wasmtime::component::bindgen!({ path: "../wit/v0.1", world: "transform" });
}

/// The Arrow ⇄ WIT value conversion and the WIT types it uses, for the fuzz
/// targets in `fuzz/` only: not an API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::bindings_v1::tributary::transform::types::{
        Batch, Emit, Field, FieldType, Value,
    };
    pub use crate::convert::{Assembled, assemble, to_wit, value_at};
}

pub use chain::{ChainOutput, ChainState, LateRow, RejectedRow, TransformChain};
pub use convert::rows_as_json;
pub use engine::{
    ComponentInfo, TransformEngine, TransformSpec, WIT_PACKAGE, WIT_VERSION, WIT_VERSIONS,
    default_cache_dir,
};
pub use error::TransformError;
pub use host::Host;
pub use instance::TransformInstance;
pub use sandbox::Limits;

/// Microseconds since the Unix epoch (a watermark, an event time) as an
/// RFC 3339 UTC time.
pub fn format_micros(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| format!("{micros}µs"))
}
