//! End-to-end tests: the release `tributary` binary against real components —
//! an Iceberg table in a SQLite catalog read back by PyIceberg and DuckDB, WASM
//! guests built from source, checkpoints on disk — and the failures users meet:
//! `kill -9`, bad input, misbehaving transforms, damaged checkpoints.
//!
//! One test binary (linking once), one module per concern.

mod bad_input;
mod cli;
mod console;
mod exactly_once;
mod faults;
mod golden;
mod harness;
mod host_sandbox;
mod iceberg_sink;
mod kafka;
mod kafka_env;
mod kafka_real;
mod kafka_secure;
mod manifests;
mod metrics;
mod open_world;
mod openapi_fuzz;
mod owners;
mod plugins;
mod polyglot;
mod registry;
mod registry_env;
mod restart_policy;
mod restarts;
mod sandbox;
mod serve;
mod serve_tls;
mod sinks;
mod spark;
mod test_ca;
mod transform_cli;
