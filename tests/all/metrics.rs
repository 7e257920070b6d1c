//! `--metrics-listen`: the Prometheus endpoint, scraped and parsed by the
//! Prometheus project's own Python client (`scripts/scrape_metrics.py`), and
//! the commit-latency percentiles on the `done:` line.

use std::process::{Child, Command};
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;
use crate::kafka_env::free_port;

/// Scrapes `port` until every `NAME=VALUE` condition holds.
fn scrape(port: u16, until: &[&str]) -> Value {
    let mut cmd = Command::new(python());
    cmd.arg(repo_root().join("scripts/scrape_metrics.py"))
        .args(["--url", &format!("http://127.0.0.1:{port}/metrics")])
        .args(["--timeout", "120"]);
    for u in until {
        cmd.args(["--until", u]);
    }
    let out = cmd.output_within(Duration::from_secs(180));
    assert!(
        out.status.success(),
        "scrape failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The value of the sample `name` whose labels include `labels`.
fn sample(scraped: &Value, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scraped["samples"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["name"] == name
                && labels
                    .iter()
                    .all(|(k, v)| s["labels"][k].as_str() == Some(v))
        })
        .map(|s| s["value"].as_f64().unwrap())
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = wait_within(&mut child, Duration::from_secs(60), "tributary");
    assert!(status.success(), "graceful stop: {status}");
}

#[test]
fn metrics_endpoint_serves_what_prometheus_parses() {
    let s = Scratch::new("metrics");
    let mut lines: Vec<String> = (0..900)
        .map(|i| {
            article(
                &format!("m{i:04}"),
                &format!("2026-03-01T10:{:02}:{:02}Z", i / 60, i % 60),
            )
        })
        .collect();
    // 100 duplicates, then 10 records 5 hours behind the watermark.
    lines.extend((0..100).map(|i| {
        article(
            &format!("m{i:04}"),
            &format!("2026-03-01T10:{:02}:{:02}Z", i / 60, i % 60),
        )
    }));
    lines.extend((0..10).map(|i| article(&format!("late{i}"), "2026-03-01T05:00:00Z")));
    write_lines(&s.path("in"), "a.jsonl", &lines);
    let mut pipeline = s.pipeline(file_source(&s), watermark_and_dedup("2 hours"));
    pipeline["trigger"] =
        json!({"interval_ms": 200, "max_records_per_epoch": 300, "batch_size": 100});
    let path = s.write_pipeline(&pipeline);
    let port = free_port();
    let child = s
        .command(&[
            "run",
            "--progress-interval",
            "0",
            "--metrics-listen",
            &format!("127.0.0.1:{port}"),
            path.to_str().unwrap(),
        ])
        .stderr(std::fs::File::create(s.path("run.log")).unwrap())
        .spawn()
        .unwrap();

    let scraped = scrape(
        port,
        &[
            "tributary_records_in_total=1010",
            "tributary_table_rows=900",
        ],
    );
    let pipe = [("pipeline", "metrics")];
    assert!(
        scraped["content_type"]
            .as_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
        "{scraped}"
    );
    // The parser's family types: counters, gauges and histograms as declared.
    let families = &scraped["families"];
    assert_eq!(families["tributary_records_in"], "counter");
    assert_eq!(families["tributary_table_rows"], "gauge");
    assert_eq!(families["tributary_commit_latency_seconds"], "histogram");
    assert_eq!(families["tributary_batch_processing_seconds"], "histogram");
    assert_eq!(
        sample(&scraped, "tributary_records_in_total", &pipe),
        Some(1010.0)
    );
    assert_eq!(
        sample(&scraped, "tributary_records_out_total", &pipe),
        Some(900.0)
    );
    assert_eq!(
        sample(&scraped, "tributary_records_dropped_duplicate_total", &pipe),
        Some(100.0)
    );
    assert_eq!(
        sample(&scraped, "tributary_records_dropped_late_total", &pipe),
        Some(10.0)
    );
    assert_eq!(
        sample(&scraped, "tributary_records_dead_lettered_total", &pipe),
        Some(0.0)
    );
    let commits = sample(&scraped, "tributary_commit_latency_seconds_count", &pipe).unwrap();
    assert!(
        commits >= 3.0,
        "1010 records at most 300 per epoch: {commits} commits"
    );
    assert_eq!(
        sample(
            &scraped,
            "tributary_commit_latency_seconds_bucket",
            &[("pipeline", "metrics"), ("le", "+Inf")]
        ),
        Some(commits)
    );
    assert_eq!(
        sample(&scraped, "tributary_epochs_committed_total", &pipe),
        Some(commits)
    );
    let batches = sample(&scraped, "tributary_batch_processing_seconds_count", &pipe).unwrap();
    assert!(batches >= 11.0, "1010 records in batches of 100: {batches}");
    assert!(sample(&scraped, "tributary_watermark_seconds", &pipe).unwrap() > 1.7e9);
    // No window closed (15 minutes of event time, 2-hour window): dedup
    // holds the 900 ids (the watermark transform may keep a key of its own).
    let keys = sample(&scraped, "tributary_state_keys", &pipe).unwrap();
    assert!((900.0..=902.0).contains(&keys), "state keys {keys}");
    // The first checkpoint is a full snapshot, the rest changelogs.
    assert_eq!(
        sample(&scraped, "tributary_checkpoint_full_snapshots_total", &pipe),
        Some(1.0)
    );
    assert!(sample(&scraped, "tributary_checkpoint_bytes", &pipe).unwrap() > 0.0);

    let health = Command::new(python())
        .args([
            "-c",
            &format!(
                "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{port}/health').read().decode())"
            ),
        ])
        .output_within(Duration::from_secs(30));
    let health: Value = serde_json::from_slice(&health.stdout).unwrap();
    assert_eq!(health["status"], "running");
    assert_eq!(health["pipeline"], "metrics");

    // The console of this one pipeline: the page, its row (read only), and
    // its page's data (the browser test drives the same pages on a worker:
    // tests/all/console.rs).
    let get =
        |path: &str| reqwest::blocking::get(format!("http://127.0.0.1:{port}{path}")).unwrap();
    let page = get("/ui/");
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    assert!(page.text().unwrap().contains("app.js"));
    let list: Value = get("/ui/api/connectors").json().unwrap();
    assert_eq!(
        (&list["mode"], &list["actions"]),
        (&json!("run"), &json!(false)),
        "{list}"
    );
    let row = &list["connectors"][0];
    assert_eq!(
        (&row["name"], &row["state"]),
        (&json!("metrics"), &json!("RUNNING")),
        "{row}"
    );
    assert!(row["records_in"].as_u64().unwrap() > 0, "{row}");
    let detail: Value = get("/ui/api/connectors/metrics").json().unwrap();
    assert!(
        !detail["commits"].as_array().unwrap().is_empty(),
        "{detail}"
    );
    assert!(
        !detail["history"]["t"].as_array().unwrap().is_empty(),
        "{detail}"
    );
    assert_eq!(detail["config"]["name"], "metrics", "{detail}");
    assert_eq!(get("/ui/api/connectors/other").status(), 404);
    stop(child);

    let log = std::fs::read_to_string(s.path("run.log")).unwrap();
    assert!(
        log.contains(&format!("metrics on http://127.0.0.1:{port}/metrics")),
        "{log}"
    );
    let done = log.lines().find(|l| l.starts_with("done:")).unwrap();
    assert!(
        done.contains("commit latency p50 ") && done.contains(" ms, p99 "),
        "{done}"
    );
}

#[test]
fn metrics_port_in_use_is_a_clear_error() {
    let s = Scratch::new("metrics_busy");
    write_lines(
        &s.path("in"),
        "a.jsonl",
        &[article("x", "2026-03-01T10:00:00Z")],
    );
    let pipeline = s.pipeline(file_source(&s), watermark_and_dedup("2 hours"));
    let path = s.write_pipeline(&pipeline);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = s
        .command(&["run", "--metrics-listen", &addr, path.to_str().unwrap()])
        .output_within(Duration::from_secs(60));
    let stderr = assert_failed(&out);
    assert!(
        stderr.contains(&format!("--metrics-listen {addr}")) && stderr.contains("in use"),
        "{stderr}"
    );
}
