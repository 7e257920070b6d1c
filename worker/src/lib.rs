//! `tributary serve`: a long-running worker hosting many pipelines, managed
//! over a REST API with Kafka Connect's paths and envelopes (the `config` of a
//! connector is a Tributary pipeline).
//!
//! **Isolation.** Each pipeline runs on its own threads (source, pipeline
//! loop, sink); a pipeline that fails (or panics) is marked `FAILED` with its
//! error as the task's `trace`, and the others go on.
//!
//! **Durable state.** Every deployed connector is a file in the worker's
//! state folder (`--data`, `connectors/<name>.json`: the config as given,
//! with its `${…}` references unresolved, and the target state), written
//! atomically. A worker that restarts — even after SIGKILL — starts every
//! `RUNNING` connector again, each resuming from its last commit exactly
//! once; paused and stopped ones stay so.
//!
//! **Secrets.** Configs are kept and shown as they were given: a secret
//! written as `${env:VAR}` or `${file:/path:key}` is resolved only when the
//! pipeline starts, and never appears in a response or a log.
//!
//! **States.** A connector is `RUNNING`, `PAUSED` (stopped with a final
//! commit; `resume` goes on from it), `STOPPED` (the same, and its offsets
//! may then be altered or reset), `FAILED` (the trace says why;
//! `restart` tries again) or `FINISHED` (a bounded source such as the
//! generator reached its end: a Tributary addition to Connect's states).

//!
//! The crate in three parts, each a module:
//!
//! - [`worker`]: the life cycle — deployed connectors on disk, their runs on
//!   threads, pause/resume/stop/restart, offsets, shutdown; with
//!   [`allowed_paths`], the folders its configs may name (`--data` and
//!   `--allow-path`);
//! - [`connect`]: translation between Kafka Connect's shapes and ours
//!   (offsets as `[{"partition", "offset"}]`);
//! - [`http`]: the axum handlers, routes and bearer-token check, and
//!   [`error`], the one place an error becomes an HTTP status.
//!
//! [`console`] is the web console under `/ui/` (docs/console.md), charting
//! the [`history`] the worker keeps of each connector's metrics.
//! [`metrics_http`] is the small endpoint of `tributary run --metrics-listen`
//! (metrics, health, and the console of its one pipeline).

#![forbid(unsafe_code)]

pub mod allowed_paths;
pub mod connect;
pub mod console;
pub mod error;
pub mod history;
pub mod http;
pub mod metrics_http;
pub mod tls;
pub mod worker;

pub use error::ApiError;
pub use http::{ROUTES, read_token, router};
pub use worker::{ServeOptions, Worker};
