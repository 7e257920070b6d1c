//! Transforms written in other languages than Rust, built from source in
//! `examples/transforms/<lang>/` and run in real pipelines; the tables are
//! read back with PyIceberg.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::harness::*;

const BLOCKED: [&str; 2] = ["bbc", "ap"];

fn curate(module: &std::path::Path, config: Value, limits: Option<Value>) -> Value {
    let mut t = json!({"name": "curate", "module": module, "config": config});
    if let Some(l) = limits {
        t["limits"] = l;
    }
    t
}

/// Runs `transforms` over the same 20,000 generated articles and returns
/// the table's rows by id (the generator repeats some: the last copy), the
/// number of rows, and the run's stderr.
fn run_generator(name: &str, transforms: Value) -> (BTreeMap<String, Value>, u64, String) {
    let s = Scratch::new(name);
    let source = json!({"type": "generator", "seed": 21, "records": 20000});
    let out = s.run(&s.pipeline(source, transforms));
    let stderr = assert_ok(&out);
    let table = s.inspect(&["--rows"]).unwrap();
    let rows = table["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_string(), r.clone()))
        .collect();
    (rows, table["rows"].as_u64().unwrap(), stderr)
}

/// Checks the Python transform's effect on every row against the rows the
/// same pipeline delivers without it.
fn assert_curated(plain: &BTreeMap<String, Value>, curated: &BTreeMap<String, Value>) {
    let kept: Vec<&String> = plain
        .iter()
        .filter(|(_, r)| !BLOCKED.contains(&r["source"].as_str().unwrap()))
        .map(|(id, _)| id)
        .collect();
    assert!(kept.len() < plain.len(), "some sources were blocked");
    assert_eq!(
        curated.keys().collect::<Vec<_>>(),
        kept,
        "exactly the rows from sources not blocked"
    );
    for (id, row) in curated {
        let before = &plain[id];
        let title = before["title"].as_str().unwrap();
        assert_eq!(
            row["title_words"].as_u64(),
            Some(title.split_whitespace().count() as u64),
            "{row}"
        );
        match before["author"].as_str() {
            None => assert!(row["author"].is_null(), "{row}"),
            Some(a) => assert_eq!(
                row["author"].as_str().unwrap(),
                format!("{}***", a.chars().next().unwrap()),
                "{row}"
            ),
        }
        for same in ["source", "title", "url", "body", "published_at"] {
            assert_eq!(row[same], before[same], "{same} unchanged: {row}");
        }
    }
}

/// The same transform written in Rust, Python, JavaScript and C (the examples),
/// each built from source, each checked on every row.
#[test]
fn transforms_in_every_language_change_every_row_in_a_pipeline() {
    let (plain, plain_rows, _) = run_generator("poly_plain", json!([]));
    for (lang, module) in [
        ("rust", rust_transform()),
        ("py", python_transform()),
        ("js", js_transform()),
        ("c", c_transform()),
    ] {
        let (curated, curated_rows, stderr) = run_generator(
            &format!("{lang}_curated"),
            json!([curate(module, json!({"block_sources": "bbc, ap"}), None)]),
        );
        assert_curated(&plain, &curated);
        assert!(
            stderr.contains(&format!("filtered {}", plain_rows - curated_rows)),
            "{lang}: the blocked rows are counted as filtered:\n{stderr}"
        );
    }
}

#[test]
fn python_transform_chained_after_the_wasm_watermark_and_dedup() {
    let mut chain = watermark_and_dedup("2 hours");
    let (plain, _, _) = run_generator("py_chain_plain", chain.clone());
    chain.as_array_mut().unwrap().push(curate(
        python_transform(),
        json!({"block_sources": "bbc,ap"}),
        None,
    ));
    let (curated, _, stderr) = run_generator("py_chain", chain);
    assert_curated(&plain, &curated);
    // The Rust transforms did their part before it: no duplicates, no late.
    assert!(curated.keys().all(|id| !id.starts_with("late-")));
    assert!(stderr.contains(" dup "), "{stderr}");
}

/// The sandbox limits hold for large interpreted guests too, and for C.
/// (The JavaScript engine notices its own out-of-memory and fails the call
/// with it.)
#[test]
fn guest_limits_hold_in_every_language() {
    for (lang, module, misbehave, named) in [
        ("py", python_transform(), "spin", "time limit"),
        ("py", python_transform(), "membomb", "memory limit"),
        ("py", python_transform(), "trap", "trapped"),
        ("js", js_transform(), "spin", "time limit"),
        ("js", js_transform(), "membomb", "out of memory"),
        ("js", js_transform(), "trap", "curate was told to fail"),
        ("c", c_transform(), "spin", "time limit"),
        ("c", c_transform(), "membomb", "memory limit"),
        ("c", c_transform(), "trap", "trapped"),
    ] {
        let s = Scratch::new(&format!("{lang}_{misbehave}"));
        let source = json!({"type": "generator", "seed": 1, "records": 2000});
        // A memory bomb gets time enough to reach the memory cap even on a
        // loaded machine (an interpreter grows its heap slowly); with 1 s the
        // time limit sometimes stopped it first.
        let timeout_ms = if misbehave == "membomb" { 20_000 } else { 1000 };
        let limits = json!({"memory_mb": 256, "call_timeout_ms": timeout_ms});
        let pipeline = s.pipeline(
            source,
            json!([curate(
                module,
                json!({"misbehave": misbehave}),
                Some(limits)
            )]),
        );
        let stderr = assert_failed(&s.run(&pipeline));
        assert!(
            stderr.contains("transform `curate`") && stderr.contains(named),
            "{lang} {misbehave}: {stderr}"
        );
        assert_eq!(
            s.inspect(&[]).unwrap()["rows"],
            0,
            "{lang} {misbehave}: nothing committed"
        );
    }
}

/// A second start of a pipeline with a Python transform loads it from the
/// compile cache instead of compiling it again (the times are printed, not
/// asserted: a loaded machine makes both slow).
#[test]
fn second_start_loads_the_python_transform_from_the_compile_cache() {
    let s = Scratch::new("py_cache");
    let cache = s.path("compile-cache");
    let source = json!({"type": "generator", "seed": 5, "records": 1000});
    let pipeline = s.pipeline(
        source,
        json!([curate(
            python_transform(),
            json!({"block_sources": "bbc"}),
            None
        )]),
    );
    let path = s.write_pipeline(&pipeline);
    let start = |run: &str| {
        let began = std::time::Instant::now();
        let out = s
            .command(&["run", "--available-now", path.to_str().unwrap()])
            .env("TRIBUTARY_CACHE_DIR", &cache)
            .output_within(RUN_LIMIT);
        let stderr = assert_ok(&out);
        let line = stderr
            .lines()
            .find(|l| l.contains("transform `curate`: "))
            .unwrap_or_else(|| panic!("{run}: no load line:\n{stderr}"))
            .to_string();
        println!("{run} start: {line} (whole run {:?})", began.elapsed());
        line
    };
    assert!(start("first").contains("compiled in"));
    assert!(start("second").contains("loaded from the compile cache in"));
    let entries = std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .count();
    assert_eq!(entries, 1, "one compiled component in the cache");
}
