//! `tributary serve`: the REST worker (`tributary-worker`) on a socket,
//! until SIGINT/SIGTERM, then every pipeline commits what it has.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use tributary_runtime::registry::Registry;

#[derive(clap::Args)]
pub struct ServeCommand {
    /// Address to listen on. Anything but loopback needs --auth-token-file.
    #[arg(long, default_value = "127.0.0.1:8083")]
    listen: std::net::SocketAddr,
    /// The worker's state folder: deployed connectors (kept across
    /// restarts); relative paths in configs resolve against it.
    #[arg(long, default_value = "tributary-worker")]
    data: PathBuf,
    /// A file whose first line is the bearer token every request but
    /// /health and the console's page assets must carry (`Authorization:
    /// Bearer <token>`; the console at /ui/ asks for it).
    #[arg(long, value_name = "FILE")]
    auth_token_file: Option<PathBuf>,
    /// A folder (besides --data) that connector configs may name for
    /// checkpoints, tables, sink and source files, dead letters and
    /// transform modules; repeat for several. Paths anywhere else are
    /// refused.
    #[arg(long, value_name = "DIR")]
    allow_path: Vec<PathBuf>,
    /// Serve HTTPS with this certificate chain (PEM: the server's
    /// certificate, then intermediates); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM, unencrypted).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

impl ServeCommand {
    pub fn execute(self, registry: Registry) -> ExitCode {
        let Self {
            listen,
            data,
            auth_token_file,
            allow_path,
            tls_cert,
            tls_key,
        } = self;
        // Read before anything starts: a wrong path fails at once.
        let tls = match (&tls_cert, &tls_key) {
            (Some(cert), Some(key)) => match tributary_worker::tls::acceptor(cert, key) {
                Ok(a) => Some(a),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            },
            _ => None,
        };
        let token = match auth_token_file.as_deref().map(tributary_worker::read_token) {
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
        let rt = match super::server_runtime() {
            Ok(rt) => rt,
            Err(code) => return code,
        };
        let registry = Arc::new(registry);
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
                    tributary_worker::Worker::open(data, &allow_path, id, registry)
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
                "worker listening on {}://{bound} (state in {}){}; console at /ui/",
                if tls.is_some() { "https" } else { "http" },
                data.display(),
                if token.is_some() {
                    ", bearer token required"
                } else {
                    ""
                }
            );
            let app = tributary_worker::router(worker.clone(), token);
            let shutdown = async {
                use tokio::signal::unix::{SignalKind, signal};
                let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
                eprintln!("stopping: every pipeline commits what it has");
            };
            let served = match tls {
                Some(acceptor) => {
                    let listener = tributary_worker::tls::TlsListener::new(listener, acceptor);
                    axum::serve(listener, app)
                        .with_graceful_shutdown(shutdown)
                        .await
                }
                None => {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(shutdown)
                        .await
                }
            };
            if let Err(e) = served {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
            let _ = tokio::task::spawn_blocking(move || worker.shutdown()).await;
            ExitCode::SUCCESS
        })
    }
}
