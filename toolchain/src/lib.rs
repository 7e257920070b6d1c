//! The transform toolchain behind `tributary transform`: everything a
//! transform author runs besides their own compiler.
//!
//! - [`new`]: `transform new NAME --lang rust|python|js|c`, a buildable
//!   transform from the templates in `templates/<lang>/`;
//! - [`bindings`]: `transform bindings c` (the C bindings of the WIT world)
//!   and the component wrapping behind `transform component`;
//! - [`inspect`]: `transform inspect` (what a module implements, whether
//!   this tributary runs it) and `transform component`;
//! - [`test`]: `transform test`, a module run on JSON-lines records.
//!
//! ```no_run
//! let engine = tributary_wasm_host::TransformEngine::new(None).unwrap();
//! print!("{}", tributary_toolchain::inspect::inspect(&engine, "builtin:dedup").unwrap());
//! ```

#![forbid(unsafe_code)]

pub mod bindings;
pub mod inspect;
pub mod new;
pub mod test;
pub mod wit;

/// Why a `tributary transform` command could not do what was asked: a file
/// it could not read or write, a module that is not a transform this host
/// runs, a request it cannot serve (an unknown language). Messages name the
/// thing and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ToolchainError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Transform(#[from] tributary_wasm_host::TransformError),
}

impl From<String> for ToolchainError {
    fn from(message: String) -> Self {
        Self::Refused(message)
    }
}

impl From<&str> for ToolchainError {
    fn from(message: &str) -> Self {
        Self::Refused(message.to_string())
    }
}
