//! The transforms compiled into the binary (`builtin:<name>` in a pipeline),
//! built from `transforms/*` for `wasm32-wasip2` by `build.rs`.

/// `builtin:` names, for messages.
pub const BUILTIN_NAMES: &[&str] = &["dedup", "watermark"];

/// The component bytes of a built-in transform.
pub fn builtin(name: &str) -> Option<&'static [u8]> {
    match name {
        "dedup" => Some(include_bytes!(concat!(
            env!("TRIBUTARY_GUEST_DIR"),
            "/dedup.wasm"
        ))),
        "watermark" => Some(include_bytes!(concat!(
            env!("TRIBUTARY_GUEST_DIR"),
            "/watermark.wasm"
        ))),
        _ => None,
    }
}

/// Where `build.rs` put every guest, including the sandbox test guests of
/// `tests/guests/*` (`<folder name>.wasm`).
pub const TEST_GUEST_DIR: &str = env!("TRIBUTARY_GUEST_DIR");
