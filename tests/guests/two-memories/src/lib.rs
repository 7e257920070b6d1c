//! A test guest no wasm32 compiler makes: a transform component whose core
//! module has two linear memories and grows both (`two_memories.wat`). The
//! sandbox's memory cap must hold for their sum.
//!
//! ```no_run
//! let wasm = tributary_guest_two_memories::component().unwrap();
//! assert!(wasm.starts_with(b"\0asm"));
//! ```

use wit_component::{ComponentEncoder, StringEncoding, embed_component_metadata};
use wit_parser::Resolve;

/// The guest's WebAssembly text.
pub const WAT: &str = include_str!("../two_memories.wat");

/// The WIT contract it implements: 0.1.0, the older version hosts still run
/// (the sandbox must hold for those guests too).
const WIT: &str = include_str!("../../../../wit/v0.1/transform.wit");

/// The guest as a `tributary:transform` component.
pub fn component() -> Result<Vec<u8>, String> {
    let mut core = wat::parse_str(WAT).map_err(|e| format!("two_memories.wat: {e}"))?;
    let mut resolve = Resolve::default();
    let package = resolve
        .push_str("transform.wit", WIT)
        .map_err(|e| format!("wit/transform.wit: {e:#}"))?;
    let world = resolve
        .select_world(&[package], Some("transform"))
        .map_err(|e| format!("wit/transform.wit: {e:#}"))?;
    embed_component_metadata(&mut core, &resolve, world, StringEncoding::UTF8)
        .map_err(|e| format!("embed the component type: {e:#}"))?;
    ComponentEncoder::default()
        .validate(true)
        .module(&core)
        .and_then(|e| e.encode())
        .map_err(|e| format!("make a component of two_memories.wat: {e:#}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_guest_becomes_a_component() {
        let wasm = super::component().unwrap();
        assert_eq!(&wasm[..4], b"\0asm");
    }
}
