//! The web console (`/ui/`, docs/console.md) in a real browser: headless
//! Chromium (Debian's package) driven by Playwright's library from npm
//! (`tests/console/console.mjs`, installed by `scripts/setup.sh`), against
//! a worker with a bearer token and one failing connector. The browser signs
//! in, creates a connector through the form (a typo shown next to its field,
//! then fixed), watches its input-rate chart move and its commit timeline
//! grow, pauses and resumes it, sees the failing one marked with its reason,
//! and makes no request outside the worker's address. Its screenshots are
//! kept in `$CARGO_TARGET_DIR/test-artifacts/console/`.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::*;
use crate::serve::Worker;

const TOKEN: &str = "console-test-token-0123456789";

/// Where the screenshots go: beside the build, so they outlive the test.
fn artifacts() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // $CARGO_TARGET_DIR/release/deps/all-<hash>
    let target = exe.ancestors().nth(3).unwrap().to_path_buf();
    target.join("test-artifacts/console")
}

fn call(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut req = http.request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().unwrap();
    let code = resp.status().as_u16();
    let text = resp.text().unwrap();
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[test]
fn console_in_a_browser() {
    let here = repo_root().join("tests/console");
    assert!(
        Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "Node.js is missing: run scripts/setup.sh (Debian's nodejs and npm)"
    );
    assert!(
        here.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed in {}: run scripts/setup.sh (npm ci there)",
        here.display()
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "{chromium} is missing: run scripts/setup.sh (Debian's chromium package)"
    );

    let data = tempfile::tempdir().unwrap();
    let token_file = data.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let guests = guest("trap").parent().unwrap().to_path_buf();
    let worker = Worker::start(
        &data.path().join("state"),
        &[
            "--auth-token-file",
            token_file.to_str().unwrap(),
            "--allow-path",
            guests.to_str().unwrap(),
        ],
    );
    let base = worker.base_url();

    // The assets are open (they hold no data); the data is not.
    let (code, _) = call(reqwest::Method::GET, &format!("{base}/ui/"), None, None);
    assert_eq!(code, 200);
    let (code, body) = call(
        reqwest::Method::GET,
        &format!("{base}/ui/api/connectors"),
        None,
        None,
    );
    assert_eq!(code, 401, "{body}");

    // A connector whose transform traps on every batch: FAILED, the trace
    // naming the transform.
    let bad = Scratch::new("bad");
    let mut config = bad.pipeline(
        json!({"type": "generator", "seed": 3, "records": 0, "rate_per_sec": 500}),
        json!([{"name": "trapper", "module": guest("trap")}]),
    );
    config["trigger"]["interval_ms"] = json!(300);
    let (code, body) = call(
        reqwest::Method::POST,
        &format!("{base}/connectors"),
        Some(TOKEN),
        Some(&json!({"name": "bad", "config": config})),
    );
    assert_eq!(code, 201, "{body}");

    let shots = artifacts();
    let _ = std::fs::remove_dir_all(&shots);
    let started = Instant::now();
    let out = Command::new("node")
        .arg(here.join("console.mjs"))
        .current_dir(&here)
        .env("CONSOLE_URL", &base)
        .env("CONSOLE_TOKEN", TOKEN)
        .env("CONSOLE_SHOTS", &shots)
        .env("CHROMIUM", &chromium)
        .output_within(Duration::from_secs(180));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the browser test failed ({}s; screenshots in {}):\n{stdout}\n{stderr}\nworker log:\n{}",
        started.elapsed().as_secs(),
        shots.display(),
        worker.log()
    );
    eprintln!("{stdout}");

    // What the page did, seen through the REST API: the connector it made
    // runs with the fixed config, and wrote rows.
    let (code, config) = call(
        reqwest::Method::GET,
        &format!("{base}/connectors/web/config"),
        Some(TOKEN),
        None,
    );
    assert_eq!(code, 200, "{config}");
    assert_eq!(config["trigger"]["interval_ms"], 1000, "{config}");
    assert!(config["trigger"].get("intervl_ms").is_none(), "{config}");
    let (_, status) = call(
        reqwest::Method::GET,
        &format!("{base}/connectors/web/status"),
        Some(TOKEN),
        None,
    );
    assert_eq!(status["connector"]["state"], "RUNNING", "{status}");
    let (_, page) = call(
        reqwest::Method::GET,
        &format!("{base}/ui/api/connectors/web"),
        Some(TOKEN),
        None,
    );
    assert!(page["table_rows"].as_u64().unwrap_or(0) > 0, "{page}");

    let mut names: Vec<String> = std::fs::read_dir(&shots)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "01-list-with-a-failing-connector.png",
            "02-config-typo-next-to-its-field.png",
            "03-connector-page-live.png",
            "04-paused.png",
            "05-list.png",
        ],
        "screenshots in {}",
        shots.display()
    );
    for name in &names {
        let bytes = std::fs::read(shots.join(name)).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
            "{name}: not a real screenshot ({} bytes)",
            bytes.len()
        );
    }
}
