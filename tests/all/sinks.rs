//! One pipeline (generator → watermark → dedup), its sink switched by JSON
//! alone between `iceberg`, `parquet`, `jsonl` and `kafka`: every output holds
//! exactly the records the iceberg table holds, each read by a reader we did
//! not write (PyIceberg, DuckDB, confluent-kafka). A `parquet` run survives
//! kill -9 and injected crashes with every record exactly once, and a
//! pipeline asking for more than its sink gives is refused.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::*;
use crate::kafka_env::KafkaEnv;

fn source() -> Value {
    json!({"type": "generator", "seed": 11, "records": 6000})
}

pub(crate) fn expected(source: &Value) -> BTreeSet<String> {
    tributary_generator::describe_expected(source).unwrap().ids
}

/// The pipeline of `s` with another sink.
fn with_sink(s: &Scratch, source: &Value, sink: Value) -> Value {
    let mut p = s.pipeline(source.clone(), watermark_and_dedup("2 hours"));
    p["sink"] = sink;
    p["trigger"] = json!({"interval_ms": 500, "max_records_per_epoch": 2000, "batch_size": 500});
    p
}

/// Every id in `<dir>/*.parquet`, read by DuckDB (`union_by_name`, as
/// docs/sinks.md tells readers to).
pub(crate) fn duckdb_ids(dir: &Path) -> Vec<String> {
    let out = Command::new(python())
        .args([
            "-c",
            "import duckdb, json, sys\n\
             rows = duckdb.sql(f\"select id from read_parquet('{sys.argv[1]}/*.parquet', union_by_name = true)\").fetchall()\n\
             print(json.dumps([r[0] for r in rows]))",
        ])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "duckdb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn jsonl_ids(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

pub(crate) fn folder_jsonl_ids(dir: &Path) -> Vec<String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| jsonl_ids(&std::fs::read_to_string(f).unwrap()))
        .collect()
}

/// `ids` hold each expected id exactly once and nothing else.
pub(crate) fn assert_exactly(what: &str, ids: &[String], expected: &BTreeSet<String>) {
    let set: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(ids.len(), set.len(), "{what}: duplicated ids");
    let missing: Vec<_> = expected.difference(&set).take(5).collect();
    let extra: Vec<_> = set.difference(expected).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: missing {missing:?}, unexpected {extra:?}"
    );
}

