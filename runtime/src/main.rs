//! The `tributary` command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use clap::{Parser, Subcommand};
use tributary::config;
use tributary::pipeline::{Pipeline, RunOptions};
use tributary::wasm::TransformEngine;

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
    Run {
        /// Process what is available at start, commit, and exit 0.
        #[arg(long)]
        available_now: bool,
        /// Seconds between progress lines (0: none).
        #[arg(long, default_value_t = 5.0)]
        progress_interval: f64,
        /// Serve Prometheus metrics at http://ADDR/metrics (and /health),
        /// e.g. 127.0.0.1:9464.
        #[arg(long, value_name = "ADDR")]
        metrics_listen: Option<std::net::SocketAddr>,
        /// The pipeline file.
        pipeline: PathBuf,
    },
    /// Check a pipeline file: its shape, its meaning, its connectors' configs,
    /// and that every transform module loads and accepts its config.
    Validate {
        /// The pipeline file.
        pipeline: PathBuf,
    },
    /// Run a long-lived worker hosting many pipelines, managed over a REST API
    /// with Kafka Connect's paths and envelopes (docs/rest-api.md).
    Serve {
        /// Address to listen on. Anything but loopback needs --auth-token-file.
        #[arg(long, default_value = "127.0.0.1:8083")]
        listen: std::net::SocketAddr,
        /// The worker's state folder: deployed connectors (kept across
        /// restarts); relative paths in configs resolve against it.
        #[arg(long, default_value = "tributary-worker")]
        data: PathBuf,
        /// A file whose first line is the bearer token every request but
        /// /health must carry (`Authorization: Bearer <token>`).
        #[arg(long, value_name = "FILE")]
        auth_token_file: Option<PathBuf>,
        /// A folder (besides --data) that connector configs may name for
        /// checkpoints, tables, sink and source files, dead letters and
        /// transform modules; repeat for several. Paths anywhere else are
        /// refused.
        #[arg(long, value_name = "DIR")]
        allow_path: Vec<PathBuf>,
    },
    /// List the connectors: built in, and loaded from the plugin folder
    /// (with the reason for any library there that was not loaded).
    Plugins,
    /// Start a transform, build a C one, look at a module, or run one on
    /// sample records.
    #[command(subcommand)]
    Transform(TransformCommand),
    /// Run a small Confluent-compatible Schema Registry (Avro; schemas kept in
    /// a folder), for local use and tests: the REST subset Confluent's
    /// serializers and `schema_registry_converter` use, with compatibility checks.
    SchemaRegistry {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: std::net::SocketAddr,
        /// Folder the schemas are kept in (created when missing).
        #[arg(long, default_value = "schema-registry")]
        data: PathBuf,
    },
}

