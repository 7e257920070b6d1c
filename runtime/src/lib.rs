//! Tributary's engine: it builds a pipeline's connectors from one
//! [`registry::Registry`], runs its WASM transforms (through
//! `tributary-wasm-host`), and moves records in checkpointed epochs (stores in
//! `tributary-checkpoint`) so that what reaches the sink is exactly once
//! across crashes and restarts. No HTTP, no command line, no `unsafe`: the
//! worker, the CLI and the plugin loader sit on top of it.
//!
//! - [`config`]: the pipeline JSON (interpolation, shape and meaning checks).
//! - [`registry`]: the connectors by `type`: built-ins and plugins, one value.
//! - [`transforms`]: a pipeline's `transforms` list → a running chain.
//! - [`pipeline`]: the epoch loop and its recovery protocol.
//! - [`dead_letter`], [`metrics`]: what went wrong, and how it is going
//!   (the progress line and the Prometheus text).

#![forbid(unsafe_code)]

pub mod config;
pub mod dead_letter;
pub mod error;
pub mod metrics;
pub mod pipeline;
pub mod registry;
pub mod transforms;
