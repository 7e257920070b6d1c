//! `tributary transform new <name> --lang rust|python|js|c`: a buildable
//! transform to start from. The templates are real files under
//! `toolchain/templates/<lang>/`, compiled in; `{name}` (and `{file}`, the
//! name as a Rust library file) is replaced in them. Every template does the
//! same thing: it upper-cases the text field its `field` config names.

use crate::ToolchainError;
use std::path::Path;

use crate::wit::WIT;

/// `tributary transform new <name> --lang rust|python|js|c`: a buildable
/// transform (upper-cases the text field named by its `field` config) in
/// `parent/<name>`. Returns the files written.
pub fn scaffold(
    name: &str,
    lang: &str,
    parent: &Path,
) -> Result<Vec<std::path::PathBuf>, ToolchainError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !ok {
        return Err(format!(
            "name `{name}`: use lower-case letters, digits, `-` and `_`, starting with a letter"
        )
        .into());
    }
    let dir = parent.join(name);
    if dir.exists() {
        return Err(format!(
            "{} exists already; pick another name or remove it",
            dir.display()
        )
        .into());
    }
    let files: Vec<(String, String)> = match lang {
        "rust" => {
            let mut files = vec![
                ("Cargo.toml".into(), RUST_CARGO.replace("{name}", name)),
                ("src/lib.rs".into(), RUST_LIB.into()),
                (
                    "README.md".into(),
                    RUST_README
                        .replace("{name}", name)
                        .replace("{file}", &name.replace('-', "_")),
                ),
            ];
            files.extend(sdk_files());
            files
        }
        "python" => vec![
            ("wit/transform.wit".into(), WIT.into()),
            ("app.py".into(), PYTHON_APP.into()),
            ("build.sh".into(), PYTHON_BUILD.replace("{name}", name)),
            ("README.md".into(), PYTHON_README.replace("{name}", name)),
        ],
        "js" => vec![
            ("wit/transform.wit".into(), WIT.into()),
            ("transform.js".into(), JS_SOURCE.into()),
            ("build.mjs".into(), JS_BUILD_MJS.into()),
            ("package.json".into(), JS_PACKAGE.replace("{name}", name)),
            ("build.sh".into(), JS_BUILD.replace("{name}", name)),
            ("README.md".into(), JS_README.replace("{name}", name)),
        ],
        "c" => vec![
            ("transform.c".into(), C_SOURCE.into()),
            ("build.sh".into(), C_BUILD.replace("{name}", name)),
            ("README.md".into(), C_README.replace("{name}", name)),
            (".gitignore".into(), "gen/\n*.wasm\n".into()),
        ],
        other => {
            return Err(format!("--lang {other}: choose `rust`, `python`, `js` or `c`").into());
        }
    };
    let mut written = Vec::new();
    for (rel, text) in files {
        let path = dir.join(rel);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p)
                .map_err(|e| format!("cannot create {}: {e}", p.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        written.push(path);
    }
    #[cfg(unix)]
    if lang != "rust" {
        use std::os::unix::fs::PermissionsExt;
        let script = dir.join("build.sh");
        let _ = std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755));
    }
    Ok(written)
}

// The C scaffold has no wit/ folder: `build.sh` asks the installed
// tributary for bindings of the world it hosts.
const C_SOURCE: &str = include_str!("../templates/c/transform.c");
const C_BUILD: &str = include_str!("../templates/c/build.sh");
const C_README: &str = include_str!("../templates/c/README.md");

const RUST_CARGO: &str = include_str!("../templates/rust/Cargo.toml");
const RUST_LIB: &str = include_str!("../templates/rust/src/lib.rs");
const RUST_README: &str = include_str!("../templates/rust/README.md");

/// The guest SDK's sources, written into a Rust scaffold's `sdk/` (the SDK
/// is not published on crates.io; a copy keeps the scaffold buildable
/// offline and pinned to the WIT this binary hosts).
const SDK_SOURCES: &[(&str, &str)] = &[
    ("lib.rs", include_str!("../../transforms/sdk/src/lib.rs")),
    (
        "batch.rs",
        include_str!("../../transforms/sdk/src/batch.rs"),
    ),
    (
        "config.rs",
        include_str!("../../transforms/sdk/src/config.rs"),
    ),
    (
        "duration.rs",
        include_str!("../../transforms/sdk/src/duration.rs"),
    ),
    (
        "export.rs",
        include_str!("../../transforms/sdk/src/export.rs"),
    ),
    ("host.rs", include_str!("../../transforms/sdk/src/host.rs")),
    (
        "output.rs",
        include_str!("../../transforms/sdk/src/output.rs"),
    ),
    (
        "value.rs",
        include_str!("../../transforms/sdk/src/value.rs"),
    ),
];

const SDK_CARGO: &str = include_str!("../templates/rust/sdk/Cargo.toml");

/// The scaffold's copy of the SDK: its sources (reading the WIT from
/// `sdk/wit`), manifest and WIT.
fn sdk_files() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = SDK_SOURCES
        .iter()
        .map(|(file, text)| {
            (
                format!("sdk/src/{file}"),
                text.replace(r#"path: "../../wit""#, r#"path: "wit""#),
            )
        })
        .collect();
    files.push(("sdk/Cargo.toml".into(), SDK_CARGO.into()));
    files.push(("sdk/wit/transform.wit".into(), WIT.into()));
    files
}

const PYTHON_APP: &str = include_str!("../templates/python/app.py");
const PYTHON_BUILD: &str = include_str!("../templates/python/build.sh");
const PYTHON_README: &str = include_str!("../templates/python/README.md");

const JS_SOURCE: &str = include_str!("../templates/js/transform.js");
const JS_BUILD_MJS: &str = include_str!("../templates/js/build.mjs");
const JS_PACKAGE: &str = include_str!("../templates/js/package.json");
const JS_BUILD: &str = include_str!("../templates/js/build.sh");
const JS_README: &str = include_str!("../templates/js/README.md");

#[cfg(test)]
mod tests {
    use super::*;

    /// The Rust scaffold carries every source file of the SDK, and its copy
    /// reads the WIT from beside it.
    #[test]
    fn the_rust_scaffold_copies_the_whole_sdk() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../transforms/sdk/src");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut copied: Vec<String> = SDK_SOURCES.iter().map(|(f, _)| f.to_string()).collect();
        copied.sort();
        assert_eq!(copied, on_disk, "SDK_SOURCES must list transforms/sdk/src");
        let files = sdk_files();
        let lib = &files.iter().find(|(p, _)| p == "sdk/src/lib.rs").unwrap().1;
        assert!(lib.contains(r#"path: "wit""#) && !lib.contains("../../wit"));
    }
}