#[derive(Subcommand)]
enum TransformCommand {
    /// Write a buildable transform to start from, in ./<name>.
    New {
        name: String,
        /// `rust`, `python`, `js` or `c`.
        #[arg(long)]
        lang: String,
    },
    /// Write the bindings of this tributary's WIT world for a language
    /// without its own component tooling (`c`: transform.h, transform.c and
    /// transform_component_type.o, to compile and link with the transform).
    Bindings {
        /// `c`.
        lang: String,
        /// The folder to write them to (created when missing).
        #[arg(default_value = "gen")]
        dir: PathBuf,
    },
    /// Wrap a core WebAssembly module built by clang (`--target=wasm32-wasi
    /// -mexec-model=reactor`, linked with the bindings) into a transform
    /// component, adapting its WASI imports; then check it as `inspect` does.
    Component {
        /// The core module.
        core: PathBuf,
        /// The component to write.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Print the world a module implements and its WIT version; refuse one
    /// this tributary cannot run, saying which version it needs.
    Inspect {
        /// A `.wasm` component, or `builtin:<name>`.
        module: String,
    },
    /// Run a module on JSON-lines records and print what comes out (stdout),
    /// and what it dropped, rejected, kept in state and cost (stderr).
    Test {
        /// A `.wasm` component, or `builtin:<name>`.
        module: String,
        /// JSON lines, one record each; columns are inferred from them (RFC
        /// 3339 text is a timestamp).
        #[arg(long)]
        input: PathBuf,
        /// A config entry for the transform (repeatable); VALUE is JSON when it
        /// parses as JSON, else text.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        config: Vec<String>,
        /// Records per call.
        #[arg(long, default_value_t = 1000)]
        batch_size: usize,
    },
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    // Only the commands that build connectors open the plugin libraries.
    if matches!(
        cli.command,
        Command::Run { .. } | Command::Validate { .. } | Command::Serve { .. } | Command::Plugins
    ) {
        tributary::plugins::install(
            cli.plugin_path
                .clone()
                .or_else(tributary::plugins::default_dir),
        );
    }
    match cli.command {
        Command::Plugins => list_plugins(tributary::plugins::installed()),
        Command::Validate { pipeline } => validate(&pipeline),
        Command::SchemaRegistry { listen, data } => schema_registry(listen, data),
        Command::Transform(cmd) => transform(cmd),
        Command::Serve {
            listen,
            data,
            auth_token_file,
            allow_path,
        } => serve(listen, data, auth_token_file, allow_path),
        Command::Run {
            available_now,
            progress_interval,
            metrics_listen,
            pipeline,
        } => {
            let every =
                (progress_interval > 0.0).then(|| Duration::from_secs_f64(progress_interval));
            run(
                &pipeline,
                RunOptions {
                    available_now,
                    progress_every: every,
                    offsets_override: None,
                },
                metrics_listen,
            )
        }
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

fn validate(path: &std::path::Path) -> ExitCode {
    let loaded = match config::load(path) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("invalid: {e}");
            return ExitCode::from(2);
        }
    };
    let engine = match TransformEngine::new(None) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match tributary::pipeline::build_parts(&loaded, &engine) {
        Ok((_, sink, _)) => {
            let c = &loaded.config;
            println!(
                "ok: pipeline `{}`: {} → {} transform(s) → {} ({}); checkpoints in {}",
                c.name,
                c.source.kind,
                c.transforms.len(),
                c.sink.kind,
                sink.delivery(),
                c.checkpoint.location
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("invalid: {}: {e}", path.display());
            ExitCode::from(2)
        }
    }
}

fn serve(
    listen: std::net::SocketAddr,
    data: PathBuf,
    auth_token_file: Option<PathBuf>,
    allow_path: Vec<PathBuf>,
) -> ExitCode {
    let token = match auth_token_file.as_deref().map(tributary::serve::read_token) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if token.is_none() && !listen.ip().is_loopback() {
        eprintln!(
            "error: --listen {listen} is not a loopback address; anyone who can reach it could manage \
             pipelines: give --auth-token-file FILE (a bearer token), or listen on 127.0.0.1"
        );
        return ExitCode::from(2);
    }
    let rt = match server_runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: --listen {listen}: {e}");
                return ExitCode::from(2);
            }
        };
        let bound = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let worker = {
            let data = data.clone();
            let id = bound.clone();
            match tokio::task::spawn_blocking(move || {
                tributary::serve::Worker::open(data, &allow_path, id)
            })
            .await
            {
                Ok(Ok(w)) => w,
                Ok(Err(e)) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            }
        };
        eprintln!(
            "worker listening on http://{bound} (state in {}){}",
            data.display(),
            if token.is_some() {
                ", bearer token required"
            } else {
                ""
            }
        );
        let app = tributary::serve::router(worker.clone(), token);
        let shutdown = async {
            use tokio::signal::unix::{SignalKind, signal};
            let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            eprintln!("stopping: every pipeline commits what it has");
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
        let _ = tokio::task::spawn_blocking(move || worker.shutdown()).await;
        ExitCode::SUCCESS
    })
}

