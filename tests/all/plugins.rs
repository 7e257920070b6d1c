//! Connector plugins: sinks in shared libraries, built apart from the
//! binary, loaded from a plugin folder, chosen by pipeline JSON alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::harness::*;
use crate::kafka_env::{free_port, wait_for_port};

/// The example plugin and the test plugins, built by cargo in a target
/// folder of their own (not with the binary), copied into one plugin folder.
pub(crate) fn plugin_folder() -> &'static Path {
    static BUILT: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, dir) = BUILT.get_or_init(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join("target"))
            .join("example-plugins");
        let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        for (key, _) in std::env::vars() {
            if key.starts_with("CARGO_") && key != "CARGO_HOME" {
                cargo.env_remove(key);
            }
        }
        let built = cargo
            .args(["build", "--release", "--locked"])
            .args(["-p", "tributary-example-csv-sink"])
            .args(["-p", "tributary-test-plugin-flaky"])
            .args(["-p", "tributary-test-plugin-wrong-abi"])
            .current_dir(repo_root())
            .env("CARGO_TARGET_DIR", &target)
            .output_within(Duration::from_secs(900));
        assert!(
            built.status.success(),
            "building the plugins failed: {}",
            String::from_utf8_lossy(&built.stderr)
        );
        let folder = tempfile::tempdir().unwrap();
        let dir = folder.path().join("plugins");
        std::fs::create_dir(&dir).unwrap();
        for lib in [
            "tributary_example_csv_sink",
            "tributary_test_plugin_flaky",
            "tributary_test_plugin_wrong_abi",
        ] {
            let file = format!("lib{lib}.so");
            std::fs::copy(target.join("release").join(&file), dir.join(&file)).unwrap();
        }
        (folder, dir)
    });
    dir
}

fn checksum(path: &Path) -> String {
    format!("{:x}", Sha256::digest(std::fs::read(path).unwrap()))
}

/// `run --available-now` with the plugin folder.
fn run_with_plugins(s: &Scratch, pipeline: &Value) -> std::process::Output {
    let path = s.write_pipeline(pipeline);
    s.command(&["run", "--available-now", "--progress-interval", "0"])
        .arg("--plugin-path")
        .arg(plugin_folder())
        .arg(&path)
        .output_within(RUN_LIMIT)
}

/// The `id` of every row of the committed CSV files in `dir`, counted.
pub(crate) fn csv_ids(dir: &Path) -> BTreeMap<String, u32> {
    let mut ids = BTreeMap::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut lines = text.lines();
        assert!(
            lines.next().unwrap().starts_with("id,"),
            "{}",
            file.display()
        );
        for line in lines {
            *ids.entry(line.split(',').next().unwrap().to_string())
                .or_insert(0) += 1;
        }
    }
    ids
}

/// A pipeline writes to Iceberg; its JSON is changed to the plugin's sink and
/// it runs again with the same binary (checksum unchanged): the plugin's
/// files hold exactly the records the table holds.
#[test]
fn a_pipeline_switches_to_a_plugin_sink_by_json_alone() {
    let s = Scratch::new("plugin_swap");
    let bin_before = checksum(binary());
    let source = json!({"type": "generator", "seed": 8, "records": 20000});
    let mut pipeline = s.pipeline(source, watermark_and_dedup("2 hours"));
    assert_ok(&run_with_plugins(&s, &pipeline));
    let table = s.inspect(&["--rows"]).unwrap();
    let mut in_table = BTreeMap::new();
    for r in table["records"].as_array().unwrap() {
        *in_table
            .entry(r["id"].as_str().unwrap().to_string())
            .or_insert(0u32) += 1;
    }

    pipeline["sink"] = json!({"type": "csv", "path": s.path("csv")});
    // The plugin's guarantee crosses the ABI: exactly-once may be asked for.
    pipeline["delivery"] = json!("exactly-once");
    let stderr = assert_ok(&run_with_plugins(&s, &pipeline));
    assert!(stderr.contains("(plugin `csv`)"), "{stderr}");
    assert!(stderr.contains("delivery exactly-once"), "{stderr}");
    assert_eq!(checksum(binary()), bin_before, "the binary was not rebuilt");
    let in_csv = csv_ids(&s.path("csv"));
    assert_eq!(in_csv.len(), in_table.len());
    assert_eq!(in_csv, in_table, "the same records, once each");

    // The plugin shows next to the built-ins.
    let out = Command::new(binary())
        .args(["plugins", "--plugin-path"])
        .arg(plugin_folder())
        .output_within(Duration::from_secs(60));
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.contains("csv") && listed.contains("plugin"),
        "{listed}"
    );
    assert!(
        listed.contains("iceberg") && listed.contains("built in"),
        "{listed}"
    );
}

