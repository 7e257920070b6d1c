//! `tributary transform inspect|test`: look at a transform module, and run
//! it on sample records, without a pipeline.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tributary_file::{FieldKind, FieldSpec, JsonRows, UnknownFields};

use crate::builtin;
use crate::wasm::{
    Limits, TransformChain, TransformEngine, TransformSpec, WIT_PACKAGE, WIT_VERSION, rows_as_json,
};

/// A module argument: a `.wasm` path or `builtin:<name>`.
pub fn read_module(module: &str) -> Result<Vec<u8>, String> {
    if let Some(name) = module.strip_prefix("builtin:") {
        return builtin::builtin(name).map(<[u8]>::to_vec).ok_or_else(|| {
            format!(
                "there is no built-in transform `{name}`; built-ins: {}",
                builtin::BUILTIN_NAMES.join(", ")
            )
        });
    }
    std::fs::read(module).map_err(|e| format!("cannot read {module}: {e}"))
}

/// The report of `inspect`, or why the module cannot run here.
pub fn inspect(engine: &TransformEngine, module: &str) -> Result<String, String> {
    let bytes = read_module(module)?;
    let info = engine
        .describe(&bytes)
        .map_err(|e| format!("{module}: {e}"))?;
    let want = format!("{WIT_PACKAGE}/processor@{WIT_VERSION}");
    let processor: Vec<&String> = info
        .exports
        .iter()
        .filter(|e| e.starts_with(&format!("{WIT_PACKAGE}/processor")))
        .collect();
    let mut out = String::new();
    out.push_str(&format!("module: {module} ({} bytes)\n", bytes.len()));
    out.push_str(&format!("exports: {}\n", info.exports.join(", ")));
    out.push_str(&format!("imports: {}\n", info.imports.join(", ")));
    match processor.first() {
        Some(p) if **p == want => {
            out.push_str(&format!(
                "implements the world {WIT_PACKAGE}/transform@{WIT_VERSION}: this tributary runs it\n"
            ));
            Ok(out)
        }
        Some(p) => {
            let version = p.rsplit_once('@').map_or("(no version)", |(_, v)| v);
            Err(format!(
                "{module} implements {WIT_PACKAGE}@{version}, but this tributary hosts {WIT_PACKAGE}@{WIT_VERSION}: \
                 rebuild it against the wit/ folder of this version (it exports {p}, this host needs {want})"
            ))
        }
        None => Err(format!(
            "{module} is a component but not a Tributary transform: it does not export {want} (it exports: {})",
            if info.exports.is_empty() {
                "nothing".to_string()
            } else {
                info.exports.join(", ")
            }
        )),
    }
}

/// `transform component`: wraps the core module at `core` into a component
/// written to `output`, and returns `inspect`'s report of it. A component
/// that is not a transform this tributary runs is not written.
pub fn component(engine: &TransformEngine, core: &Path, output: &Path) -> Result<String, String> {
    let bytes = std::fs::read(core).map_err(|e| format!("cannot read {}: {e}", core.display()))?;
    let component =
        crate::guest_build::componentize(&bytes).map_err(|e| format!("{}: {e}", core.display()))?;
    let staged = output.with_extension("wasm.partial");
    std::fs::write(&staged, &component)
        .map_err(|e| format!("cannot write {}: {e}", staged.display()))?;
    let report = inspect(engine, &staged.to_string_lossy()).map_err(|e| {
        let _ = std::fs::remove_file(&staged);
        format!(
            "{e}\nhint: link the bindings' transform_component_type.o (from `tributary transform \
             bindings c`) and define the exports_tributary_transform_processor_* functions"
        )
    })?;
    std::fs::rename(&staged, output)
        .map_err(|e| format!("cannot write {}: {e}", output.display()))?;
    Ok(report.replace(&*staged.to_string_lossy(), &output.to_string_lossy()))
}

