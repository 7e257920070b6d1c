//! `tributary run PIPELINE`: one pipeline in the foreground, until its
//! source ends or a signal (a final commit, then exit).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use tributary_runtime::config;
use tributary_runtime::pipeline::{Pipeline, RunOptions};
use tributary_runtime::registry::Registry;
use tributary_wasm_host::TransformEngine;

#[derive(clap::Args)]
pub struct RunCommand {
    /// Process what is available at start, commit, and exit 0.
    #[arg(long)]
    available_now: bool,
    /// Seconds between progress lines (0: none).
    #[arg(long, default_value_t = 5.0)]
    progress_interval: f64,
    /// Serve Prometheus metrics at http://ADDR/metrics (and /health, and
    /// the web console at /ui/), e.g. 127.0.0.1:9464.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// The pipeline file.
    pipeline: PathBuf,
}

impl RunCommand {
    pub fn execute(self, registry: Registry) -> ExitCode {
        let every =
            (self.progress_interval > 0.0).then(|| Duration::from_secs_f64(self.progress_interval));
        let options = RunOptions {
            available_now: self.available_now,
            progress_every: every,
            offsets_override: None,
        };
        let path = &self.pipeline;
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
        // The console shows the file as written (secrets unresolved).
        let view = tributary_worker::metrics_http::RunConsole {
            config: std::fs::read(path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default(),
            dead_letter_dir: loaded.dead_letter_dir(),
        };
        let pipeline = match Pipeline::build(loaded, &engine, &registry) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                return ExitCode::from(2);
            }
        };
        if let Some(addr) = self.metrics_listen {
            match tributary_worker::metrics_http::spawn(
                addr,
                pipeline.name().to_string(),
                pipeline.metrics.clone(),
                view,
            ) {
                Ok(bound) => {
                    eprintln!("metrics on http://{bound}/metrics, console on http://{bound}/ui/")
                }
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
