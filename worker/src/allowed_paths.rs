//! Where a `tributary serve` worker may read and write: its `--data` folder
//! and the roots its operator names with `--allow-path` (Kafka Connect's
//! `allowed.paths` for its file connectors). Anyone who may POST a config
//! could otherwise make the worker create files anywhere its user can write.
//!
//! Every local path in a config is checked — the checkpoint location, the
//! dead-letter folder, transform modules, and in the source and sink configs
//! every string under a key that names a place (`path`, `warehouse`,
//! `location`, `*_path`, `*_dir`, `*_file`, `*_location`, `*_ca`, and `catalog_uri`
//! when it is `sqlite:`).
//! A path is resolved before the check: the part of it that exists is
//! canonicalized (symlinks followed, `..` applied to real folders), and the
//! rest is folded lexically, so neither `..` nor a symlink steps out.
//!
//! ```
//! use tributary_worker::allowed_paths::AllowedRoots;
//! let data = tempfile::tempdir().unwrap();
//! let roots = AllowedRoots::new(&[data.path().to_path_buf()]).unwrap();
//! assert!(roots.check("x", &data.path().join("chk/new")).is_ok());
//! assert!(roots.check("x", &data.path().join("../../etc")).is_err());
//! ```

use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use tributary_runtime::config::LoadedPipeline;

