//! Builds WebAssembly guests for `wasm32-wasip2`; shared by two build
//! scripts (included with `#[path]`, as build scripts cannot depend on a
//! workspace crate without building it for the host first):
//!
//! - `wasm-host/build.rs`: the built-in transforms of `transforms/<name>/`,
//!   embedded in the binary by `src/builtin.rs` (`builtin:<name>` in a
//!   pipeline);
//! - `tests/build.rs`: the sandbox test guests of `tests/guests/<name>/`,
//!   read from disk by the tests. The production build never builds them.
//!
//! A guest is any such folder whose `Cargo.toml` builds a `cdylib` (a
//! workspace member with `crate-type = [..., "cdylib", ...]` under `[lib]`).
//! Other crates there are libraries the guests link, not guests: the
//! transform SDK, `transforms/sdk`, is one. Each guest lands in `OUT_DIR` as
//! `<folder name>.wasm`, and the env var the caller names is set to that
//! folder.
//!
//! All guests of one build script come from one nested `cargo build
//! --release --target wasm32-wasip2 -p …` with its own target directory,
//! `<target dir>/wasm-guests`: the outer build holds the lock on its target
//! directory until this script ends, so sharing it would deadlock, and a
//! directory outside `OUT_DIR` (wasmtime's test-programs build into
//! `OUT_DIR`) survives a change of this crate's build hash, so the guests are
//! rebuilt only when their sources change. Nothing of the outer build's
//! flags or target leaks into the nested one; its jobserver does, so both
//! share the same job slots.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-wasip2";

struct Guest {
    package: String,
    /// The file stem of the `.wasm` cargo writes (the lib name).
    artifact: String,
    /// The folder name: the `.wasm` name in `OUT_DIR`.
    name: String,
    dir: PathBuf,
}

/// Builds every guest under `folders` (relative to the workspace root) into
/// `OUT_DIR` and sets the env var `dir_var` of the crate to that folder.
pub fn build_guests(folders: &[&str], dir_var: &str) {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("the crate sits in the workspace root")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));

    watch(&root, folders);
    let guests = discover(&root, folders);
    check_target_installed();
    let target_dir = guest_target_dir(&out_dir);
    build(&root, &target_dir, &guests);

    let built = target_dir.join(WASM_TARGET).join("release");
    for g in &guests {
        let from = built.join(format!("{}.wasm", g.artifact));
        let bytes = std::fs::read(&from).unwrap_or_else(|e| {
            panic!(
                "guest `{}` ({}) built no {}: {e}; the file is named after its \
                 `[lib] name` (or package name), read as a plain `name = \"...\"` line",
                g.package,
                g.dir.display(),
                from.display()
            )
        });
        let to = out_dir.join(format!("{}.wasm", g.name));
        // Rewrite only what changed: an untouched file keeps its mtime.
        if std::fs::read(&to).ok().as_deref() != Some(bytes.as_slice()) {
            std::fs::write(&to, &bytes).unwrap_or_else(|e| panic!("write {}: {e}", to.display()));
        }
    }
    println!("cargo:rustc-env={dir_var}={}", out_dir.display());
}

/// Reruns this script when a guest's sources, the WIT contract or the lock
/// file change — and only then. A watched folder is scanned recursively.
fn watch(root: &Path, folders: &[&str]) {
    println!("cargo:rerun-if-changed=build.rs");
    println!(
        "cargo:rerun-if-changed={}",
        root.join("wasm-host/build/guests.rs").display()
    );
    for path in ["wit", "Cargo.lock"].iter().chain(folders) {
        let path = root.join(path);
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        } else if let Some(parent) = path.parent() {
            // A watched path that does not exist would rerun this script on
            // every build; watch its parent instead, to see it appear.
            println!("cargo:rerun-if-changed={}", parent.display());
        }
    }
}

/// Every guest under `folders`, in a stable order: the folders with a
/// `Cargo.toml` that builds a `cdylib`.
fn discover(root: &Path, folders: &[&str]) -> Vec<Guest> {
    let mut guests: Vec<Guest> = Vec::new();
    for folder in folders {
        let Ok(entries) = std::fs::read_dir(root.join(folder)) else {
            continue;
        };
        let mut found: Vec<Guest> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|dir| dir.join("Cargo.toml").is_file())
            .filter_map(|dir| guest(&dir))
            .collect();
        found.sort_by(|a, b| a.name.cmp(&b.name));
        guests.extend(found);
    }
    for (i, g) in guests.iter().enumerate() {
        if let Some(other) = guests[..i].iter().find(|o| o.name == g.name) {
            panic!(
                "two guests would both be `{}.wasm`: {} and {}; rename one folder",
                g.name,
                other.dir.display(),
                g.dir.display()
            );
        }
    }
    assert!(
        !guests.is_empty(),
        "no guests found under {folders:?} in {}",
        root.display()
    );
    guests
}

