//! A `tributary serve` worker restarts a connector that failed on something
//! that may pass (issue 19, scenario 8), as Kafka Connect's
//! `errors.retry.timeout` / `errors.retry.delay.max.ms` bound its retries:
//! with backoff, the attempts visible in the status and the metrics, and
//! never for a failure only a person can fix. The sink is the `flaky-csv`
//! test plugin with an outage switched on and off by a file.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::*;
use crate::plugins::{csv_ids, plugin_folder};
use crate::serve::{Api, Worker};

/// A finite generator into `flaky-csv`, no transforms: every record the
/// generator makes lands as a row (its duplicates too).
fn pipeline(s: &Scratch, sink: Value, errors: Value) -> Value {
    let source = json!({"type": "generator", "seed": 5, "records": 3000, "rate_per_sec": 3000});
    let mut p = s.pipeline(source, json!([]));
    p["sink"] = sink;
    p["errors"] = errors;
    p["trigger"] = json!({"interval_ms": 300, "max_records_per_epoch": 1000, "batch_size": 250});
    // The connector's name is the one it is deployed under.
    p.as_object_mut().unwrap().remove("name");
    p
}

fn task(api: &Api, name: &str) -> Value {
    let (code, status) = api.get(&format!("/connectors/{name}/status"));
    assert_eq!(code, 200, "{status}");
    status["tasks"][0].clone()
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn metric(api: &Api, line_start: &str) -> Option<f64> {
    let (_, body) = api.get("/metrics");
    let text = body.as_str().unwrap_or_default().to_string();
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn serve_restarts_a_connector_whose_failure_may_pass_and_no_other() {
    let data = tempfile::tempdir().unwrap();
    let plugins = plugin_folder().to_str().unwrap().to_string();
    let worker = Worker::start(&data.path().join("state"), &["--plugin-path", &plugins]);
    let api = worker.api();

    // The reference: the same generator into the CSV sink, no failure.
    let reference = Scratch::new("restart-ref");
    let config = pipeline(
        &reference,
        json!({"type": "flaky-csv", "path": reference.path("csv")}),
        json!({}),
    );
    let (code, body) = api.call(
        "POST",
        "/connectors",
        Some(&json!({"name": "ref", "config": config})),
    );
    assert_eq!(code, 201, "{body}");

    // A warehouse that is down: every write fails with a retryable error.
    let s = Scratch::new("restart-outage");
    let outage = s.path("outage");
    std::fs::write(&outage, b"down").unwrap();
    let sink = json!({"type": "flaky-csv", "path": s.path("csv"), "fail": "outage", "outage_file": outage});
    let config = pipeline(&s, sink.clone(), json!({"retry_delay_max_ms": 2000}));
    let (code, body) = api.call(
        "POST",
        "/connectors",
        Some(&json!({"name": "down", "config": config})),
    );
    assert_eq!(code, 201, "{body}");
    wait_for("two restarts of `down`", Duration::from_secs(60), || {
        task(&api, "down")["restarts"].as_u64().unwrap_or(0) >= 2
    });
    wait_for(
        "`down` to show its failure",
        Duration::from_secs(30),
        || task(&api, "down")["state"] == "FAILED",
    );
    let t = task(&api, "down");
    let trace = t["trace"].as_str().unwrap_or_default();
    assert!(
        trace.contains("the warehouse is unreachable") && trace.contains("restarting in"),
        "the trace names the cause and the next restart: {t}"
    );
    let restarts = metric(
        &api,
        "tributary_connector_restarts_total{pipeline=\"down\"}",
    );
    assert!(
        restarts.is_some_and(|n| n >= 2.0),
        "restarts metric: {restarts:?}"
    );
    assert!(
        worker
            .log()
            .contains("connector down: restart 1 after a failure that may pass"),
        "{}",
        worker.log()
    );

    // The warehouse is back: the next restart runs it to the end.
    std::fs::remove_file(&outage).unwrap();
    api.wait_state("down", "FINISHED");
    api.wait_state("ref", "FINISHED");
    let (want, got) = (csv_ids(&reference.path("csv")), csv_ids(&s.path("csv")));
    assert_eq!(
        want.values().sum::<u32>(),
        3000,
        "the reference holds every record"
    );
    assert_eq!(got, want, "after the outage every record landed, once");

    // errors.retry_timeout_ms = 0: the same outage is not restarted.
    let never = Scratch::new("restart-never");
    let outage = never.path("outage");
    std::fs::write(&outage, b"down").unwrap();
    let sink = json!({"type": "flaky-csv", "path": never.path("csv"), "fail": "outage", "outage_file": outage});
    let config = pipeline(&never, sink, json!({"retry_timeout_ms": 0}));
    let (code, body) = api.call(
        "POST",
        "/connectors",
        Some(&json!({"name": "never", "config": config})),
    );
    assert_eq!(code, 201, "{body}");

    // A failure only a person can fix (not retryable): never restarted.
    let fatal = Scratch::new("restart-fatal");
    let sink = json!({"type": "flaky-csv", "path": fatal.path("csv"), "fail": "error", "fail_at_epoch": 1});
    let config = pipeline(&fatal, sink, json!({"retry_delay_max_ms": 1000}));
    let (code, body) = api.call(
        "POST",
        "/connectors",
        Some(&json!({"name": "fatal", "config": config})),
    );
    assert_eq!(code, 201, "{body}");

    api.wait_state("never", "FAILED");
    api.wait_state("fatal", "FAILED");
    // Longer than the first two waits of the backoff (1 s, 2 s).
    std::thread::sleep(Duration::from_secs(5));
    let never_task = task(&api, "never");
    assert_eq!(never_task["state"], "FAILED", "{never_task}");
    assert_eq!(never_task["restarts"], 0, "{never_task}");
    assert!(
        never_task["trace"]
            .as_str()
            .is_some_and(|t| t.contains("errors.retry_timeout_ms is 0")),
        "{never_task}"
    );
    let fatal_task = task(&api, "fatal");
    assert_eq!(fatal_task["state"], "FAILED", "{fatal_task}");
    assert_eq!(fatal_task["restarts"], 0, "{fatal_task}");
    assert!(
        !fatal_task["trace"]
            .as_str()
            .unwrap_or_default()
            .contains("restarting"),
        "{fatal_task}"
    );
}
