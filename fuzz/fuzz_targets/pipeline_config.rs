//! Pipeline JSON as `tributary validate` and the worker's `POST
//! /connectors` read it, up to where a connector would touch the network
//! or the disk: `${…}` interpolation, the shape (serde) and meaning checks,
//! the worker's allowed-paths check of every local path, and the generator
//! source's own config (the one built-in connector that builds from its
//! config alone).
//!
//! Input: the pipeline text. Variables come from a fixed table (values that
//! need JSON escaping among them), never from the process environment.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tributary_connector::FromConfig;
use tributary_generator::GeneratorSource;
use tributary_runtime::config;
use tributary_worker::allowed_paths::AllowedRoots;

fn lookup(name: &str) -> Option<String> {
    match name {
        "KAFKA_BOOTSTRAP_SERVERS" => Some("127.0.0.1:9092".into()),
        "CHECKPOINT_LOCATION" => Some("chk/articles".into()),
        "SECRET" => Some("pa\"ss\\wo\nrd".into()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

/// The worker's data folder: a scratch folder of this process.
fn roots() -> &'static (PathBuf, AllowedRoots) {
    static ROOTS: OnceLock<(PathBuf, AllowedRoots)> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let data = std::env::temp_dir().join(format!("tributary-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&data).expect("a scratch folder");
        let roots = AllowedRoots::new(std::slice::from_ref(&data)).expect("roots");
        (data, roots)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (data_dir, roots) = roots();
    let file = data_dir.join("pipeline.json");
    let Ok(loaded) = config::load_text(text, &file, lookup) else {
        return;
    };
    // What a loaded pipeline promises the rest of the runtime.
    assert!(config::check_name("name", &loaded.config.name).is_ok());
    assert!(loaded.config.trigger.batch_size > 0);
    let ctx = loaded.connector_context();
    let _ = loaded.dead_letter_dir();
    let _ = roots.check_pipeline(&loaded);
    if loaded.config.source.kind == "generator"
        && let Ok(c) = serde_json::from_value(loaded.config.source.fields.clone())
    {
        let _ = GeneratorSource::from_config(c, &ctx);
    }
});
