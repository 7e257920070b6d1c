//! `tributary serve` driven over HTTP as a Kafka Connect user would (with
//! reqwest, a client we did not write): the whole life cycle, a worker
//! killed with SIGKILL, bearer-token auth and secrets, and one failing
//! pipeline next to a healthy one. Tables are read back with PyIceberg.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::*;
use crate::kafka_env::{free_port, wait_for_port};

/// A worker process on a free loopback port, killed when dropped.
pub(crate) struct Worker {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Worker {
    /// A worker that may use the system's temporary folder, where the
    /// tests' scratch folders are, besides `data`.
    pub(crate) fn start(data: &Path, extra: &[&str]) -> Self {
        let tmp = std::env::temp_dir();
        let mut args = vec!["--allow-path", tmp.to_str().unwrap()];
        args.extend_from_slice(extra);
        Self::start_confined(data, &args)
    }

    /// A worker that may use only `data` and what `extra` allows.
    pub(crate) fn start_confined(data: &Path, extra: &[&str]) -> Self {
        let port = free_port();
        let log = data.with_extension("log");
        let mut child = Command::new(binary())
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
            .arg(data)
            .args(extra)
            .env("TRIBUTARY_LOG", "info")
            .env("TRIB_TEST_SECRET", "hunter2-very-secret")
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .unwrap(),
            )
            .spawn()
            .unwrap();
        wait_for_port(port, &mut child, "the worker", &log).unwrap();
        Self { child, port, log }
    }

    pub(crate) fn api(&self) -> Api {
        Api {
            base: format!("http://127.0.0.1:{}", self.port),
            token: None,
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap(),
        }
    }

    /// `http://127.0.0.1:<port>`, for clients other than [`Api`].
    pub(crate) fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) struct Api {
    base: String,
    token: Option<String>,
    http: reqwest::blocking::Client,
}