/// The column type a sample value suggests (RFC 3339 text is a timestamp).
fn kind_of(v: &Value) -> FieldKind {
    match v {
        Value::Bool(_) => FieldKind::Boolean,
        Value::Number(n) if n.is_i64() => FieldKind::Long,
        Value::Number(_) => FieldKind::Double,
        Value::String(s) if chrono::DateTime::parse_from_rfc3339(s).is_ok() => FieldKind::Timestamp,
        Value::Array(_) | Value::Object(_) => FieldKind::Json,
        _ => FieldKind::String,
    }
}

/// What `test` found.
#[derive(Debug)]
pub struct TestReport {
    pub output: Vec<Value>,
    pub summary: String,
}

/// Runs `module` with `config` over the JSON-lines records of `input` (the
/// columns inferred from the records, in batches of `batch_size`).
pub fn test(
    engine: &TransformEngine,
    module: &str,
    input: &Path,
    config: Map<String, Value>,
    batch_size: usize,
) -> Result<TestReport, String> {
    let text = std::fs::read_to_string(input)
        .map_err(|e| format!("cannot read {}: {e}", input.display()))?;
    let mut records = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(o)) => records.push(o),
            _ => return Err(format!("{}:{}: not a JSON object", input.display(), n + 1)),
        }
    }
    if records.is_empty() {
        return Err(format!("{} holds no records", input.display()));
    }
    // Columns: every field seen, typed by its first non-null value.
    let mut fields: Vec<FieldSpec> = Vec::new();
    for r in &records {
        for (k, v) in r {
            match fields.iter_mut().find(|f| &f.name == k) {
                Some(f) if f.kind == FieldKind::String && !v.is_null() && !v.is_string() => {
                    f.kind = kind_of(v)
                }
                Some(_) => {}
                None => fields.push(FieldSpec {
                    name: k.clone(),
                    kind: kind_of(v),
                    required: false,
                }),
            }
        }
    }
    let bytes = read_module(module)?;
    let mut chain = TransformChain::new(
        engine,
        vec![TransformSpec {
            name: "under-test".into(),
            bytes,
            config: Value::Object(config),
            limits: Limits {
                memory_bytes: 256 * 1024 * 1024,
                call_timeout: Duration::from_secs(5),
            },
        }],
    )
    .map_err(|e| e.to_string())?;
    let mut rows =
        JsonRows::new("input", fields, UnknownFields::Ignore).map_err(|e| e.to_string())?;
    let mut output = Vec::new();
    let (mut late, mut duplicates, mut filtered) = (0usize, 0u64, 0u64);
    let mut rejected = Vec::new();
    let mut spent = Duration::ZERO;
    for chunk in records.chunks(batch_size.max(1)) {
        for r in chunk {
            rows.push_object(r)
                .map_err(|e| format!("a record does not fit the inferred columns: {e}"))?;
        }
        let batch = rows.finish().map_err(|e| e.to_string())?;
        let started = Instant::now();
        let out = chain.run(&batch).map_err(|e| e.to_string())?;
        spent += started.elapsed();
        for b in &out.batches {
            output.extend(rows_as_json(b));
        }
        late += out.late.len();
        duplicates += out.duplicates;
        filtered += out.filtered;
        rejected.extend(
            out.rejected
                .into_iter()
                .map(|r| format!("  rejected: {} — {}", r.reason, r.record)),
        );
    }
    let per_record = spent.as_secs_f64() * 1e6 / records.len() as f64;
    let mut summary = format!(
        "in {} out {} | dropped: late {late}, duplicate {duplicates}, filtered {filtered} | rejected {} | \
         state entries {} | watermark {} | {per_record:.2} µs per record\n",
        records.len(),
        output.len(),
        rejected.len(),
        chain.state_entries(),
        chain
            .watermark()
            .map_or("none".to_string(), crate::metrics::format_micros),
    );
    for r in rejected {
        summary.push_str(&r);
        summary.push('\n');
    }
    Ok(TestReport { output, summary })
}

