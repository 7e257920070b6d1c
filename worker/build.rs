//! Embeds the console's one third-party library, uPlot, in the binary.
//!
//! uPlot comes from the npm registry (`worker/console/package.json`, pinned
//! in its `package-lock.json`); `scripts/setup.sh` runs `npm ci` there
//! before the build, as both README commands do. Its files are never copied
//! into the repository, and the build never reaches the network itself (a
//! build script that downloads is a build that breaks offline and hides
//! what it fetched): when the package is missing or is not the pinned
//! version, the build stops here and names the fix.

use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("console");
    let module = dir.join("node_modules/uplot");
    let wanted = pinned_version(&dir.join("package.json"));
    let installed = std::fs::read_to_string(module.join("package.json"))
        .ok()
        .and_then(|text| json_string(&text, "version"));
    let fix = format!(
        "run scripts/setup.sh, or `npm ci --prefix {}` (Node.js and npm; Debian: apt-get install nodejs npm)",
        dir.display()
    );
    match installed {
        None => panic!(
            "\n\nthe web console's chart library (uPlot {wanted}, from the npm registry) is not installed in {}:\n{fix}\n\n",
            module.display()
        ),
        Some(v) if v != wanted => panic!(
            "\n\nthe web console's chart library in {} is uPlot {v}, but worker/console/package.json pins {wanted}:\n{fix}\n\n",
            module.display()
        ),
        Some(_) => {}
    }
    for (var, file) in [
        ("TRIBUTARY_UPLOT_JS", "dist/uPlot.iife.min.js"),
        ("TRIBUTARY_UPLOT_CSS", "dist/uPlot.min.css"),
    ] {
        let path = module.join(file);
        assert!(path.exists(), "{} is missing: {fix}", path.display());
        println!("cargo:rustc-env={var}={}", path.display());
        println!("cargo:rerun-if-changed={}", path.display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        dir.join("package.json").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        module.join("package.json").display()
    );
}

/// The exact version `package.json` gives uPlot.
fn pinned_version(package_json: &Path) -> String {
    let text = std::fs::read_to_string(package_json)
        .unwrap_or_else(|e| panic!("{}: {e}", package_json.display()));
    json_string(&text, "uplot")
        .unwrap_or_else(|| panic!("{}: no \"uplot\" dependency", package_json.display()))
}

/// The string value of the first `"key": "value"` in a JSON text (enough
/// for npm's package files; the build script has no JSON parser).
fn json_string(text: &str, key: &str) -> Option<String> {
    let at = text.find(&format!("\"{key}\""))? + key.len() + 2;
    let rest = text[at..].trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_string())
}