impl Api {
    pub(crate) fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }
    pub(crate) fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None)
    }
    pub(crate) fn state(&self, name: &str) -> String {
        let (code, status) = self.get(&format!("/connectors/{name}/status"));
        assert_eq!(code, 200, "{status}");
        status["connector"]["state"].as_str().unwrap().to_string()
    }
    pub(crate) fn wait_state(&self, name: &str, want: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (_, status) = self.get(&format!("/connectors/{name}/status"));
            if status["connector"]["state"] == want {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{name} never became {want}: {status}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Snapshots of the scratch table (0 when it does not exist yet).
fn snapshots(s: &Scratch) -> u64 {
    s.inspect(&[])
        .ok()
        .and_then(|t| t["snapshots"].as_u64())
        .unwrap_or(0)
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn generator_pipeline(s: &Scratch, records: u64, rate: u64) -> Value {
    let source = json!({"type": "generator", "seed": 11, "records": records, "rate_per_sec": rate});
    let mut p = s.pipeline(source, watermark_and_dedup("2 hours"));
    p["trigger"] = json!({"interval_ms": 300, "max_records_per_epoch": 5000, "batch_size": 500});
    p
}

#[test]
fn rest_api_life_cycle() {
    let data = tempfile::tempdir().unwrap();
    let worker = Worker::start(&data.path().join("state"), &[]);
    let api = worker.api();
    let s = Scratch::new("life");

    let (code, root) = api.get("/");
    assert_eq!(code, 200);
    assert!(root["version"].is_string(), "{root}");

    // Create; a second create with the same name is a conflict.
    let mut config = generator_pipeline(&s, 0, 3000);
    config.as_object_mut().unwrap().remove("name"); // the connector's name is used
    let body = json!({"name": "life", "config": config});
    let (code, created) = api.call("POST", "/connectors", Some(&body));
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["name"], "life");
    assert_eq!(created["config"]["name"], "life");
    let (code, conflict) = api.call("POST", "/connectors", Some(&body));
    assert_eq!(
        (code, conflict["error_code"].as_u64()),
        (409, Some(409)),
        "{conflict}"
    );

    // A typo is a 400 that names the field; an unknown connector a 404.
    let mut typo = config.clone();
    typo["trigerr"] = json!({});
    let (code, err) = api.call(
        "POST",
        "/connectors",
        Some(&json!({"name": "typo", "config": typo})),
    );
    assert_eq!(code, 400, "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("trigerr"),
        "{err}"
    );
    let (code, err) = api.get("/connectors/nope/status");
    assert_eq!(
        (code, err["error_code"].as_u64()),
        (404, Some(404)),
        "{err}"
    );
    let (_, names) = api.get("/connectors");
    assert_eq!(names, json!(["life"]));

    api.wait_state("life", "RUNNING");
    wait_until("a first commit", || snapshots(&s) > 0);

    // Pause: no new commits while paused.
    let (code, _) = api.call("PUT", "/connectors/life/pause", None);
    assert_eq!(code, 202);
    assert_eq!(api.state("life"), "PAUSED");
    let paused_at = snapshots(&s);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(snapshots(&s), paused_at, "a paused connector committed");

    // Resume: commits again.
    let (code, _) = api.call("PUT", "/connectors/life/resume", None);
    assert_eq!(code, 202);
    api.wait_state("life", "RUNNING");
    wait_until("a commit after resume", || snapshots(&s) > paused_at);

    // Update the config: it restarts from its last commit with the new one.
    let mut updated = config.clone();
    updated["trigger"]["interval_ms"] = json!(200);
    let (code, info) = api.call("PUT", "/connectors/life/config", Some(&updated));
    assert_eq!(code, 200, "{info}");
    let (_, got) = api.get("/connectors/life/config");
    assert_eq!(got["trigger"]["interval_ms"], 200);
    let (_, listed) = api.get("/connectors?expand=status&expand=info");
    assert_eq!(
        listed["life"]["status"]["connector"]["state"], "RUNNING",
        "{listed}"
    );
    assert_eq!(
        listed["life"]["info"]["config"]["trigger"]["interval_ms"],
        200
    );

    // Offsets: read while running; altering them needs a stopped connector.
    let (code, offsets) = api.get("/connectors/life/offsets");
    assert_eq!(code, 200, "{offsets}");
    let position = offsets["offsets"][0]["offset"]["position"]
        .as_u64()
        .unwrap();
    assert!(position > 0, "{offsets}");
    let (code, err) = api.call("DELETE", "/connectors/life/offsets", None);
    assert_eq!(code, 400, "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("STOPPED"),
        "{err}"
    );

    // Stop, reset the offsets, resume: it reads from the start again (the
    // early ids arrive a second time: a reset is a replay).
    let (code, _) = api.call("PUT", "/connectors/life/stop", None);
    assert_eq!(code, 204);
    assert_eq!(api.state("life"), "STOPPED");
    let before = s.inspect(&["--ids"]).unwrap();
    assert_eq!(before["duplicated_keys"], 0);
    let (code, reset) = api.call("DELETE", "/connectors/life/offsets", None);
    assert_eq!(code, 200, "{reset}");
    let (_, offsets) = api.get("/connectors/life/offsets");
    assert_eq!(offsets["offsets"], json!([]), "reset offsets read as none");
    let (code, _) = api.call("PUT", "/connectors/life/resume", None);
    assert_eq!(code, 202);
    wait_until("a commit after the reset", || {
        s.inspect(&[]).unwrap()["summary"]["tributary.epoch"]
            != before["summary"]["tributary.epoch"]
    });
    let after = s.inspect(&["--ids"]).unwrap();
    assert!(
        after["duplicated_keys"].as_u64().unwrap() > 0,
        "the replay from the start re-delivered early ids: {}",
        after["summary"]
    );
    assert!(
        worker
            .log()
            .contains("resuming from the start of the source"),
        "{}",
        worker.log()
    );

    // Plugins and validation.
    let (_, plugins) = api.get("/connector-plugins");
    let classes: BTreeSet<&str> = plugins
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["class"].as_str().unwrap())
        .collect();
    for want in ["kafka", "iceberg", "generator", "builtin:dedup"] {
        assert!(classes.contains(want), "{plugins}");
    }
    let (code, ok) = api.call(
        "PUT",
        "/connector-plugins/iceberg/config/validate",
        Some(&config),
    );
    assert_eq!((code, ok["error_count"].as_u64()), (200, Some(0)), "{ok}");
    let (_, bad) = api.call(
        "PUT",
        "/connector-plugins/iceberg/config/validate",
        Some(&typo),
    );
    assert_eq!(bad["error_count"], 1, "{bad}");
    assert!(
        bad["configs"][0]["value"]["errors"][0]
            .as_str()
            .unwrap()
            .contains("trigerr")
    );

    let (code, text) = api.get("/metrics");
    assert_eq!(code, 200);
    assert!(
        text.as_str()
            .unwrap()
            .contains("tributary_records_in_total{pipeline=\"life\"}"),
        "{text}"
    );

    // Delete.
    let (code, _) = api.call("DELETE", "/connectors/life", None);
    assert_eq!(code, 204);
    assert_eq!(api.get("/connectors/life").0, 404);
    assert_eq!(api.get("/connectors").1, json!([]));
    assert!(!data.path().join("state/connectors/life.json").exists());
}

#[test]
fn worker_killed_with_sigkill_brings_every_pipeline_back_exactly_once() {
    let data = tempfile::tempdir().unwrap();
    let state = data.path().join("state");
    let worker = Worker::start(&state, &[]);
    let api = worker.api();
    let scratches: Vec<Scratch> = ["crash_a", "crash_b"]
        .iter()
        .map(|n| Scratch::new(n))
        .collect();
    let records = 60_000;
    for s in &scratches {
        let config = generator_pipeline(s, records, 15_000);
        let (code, body) = api.call(
            "POST",
            "/connectors",
            Some(&json!({"name": s.name, "config": config})),
        );
        assert_eq!(code, 201, "{body}");
    }
    let parked = Scratch::new("parked");
    let (code, _) = api.call(
        "POST",
        "/connectors",
        Some(&json!({"name": "parked", "config": generator_pipeline(&parked, 0, 1000)})),
    );
    assert_eq!(code, 201);
    assert_eq!(api.call("PUT", "/connectors/parked/pause", None).0, 202);

    wait_until("commits on both", || {
        scratches.iter().all(|s| snapshots(s) > 0)
    });
    worker.kill9();

    let worker = Worker::start(&state, &[]);
    let api = worker.api();
    assert_eq!(
        api.state("parked"),
        "PAUSED",
        "a paused connector stays paused"
    );
    for s in &scratches {
        api.wait_state(&s.name, "FINISHED");
    }
    assert!(
        worker.log().contains("resuming after epoch"),
        "{}",
        worker.log()
    );
    let source =
        json!({"type": "generator", "seed": 11, "records": records, "rate_per_sec": 15_000});
    let expected = tributary_generator::describe_expected(&source).unwrap();
    for s in &scratches {
        let table = s.inspect(&["--ids"]).unwrap();
        assert_eq!(
            table["duplicated_keys"], 0,
            "{}: {}",
            s.name, table["duplicated_examples"]
        );
        let got: BTreeSet<String> = serde_json::from_value(table["ids"].clone()).unwrap();
        assert!(
            got == expected.ids,
            "{}: {} missing, {} unexpected",
            s.name,
            expected.ids.difference(&got).count(),
            got.difference(&expected.ids).count()
        );
    }
}

#[test]
fn auth_token_is_required_and_secrets_are_never_echoed() {
    let data = tempfile::tempdir().unwrap();
    let token_file = data.path().join("token");
    std::fs::write(&token_file, "a-long-test-token-0123456789\n").unwrap();

    // Anything but loopback needs a token.
    let out = Command::new(binary())
        .args(["serve", "--listen", "0.0.0.0:0", "--data"])
        .arg(data.path().join("refused"))
        .output_within(Duration::from_secs(30));
    let stderr = assert_failed(&out);
    assert!(stderr.contains("--auth-token-file"), "{stderr}");

    let worker = Worker::start(
        &data.path().join("state"),
        &["--auth-token-file", token_file.to_str().unwrap()],
    );
    let mut api = worker.api();
    let (code, err) = api.get("/connectors");
    assert_eq!(
        (code, err["error_code"].as_u64()),
        (401, Some(401)),
        "{err}"
    );
    api.token = Some("wrong-token-wrong-token".into());
    assert_eq!(api.get("/connectors").0, 401);
    assert_eq!(api.get("/health").0, 200, "liveness needs no token");
    api.token = Some("a-long-test-token-0123456789".into());
    assert_eq!(api.get("/connectors").0, 200);

    // A secret given as a reference is resolved only inside the pipeline.
    let secrets = data.path().join("secrets.properties");
    std::fs::write(&secrets, "sasl.password=file-secret-42\n").unwrap();
    let s = Scratch::new("secret");
    let mut config = s.pipeline(
        json!({"type": "kafka", "bootstrap_servers": format!("127.0.0.1:{}", free_port()),
               "topics": ["t"], "format": "bytes",
               "properties": {"sasl.username": "${env:TRIB_TEST_SECRET}",
                              "sasl.password": format!("${{file:{}:sasl.password}}", secrets.display())}}),
        json!([]),
    );
    config.as_object_mut().unwrap().remove("name");
    let (code, body) = api.call(
        "POST",
        "/connectors",
        Some(&json!({"name": "secret", "config": config})),
    );
    assert_eq!(code, 201, "{body}");
    std::thread::sleep(Duration::from_millis(500));
    let mut seen = vec![body.to_string()];
    for path in [
        "/connectors/secret",
        "/connectors/secret/config",
        "/connectors/secret/status",
        "/connectors?expand=info&expand=status",
    ] {
        let (code, body) = api.get(path);
        assert_eq!(code, 200, "{path}: {body}");
        seen.push(body.to_string());
    }
    seen.push(worker.log());
    seen.push(std::fs::read_to_string(data.path().join("state/connectors/secret.json")).unwrap());
    for text in &seen {
        assert!(
            !text.contains("hunter2-very-secret") && !text.contains("file-secret-42"),
            "a secret leaked: {text}"
        );
    }
    assert!(seen[2].contains("${env:TRIB_TEST_SECRET}"), "{}", seen[2]);
}

#[test]
fn one_failing_pipeline_does_not_stop_the_others() {
    let data = tempfile::tempdir().unwrap();
    // The test guests are built outside the temporary folder.
    let guests = guest("trap").parent().unwrap().to_path_buf();
    let worker = Worker::start(
        &data.path().join("state"),
        &["--allow-path", guests.to_str().unwrap()],
    );
    let api = worker.api();

    let good = Scratch::new("good");
    let (code, _) = api.call(
        "POST",
        "/connectors",
        Some(&json!({"name": "good", "config": generator_pipeline(&good, 0, 2000)})),
    );
    assert_eq!(code, 201);

    // Its transform traps on every batch; the default policy fails.
    let bad = Scratch::new("bad");
    let mut config = bad.pipeline(
        json!({"type": "generator", "seed": 3, "records": 0, "rate_per_sec": 2000}),
        json!([{"name": "trapper", "module": guest("trap")}]),
    );
    config["trigger"]["interval_ms"] = json!(300);
    let (code, body) = api.call(
        "POST",
        "/connectors",
        Some(&json!({"name": "bad", "config": config})),
    );
    assert_eq!(code, 201, "{body}");
    let status = api.wait_state("bad", "FAILED");
    let trace = status["tasks"][0]["trace"].as_str().unwrap();
    assert!(
        trace.contains("trapper"),
        "the trace names the transform: {trace}"
    );

    let before = snapshots(&good);
    wait_until("the good pipeline to keep committing", || {
        snapshots(&good) > before + 1
    });
    assert_eq!(api.state("good"), "RUNNING");

    // A restart tries again, and fails again, alone.
    assert_eq!(api.call("POST", "/connectors/bad/restart", None).0, 204);
    api.wait_state("bad", "FAILED");
    assert_eq!(api.state("good"), "RUNNING");
    assert_eq!(
        bad.inspect(&[])
            .map(|t| t["rows"].clone())
            .unwrap_or(json!(0)),
        0
    );
}

/// Every operation of `docs/openapi.json` is served by a live worker (the
/// unit test in `worker/src/http.rs` checks the list against the router).
#[test]
fn openapi_description_matches_what_the_worker_serves() {
    let data = tempfile::tempdir().unwrap();
    let worker = Worker::start(&data.path().join("state"), &[]);
    let api = worker.api();
    let spec: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("docs/openapi.json")).unwrap(),
    )
    .unwrap();
    let mut checked = 0;
    for (path, ops) in spec["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{name}", "nobody")
            .replace("{type}", "iceberg");
        for method in ops.as_object().unwrap().keys() {
            let body = matches!(method.as_str(), "post" | "put" | "patch").then(|| json!({}));
            let (code, reply) = api.call(&method.to_uppercase(), &concrete, body.as_ref());
            assert!(
                code != 405
                    && !(code == 404
                        && reply["message"]
                            .as_str()
                            .is_some_and(|m| m.contains("no such path"))),
                "{method} {path}: {code} {reply}"
            );
            let declared: Vec<&String> = ops[method]["responses"]
                .as_object()
                .unwrap()
                .keys()
                .collect();
            assert!(
                declared.iter().any(|c| c.as_str() == code.to_string()),
                "{method} {path} answered {code}, which the description does not declare ({declared:?}): {reply}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 19);
}
