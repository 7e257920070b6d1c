//! The connectors a pipeline can name by `type`: one [`Registry`] value,
//! built once in `main` (the built-ins, then the plugins of the plugin
//! folder) and passed down to whatever builds pipelines.
//!
//! Names are checked on insert: a source and a sink may share a name
//! (`kafka` is both), two connectors of one role may not, and a plugin may
//! not take a built-in's name.
//!
//! ```
//! use tributary_connector::ConnectorKind;
//! use tributary_runtime::registry::{Origin, Registry};
//! let mut registry = Registry::default();
//! let blackhole = ConnectorKind::sink::<tributary_blackhole::Blackhole>();
//! registry.insert("blackhole", Origin::BuiltIn, blackhole.into()).unwrap();
//! assert!(registry.insert("blackhole", Origin::BuiltIn, blackhole.into()).is_err());
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use tributary_connector::{ConnectorContext, ConnectorKind, Error, Result, Sink, Source};

/// Builds a source from its config fields.
pub type MakeSource =
    Arc<dyn Fn(&serde_json::Value, &ConnectorContext) -> Result<Box<dyn Source>> + Send + Sync>;
/// Builds a sink from its config fields.
pub type MakeSink =
    Arc<dyn Fn(&serde_json::Value, &ConnectorContext) -> Result<Box<dyn Sink>> + Send + Sync>;

/// How a registered connector is made: a built-in's factory, or a closure
/// over a loaded plugin.
#[derive(Clone)]
pub enum Maker {
    Source(MakeSource),
    Sink(MakeSink),
}

impl Maker {
    /// `source` or `sink`, as listings name it.
    pub fn role(&self) -> &'static str {
        match self {
            Self::Source(_) => "source",
            Self::Sink(_) => "sink",
        }
    }

    fn is_source(&self) -> bool {
        matches!(self, Self::Source(_))
    }
}

impl From<ConnectorKind> for Maker {
    fn from(kind: ConnectorKind) -> Self {
        match kind {
            ConnectorKind::Source(f) => Self::Source(Arc::new(f)),
            ConnectorKind::Sink(f) => Self::Sink(Arc::new(f)),
        }
    }
}

/// Where a connector comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Compiled into this binary.
    BuiltIn,
    /// A shared library in the plugin folder.
    Plugin { path: PathBuf, description: String },
}

/// One registered connector type.
#[derive(Clone)]
pub struct Entry {
    pub name: String,
    pub origin: Origin,
    pub maker: Maker,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("name", &self.name)
            .field("role", &self.maker.role())
            .field("origin", &self.origin)
            .finish()
    }
}

/// A name that is taken: why an insert was refused.
#[derive(Debug, thiserror::Error)]
pub enum NameClash {
    #[error("it calls itself `{0}`, the name of a built-in connector; rename the plugin")]
    BuiltIn(String),
    #[error("it calls itself `{name}`, as {} does already; keep one of them", .first.display())]
    Plugin { name: String, first: PathBuf },
    #[error("two built-in {role}s are called `{name}`")]
    Twice { name: String, role: &'static str },
}

/// The connector types of this process, and what the plugin folder refused.
#[derive(Debug, Default)]
pub struct Registry {
    entries: Vec<Entry>,
    plugin_dir: Option<PathBuf>,
    refused: Vec<(PathBuf, String)>,
}

impl Registry {
    /// Adds a connector type, refusing a name that is taken (see the module
    /// docs for the rules).
    pub fn insert(
        &mut self,
        name: &str,
        origin: Origin,
        maker: Maker,
    ) -> std::result::Result<(), NameClash> {
        if let Origin::Plugin { .. } = origin {
            if self
                .entries
                .iter()
                .any(|e| e.name == name && e.origin == Origin::BuiltIn)
            {
                return Err(NameClash::BuiltIn(name.to_string()));
            }
            if let Some(Entry {
                origin: Origin::Plugin { path, .. },
                ..
            }) = self.entries.iter().find(|e| e.name == name)
            {
                return Err(NameClash::Plugin {
                    name: name.to_string(),
                    first: path.clone(),
                });
            }
        } else if self
            .entries
            .iter()
            .any(|e| e.name == name && e.maker.is_source() == maker.is_source())
        {
            return Err(NameClash::Twice {
                name: name.to_string(),
                role: maker.role(),
            });
        }
        self.entries.push(Entry {
            name: name.to_string(),
            origin,
            maker,
        });
        Ok(())
    }

