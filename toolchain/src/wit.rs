//! The WIT contract this toolchain builds against: the `wit/` folder of the
//! workspace, compiled in.

/// `tributary:transform@0.2.0` (columnar), which every scaffold and the C
/// bindings are written against: copied into a scaffolded transform (a Rust
/// scaffold's SDK, a Python or JavaScript scaffold's `wit/`).
pub const WIT: &str = include_str!("../../wit/transform.wit");