/// The guest in `dir`; none when its crate is not a `cdylib` (a library).
fn guest(dir: &Path) -> Option<Guest> {
    let manifest = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap_or_else(|e| panic!("read {}: {e}", manifest.display()));
    // `crate-type = ["cdylib", "rlib"]`: the array on one line, as cargo
    // writes it and as every crate here has it.
    let crate_types = manifest_value(&text, "lib", "crate-type").unwrap_or_default();
    if !crate_types.contains("\"cdylib\"") {
        return None;
    }
    let package = manifest_value(&text, "package", "name")
        .unwrap_or_else(|| panic!("{} has no [package] name", manifest.display()));
    let artifact =
        manifest_value(&text, "lib", "name").unwrap_or_else(|| package.replace('-', "_"));
    Some(Guest {
        package,
        artifact,
        name: dir
            .file_name()
            .expect("a folder name")
            .to_string_lossy()
            .into_owned(),
        dir: dir.to_path_buf(),
    })
}

/// `key = "value"` in `[section]` of a Cargo.toml: enough TOML for a package
/// or lib name, which are always plain strings, and for a one-line
/// `crate-type` array (returned as written, brackets and quotes included).
fn manifest_value(text: &str, section: &str, key: &str) -> Option<String> {
    let mut current = "";
    for line in text.lines().map(str::trim) {
        if let Some(header) = line.strip_prefix('[') {
            current = header.trim_end_matches(']').trim();
            continue;
        }
        if current != section {
            continue;
        }
        if let Some((k, v)) = line.split_once('=')
            && k.trim() == key
        {
            return Some(v.trim().trim_matches('"').to_string());
        }
    }
    None
}

/// Fails early, with the fix, when the toolchain cannot build for
/// `wasm32-wasip2`.
fn check_target_installed() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let libdir = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", WASM_TARGET])
        .output();
    if let Ok(out) = libdir
        && out.status.success()
    {
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if !path.is_dir() {
            panic!("{}", missing_target_message());
        }
    }
}

fn missing_target_message() -> String {
    format!(
        "the Rust target {WASM_TARGET} is not installed; the built-in transforms and test guests \
         are built for it. Run `rustup target add {WASM_TARGET}` and build again."
    )
}

/// `<target dir>/wasm-guests`. OUT_DIR is `<target dir>[/<triple>]/<profile>/
/// build/<package>-<hash>/out`, whichever way the target directory was set
/// (`CARGO_TARGET_DIR`, `--target-dir`, config).
fn guest_target_dir(out_dir: &Path) -> PathBuf {
    let build = out_dir.ancestors().nth(2);
    let profile = out_dir.ancestors().nth(3);
    let (Some(build), Some(profile)) = (build, profile) else {
        return out_dir.join("wasm-guests");
    };
    if build.file_name() != Some("build".as_ref()) {
        return out_dir.join("wasm-guests");
    }
    let mut target_dir = profile.parent().unwrap_or(profile);
    if let Some(triple) = env::var_os("TARGET")
        && target_dir.file_name() == Some(triple.as_os_str())
    {
        target_dir = target_dir.parent().unwrap_or(target_dir);
    }
    target_dir.join("wasm-guests")
}

fn build(root: &Path, target_dir: &Path, guests: &[Guest]) {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args(["build", "--release", "--locked", "--target", WASM_TARGET])
        .arg("--target-dir")
        .arg(target_dir);
    for g in guests {
        cmd.args(["-p", &g.package]);
    }
    // What the outer build was told about flags, target, target directory
    // and profiles is not for the guests. (Clippy's driver is a workspace
    // wrapper: it would lint the guests and split their build cache.)
    for (key, _) in env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if key.starts_with("CARGO_BUILD_")
            || key.starts_with("CARGO_PROFILE_")
            || key.starts_with("CARGO_TARGET_")
            || matches!(
                key,
                "RUSTFLAGS"
                    | "CARGO_ENCODED_RUSTFLAGS"
                    | "CARGO_INCREMENTAL"
                    | "RUSTC_WORKSPACE_WRAPPER"
            )
        {
            cmd.env_remove(key);
        }
    }
    // Small guests: no debug info (the name section still names functions in
    // traps).
    cmd.env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo");

    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("could not run cargo to build the wasm guests: {e}"));
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("target may not be installed")
            || stderr.contains("can't find crate for `core`")
        {
            panic!("{}\n\n{stderr}", missing_target_message());
        }
        panic!("building the wasm guests failed ({cmd:?}):\n{stderr}");
    }
}