/// A path a worker may not use, or an allowed root that does not exist.
#[derive(Debug, thiserror::Error)]
pub enum PathNotAllowed {
    #[error("--allow-path {}: {source}; give an existing folder", root.display())]
    MissingRoot {
        root: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} `{}` cannot be resolved: {source}", path.display())]
    Unresolvable {
        what: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{what} {} is outside the folders this worker may use ({}). Use a path inside \
         them, or start the worker with --allow-path <folder> to allow another one",
        shown(path, real),
        roots.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    Outside {
        what: String,
        path: PathBuf,
        real: PathBuf,
        roots: Vec<PathBuf>,
    },
}

/// A path as given, and where it leads when that differs.
fn shown(path: &Path, real: &Path) -> String {
    if real == path {
        format!("`{}`", path.display())
    } else {
        format!("`{}` (which is {})", path.display(), real.display())
    }
}

/// The folders a worker's configs may name, canonicalized.
#[derive(Clone, Debug)]
pub struct AllowedRoots {
    roots: Vec<PathBuf>,
}

impl AllowedRoots {
    /// Each root must exist (the worker creates its `--data` folder first).
    pub fn new(roots: &[PathBuf]) -> Result<Self, PathNotAllowed> {
        let roots = roots
            .iter()
            .map(|r| {
                r.canonicalize()
                    .map_err(|source| PathNotAllowed::MissingRoot {
                        root: r.clone(),
                        source,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { roots })
    }

    /// `path` (the config's `what`) as it will really be reached, or an error
    /// that names it, where it leads, and the flag that allows it.
    pub fn check(&self, what: &str, path: &Path) -> Result<PathBuf, PathNotAllowed> {
        let real = real_path(path).map_err(|source| PathNotAllowed::Unresolvable {
            what: what.to_string(),
            path: path.to_path_buf(),
            source,
        })?;
        if self.roots.iter().any(|r| real.starts_with(r)) {
            return Ok(real);
        }
        Err(PathNotAllowed::Outside {
            what: what.to_string(),
            path: path.to_path_buf(),
            real,
            roots: self.roots.clone(),
        })
    }

    /// Checks every local path of a pipeline.
    pub fn check_pipeline(&self, loaded: &LoadedPipeline) -> Result<(), PathNotAllowed> {
        for (what, path) in local_paths(loaded) {
            // Both the path as connectors use it (`..` folded) and as the
            // kernel would walk it unfolded must stay inside.
            self.check(&what, &path)?;
        }
        Ok(())
    }
}

/// The local paths a pipeline names, with where they are in the config,
/// as the runtime resolves them (relative to the pipeline's folder) and as
/// written, joined to that folder without folding `..`.
pub fn local_paths(loaded: &LoadedPipeline) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut add = |what: String, raw: &str| {
        out.push((what.clone(), loaded.resolve(raw)));
        out.push((what, loaded.base_dir.join(raw)));
    };
    let c = &loaded.config;
    if !c.checkpoint.location.contains("://") {
        add("checkpoint.location".into(), &c.checkpoint.location);
    }
    if let Some(p) = &c.errors.dead_letter_path {
        add("errors.dead_letter_path".into(), p);
    }
    for (i, t) in c.transforms.iter().enumerate() {
        if !t.module.starts_with("builtin:") {
            add(format!("transforms[{i}].module"), &t.module);
        }
    }
    let mut found = Vec::new();
    places("source", &c.source.fields, &mut found);
    places("sink", &c.sink.fields, &mut found);
    for (what, raw) in found {
        add(what, &raw);
    }
    out
}

/// Strings in a connector config under keys that name a place.
fn places(at: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let here = format!("{at}.{k}");
                match v {
                    Value::String(s) => {
                        if let Some(p) = as_local_path(k, s) {
                            out.push((here, p));
                        }
                    }
                    other => places(&here, other, out),
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let here = format!("{at}[{i}]");
                match v {
                    // A list of paths (a file source's inputs, say).
                    Value::String(s) if names_a_place(at) => out.push((here, s.clone())),
                    other => places(&here, other, out),
                }
            }
        }
        _ => {}
    }
}

fn names_a_place(key: &str) -> bool {
    let key = key
        .rsplit(['.', '['])
        .next()
        .unwrap_or(key)
        .to_ascii_lowercase();
    let key = key.trim_end_matches(']');
    [
        "path",
        "paths",
        "warehouse",
        "folder",
        "dir",
        "file",
        "files",
        "location",
    ]
    .contains(&key)
        // `_ca`: a CA certificate file (`schema_registry_ca`).
        || ["_path", "_paths", "_dir", "_folder", "_file", "_location", "_ca"]
            .iter()
            .any(|s| key.ends_with(s))
}

/// The local path a config string names, if it is one.
fn as_local_path(key: &str, value: &str) -> Option<String> {
    let value = value.trim();
    if key == "catalog_uri" {
        let rest = value.strip_prefix("sqlite:")?;
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let file = rest.split('?').next().unwrap_or(rest);
        return (!file.is_empty() && file != ":memory:").then(|| file.to_string());
    }
    if !names_a_place(key) || value.is_empty() || value == "-" {
        return None;
    }
    if let Some(local) = value.strip_prefix("file://") {
        return Some(local.to_string());
    }
    (!value.contains("://")).then(|| value.to_string())
}

/// Where `path` really leads: its longest existing ancestor canonicalized,
/// then the rest folded lexically (those folders do not exist yet, so none
/// is a symlink).
pub fn real_path(path: &Path) -> std::io::Result<PathBuf> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    let parts: Vec<Component> = absolute.components().collect();
    for split in (1..=parts.len()).rev() {
        let prefix: PathBuf = parts[..split].iter().collect();
        let Ok(mut real) = prefix.canonicalize() else {
            continue;
        };
        for part in &parts[split..] {
            match part {
                Component::ParentDir => {
                    real.pop();
                }
                Component::CurDir => {}
                other => real.push(other.as_os_str()),
            }
        }
        return Ok(real);
    }
    Err(std::io::Error::other("no part of it exists"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_dot_and_symlinks_cannot_step_out() {
        let data = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let roots = AllowedRoots::new(&[data.path().to_path_buf()]).unwrap();
        let d = data.path();
        assert!(roots.check("p", &d.join("a/b/c")).is_ok());
        assert!(roots.check("p", &d.join("a/../b")).is_ok());
        assert!(roots.check("p", &d.join("a/../../x")).is_err());
        assert!(roots.check("p", outside.path()).is_err());
        std::os::unix::fs::symlink(outside.path(), d.join("link")).unwrap();
        let err = roots
            .check("sink.path", &d.join("link/new"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sink.path") && err.contains("--allow-path"),
            "{err}"
        );
        let wider = AllowedRoots::new(&[d.to_path_buf(), outside.path().to_path_buf()]).unwrap();
        assert!(wider.check("p", &d.join("link/new")).is_ok());
    }

    #[test]
    fn places_are_found_by_their_keys() {
        let sink = serde_json::json!({"type": "iceberg", "catalog_uri": "sqlite:w/catalog.db?mode=rwc",
            "warehouse": "w", "table": "a.b", "props": {"ssl_ca_location": "/etc/ca.pem", "ssl.ca.location": "/etc/b.pem"},
            "schema_registry_ca": "/etc/sr.pem", "paths": ["in/a.jsonl"], "s3": "s3://bucket/x"});
        let mut found = Vec::new();
        places("sink", &sink, &mut found);
        let mut found: Vec<&str> = found.iter().map(|(_, p)| p.as_str()).collect();
        found.sort();
        assert_eq!(
            found,
            [
                "/etc/b.pem",
                "/etc/ca.pem",
                "/etc/sr.pem",
                "in/a.jsonl",
                "w",
                "w/catalog.db"
            ]
        );
    }
}
