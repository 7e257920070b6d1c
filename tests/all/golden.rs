//! Golden outputs of transforms through the boundary.
//!
//! Every guest — the built-ins and the `curate` examples in Rust, Python,
//! JavaScript and C, all on contract 0.2.0 (columns), and
//! `tests/guests/curate-v01`, the same `curate` on the older contract 0.1.0
//! (rows of values), which hosts still run — runs with `tributary transform
//! test` over the same records (`tests/golden/transforms/input.jsonl`: nulls,
//! non-ASCII text, nested data, duplicates, late rows, rows without a key or
//! an event time), in batches of 8 so the watermark moves between them. What
//! comes out and what was dropped or rejected must equal the checked-in
//! files, which were written by the binary before contract 0.2.0 existed
//! (every guest then crossed as rows): the columnar boundary changes the
//! cost, never the answer. The `curate` guests do the same thing in five
//! builds and share one file.
//!
//! `TRIBUTARY_BLESS=1` rewrites the files from the binary under test (only
//! when an intended change of output is reviewed).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::harness::*;

fn golden_dir() -> PathBuf {
    repo_root().join("tests/golden/transforms")
}

/// The rows `transform test` wrote, and its summary without the timing (the
/// one part that differs between runs).
fn run(module: &Path, config: &[&str]) -> (String, String) {
    let input = golden_dir().join("input.jsonl");
    let mut cmd = std::process::Command::new(binary());
    cmd.args(["transform", "test"])
        .arg(module)
        .arg("--input")
        .arg(&input)
        .args(["--batch-size", "8"]);
    for c in config {
        cmd.args(["--config", c]);
    }
    let out = cmd.output_within(Duration::from_secs(120));
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success(),
        "{} failed: {stderr}",
        module.display()
    );
    let summary = stderr
        .lines()
        .filter(|l| l.starts_with("in ") || l.starts_with("  rejected:"))
        .map(|l| match l.rsplit_once(" | ") {
            Some((head, tail)) if tail.ends_with("µs per record") => head.to_string(),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    (
        String::from_utf8_lossy(&out.stdout).to_string(),
        summary + "\n",
    )
}

/// Compares (or, blessing, writes) `name`'s golden rows and summary.
fn check(name: &str, who: &str, (rows, summary): (String, String)) {
    let (rows_file, summary_file) = (
        golden_dir().join(format!("{name}.out.jsonl")),
        golden_dir().join(format!("{name}.summary.txt")),
    );
    if std::env::var_os("TRIBUTARY_BLESS").is_some() {
        std::fs::write(&rows_file, &rows).unwrap();
        std::fs::write(&summary_file, &summary).unwrap();
        return;
    }
    let want_rows = std::fs::read_to_string(&rows_file).unwrap();
    let want_summary = std::fs::read_to_string(&summary_file).unwrap();
    // Row by row, parsed: a difference names the row.
    let parse = |text: &str| -> Vec<serde_json::Value> {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let (got, want) = (parse(&rows), parse(&want_rows));
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(
            g,
            w,
            "{who}: output row {i} differs from {}",
            rows_file.display()
        );
    }
    assert_eq!(got.len(), want.len(), "{who}: number of output rows");
    assert_eq!(summary, want_summary, "{who}: drops and rejections");
}

#[test]
fn builtins_give_the_golden_outputs() {
    let cases: [(&str, &[&str]); 4] = [
        ("watermark", &["event_time=published_at", "delay=5 minutes"]),
        (
            "dedup-first",
            &["key=id", "event_time=published_at", "within=10 minutes"],
        ),
        (
            "dedup-latest",
            &[
                "key=id",
                "event_time=published_at",
                "within=10 minutes",
                "keep=latest",
            ],
        ),
        (
            "dedup-first-json-keys",
            &["key=tags", "event_time=published_at", "within=1 hour"],
        ),
    ];
    for (name, config) in cases {
        let module = name.split('-').next().unwrap();
        let module = PathBuf::from(format!("builtin:{module}"));
        check(name, name, run(&module, config));
    }
}

#[test]
fn curate_in_every_language_gives_the_golden_output() {
    let v01 = guest("curate-v01");
    for (lang, module) in [
        ("rust example", rust_transform()),
        ("python example", python_transform()),
        ("js example", js_transform()),
        ("c example", c_transform()),
        (
            "rust on contract 0.1.0 (tests/guests/curate-v01)",
            v01.as_path(),
        ),
    ] {
        check("curate", lang, run(module, &["block_sources=bbc, ap"]));
    }
}