/// A plugin that panics, and one that returns an error, each stop the
/// pipeline with a message naming the plugin and the call; run again without
/// the fault, the output holds every record exactly once.
#[test]
fn a_panicking_or_failing_plugin_stops_cleanly_and_loses_nothing() {
    let source = json!({"type": "generator", "seed": 9, "records": 20000});
    let expected = {
        let s = Scratch::new("plugin_clean");
        let mut p = s.pipeline(source.clone(), json!([]));
        p["sink"] = json!({"type": "csv", "path": s.path("csv")});
        assert_ok(&run_with_plugins(&s, &p));
        csv_ids(&s.path("csv"))
    };
    assert_eq!(expected.values().sum::<u32>(), 20000);
    for (fault, says) in [
        (
            "panic",
            "panicked in write: flaky-csv was told to panic in epoch 3",
        ),
        (
            "error",
            "commit failed: flaky-csv was told to fail the commit of epoch 3",
        ),
    ] {
        let s = Scratch::new(&format!("plugin_{fault}"));
        let mut p = s.pipeline(source.clone(), json!([]));
        p["trigger"]["max_records_per_epoch"] = json!(5000);
        p["sink"] =
            json!({"type": "flaky-csv", "path": s.path("csv"), "fail": fault, "fail_at_epoch": 3});
        let stderr = assert_failed(&run_with_plugins(&s, &p));
        assert!(
            stderr.contains("plugin sink `flaky-csv`") && stderr.contains(says),
            "{fault}: {stderr}"
        );
        assert_eq!(
            csv_ids(&s.path("csv")).values().sum::<u32>(),
            10000,
            "{fault}: epochs 1 and 2 committed, 3 not"
        );
        p["sink"] = json!({"type": "flaky-csv", "path": s.path("csv")});
        let stderr = assert_ok(&run_with_plugins(&s, &p));
        assert!(
            stderr.contains("resuming after epoch 2"),
            "{fault}: {stderr}"
        );
        assert_eq!(
            csv_ids(&s.path("csv")),
            expected,
            "{fault}: nothing lost, nothing twice"
        );
    }
}

/// A library built for another plugin ABI is refused with the version it
/// needs; the other plugins of the folder still load, and the REST worker
/// lists them.
#[test]
fn a_plugin_for_another_abi_is_refused_and_the_rest_load() {
    let out = Command::new(binary())
        .args(["plugins", "--plugin-path"])
        .arg(plugin_folder())
        .output_within(Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(2), "a refused library is an error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("libtributary_test_plugin_wrong_abi.so")
            && err.contains("built for plugin ABI version 2, and this tributary loads version 1"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("flaky-csv"));

    // A typo'd sink type names the plugin folder and the refused library.
    let s = Scratch::new("plugin_typo");
    let mut p = s.pipeline(json!({"type": "generator", "records": 10}), json!([]));
    p["sink"] = json!({"type": "cvs", "path": "x"});
    let path = s.write_pipeline(&p);
    let out = s
        .command(&["validate", "--plugin-path"])
        .arg(plugin_folder())
        .arg(&path)
        .output_within(Duration::from_secs(60));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("`cvs` is not a known sink")
            && err.contains("\"csv\" (plugin)")
            && err.contains("refused 1 library"),
        "{err}"
    );

    // GET /connector-plugins lists the plugins next to the built-ins.
    let port = free_port();
    let data = s.path("worker");
    let log = s.path("worker.log");
    let mut worker = Command::new(binary())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(&data)
        .arg("--plugin-path")
        .arg(plugin_folder())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let listed = wait_for_port(port, &mut worker, "the worker", &log).map(|()| {
        reqwest::blocking::get(format!("http://127.0.0.1:{port}/connector-plugins"))
            .unwrap()
            .json::<Value>()
            .unwrap()
    });
    let _ = worker.kill();
    let _ = worker.wait();
    let listed = listed.unwrap();
    let classes: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["class"].as_str().unwrap())
        .collect();
    assert!(
        classes.contains(&"csv") && classes.contains(&"iceberg"),
        "{listed}"
    );
}
