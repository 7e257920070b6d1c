//! Tributary's host: it loads a pipeline's connectors, runs its WASM transforms
//! in a sandbox, and moves records in checkpointed epochs so that what reaches
//! the sink is exactly once across crashes and restarts.
//!
//! - [`config`]: the pipeline JSON (interpolation, shape and meaning checks).
//! - [`registry`]: built-in connectors by `type`.
//! - [`wasm`]: the wasmtime host of the `tributary:transform` WIT world.
//! - [`checkpoint`]: where offsets, watermark and transform state are kept.
//! - [`pipeline`]: the epoch loop and its recovery protocol.
//! - [`serve`]: the REST worker (`tributary serve`), Kafka Connect's API.
//! - [`dead_letter`], [`metrics`], [`metrics_http`]: what went wrong, and how
//!   it is going (progress line and Prometheus endpoint).

pub mod allowed_paths;
pub mod builtin;
pub mod checkpoint;
pub mod config;
pub mod dead_letter;
pub mod guest_build;
pub mod metrics;
pub mod metrics_http;
pub mod pipeline;
pub mod plugins;
pub mod registry;
pub mod serve;
pub mod transform_cli;
pub mod transforms;
pub mod wasm;
