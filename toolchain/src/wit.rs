//! The WIT contracts this toolchain builds against: the `wit/` folder of the
//! workspace, compiled in.

/// `tributary:transform@0.2.0` (columnar), which the Rust SDK speaks: copied
/// into a scaffolded Rust transform's SDK.
pub const WIT: &str = include_str!("../../wit/transform.wit");

/// `tributary:transform@0.1.0` (rows of values), which hosts still run. The
/// Python, JavaScript and C scaffolds and C bindings are still written
/// against it: their templates have not moved to columns yet.
pub const WIT_V1: &str = include_str!("../../wit/v0.1/transform.wit");
