//! The two steps a C (or any clang-built) transform needs besides the
//! compiler, so that a C author needs nothing but Debian's `clang`, `lld` and
//! `wasi-libc`:
//!
//! - `tributary transform bindings c DIR`: the C bindings of this binary's WIT
//!   world (`transform.h`, `transform.c` and `transform_component_type.o`, the
//!   object carrying the component type, to link in), from the same generator
//!   `wit-bindgen c` runs;
//! - `tributary transform component CORE.wasm -o OUT.wasm`: wraps the core
//!   module clang links (`--target=wasm32-wasi -mexec-model=reactor`) into a
//!   component, adapting its WASI preview1 imports with the adapter of the
//!   wasmtime release this binary embeds — what `wasm-tools component new
//!   --adapt` does, with the matching adapter chosen for the user.
//!
//! Both use the libraries behind those tools (`wit-bindgen-c`,
//! `wit-component`); installing the tools themselves from crates.io takes
//! ~20 minutes on a small machine.

use crate::ToolchainError;
use std::path::{Path, PathBuf};

use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};
use wit_bindgen_core::wit_parser::Resolve;

use crate::wit::WIT;

/// The languages `bindings` writes for.
pub const BINDING_LANGUAGES: &[&str] = &["c"];

/// Writes the bindings of the `transform` world for `lang` into `dir`
/// (created when missing) and returns the files written.
pub fn write_bindings(lang: &str, dir: &Path) -> Result<Vec<PathBuf>, ToolchainError> {
    if lang != "c" {
        return Err(format!(
            "bindings for `{lang}`: this command writes C bindings (`c`); Rust transforms use \
             the transforms/sdk crate, Python componentize-py, JavaScript componentize-js"
        )
        .into());
    }
    let mut resolve = Resolve::default();
    let package = resolve
        .push_str("transform.wit", WIT)
        .map_err(|e| format!("the embedded WIT does not parse: {e:#}"))?;
    let world = resolve
        .select_world(&[package], Some("transform"))
        .map_err(|e| format!("the embedded WIT has no `transform` world: {e:#}"))?;
    let mut files = wit_bindgen_core::Files::default();
    wit_bindgen_c::Opts::default()
        .build()
        .generate(&mut resolve, world, &mut files)
        .map_err(|e| format!("generating C bindings failed: {e:#}"))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut written = Vec::new();
    for (name, bytes) in files.iter() {
        let path = dir.join(name);
        std::fs::write(&path, bytes)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// A component made of the core module `core`, which should carry the
/// `transform` world's type (link `transform_component_type.o`) and may
/// import WASI preview1 (wasi-libc does). A module without that type still
/// makes a component — one that exports nothing: check the result with
/// `transform_cli::inspect`, as the `component` command does.
pub fn componentize(core: &[u8]) -> Result<Vec<u8>, ToolchainError> {
    if core.len() >= 8 && core.starts_with(b"\0asm") && core[4..8] != [1, 0, 0, 0] {
        return Err("this is a component already, not a core module".into());
    }
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(core)
        .and_then(|e| {
            e.adapter(
                WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
                WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
            )
        })
        .and_then(|e| e.encode())
        .map_err(|e| {
            ToolchainError::Refused(format!(
                "cannot make a component of it: {e:#} (link the bindings' \
                 transform_component_type.o and build with clang --target=wasm32-wasi \
                 -mexec-model=reactor)"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_bindings_declare_the_processor_exports() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_bindings("c", dir.path()).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["transform.c", "transform.h", "transform_component_type.o"]
        );
        let header = std::fs::read_to_string(dir.path().join("transform.h")).unwrap();
        for export in ["init", "process", "on_watermark"] {
            assert!(
                header.contains(&format!(
                    "bool exports_tributary_transform_processor_{export}("
                )),
                "{export}"
            );
        }
        assert!(
            write_bindings("go", dir.path())
                .unwrap_err()
                .to_string()
                .contains("C bindings")
        );
    }

    #[test]
    fn componentize_refuses_what_is_not_a_linked_core_module() {
        assert!(
            componentize(b"not wasm")
                .unwrap_err()
                .to_string()
                .contains("cannot make a component")
        );
        let component = b"\0asm\x0d\0\x01\0";
        assert!(
            componentize(component)
                .unwrap_err()
                .to_string()
                .contains("component already")
        );
    }
}