fn transform(cmd: TransformCommand) -> ExitCode {
    let engine = match TransformEngine::new(None) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let wrote = |files: Vec<PathBuf>| -> String {
        files
            .iter()
            .map(|f| format!("wrote {}\n", f.display()))
            .collect()
    };
    let answer = match cmd {
        TransformCommand::New { name, lang } => {
            tributary::transform_cli::scaffold(&name, &lang, std::path::Path::new(".")).map(
                |files| wrote(files) + &format!("next: see {name}/README.md to build and try it\n"),
            )
        }
        TransformCommand::Bindings { lang, dir } => {
            tributary::guest_build::write_bindings(&lang, &dir).map(wrote)
        }
        TransformCommand::Component { core, output } => {
            tributary::transform_cli::component(&engine, &core, &output)
        }
        TransformCommand::Inspect { module } => tributary::transform_cli::inspect(&engine, &module),
        TransformCommand::Test {
            module,
            input,
            config,
            batch_size,
        } => {
            let mut map = serde_json::Map::new();
            for entry in config {
                let Some((k, v)) = entry.split_once('=') else {
                    eprintln!("error: --config {entry}: write KEY=VALUE");
                    return ExitCode::from(2);
                };
                let value = serde_json::from_str(v)
                    .unwrap_or_else(|_| serde_json::Value::String(v.to_string()));
                map.insert(k.to_string(), value);
            }
            // A failed run is exit 1, not 2: the module and input were usable.
            return match tributary::transform_cli::test(&engine, &module, &input, map, batch_size) {
                Ok(report) => {
                    for row in report.output {
                        println!("{row}");
                    }
                    eprint!("{}", report.summary);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            };
        }
    };
    match answer {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn list_plugins(set: &tributary::plugins::PluginSet) -> ExitCode {
    for (name, kind) in tributary::registry::CONNECTORS {
        println!("{name:<16} {:<7} built in", kind.role());
    }
    for p in &set.plugins {
        println!(
            "{:<16} {:<7} plugin {} — {}",
            p.name,
            p.kind,
            p.path.display(),
            p.description
        );
    }
    match &set.dir {
        Some(dir) => eprintln!(
            "plugin folder: {} ({} loaded, {} refused)",
            dir.display(),
            set.plugins.len(),
            set.refused.len()
        ),
        None => eprintln!("no plugin folder"),
    }
    for (path, reason) in &set.refused {
        eprintln!("refused {}: {reason}", path.display());
    }
    if set.refused.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

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

fn schema_registry(listen: std::net::SocketAddr, data: PathBuf) -> ExitCode {
    let rt = match server_runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async move {
        let server =
            match tributary_schema_registry::RegistryServer::bind(listen, data.clone()).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
        eprintln!(
            "schema registry listening on http://{} (schemas in {})",
            server.local_addr(),
            data.display()
        );
        tokio::select! {
            served = server.serve() => match served {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            },
            _ = tokio::signal::ctrl_c() => ExitCode::SUCCESS,
        }
    })
}

fn run(
    path: &std::path::Path,
    options: RunOptions,
    metrics_listen: Option<std::net::SocketAddr>,
) -> ExitCode {
    let loaded = match config::load(path) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    install_signal_handlers(stop.clone());
    let engine = match TransformEngine::new(None) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let pipeline = match Pipeline::build(loaded, &engine) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    if let Some(addr) = metrics_listen {
        match tributary::metrics_http::spawn(
            addr,
            pipeline.name().to_string(),
            pipeline.metrics.clone(),
        ) {
            Ok(bound) => eprintln!("metrics on http://{bound}/metrics"),
            Err(e) => {
                eprintln!("error: --metrics-listen {addr}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    match pipeline.run(options, stop) {
        Ok(summary) => {
            let latency = summary
                .commit_latency
                .map(|(p50, p99)| {
                    format!(
                        "; commit latency p50 {:.1} ms, p99 {:.1} ms",
                        p50.as_secs_f64() * 1e3,
                        p99.as_secs_f64() * 1e3
                    )
                })
                .unwrap_or_default();
            let delivery = summary
                .delivery
                .map(|d| format!("; delivery {d}"))
                .unwrap_or_default();
            eprintln!(
                "done: {} epoch(s) committed this run, last epoch {}; {} records in, {} out{latency}{delivery}",
                summary.epochs_committed,
                summary.last_epoch,
                summary.records_in,
                summary.records_out
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// First SIGINT/SIGTERM: stop gracefully with a final commit. Second: exit now
/// (nothing is lost: the uncommitted epoch is read again on the next run).
fn install_signal_handlers(stop: Arc<AtomicBool>) {
    std::thread::Builder::new()
        .name("tributary-signals".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("signal runtime");
            rt.block_on(async move {
                use tokio::signal::unix::{SignalKind, signal};
                let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
                let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
                loop {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                    if stop.swap(true, Relaxed) {
                        eprintln!("second signal: exiting now; the uncommitted epoch will be read again on the next run");
                        std::process::exit(130);
                    }
                    eprintln!("stopping: finishing the current batch and committing (signal again to exit at once)");
                }
            });
        })
        .expect("spawn the signal thread");
}
