//! A small Confluent-compatible Schema Registry (Avro only), kept in a folder.
//!
//! Tributary reads Kafka topics whose records are Avro in Confluent's wire
//! format (magic byte, 4-byte schema id, body), so tests and local runs need a
//! Schema Registry. None installs from the package registries on a plain
//! machine, so the project carries this one: the REST subset that real clients
//! use (confluent-kafka's `SchemaRegistryClient`/`AvroSerializer`,
//! `schema_registry_converter`), Confluent's error codes, the seven
//! compatibility levels checked with apache-avro's schema resolution rules, and
//! state that survives a restart. The crate's tests drive it with both of
//! those third-party clients.
//!
//! | path | what |
//! |---|---|
//! | `POST /subjects/{s}/versions` | register; same schema again → same id |
//! | `POST /subjects/{s}` | look up a schema in a subject |
//! | `GET /subjects`, `GET /subjects/{s}/versions[/{v}\|latest[/schema]]` | read |
//! | `DELETE /subjects/{s}[?permanent=true]`, `DELETE /subjects/{s}/versions/{v}` | soft / hard delete |
//! | `GET /schemas/ids/{id}[/versions]` | by global id |
//! | `GET\|PUT /config[/{s}]`, `DELETE /config/{s}` | compatibility level |
//! | `POST /compatibility/subjects/{s}/versions[/{v}]` | `{"is_compatible": bool}` |
//!
//! It is a library (a `tributary schema-registry` subcommand is to wrap it); tests
//! start it in-process:
//!
//! ```no_run
//! # fn main() -> Result<(), tributary_schema_registry::Error> {
//! let registry = tributary_schema_registry::RunningRegistry::start(
//!     "127.0.0.1:0".parse().unwrap(),
//!     "/tmp/registry-data",
//! )?;
//! println!("SCHEMA_REGISTRY_URL={}", registry.url());
//! // ... produce and consume ...
//! drop(registry); // stops the server and waits for it
//! # Ok(()) }
//! ```
//!
//! Not supported (answered with a clear error): schema types other than AVRO,
//! schema references, contexts, modes other than READWRITE, authentication.

#![forbid(unsafe_code)]

mod compat;
mod http;
mod store;

use std::fs::File;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use compat::CompatibilityLevel;
pub use store::ApiError;

/// The content type of every response (Confluent's v1 media type).
pub const CONTENT_TYPE: &str = http::CONTENT_TYPE;

/// What can go wrong starting or running the registry. Request-level problems
/// (unknown subject, incompatible schema) are not errors of the server: they
/// are answered to the client in Confluent's `{"error_code", "message"}` shape.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "schema registry cannot listen on {addr}: {source}; pick a free port (port 0 picks one)"
    )]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("schema registry cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "schema registry state file {} is not valid: {message}; restore it from a backup, or move it away to start empty",
        path.display()
    )]
    Corrupt { path: PathBuf, message: String },
    #[error(
        "schema registry data folder {} is in use by another registry (it holds {}); stop that one or use another folder",
        dir.display(), dir.join(LOCK_FILE).display()
    )]
    InUse { dir: PathBuf },
    #[error("schema registry server stopped with an error: {0}")]
    Serve(#[source] std::io::Error),
}

const LOCK_FILE: &str = "registry.lock";

/// A registry bound to its socket and its data folder, not yet serving.
pub struct RegistryServer {
    listener: tokio::net::TcpListener,
    local_addr: SocketAddr,
    router: axum::Router,
    /// Held for the server's life: two registries writing the same folder
    /// would silently overwrite each other's registrations.
    _lock: File,
}

impl RegistryServer {
    /// Opens (or creates) the state in `data_dir`, locks the folder, and binds
    /// `addr`. Port 0 picks a free port; see [`RegistryServer::local_addr`].
    pub async fn bind(addr: SocketAddr, data_dir: impl Into<PathBuf>) -> Result<Self, Error> {
        let data_dir = data_dir.into();
        let lock = lock_folder(&data_dir)?;
        let registry = store::Registry::open(&data_dir)?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| Error::Bind { addr, source })?;
        tracing::info!(%local_addr, data_dir = %data_dir.display(), "schema registry listening");
        Ok(Self {
            listener,
            local_addr,
            router: http::router(registry),
            _lock: lock,
        })
    }

    /// The address actually bound (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until the returned future is dropped (or the socket fails).
    pub async fn serve(self) -> Result<(), Error> {
        self.serve_until(std::future::pending()).await
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight.
    pub async fn serve_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let Self {
            listener,
            router,
            _lock,
            ..
        } = self;
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(Error::Serve)
    }
}

/// Takes the folder's lock file; [`Error::InUse`] when another registry holds it.
/// The OS drops the lock when the process dies, so a crash leaves nothing stale.
fn lock_folder(dir: &Path) -> Result<File, Error> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        action: "create the data folder",
        path: dir.to_path_buf(),
        source,
    })?;
    let path = dir.join(LOCK_FILE);
    let file = File::create(&path).map_err(|source| Error::Io {
        action: "create the lock file",
        path: path.clone(),
        source,
    })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::InUse {
            dir: dir.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(Error::Io {
            action: "lock",
            path,
            source,
        }),
    }
}

/// A registry serving on its own thread and Tokio runtime, for tests and for
/// callers that are not async. Dropping it stops the server and waits for it.
pub struct RunningRegistry {
    local_addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), Error>>>,
}

impl RunningRegistry {
    /// Binds like [`RegistryServer::bind`] and serves in the background.
    /// Returns once the socket is bound, so the URL is usable at once.
    pub fn start(addr: SocketAddr, data_dir: impl Into<PathBuf>) -> Result<Self, Error> {
        let data_dir = data_dir.into();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("schema-registry".into())
            .spawn(move || {
                // Two workers: requests are tiny, and changes block on fsync.
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .map_err(Error::Serve)?;
                runtime.block_on(async move {
                    let server = match RegistryServer::bind(addr, data_dir).await {
                        Ok(server) => server,
                        Err(e) => {
                            let message = e.to_string();
                            let _ = ready_tx.send(Err(e));
                            return Err(Error::Serve(std::io::Error::other(message)));
                        }
                    };
                    let _ = ready_tx.send(Ok(server.local_addr()));
                    server
                        .serve_until(async move {
                            // A dropped sender means the handle is gone: stop too.
                            let _ = stop_rx.await;
                        })
                        .await
                })
            })
            .map_err(Error::Serve)?;
        match ready_rx.recv() {
            Ok(Ok(local_addr)) => Ok(Self {
                local_addr,
                stop: Some(stop_tx),
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            // The thread died before binding (the runtime failed to build).
            Err(_) => Err(match thread.join() {
                Ok(Err(e)) => e,
                _ => Error::Serve(std::io::Error::other(
                    "schema registry thread ended before binding",
                )),
            }),
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://127.0.0.1:PORT`, what clients take as `SCHEMA_REGISTRY_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// Stops the server, waits for it, and reports how it ended.
    pub fn stop(mut self) -> Result<(), Error> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(Error::Serve(std::io::Error::other(
                "schema registry thread panicked",
            ))),
            None => Ok(()),
        }
    }
}

impl Drop for RunningRegistry {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::warn!("{e}");
        }
    }
}