/// The WIT package, copied into every scaffolded transform.
pub const WIT: &str = include_str!("../../wit/transform.wit");

/// `tributary transform new <name> --lang rust|python|js|c`: a buildable
/// transform (upper-cases the text field named by its `field` config) in
/// `parent/<name>`. Returns the files written.
pub fn scaffold(name: &str, lang: &str, parent: &Path) -> Result<Vec<std::path::PathBuf>, String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !ok {
        return Err(format!(
            "name `{name}`: use lower-case letters, digits, `-` and `_`, starting with a letter"
        ));
    }
    let dir = parent.join(name);
    if dir.exists() {
        return Err(format!(
            "{} exists already; pick another name or remove it",
            dir.display()
        ));
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
            return Err(format!(
                "--lang {other}: choose `rust`, `python`, `js` or `c`"
            ));
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

const RUST_CARGO: &str = r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
# The guest SDK, copied from this tributary's transforms/sdk with its WIT.
tributary-transform-sdk = { path = "sdk" }

# A crate of its own, not a member of an enclosing workspace.
[workspace]
"#;

const RUST_LIB: &str = r#"//! A Tributary transform: upper-cases the text field named by `field`.
//! Build: cargo build --release --target wasm32-wasip2

use tributary_transform_sdk::{Batch, Config, Output, Transform, Value};

struct Shout {
    field: String,
}

impl Transform for Shout {
    fn init(config: Config) -> Result<Self, String> {
        config.only(&["field"])?;
        let field = config
            .require("field")
            .map_err(|_| "config needs `field`, the text field to upper-case".to_string())?;
        Ok(Shout {
            field: field.to_string(),
        })
    }

    /// Only this field crosses into the sandbox.
    fn fields(&self) -> Option<Vec<String>> {
        Some(vec![self.field.clone()])
    }

    fn process(&mut self, batch: &Batch, out: &mut Output) -> Result<(), String> {
        let column = batch.column(&self.field)?;
        out.reserve(batch.len());
        for row in batch.rows() {
            match row.text(column) {
                Some(text) => out.update(
                    row.index(),
                    [(self.field.as_str(), Value::Text(text.to_uppercase()))],
                ),
                None => out.keep(row.index()),
            }
        }
        Ok(())
    }
}

tributary_transform_sdk::export_transform!(Shout);
"#;

const RUST_README: &str = r#"# {name}

A Tributary transform in Rust, on the guest SDK in `sdk/` (a copy of
tributary's `transforms/sdk`; `sdk/wit/transform.wit` is the contract).

    rustup target add wasm32-wasip2
    cargo build --release --target wasm32-wasip2
    tributary transform inspect target/wasm32-wasip2/release/{file}.wasm
    tributary transform test target/wasm32-wasip2/release/{file}.wasm --input sample.jsonl --config field=title

In a pipeline: {"name": "{name}", "module": "path/to/{file}.wasm", "config": {"field": "title"}}
"#;

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

const SDK_CARGO: &str = r#"[package]
name = "tributary-transform-sdk"
version = "0.1.0"
edition = "2024"
publish = false

[dependencies]
wit-bindgen = "0.61"
"#;

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

const PYTHON_APP: &str = r#""""A Tributary transform: upper-cases the text field named by `field`."""

from typing import List, Optional, Tuple

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types

# Set by `init`. Module-level: componentize-py makes a new Processor object
# for every call.
FIELD = [""]


class Processor(exports.Processor):
    def init(self, config: List[Tuple[str, str]]) -> Optional[List[str]]:
        for key, value in config:
            if key != "field":
                raise Err(f"unknown config key `{key}`: expected `field`")
            FIELD[0] = value
        if not FIELD[0]:
            raise Err("config needs `field`, the text field to upper-case")
        return [FIELD[0]]

    def process(self, batch: types.Batch) -> types.Output:
        names = [f.name for f in batch.fields]
        if FIELD[0] not in names:
            raise Err(f"the records have no field `{FIELD[0]}`")
        col = names.index(FIELD[0])
        emit = []
        for n, row in enumerate(batch.rows):
            value = row[col]
            if isinstance(value, types.Value_Text):
                emit.append(types.Emit_Update((n, [(FIELD[0], types.Value_Text(value.value.upper()))])))
            else:
                emit.append(types.Emit_Keep(n))
        return types.Output(emit=emit, dropped=[], rejected=[])

    def on_watermark(self, watermark: int) -> types.Output:
        return types.Output(emit=[], dropped=[], rejected=[])
"#;

const PYTHON_BUILD: &str = r#"#!/usr/bin/env bash
# Builds {name}.wasm with componentize-py (pip install componentize-py).
set -euo pipefail
cd "$(dirname "$0")"
exec "${COMPONENTIZE_PY:-componentize-py}" -d wit -w transform componentize app -o {name}.wasm
"#;

const PYTHON_README: &str = r#"# {name}

A Tributary transform in Python. `wit/transform.wit` is the contract.

    pip install componentize-py
    ./build.sh
    tributary transform test {name}.wasm --input sample.jsonl --config field=title

In a pipeline: {"name": "{name}", "module": "path/to/{name}.wasm", "config": {"field": "title"}}
"#;

const JS_SOURCE: &str = r#"// A Tributary transform: upper-cases the text field named by `field`.
let field = "";

export const processor = {
  init(config) {
    for (const [key, value] of config) {
      if (key !== "field") throw `unknown config key \`${key}\`: expected \`field\``;
      field = value;
    }
    if (!field) throw "config needs `field`, the text field to upper-case";
    return [field];
  },
  process(batch) {
    const col = batch.fields.findIndex((f) => f.name === field);
    if (col < 0) throw `the records have no field \`${field}\``;
    const emit = batch.rows.map((row, n) =>
      row[col].tag === "text"
        ? { tag: "update", val: [n, [[field, { tag: "text", val: row[col].val.toUpperCase() }]]] }
        : { tag: "keep", val: n });
    return { emit, dropped: [], rejected: [] };
  },
  onWatermark(_watermark) {
    return { emit: [], dropped: [], rejected: [] };
  },
};
"#;

const JS_BUILD_MJS: &str = r#"// node build.mjs <source.js> <wit folder> <out.wasm>: componentize-js, called
// directly (`jco componentize` mishandles --wit paths).
import { componentize } from "@bytecodealliance/componentize-js";
import { readFile, writeFile } from "node:fs/promises";

const [source, wit, out] = process.argv.slice(2);
const { component } = await componentize(await readFile(source, "utf8"), {
  witPath: wit,
  worldName: "transform",
  disableFeatures: ["random", "stdio", "clocks", "http", "fetch-event"],
});
await writeFile(out, component);
"#;

const JS_PACKAGE: &str = r#"{
  "name": "{name}",
  "private": true,
  "type": "module",
  "devDependencies": {
    "@bytecodealliance/componentize-js": "0.23.0",
    "@bytecodealliance/preview2-shim": "0.25.0"
  }
}
"#;

const JS_BUILD: &str = r#"#!/usr/bin/env bash
# Builds {name}.wasm with componentize-js (Node.js and npm).
set -euo pipefail
cd "$(dirname "$0")"
[ -d node_modules/@bytecodealliance/componentize-js ] || npm install --no-audit --no-fund >&2
exec node build.mjs transform.js wit {name}.wasm
"#;

const JS_README: &str = r#"# {name}

A Tributary transform in JavaScript. `wit/transform.wit` is the contract.

    ./build.sh
    tributary transform test {name}.wasm --input sample.jsonl --config field=title

In a pipeline: {"name": "{name}", "module": "path/to/{name}.wasm", "config": {"field": "title"}}
"#;

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
