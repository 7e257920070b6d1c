//! The `tributary` command: a thin layer over the library crates, one file
//! per subcommand in [`commands`] (each a clap struct with an `execute`, as
//! wasmtime's `src/commands/` are). `main` parses the command line, sets up
//! logging, and for the commands that build connectors builds the one
//! [`Registry`](tributary_runtime::registry::Registry) — the built-in
//! connectors ([`connectors`]) and the plugins of the plugin folder — that is
//! passed down to them.

#![forbid(unsafe_code)]

mod commands;
mod connectors;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use commands::{
    PluginsCommand, RunCommand, SchemaRegistryCommand, ServeCommand, TransformCommand,
    ValidateCommand,
};

#[derive(Parser)]
#[command(
    name = "tributary",
    version,
    about = "Kafka-Connect-style pipelines with WASM transforms and exactly-once Iceberg sinks"
)]
struct Cli {
    /// The folder connector plugins (shared libraries) are loaded from;
    /// default: `plugins/` beside this binary.
    #[arg(long, global = true, value_name = "DIR", env = "TRIBUTARY_PLUGIN_PATH")]
    plugin_path: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one pipeline in the foreground until its source is exhausted or
    /// SIGINT/SIGTERM (then it commits what it has and stops).
    Run(RunCommand),
    /// Check a pipeline file: its shape, its meaning, its connectors' configs,
    /// and that every transform module loads and accepts its config.
    Validate(ValidateCommand),
    /// Run a long-lived worker hosting many pipelines, managed over a REST API
    /// with Kafka Connect's paths and envelopes (docs/rest-api.md).
    Serve(ServeCommand),
    /// List the connectors: built in, and loaded from the plugin folder
    /// (with the reason for any library there that was not loaded).
    Plugins(PluginsCommand),
    /// Start a transform, build a C one, look at a module, or run one on
    /// sample records.
    #[command(subcommand)]
    Transform(TransformCommand),
    /// Run a small Confluent-compatible Schema Registry (Avro; schemas kept in
    /// a folder), for local use and tests: the REST subset Confluent's
    /// serializers and `schema_registry_converter` use, with compatibility checks.
    SchemaRegistry(SchemaRegistryCommand),
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    // Only the commands that build connectors open the plugin libraries.
    let registry = || connectors::registry(cli.plugin_path.clone());
    match cli.command {
        Command::Run(cmd) => cmd.execute(registry()),
        Command::Validate(cmd) => cmd.execute(registry()),
        Command::Serve(cmd) => cmd.execute(registry()),
        Command::Plugins(cmd) => cmd.execute(registry()),
        Command::Transform(cmd) => cmd.execute(),
        Command::SchemaRegistry(cmd) => cmd.execute(),
    }
}

fn init_logging() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("TRIBUTARY_LOG").unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(
                "info,iceberg=warn,sqlx=warn,wasmtime=warn,cranelift=warn",
            )
        });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only on a terminal: piped logs stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}
