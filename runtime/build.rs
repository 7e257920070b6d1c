//! Builds the WebAssembly guests of the workspace for `wasm32-wasip2`:
//! the built-in transforms (`transforms/*`, embedded in the binary) and the
//! sandbox test guests (`tests/guests/*`, used by tests from `OUT_DIR`).
//!
//! A nested `cargo build` with its own target directory: sharing the outer
//! one would deadlock on its lock.

use std::path::{Path, PathBuf};
use std::process::Command;

fn guest_packages(root: &Path, folder: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(root.join(folder)) else {
        return out;
    };
    for e in entries.flatten() {
        let manifest = e.path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        println!("cargo:rerun-if-changed={}", e.path().join("src").display());
        println!("cargo:rerun-if-changed={}", manifest.display());
        let package = text
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("name = \"")
                    .and_then(|r| r.strip_suffix('"'))
            })
            .unwrap_or_else(|| panic!("{} has no package name", manifest.display()));
        out.push((
            package.to_string(),
            e.file_name().to_string_lossy().into_owned(),
        ));
    }
    out.sort();
    out
}

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed={}", root.join("wit").display());

    let transforms = guest_packages(&root, "transforms");
    let test_guests = guest_packages(&root, "tests/guests");
    // <target>/release/build/tributary-<hash>/out → <target>/wasm-guests
    let target_dir = out_dir
        .ancestors()
        .nth(4)
        .map(|t| t.join("wasm-guests"))
        .unwrap_or_else(|| out_dir.join("wasm-guests"));

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(&target_dir);
    for (package, _) in transforms.iter().chain(&test_guests) {
        cmd.args(["-p", package]);
    }
    // Nothing of the outer build leaks into the guests' build.
    for (key, _) in std::env::vars() {
        if key.starts_with("CARGO_") && key != "CARGO_HOME"
            || key == "RUSTFLAGS"
            || key == "RUSTC_WRAPPER"
        {
            cmd.env_remove(key);
        }
    }
    cmd.env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo");
    let output = cmd.output().expect("run cargo for the wasm guests");
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("wasm32-wasip2") && stderr.contains("target may not be installed") {
            panic!("the wasm32-wasip2 target is missing: run `rustup target add wasm32-wasip2`");
        }
        panic!("building the wasm guests failed:\n{stderr}");
    }
    let built = target_dir.join("wasm32-wasip2/release");
    let guests = out_dir.join("guests");
    std::fs::create_dir_all(&guests).unwrap();
    for (package, dir) in transforms.iter().chain(&test_guests) {
        let from = built.join(format!("{}.wasm", package.replace('-', "_")));
        let to = guests.join(format!("{dir}.wasm"));
        std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
    }
    println!("cargo:rustc-env=TRIBUTARY_GUEST_DIR={}", guests.display());
}
