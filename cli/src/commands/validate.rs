//! `tributary validate PIPELINE`: shape, meaning, connectors' configs, and
//! every transform module loads and accepts its config; nothing runs.

use std::path::PathBuf;
use std::process::ExitCode;

use tributary_runtime::config;
use tributary_runtime::registry::Registry;
use tributary_wasm_host::TransformEngine;

#[derive(clap::Args)]
pub struct ValidateCommand {
    /// The pipeline file.
    pipeline: PathBuf,
}

impl ValidateCommand {
    pub fn execute(self, registry: Registry) -> ExitCode {
        let path = &self.pipeline;
        let loaded = match config::load(path) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("invalid: {e}");
                return ExitCode::from(2);
            }
        };
        let engine = match TransformEngine::new(None) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        match tributary_runtime::pipeline::build_parts(&loaded, &engine, &registry) {
            Ok((_, sink, _)) => {
                let c = &loaded.config;
                println!(
                    "ok: pipeline `{}`: {} → {} transform(s) → {} ({}); checkpoints in {}",
                    c.name,
                    c.source.kind,
                    c.transforms.len(),
                    c.sink.kind,
                    sink.delivery(),
                    c.checkpoint.location
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("invalid: {}: {e}", path.display());
                ExitCode::from(2)
            }
        }
    }
}
