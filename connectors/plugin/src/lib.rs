//! Connector plugins: a sink written against the same [`Sink`] trait as the
//! built-in connectors, compiled into a shared library (`cdylib`) that an
//! installed `tributary` loads from its plugin folder (`--plugin-path`) —
//! no rebuild of the host, as Kafka Connect's `plugin.path`.
//!
//! ```ignore
//! use tributary_plugin::{SinkPlugin, export_sink};
//! use tributary_plugin::connector::{ConnectorContext, Result, Sink, /* … */};
//!
//! struct MySink { /* … */ }
//! impl Sink for MySink { /* last_commit, write, commit */ }
//!
//! impl SinkPlugin for MySink {
//!     const NAME: &'static str = "my-sink";           // "type" in pipeline JSON
//!     const DESCRIPTION: &'static str = "what it does and its guarantee";
//!     fn open(config: &serde_json::Value, ctx: &ConnectorContext) -> Result<Self> { /* … */ }
//! }
//!
//! export_sink!(MySink);
//! ```
//!
//! The crate is `crate-type = ["cdylib"]`; the `.so` goes into the plugin
//! folder. [`abi`] is the contract between the library and the host; a host
//! refuses a library built for another [`abi::ABI_VERSION`]. A panic inside
//! a call becomes an error the host reports (the pipeline stops, nothing
//! past the last commit is lost); it never unwinds into the host.
//! `examples/plugins/csv-sink` is a complete plugin. [`host`] (feature
//! `host`) is the other side: the loader `tributary` uses.

pub mod abi;
#[doc(hidden)]
#[allow(unsafe_code)]
pub mod ffi;
#[cfg(feature = "host")]
pub mod host;

/// The connector contract, re-exported: what a plugin implements.
pub use tributary_connector as connector;
use tributary_connector::{ConnectorContext, Result, Sink};

/// A [`Sink`] that can be exported as a plugin.
pub trait SinkPlugin: Sink + Sized + 'static {
    /// The `type` a pipeline names it by; must not be a built-in's.
    const NAME: &'static str;
    /// One line for listings: what it writes and what it guarantees.
    const DESCRIPTION: &'static str;

    /// A JSON Schema of its config, for listings and validation tools.
    fn config_schema() -> serde_json::Value {
        serde_json::json!({"type": "object"})
    }

    /// Builds the sink from the `sink` object of the pipeline (without `type`).
    fn open(config: &serde_json::Value, ctx: &ConnectorContext) -> Result<Self>;
}

/// Exports `$sink` (a [`SinkPlugin`]) as this library's plugin: the two C
/// symbols of [`abi`]. Use it once per library.
#[macro_export]
macro_rules! export_sink {
    ($sink:ty) => {
        /// The plugin ABI version this library speaks.
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub extern "C" fn tributary_plugin_abi_version() -> u32 {
            $crate::abi::ABI_VERSION
        }

        /// The plugin's function table.
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub extern "C" fn tributary_plugin_v1() -> *const $crate::abi::PluginV1 {
            static TABLE: $crate::abi::PluginV1 = $crate::ffi::sink_table::<$sink>();
            &TABLE
        }
    };
}