    /// Notes the folder plugins were loaded from (for listings and messages).
    pub fn set_plugin_dir(&mut self, dir: Option<PathBuf>) {
        self.plugin_dir = dir;
    }

    /// Notes a library of the plugin folder that was not loaded, and why.
    pub fn refuse(&mut self, path: PathBuf, reason: String) {
        self.refused.push((path, reason));
    }

    /// Every connector type, built-ins first, in the order inserted.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The plugin folder, if there is one.
    pub fn plugin_dir(&self) -> Option<&std::path::Path> {
        self.plugin_dir.as_deref()
    }

    /// The libraries of the plugin folder that were not loaded, and why.
    pub fn refused(&self) -> &[(PathBuf, String)] {
        &self.refused
    }

    /// The built-in entry named `kind`, the one of the wanted role first.
    fn builtin(&self, kind: &str, want_source: bool) -> Option<&Entry> {
        let named = || {
            self.entries
                .iter()
                .filter(|e| e.name == kind && e.origin == Origin::BuiltIn)
        };
        named()
            .find(|e| e.maker.is_source() == want_source)
            .or_else(|| named().next())
    }

    fn names(&self, want_source: bool) -> String {
        self.entries
            .iter()
            .filter(|e| e.maker.is_source() == want_source)
            .map(|e| match e.origin {
                Origin::BuiltIn => format!("\"{}\"", e.name),
                Origin::Plugin { .. } => format!("\"{}\" (plugin)", e.name),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Builds the source named by `kind` from its config fields.
    pub fn source(
        &self,
        kind: &str,
        fields: &serde_json::Value,
        ctx: &ConnectorContext,
    ) -> Result<Box<dyn Source>> {
        match self.builtin(kind, true).map(|e| &e.maker) {
            Some(Maker::Source(make)) => make(fields, ctx),
            Some(Maker::Sink(_)) => Err(Error::config(format!(
                "source.type `{kind}` is a sink, not a source; sources: {}",
                self.names(true)
            ))),
            None => Err(Error::config(format!(
                "source.type `{kind}` is not a known source; sources: {}",
                self.names(true)
            ))),
        }
    }

    /// Builds the sink named by `kind` from its config fields: a built-in,
    /// else a plugin (a refused library that looks like the one named says
    /// why it was refused).
    pub fn sink(
        &self,
        kind: &str,
        fields: &serde_json::Value,
        ctx: &ConnectorContext,
    ) -> Result<Box<dyn Sink>> {
        match self.builtin(kind, false).map(|e| &e.maker) {
            Some(Maker::Sink(make)) => return make(fields, ctx),
            Some(Maker::Source(_)) => {
                return Err(Error::config(format!(
                    "sink.type `{kind}` is a source, not a sink; sinks: {}",
                    self.names(false)
                )));
            }
            None => {}
        }
        if let Some((path, reason)) = self
            .refused
            .iter()
            .find(|(path, _)| path.file_stem().is_some_and(|s| library_names(s, kind)))
        {
            return Err(Error::config(format!(
                "sink.type `{kind}`: the plugin {} was not loaded: {reason}",
                path.display()
            )));
        }
        let plugin = self.entries.iter().find(|e| {
            e.name == kind && matches!(e.origin, Origin::Plugin { .. }) && !e.maker.is_source()
        });
        match plugin.map(|e| &e.maker) {
            Some(Maker::Sink(make)) => make(fields, ctx),
            _ => Err(Error::config(format!(
                "sink.type `{kind}` is not a known sink; sinks: {}{}",
                self.names(false),
                self.plugin_hint()
            ))),
        }
    }

    /// Where plugins would have been found, for "unknown sink" messages.
    fn plugin_hint(&self) -> String {
        let refused = match self.refused.len() {
            0 => String::new(),
            n => format!(
                ", and refused {n} librar{} there",
                if n == 1 { "y" } else { "ies" }
            ),
        };
        match &self.plugin_dir {
            Some(dir) => format!(
                " (plugins are loaded from {}{refused}; `tributary plugins` lists them and why)",
                dir.display()
            ),
            None => String::new(),
        }
    }
}

/// Whether a library file stem (`libcsv_sink`) is plausibly the plugin a
/// pipeline names (`csv-sink`, `csv_sink`): to explain a refused plugin.
fn library_names(stem: &std::ffi::OsStr, kind: &str) -> bool {
    let stem = stem.to_string_lossy();
    let stem = stem.strip_prefix("lib").unwrap_or(&stem);
    stem.replace('-', "_") == kind.replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> Registry {
        let mut r = Registry::default();
        let builtins = [
            (
                "blackhole",
                ConnectorKind::sink::<tributary_blackhole::Blackhole>(),
            ),
            (
                "generator",
                ConnectorKind::source::<tributary_generator::GeneratorSource>(),
            ),
            (
                "kafka",
                ConnectorKind::source::<tributary_kafka::KafkaSource>(),
            ),
            (
                "kafka",
                ConnectorKind::sink::<tributary_kafka::sink::KafkaSink>(),
            ),
        ];
        for (name, kind) in builtins {
            r.insert(name, Origin::BuiltIn, kind.into()).unwrap();
        }
        r
    }

    #[test]
    fn unknown_and_misplaced_types_are_explained() {
        let r = registry();
        let ctx = ConnectorContext::default();
        let err = r
            .source("kafak", &serde_json::json!({}), &ctx)
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("`kafak` is not a known source"),
            "{err}"
        );
        assert!(err.to_string().contains("\"generator\""), "{err}");
        let err = r
            .sink("generator", &serde_json::json!({}), &ctx)
            .err()
            .unwrap();
        assert!(err.to_string().contains("is a source, not a sink"), "{err}");
        // `kafka` is both: each role finds its own entry.
        let err = r
            .sink("kafka", &serde_json::json!({"topics": ["t"]}), &ctx)
            .err()
            .unwrap();
        assert!(err.to_string().starts_with("kafka sink config"), "{err}");
        for name in ["kafka", "blackhole"] {
            assert!(r.names(false).contains(&format!("\"{name}\"")), "{name}");
        }
    }

    #[test]
    fn names_are_checked_on_insert() {
        let mut r = registry();
        let plugin = |path: &str| Origin::Plugin {
            path: path.into(),
            description: String::new(),
        };
        let sink = || ConnectorKind::sink::<tributary_blackhole::Blackhole>().into();
        let err = r
            .insert("kafka", plugin("/p/libkafka.so"), sink())
            .unwrap_err();
        assert!(err.to_string().contains("the name of a built-in"), "{err}");
        r.insert("csv", plugin("/p/libcsv.so"), sink()).unwrap();
        let err = r
            .insert("csv", plugin("/p/libcsv2.so"), sink())
            .unwrap_err();
        assert!(
            err.to_string().contains("as /p/libcsv.so does already"),
            "{err}"
        );
        let err = r.insert("blackhole", Origin::BuiltIn, sink()).unwrap_err();
        assert!(err.to_string().contains("two built-in sinks"), "{err}");
        assert!(r.names(false).contains("\"csv\" (plugin)"));
    }
}
