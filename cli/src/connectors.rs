//! The built-in connectors, by the `type` a pipeline names them with, and
//! the registry `main` builds from them and the plugin folder.
//!
//! One list you can grep: adding a connector is one line here plus a
//! dependency in `cli/Cargo.toml`. Plugins are inserted after these; the
//! registry refuses a plugin that takes a built-in's or another plugin's name.

use std::path::PathBuf;
use std::sync::Arc;

use tributary_connector::ConnectorKind;
use tributary_runtime::registry::{Maker, Origin, Registry};

/// Every built-in connector: `(type, kind)`. A type may be both a source and
/// a sink (`kafka`): one entry for each.
pub fn builtins() -> Vec<(&'static str, ConnectorKind)> {
    vec![
        (
            "blackhole",
            ConnectorKind::sink::<tributary_blackhole::Blackhole>(),
        ),
        (
            "file",
            ConnectorKind::source::<tributary_file::FileSource>(),
        ),
        (
            "generator",
            ConnectorKind::source::<tributary_generator::GeneratorSource>(),
        ),
        (
            "iceberg",
            ConnectorKind::sink::<tributary_iceberg::IcebergSink>(),
        ),
        (
            "jsonl",
            ConnectorKind::sink::<tributary_folder::jsonl::JsonlSink>(),
        ),
        (
            "kafka",
            ConnectorKind::source::<tributary_kafka::KafkaSource>(),
        ),
        (
            "kafka",
            ConnectorKind::sink::<tributary_kafka::sink::KafkaSink>(),
        ),
        (
            "parquet",
            ConnectorKind::sink::<tributary_folder::parquet::ParquetSink>(),
        ),
    ]
}

/// The built-ins, then the plugins of `plugin_path` (default: `plugins/`
/// beside the binary), each loaded plugin inserted or refused in path order.
pub fn registry(plugin_path: Option<PathBuf>) -> Registry {
    let mut registry = Registry::default();
    for (name, kind) in builtins() {
        registry
            .insert(name, Origin::BuiltIn, kind.into())
            .expect("the built-in names are distinct per role");
    }
    let dir = plugin_path.or_else(tributary_plugin::host::default_dir);
    let Some(dir) = dir else {
        return registry;
    };
    registry.set_plugin_dir(Some(dir.clone()));
    for (path, loaded) in tributary_plugin::host::load_dir(&dir) {
        let plugin = match loaded {
            Ok(plugin) => Arc::new(plugin),
            Err(reason) => {
                tracing::warn!("plugin {} not loaded: {reason}", path.display());
                registry.refuse(path, reason.to_string());
                continue;
            }
        };
        let origin = Origin::Plugin {
            path: path.clone(),
            description: plugin.description.clone(),
        };
        let make = plugin.clone();
        let maker = Maker::Sink(Arc::new(move |config, ctx| make.sink(config, ctx)));
        match registry.insert(&plugin.name, origin, maker) {
            Ok(()) => tracing::debug!("plugin `{}` loaded from {}", plugin.name, path.display()),
            Err(clash) => registry.refuse(path, clash.to_string()),
        }
    }
    registry
}
