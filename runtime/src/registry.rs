//! The built-in connectors, by the `type` a pipeline names them with.
//!
//! One static list you can grep: adding a connector is one line here plus a
//! dependency in `runtime/Cargo.toml`. Connectors loaded from shared libraries
//! will join this list at run time.

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
    CONNECTORS
        .iter()
        .filter(|(_, k)| matches!(k, ConnectorKind::Source(_)) == want_source)
        .map(|(n, _)| format!("\"{n}\""))
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
        None => Err(Error::config(format!(
            "sink.type `{kind}` is not a known sink; sinks: {}",
            names(false)
        ))),
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
