//! `tributary transform inspect` and `tributary transform test`, on the
//! built-ins, the Python example, a test guest still on contract 0.1.0, a
//! core module and a module built for another version of the WIT package.

use std::process::Command;
use std::time::Duration;

use crate::harness::*;

fn tributary(args: &[&str]) -> std::process::Output {
    Command::new(binary())
        .args(args)
        .output_within(Duration::from_secs(120))
}

/// The JSON-lines rows a successful `transform test` printed.
fn output_rows(out: &std::process::Output) -> Vec<serde_json::Value> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn inspect_names_the_world_and_refuses_what_cannot_run() {
    let out = tributary(&["transform", "inspect", "builtin:dedup"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("exports: tributary:transform/processor@0.2.0"),
        "{text}"
    );
    assert!(text.contains("this tributary runs it"), "{text}");
    assert!(
        text.contains("contract version: 0.2.0 (the current one"),
        "{text}"
    );

    // The Python example speaks 0.2.0 too; a test guest built on purpose
    // against 0.1.0 (tests/guests) still runs, and inspect says which
    // version each speaks.
    for (module, version) in [
        (python_transform().to_path_buf(), "0.2.0 (the current one"),
        (guest("trap"), "0.1.0 (an older one, still run"),
    ] {
        let out = tributary(&["transform", "inspect", module.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&format!("contract version: {version}")),
            "{}: {text}",
            module.display()
        );
    }

    // A core module is not a component.
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let out = tributary(&["transform", "inspect", core.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("core WebAssembly module, not a component"),
        "{err}"
    );

    // The Python example built against a WIT package version newer than any
    // this host runs.
    let wit = dir.path().join("wit");
    std::fs::create_dir_all(&wit).unwrap();
    let text = std::fs::read_to_string(repo_root().join("wit/transform.wit")).unwrap();
    assert!(text.contains("package tributary:transform@0.2.0;"));
    std::fs::write(
        wit.join("transform.wit"),
        text.replace(
            "package tributary:transform@0.2.0;",
            "package tributary:transform@0.9.0;",
        ),
    )
    .unwrap();
    let newer = dir.path().join("newer.wasm");
    let tool = std::path::Path::new(&python()).with_file_name("componentize-py");
    let built = Command::new(if tool.exists() {
        tool
    } else {
        "componentize-py".into()
    })
    .arg("-d")
    .arg(&wit)
    .args(["-w", "transform", "componentize", "app", "-o"])
    .arg(&newer)
    .current_dir(repo_root().join("examples/transforms/python"))
    .output_within(Duration::from_secs(300));
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let out = tributary(&["transform", "inspect", newer.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("implements tributary:transform@0.9.0")
            && err.contains("hosts tributary:transform@0.2.0 and @0.1.0"),
        "{err}"
    );

    // And a pipeline using it fails before it reads anything, saying why.
    let s = Scratch::new("newer_wit");
    let pipeline = s.pipeline(
        serde_json::json!({"type": "generator", "records": 10}),
        serde_json::json!([{"name": "newer", "module": newer}]),
    );
    let stderr = assert_failed(&s.run(&pipeline));
    assert!(
        stderr.contains("transform `newer`")
            && stderr.contains("implements tributary:transform@0.9.0")
            && stderr.contains("rebuild it"),
        "{stderr}"
    );
}

#[test]
fn test_runs_a_module_on_sample_records() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        [
            r#"{"id": "1", "source": "bbc", "title": "one two", "author": "Ann", "published_at": "2026-01-01T10:00:00Z"}"#,
            r#"{"id": "2", "source": "ap", "title": "three four five", "author": null, "published_at": "2026-01-01T10:01:00Z"}"#,
            r#"{"id": "2", "source": "ap", "title": "three four five", "author": null, "published_at": "2026-01-01T10:01:00Z"}"#,
            r#"{"id": "3", "source": "dpa", "title": "six", "author": "Bob", "published_at": "2026-01-01T10:02:00Z"}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let input = input.to_str().unwrap();

    let out = tributary(&[
        "transform",
        "test",
        python_transform().to_str().unwrap(),
        "--input",
        input,
        "--config",
        "block_sources=bbc",
    ]);
    let rows = output_rows(&out);
    assert_eq!(rows.len(), 3);
    assert!(
        rows.iter()
            .all(|r| r["source"] != "bbc" && r["title_words"].is_u64())
    );
    assert_eq!(rows[2]["author"], "B***");
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(
        summary.contains("in 4 out 3 | dropped: late 0, duplicate 0, filtered 1"),
        "{summary}"
    );
    assert!(summary.contains("µs per record"), "{summary}");

    let out = tributary(&[
        "transform",
        "test",
        "builtin:dedup",
        "--input",
        input,
        "--config",
        "key=id",
        "--config",
        "event_time=published_at",
        "--config",
        "within=2 hours",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(
        summary.contains("duplicate 1") && summary.contains("state entries 3"),
        "{summary}"
    );

    // A config the transform refuses is an error naming the problem.
    let out = tributary(&[
        "transform",
        "test",
        python_transform().to_str().unwrap(),
        "--input",
        input,
        "--config",
        "blok_sources=bbc",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown config key `blok_sources`"), "{err}");
}

/// `transform new` writes a transform that builds with its language's
/// toolchain and runs: upper-casing the field it is told.
#[test]
fn new_scaffolds_transforms_that_build_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        "{\"id\": \"1\", \"title\": \"quiet news\"}\n{\"id\": \"2\", \"title\": null}\n",
    )
    .unwrap();
    let new = |name: &str, lang: &str| {
        let out = Command::new(binary())
            .args(["transform", "new", name, "--lang", lang])
            .current_dir(dir.path())
            .output_within(Duration::from_secs(60));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let run = |module: &std::path::Path| {
        let out = tributary(&[
            "transform",
            "test",
            module.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--config",
            "field=title",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows[0]["title"], "QUIET NEWS");
        assert!(rows[1]["title"].is_null());
    };

    // Rust: cargo for wasm32-wasip2, in a target folder of its own.
    new("shout", "rust");
    let target = dir.path().join("target");
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .current_dir(dir.path().join("shout"))
        .env("CARGO_TARGET_DIR", &target);
    for (key, _) in std::env::vars() {
        if key.starts_with("CARGO_") && key != "CARGO_HOME" {
            cargo.env_remove(key);
        }
    }
    cargo.env("CARGO_TARGET_DIR", &target);
    let built = cargo.output_within(Duration::from_secs(600));
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    run(&target.join("wasm32-wasip2/release/shout.wasm"));

    // Python: its build.sh with componentize-py.
    new("shout_py", "python");
    let tool = std::path::Path::new(&python()).with_file_name("componentize-py");
    let built = Command::new(dir.path().join("shout_py/build.sh"))
        .env(
            "COMPONENTIZE_PY",
            if tool.exists() {
                tool
            } else {
                "componentize-py".into()
            },
        )
        .output_within(Duration::from_secs(300));
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    run(&dir.path().join("shout_py/shout_py.wasm"));

    // JavaScript: its build.sh with componentize-js (npm install first).
    new("shout_js", "js");
    let built =
        Command::new(dir.path().join("shout_js/build.sh")).output_within(Duration::from_secs(600));
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    run(&dir.path().join("shout_js/shout_js.wasm"));

    // C: its build.sh with clang, bindings and component from tributary.
    new("shout_c", "c");
    let built = Command::new(dir.path().join("shout_c/build.sh"))
        .env("TRIBUTARY_BIN", binary())
        .output_within(Duration::from_secs(300));
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    run(&dir.path().join("shout_c/shout_c.wasm"));

    // A name taken, a bad name, a language not offered: clear refusals.
    for (name, lang, says) in [
        ("shout", "rust", "exists already"),
        ("Shout", "rust", "lower-case"),
        ("other", "cobol", "choose `rust`, `python`, `js` or `c`"),
    ] {
        let out = Command::new(binary())
            .args(["transform", "new", name, "--lang", lang])
            .current_dir(dir.path())
            .output_within(Duration::from_secs(60));
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains(says));
    }
}

/// The C toolchain commands refuse what they cannot make into a transform,
/// and say what to do.
#[test]
fn bindings_and_component_refuse_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = tributary(&["transform", "bindings", "cobol"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("writes C bindings"));

    // A core module without the world's type makes a component that exports
    // nothing: refused, and no file is left behind.
    let core = dir.path().join("empty.core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let target = dir.path().join("empty.wasm");
    let component = || {
        tributary(&[
            "transform",
            "component",
            core.to_str().unwrap(),
            "-o",
            target.to_str().unwrap(),
        ])
    };
    let out = component();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a Tributary transform"), "{err}");
    assert!(err.contains("transform_component_type.o"), "{err}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "only the input is left"
    );

    // Not wasm at all.
    std::fs::write(&core, b"int main() {}").unwrap();
    let out = component();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot make a component"));
}
