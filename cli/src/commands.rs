//! One module per subcommand: a clap struct and its `execute`.

mod plugins;
mod run;
mod schema_registry;
mod serve;
mod transform;
mod validate;

pub use plugins::PluginsCommand;
pub use run::RunCommand;
pub use schema_registry::SchemaRegistryCommand;
pub use serve::ServeCommand;
pub use transform::TransformCommand;
pub use validate::ValidateCommand;

use std::process::ExitCode;

/// The async runtime of the servers (`serve`, `schema-registry`).
fn server_runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the runtime: {e}");
            ExitCode::FAILURE
        })
}
