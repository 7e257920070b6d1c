//! The WIT contract this toolchain builds against: the `wit/` folder of the
//! workspace, compiled in.

/// The WIT package, copied into every scaffolded transform.
pub const WIT: &str = include_str!("../../wit/transform.wit");
