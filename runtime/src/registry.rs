//! The built-in connectors, by the `type` a pipeline names them with.
//!
//! One static list you can grep: adding a connector is one line here plus a
//! dependency in `runtime/Cargo.toml`. Sinks loaded from shared libraries in
//! the plugin folder ([`crate::plugins`]) are looked up after these.

use tributary_connector::{ConnectorContext, ConnectorKind, Error, Result, Sink, Source};

/// Every built-in connector: `(type, kind + constructor)`. A type may be
/// both a source and a sink (`kafka`): one entry for each.
pub const CONNECTORS: &[(&str, ConnectorKind)] = &[
    (
        "blackhole",
        ConnectorKind::Sink(tributary_blackhole::factory),
    ),
    ("file", ConnectorKind::Source(tributary_file::factory)),
    (
        "generator",
        ConnectorKind::Source(tributary_generator::factory),
    ),
    ("iceberg", ConnectorKind::Sink(tributary_iceberg::factory)),
    (
        "jsonl",
        ConnectorKind::Sink(tributary_folder::jsonl::factory),
    ),
    ("kafka", ConnectorKind::Source(tributary_kafka::factory)),
    ("kafka", ConnectorKind::Sink(tributary_kafka::sink::factory)),
    (
        "parquet",
        ConnectorKind::Sink(tributary_folder::parquet::factory),
    ),
];

fn names(want_source: bool) -> String {
    let plugins = crate::plugins::installed()
        .plugins
        .iter()
        .filter(|p| (p.kind == "source") == want_source)
        .map(|p| format!("\"{}\" (plugin)", p.name));
    CONNECTORS
        .iter()
        .filter(|(_, k)| matches!(k, ConnectorKind::Source(_)) == want_source)
        .map(|(n, _)| format!("\"{n}\""))
        .chain(plugins)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The entry named `kind`, the one of the wanted role first.
fn lookup(kind: &str, want_source: bool) -> Option<ConnectorKind> {
    let named = || {
        CONNECTORS
            .iter()
            .filter(|(n, _)| *n == kind)
            .map(|(_, k)| *k)
    };
    named()
        .find(|k| matches!(k, ConnectorKind::Source(_)) == want_source)
        .or_else(|| named().next())
}

/// Builds the source named by `kind` from its config fields.
pub fn source(
    kind: &str,
    fields: &serde_json::Value,
    ctx: &ConnectorContext,
) -> Result<Box<dyn Source>> {
    match lookup(kind, true) {
        Some(ConnectorKind::Source(make)) => make(fields, ctx),
        Some(ConnectorKind::Sink(_)) => Err(Error::config(format!(
            "source.type `{kind}` is a sink, not a source; sources: {}",
            names(true)
        ))),
        None => Err(Error::config(format!(
            "source.type `{kind}` is not a known source; sources: {}",
            names(true)
        ))),
    }
}

/// Builds the sink named by `kind` from its config fields.
pub fn sink(
    kind: &str,
    fields: &serde_json::Value,
    ctx: &ConnectorContext,
) -> Result<Box<dyn Sink>> {
    match lookup(kind, false) {
        Some(ConnectorKind::Sink(make)) => make(fields, ctx),
        Some(ConnectorKind::Source(_)) => Err(Error::config(format!(
            "sink.type `{kind}` is a source, not a sink; sinks: {}",
            names(false)
        ))),
        None => crate::plugins::sink(kind, fields, ctx).unwrap_or_else(|| {
            Err(Error::config(format!(
                "sink.type `{kind}` is not a known sink; sinks: {}{}",
                names(false),
                plugin_hint()
            )))
        }),
    }
}

/// Where plugins would have been found, for "unknown sink" messages.
fn plugin_hint() -> String {
    let set = crate::plugins::installed();
    let refused = match set.refused.len() {
        0 => String::new(),
        n => format!(
            ", and refused {n} librar{} there",
            if n == 1 { "y" } else { "ies" }
        ),
    };
    match &set.dir {
        Some(dir) => format!(
            " (plugins are loaded from {}{refused}; `tributary plugins` lists them and why)",
            dir.display()
        ),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_misplaced_types_are_explained() {
        let ctx = ConnectorContext::default();
        let err = source("kafak", &serde_json::json!({}), &ctx).err().unwrap();
        assert!(
            err.to_string().contains("`kafak` is not a known source"),
            "{err}"
        );
        assert!(err.to_string().contains("\"generator\""), "{err}");
        let err = sink("generator", &serde_json::json!({}), &ctx)
            .err()
            .unwrap();
        assert!(err.to_string().contains("is a source, not a sink"), "{err}");
        // `kafka` is both: each role finds its own entry.
        let err = sink("kafka", &serde_json::json!({"topics": ["t"]}), &ctx)
            .err()
            .unwrap();
        assert!(err.to_string().starts_with("kafka sink config"), "{err}");
        for name in ["parquet", "jsonl", "kafka", "iceberg", "blackhole"] {
            assert!(names(false).contains(&format!("\"{name}\"")), "{name}");
        }
    }
}
