//! `tributary validate PIPELINE`: shape, meaning, connectors' configs, and
//! every transform module loads and accepts its config; nothing runs. It
//! also says where the pipeline will keep things (the sink's catalog and
//! data, the checkpoints, the dead letters) as absolute paths, so a default
//! that lands somewhere unexpected is seen before the first run.

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
                    tributary_connector::redact_uri(&c.checkpoint.location)
                );
                for (what, place) in where_things_live(&loaded, &*sink) {
                    println!("  {what:<13} {place}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("invalid: {}: {e}", path.display());
                ExitCode::from(2)
            }
        }
    }
}

/// `(what, where)` for everything the pipeline keeps: the sink's own
/// places ([`tributary_connector::Sink::locations`]), then the checkpoints
/// and dead letters, local folders made absolute, URIs without passwords.
fn where_things_live(
    loaded: &config::LoadedPipeline,
    sink: &dyn tributary_connector::Sink,
) -> Vec<(String, String)> {
    let absolute = |p: PathBuf| {
        if p.is_absolute() {
            p
        } else {
            std::env::current_dir()
                .map(|d| tributary_connector::resolve(&d, &p.to_string_lossy()))
                .unwrap_or(p)
        }
    };
    let mut places = sink.locations();
    let location = &loaded.config.checkpoint.location;
    places.push((
        "checkpoints".into(),
        if location.contains("://") {
            tributary_connector::redact_uri(location)
        } else {
            absolute(loaded.resolve(location)).display().to_string()
        },
    ));
    if let Some(dir) = loaded.dead_letter_dir() {
        places.push(("dead letters".into(), absolute(dir).display().to_string()));
    }
    places
        .into_iter()
        .map(|(what, place)| (format!("{what}:"), place))
        .collect()
}