#[test]
fn sinks_one_pipeline_into_iceberg_parquet_and_jsonl_holds_the_same_records() {
    let s = Scratch::new("sinks");
    let source = source();
    let want = expected(&source);

    let iceberg = s.pipeline(source.clone(), watermark_and_dedup("2 hours"));
    let stderr = assert_ok(&s.run(&iceberg));
    assert!(stderr.contains("delivery exactly-once"), "{stderr}");
    let table = s.inspect(&["--ids"]).unwrap();
    let iceberg_ids: Vec<String> = serde_json::from_value(table["ids"].clone()).unwrap();
    assert_exactly("iceberg", &iceberg_ids, &want);

    // Parquet, with a checkpoint of its own (a new pipeline as far as
    // progress goes, the same one in every other respect).
    let mut parquet = with_sink(
        &s,
        &source,
        json!({"type": "parquet", "path": s.path("out/parquet")}),
    );
    parquet["checkpoint"]["location"] = json!(s.path("chk-parquet"));
    parquet["delivery"] = json!("exactly-once");
    let stderr = assert_ok(&s.run(&parquet));
    assert!(stderr.contains("delivery exactly-once"), "{stderr}");
    assert_exactly("parquet", &duckdb_ids(&s.path("out/parquet")), &want);
    let record: Value = serde_json::from_slice(
        &std::fs::read(s.path("out/parquet/_tributary/sinks/commit.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(record["total_rows"], want.len());
    // Again: nothing new to read, nothing written twice.
    assert_ok(&s.run(&parquet));
    assert_exactly(
        "parquet, run twice",
        &duckdb_ids(&s.path("out/parquet")),
        &want,
    );

    let mut folder = with_sink(
        &s,
        &source,
        json!({"type": "jsonl", "path": s.path("out/jsonl")}),
    );
    folder["checkpoint"]["location"] = json!(s.path("chk-jsonl"));
    assert_ok(&s.run(&folder));
    assert_exactly(
        "jsonl folder",
        &folder_jsonl_ids(&s.path("out/jsonl")),
        &want,
    );

    let mut stdout = with_sink(&s, &source, json!({"type": "jsonl", "path": "-"}));
    stdout["checkpoint"]["location"] = json!(s.path("chk-stdout"));
    let out = s.run(&stdout);
    let stderr = assert_ok(&out);
    assert!(stderr.contains("delivery at-least-once"), "{stderr}");
    assert_exactly(
        "jsonl stdout",
        &jsonl_ids(&String::from_utf8_lossy(&out.stdout)),
        &want,
    );
    // The commit record in the checkpoint folder: a second run resumes after
    // the last epoch and prints nothing again.
    let out = s.run(&stdout);
    assert_ok(&out);
    assert!(out.stdout.is_empty(), "printed again: {}", out.stdout.len());
}

#[test]
fn sinks_kafka_json_and_avro_hold_the_same_records() {
    let env = KafkaEnv::start().unwrap();
    let s = Scratch::new("sinks-kafka");
    let source = source();
    let want = expected(&source);
    for (topic, format) in [("out.json", "json"), ("out.avro", "avro")] {
        env.produce(&["--topic", topic, "--partitions", "3", "--records", "0"])
            .unwrap();
        let mut sink = json!({"type": "kafka", "bootstrap_servers": env.broker.bootstrap(),
                              "topic": topic, "format": format, "key_field": "id"});
        if format == "avro" {
            sink["schema_registry_url"] = json!(env.registry.url());
        }
        let mut p = with_sink(&s, &source, sink);
        p["checkpoint"]["location"] = json!(s.path(&format!("chk-{format}")));
        let stderr = assert_ok(&s.run(&p));
        assert!(stderr.contains("delivery at-least-once"), "{stderr}");
        let mut read = Command::new(python());
        read.arg(repo_root().join("scripts/read_topic.py"))
            .args(["--bootstrap", &env.broker.bootstrap()])
            .args(["--topic", topic]);
        if format == "avro" {
            read.args(["--registry", &env.registry.url()]);
        }
        let out = read.output_within(Duration::from_secs(120));
        assert!(
            out.status.success(),
            "read_topic.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: Value = serde_json::from_slice(&out.stdout).unwrap();
        let ids: Vec<String> = serde_json::from_value(got["values"].clone()).unwrap();
        assert_exactly(&format!("kafka {format}"), &ids, &want);
        assert_eq!(got["keys"], got["values"], "keyed by id");
        if format == "avro" {
            assert_eq!(got["schema_ids"].as_array().unwrap().len(), 1, "{got}");
        }
        // A second run resumes from the commit record: nothing sent again.
        assert_ok(&s.run(&p));
        let again = read.output_within(Duration::from_secs(120));
        let again: Value = serde_json::from_slice(&again.stdout).unwrap();
        assert_eq!(again["messages"], want.len());
    }

    // At-least-once, as documented: a crash after an epoch's messages were
    // sent but before its commit record sends them again; nothing is lost.
    let topic = "out.crash";
    env.produce(&["--topic", topic, "--partitions", "2", "--records", "0"])
        .unwrap();
    let sink =
        json!({"type": "kafka", "bootstrap_servers": env.broker.bootstrap(), "topic": topic});
    let mut p = with_sink(&s, &source, sink);
    p["checkpoint"]["location"] = json!(s.path("chk-crash"));
    let mut child = s.spawn(&p, &[("TRIBUTARY_CRASH_AT", "checkpoint-written@2".into())]);
    assert!(!wait_within(&mut child, Duration::from_secs(120), "tributary").success());
    assert_ok(&s.run(&p));
    let out = Command::new(python())
        .arg(repo_root().join("scripts/read_topic.py"))
        .args(["--bootstrap", &env.broker.bootstrap(), "--topic", topic])
        .output_within(Duration::from_secs(120));
    assert!(
        out.status.success(),
        "read_topic.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<String> = serde_json::from_value(got["values"].clone()).unwrap();
    let set: BTreeSet<String> = ids.iter().cloned().collect();
    let missing: Vec<_> = want.difference(&set).collect();
    let extra: Vec<_> = set.difference(&want).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "after a crash: {} missing ({:?}…), unexpected {extra:?}; {} messages",
        missing.len(),
        &missing[..missing.len().min(5)],
        ids.len()
    );
    eprintln!(
        "kafka after a crash: {} messages for {} ids",
        ids.len(),
        want.len()
    );
    // Duplicates only of the epoch in flight (at most 2000 source records).
    assert!(ids.len() - want.len() <= 2000, "{} messages", ids.len());
}

#[test]
fn sinks_parquet_survives_kill_9_and_crashes_inside_its_commit() {
    let s = Scratch::new("sinks-crash");
    let source = json!({"type": "generator", "seed": 5, "records": 60000, "rate_per_sec": 10000});
    let mut p = with_sink(
        &s,
        &source,
        json!({"type": "parquet", "path": s.path("out")}),
    );
    p["trigger"] = json!({"interval_ms": 150, "max_records_per_epoch": 2000, "batch_size": 500});
    let out = s.path("out");
    let record = || -> u64 {
        std::fs::read(out.join("_tributary/sinks-crash/commit.json"))
            .map(|b| {
                serde_json::from_slice::<Value>(&b).unwrap()["epoch"]
                    .as_u64()
                    .unwrap()
            })
            .unwrap_or(0)
    };

    // The sink's own delicate instant first: files visible, record not yet.
    let mut child = s.spawn(&p, &[("TRIBUTARY_CRASH_AT", "files-published@2".into())]);
    assert!(!wait_within(&mut child, Duration::from_secs(120), "tributary").success());
    let committed = record();
    let uncommitted = format!("sinks-crash-e{:020}-", committed + 1);
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with(&uncommitted)),
        "the crash left epoch {}'s files visible: {names:?}",
        committed + 1
    );

    let injected = ["committed@2", "checkpoint-written@2"];
    let mut rng = Rng::kill_schedule();
    let mut kills = 0;
    let started = Instant::now();
    while kills < 10 && started.elapsed() < Duration::from_secs(120) {
        let env: Vec<(&str, String)> = injected
            .get(kills)
            .map(|p| vec![("TRIBUTARY_CRASH_AT", p.to_string())])
            .unwrap_or_default();
        let mut child = s.spawn(&p, &env);
        if kills < injected.len() {
            assert!(!wait_within(&mut child, Duration::from_secs(120), "tributary").success());
        } else {
            std::thread::sleep(Duration::from_millis(rng.between(200, 900)));
            if child.try_wait().unwrap().is_some() {
                break;
            }
            child.kill().unwrap();
            child.wait().unwrap();
        }
        kills += 1;
    }
    eprintln!("{kills} crashes after the first");
    assert!(kills >= 6, "only {kills} crashes before the source ran out");
    assert_ok(&s.run(&p));
    assert_exactly(
        "parquet after crashes",
        &duckdb_ids(&out),
        &expected(&source),
    );
    assert!(
        std::fs::read_to_string(s.path("runs.log"))
            .unwrap()
            .contains("was made visible but not committed"),
        "the restart removed the uncommitted files"
    );
}

#[test]
fn sinks_refuse_a_delivery_they_cannot_give() {
    let s = Scratch::new("sinks-refuse");
    let mut stdout = with_sink(&s, &source(), json!({"type": "jsonl", "path": "-"}));
    stdout["delivery"] = json!("exactly-once");
    let path = s.write_pipeline(&stdout);
    let out = s
        .command(&["validate", path.to_str().unwrap()])
        .output_within(Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`jsonl` sink (JSON lines on stdout) gives: it is at-least-once"),
        "{stderr}"
    );
    assert!(
        stderr.contains("\"delivery\": \"at-least-once\""),
        "the fix: {stderr}"
    );
    let out = s.run(&stdout);
    assert_eq!(out.status.code(), Some(2), "run refuses it too");
    assert!(out.stdout.is_empty());

    let mut kafka = with_sink(
        &s,
        &source(),
        json!({"type": "kafka", "bootstrap_servers": "127.0.0.1:9", "topic": "t"}),
    );
    kafka["delivery"] = json!("exactly-once");
    let out = s.run(&kafka);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the `kafka` sink"), "{stderr}");
    assert!(stderr.contains("at-least-once"), "{stderr}");

    // Asking for what the sink gives is fine, and says so.
    kafka["delivery"] = json!("at-least-once");
    let path = s.write_pipeline(&kafka);
    let out = s
        .command(&["validate", path.to_str().unwrap()])
        .output_within(Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("kafka (at-least-once)"));
    let mut parquet = with_sink(&s, &source(), json!({"type": "parquet", "path": "out"}));
    parquet["delivery"] = json!("exactly-once");
    let path = s.write_pipeline(&parquet);
    let out = s
        .command(&["validate", path.to_str().unwrap()])
        .output_within(Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
