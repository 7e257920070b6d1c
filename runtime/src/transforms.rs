//! Turns a pipeline's `transforms` list into a running [`TransformChain`]:
//! resolves each `module` (a built-in or a `.wasm` file), and instantiates it
//! with its config and sandbox limits.

use tributary_wasm_host::{Limits, TransformChain, TransformEngine, TransformSpec, builtin};

use crate::config::{ConfigError, ErrorPolicy, LoadedPipeline, TransformConfig};
use crate::error::PipelineError;

/// The component bytes a `module` reference names.
pub fn resolve_module(
    loaded: &LoadedPipeline,
    index: usize,
    t: &TransformConfig,
) -> Result<Vec<u8>, PipelineError> {
    if let Some(name) = t.module.strip_prefix("builtin:") {
        return builtin::builtin(name).map(<[u8]>::to_vec).ok_or_else(|| {
            PipelineError::Config(ConfigError::invalid(format!(
                "transforms[{index}].module `{}`: there is no built-in transform `{name}`; built-ins: {}",
                t.module,
                builtin::BUILTIN_NAMES.iter().map(|n| format!("builtin:{n}")).collect::<Vec<_>>().join(", ")
            )))
        });
    }
    let path = loaded.resolve(&t.module);
    std::fs::read(&path).map_err(|e| {
        PipelineError::Config(ConfigError::invalid(format!(
            "transforms[{index}].module `{}`: cannot read {} ({e}); give a path to a .wasm component \
             (relative to the pipeline file) or a built-in such as `builtin:dedup`",
            t.module,
            path.display()
        )))
    })
}

/// Instantiates every transform of the pipeline, in order.
pub fn build_chain(
    loaded: &LoadedPipeline,
    engine: &TransformEngine,
) -> Result<TransformChain, PipelineError> {
    let mut specs = Vec::with_capacity(loaded.config.transforms.len());
    for (i, t) in loaded.config.transforms.iter().enumerate() {
        specs.push(TransformSpec {
            name: t.name.clone(),
            bytes: resolve_module(loaded, i, t)?,
            config: serde_json::Value::Object(t.config.clone()),
            limits: Limits::from_config(t.limits.memory_mb, t.limits.call_timeout_ms),
        });
    }
    let mut chain = TransformChain::new(engine, specs)?;
    // Dead-lettering pipelines reject the rows a transform fails on, found
    // by splitting the batch; others stop on the failure and replay.
    chain.isolate_failures(loaded.config.errors.policy == ErrorPolicy::DeadLetter);
    Ok(chain)
}
