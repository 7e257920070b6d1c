//! The transforms compiled into the binary, named `builtin:<name>` in a
//! pipeline's `module`. `build.rs` builds them from `transforms/<name>/` for
//! `wasm32-wasip2`; their sources and docs live there.
//!
//! ```json
//! {"name": "dedup", "module": "builtin:dedup", "config": {"key": "id", "event_time": "published_at", "within": "2 hours"}}
//! ```

/// The `builtin:` names, sorted (for messages and `validate`).
pub const BUILTIN_NAMES: &[&str] = &["dedup", "watermark"];

/// The component bytes of the built-in transform `name`.
pub fn builtin(name: &str) -> Option<&'static [u8]> {
    match name {
        "dedup" => Some(include_bytes!(concat!(env!("OUT_DIR"), "/dedup.wasm"))),
        "watermark" => Some(include_bytes!(concat!(env!("OUT_DIR"), "/watermark.wasm"))),
        _ => None,
    }
}

/// The folder where `build.rs` put every guest as `<folder name>.wasm`: the
/// built-ins and the sandbox test guests of `tests/guests/<name>/`, for tests.
pub const TEST_GUEST_DIR: &str = env!("TRIBUTARY_GUEST_DIR");

/// The path of a test guest built from `tests/guests/<name>/`.
pub fn test_guest(name: &str) -> std::path::PathBuf {
    std::path::Path::new(TEST_GUEST_DIR).join(format!("{name}.wasm"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_name_has_a_component() {
        for name in BUILTIN_NAMES {
            let bytes = builtin(name).unwrap_or_else(|| panic!("no bytes for `{name}`"));
            // Layer 1 of the binary format: a component, not a core module.
            assert!(bytes.starts_with(b"\0asm"), "`{name}` is not wasm");
            assert_eq!(&bytes[6..8], [1, 0], "`{name}` is not a component");
            assert_eq!(std::fs::read(test_guest(name)).unwrap(), bytes);
        }
        assert!(builtin("nope").is_none());
        assert!(BUILTIN_NAMES.windows(2).all(|w| w[0] < w[1]));
    }
}
