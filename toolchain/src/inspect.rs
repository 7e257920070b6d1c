//! `tributary transform inspect` and `component`: what a module implements,
//! and a clang-built core module wrapped into a component.

use crate::ToolchainError;
use std::path::Path;

use tributary_wasm_host::{TransformEngine, WIT_PACKAGE, WIT_VERSION, WIT_VERSIONS, builtin};

use crate::bindings::componentize;

/// A module argument: a `.wasm` path or `builtin:<name>`.
pub fn read_module(module: &str) -> Result<Vec<u8>, ToolchainError> {
    if let Some(name) = module.strip_prefix("builtin:") {
        return builtin::builtin(name).map(<[u8]>::to_vec).ok_or_else(|| {
            ToolchainError::Refused(format!(
                "there is no built-in transform `{name}`; built-ins: {}",
                builtin::BUILTIN_NAMES.join(", ")
            ))
        });
    }
    std::fs::read(module).map_err(|e| ToolchainError::Refused(format!("cannot read {module}: {e}")))
}

/// The report of `inspect`, or why the module cannot run here.
pub fn inspect(engine: &TransformEngine, module: &str) -> Result<String, ToolchainError> {
    let bytes = read_module(module)?;
    let info = engine
        .describe(&bytes)
        .map_err(|e| format!("{module}: {e}"))?;
    let want = format!("{WIT_PACKAGE}/processor@{WIT_VERSION}");
    let processor: Vec<&String> = info
        .exports
        .iter()
        .filter(|e| e.starts_with(&format!("{WIT_PACKAGE}/processor")))
        .collect();
    let mut out = String::new();
    out.push_str(&format!("module: {module} ({} bytes)\n", bytes.len()));
    out.push_str(&format!("exports: {}\n", info.exports.join(", ")));
    out.push_str(&format!("imports: {}\n", info.imports.join(", ")));
    let version = processor
        .first()
        .map(|p| p.rsplit_once('@').map_or("(no version)", |(_, v)| v));
    match (processor.first(), version) {
        (Some(_), Some(version)) if WIT_VERSIONS.contains(&version) => {
            out.push_str(&format!(
                "implements the world {WIT_PACKAGE}/transform@{version}: this tributary runs it\n"
            ));
            out.push_str(&format!("contract version: {version}"));
            out.push_str(if version == WIT_VERSION {
                " (the current one: batches cross as columns)\n"
            } else {
                " (an older one, still run: batches cross as rows of values; rebuilding against \
                 this version's wit/ folder makes it faster)\n"
            });
            Ok(out)
        }
        (Some(p), Some(version)) => Err(format!(
            "{module} implements {WIT_PACKAGE}@{version}, but this tributary hosts {WIT_PACKAGE}@{}: \
             rebuild it against the wit/ folder of this version (it exports {p}, this host needs {want})",
            WIT_VERSIONS.join(" and @")
        )
        .into()),
        _ => Err(format!(
            "{module} is a component but not a Tributary transform: it does not export {want} (it exports: {})",
            if info.exports.is_empty() {
                "nothing".to_string()
            } else {
                info.exports.join(", ")
            }
        ).into()),
    }
}

/// `transform component`: wraps the core module at `core` into a component
/// written to `output`, and returns `inspect`'s report of it. A component
/// that is not a transform this tributary runs is not written.
pub fn component(
    engine: &TransformEngine,
    core: &Path,
    output: &Path,
) -> Result<String, ToolchainError> {
    let bytes = std::fs::read(core).map_err(|e| format!("cannot read {}: {e}", core.display()))?;
    let component = componentize(&bytes).map_err(|e| format!("{}: {e}", core.display()))?;
    let staged = output.with_extension("wasm.partial");
    std::fs::write(&staged, &component)
        .map_err(|e| format!("cannot write {}: {e}", staged.display()))?;
    let report = inspect(engine, &staged.to_string_lossy()).map_err(|e| {
        let _ = std::fs::remove_file(&staged);
        format!(
            "{e}\nhint: link the bindings' transform_component_type.o (from `tributary transform \
             bindings c`) and define the exports_tributary_transform_processor_* functions"
        )
    })?;
    std::fs::rename(&staged, output)
        .map_err(|e| format!("cannot write {}: {e}", output.display()))?;
    Ok(report.replace(&*staged.to_string_lossy(), &output.to_string_lossy()))
}
