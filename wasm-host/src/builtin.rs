//! The transforms compiled into the binary, named `builtin:<name>` in a
//! pipeline's `module`. `build.rs` builds them from `transforms/<name>/` for
//! `wasm32-wasip2`; their sources and docs live there. (The sandbox test
//! guests are built by the tests' build script, not here.)
//!
//! ```json
//! {"name": "dedup", "module": "builtin:dedup", "config": {"key": "id", "event_time": "published_at", "within": "2 hours"}}
//! ```

/// The `builtin:` names, sorted (for messages and `validate`).
pub const BUILTIN_NAMES: &[&str] = &["dedup", "watermark"];

/// The component bytes of the built-in transform `name`.
pub fn builtin(name: &str) -> Option<&'static [u8]> {
    match name {
        "dedup" => Some(include_bytes!(concat!(
            env!("TRIBUTARY_BUILTIN_DIR"),
            "/dedup.wasm"
        ))),
        "watermark" => Some(include_bytes!(concat!(
            env!("TRIBUTARY_BUILTIN_DIR"),
            "/watermark.wasm"
        ))),
        _ => None,
    }
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
        }
        assert!(builtin("nope").is_none());
        assert!(BUILTIN_NAMES.windows(2).all(|w| w[0] < w[1]));
    }
}
