//! Schema Registry interoperability: the same client suite
//! (`scripts/check_schema_registry.py`, confluent-kafka's own
//! `SchemaRegistryClient` and `AvroSerializer`) against our
//! `tributary schema-registry` and against Apicurio Registry, a server we did
//! not write; and the seed pipeline, unchanged, reading Avro whose schema
//! confluent-kafka registered in Apicurio.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::harness::*;
use crate::kafka_env::*;
use crate::registry_env::Apicurio;

/// Runs the client suite against `url` and returns its JSON report.
fn client_suite(url: &str) -> Value {
    let out = Command::new(python())
        .arg(repo_root().join("scripts/check_schema_registry.py"))
        .args(["--url", url])
        .output_within(Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "check_schema_registry.py against {url} failed ({}):\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.trim().lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// What both registries must answer alike (ids are each server's own).
fn assert_suite_report(report: &Value) {
    assert_eq!(report["subject"], "articles.raw.v1-value", "{report}");
    assert_ne!(report["v1_id"], report["v2_id"], "{report}");
    assert_eq!(report["incompatible_status"], 409, "{report}");
    for payload in ["v1_payload_hex", "v2_payload_hex"] {
        let hex = report[payload].as_str().unwrap();
        assert!(hex.starts_with("00"), "magic byte 0 in {payload}: {hex}");
    }
}

#[test]
fn client_suite_against_tributary_schema_registry() {
    let registry = Registry::start().unwrap();
    let report = client_suite(&registry.url());
    assert_suite_report(&report);
}

#[test]
fn client_suite_against_apicurio_registry() {
    let registry = Apicurio::start().unwrap();
    let report = client_suite(&registry.url());
    assert_suite_report(&report);
}

/// `examples/articles/pipeline.json` as it is, on Apache Kafka, with Avro that
/// confluent-kafka's `AvroSerializer` registered in Apicurio: every expected
/// id once, the late and duplicate events dropped and counted; then a v2
/// schema (a new optional field) registered there too becomes a new column.
#[test]
fn seed_pipeline_with_apicurio_registry() {
    let broker = Broker::start().unwrap();
    let apicurio = Apicurio::start().unwrap();
    let s = Scratch::new("seed-apicurio");
    let topic = "articles.raw.v1";
    let produce = |args: &[&str]| -> Value {
        let out = Command::new(python())
            .arg(repo_root().join("scripts/produce_articles.py"))
            .args(["--bootstrap", &broker.bootstrap()])
            .args(["--registry", &apicurio.url()])
            .args(["--topic", topic])
            // One article a second: late events (3 h behind) from the
            // 10,800th on, so 20,000 hold some.
            .args(["--spacing-ms", "1000"])
            .args(args)
            .output_within(Duration::from_secs(300));
        assert!(
            out.status.success(),
            "produce_articles.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let run = || {
        let example = repo_root().join("examples/articles/pipeline.json");
        let mut cmd = s.command(&[
            "run",
            "--available-now",
            "--progress-interval",
            "0",
            example.to_str().unwrap(),
        ]);
        cmd.env("KAFKA_BOOTSTRAP_SERVERS", broker.bootstrap())
            .env("KAFKA_TOPIC", topic)
            .env("SCHEMA_REGISTRY_URL", apicurio.url())
            .env("ICEBERG_TABLE", s.table())
            .env("ICEBERG_WAREHOUSE", s.warehouse())
            .env("ICEBERG_CATALOG_URI", s.catalog_uri())
            .env("CHECKPOINT_LOCATION", s.path("chk/articles_raw"));
        assert_ok(&cmd.output_within(RUN_LIMIT))
    };

    let expected_1 = s.path("expected-1.json");
    let first = produce(&[
        "--partitions",
        "3",
        "--records",
        "20000",
        "--expected",
        expected_1.to_str().unwrap(),
    ]);
    assert!(first["late"].as_u64().unwrap() > 0, "{first}");
    assert!(first["duplicate"].as_u64().unwrap() > 0, "{first}");
    let stderr = run();
    assert_eq!(
        count_after(&stderr, "late"),
        first["late"].as_u64().unwrap(),
        "{stderr}"
    );
    assert_eq!(
        count_after(&stderr, "dup"),
        first["duplicate"].as_u64().unwrap(),
        "{stderr}"
    );
    let mut expected = read_ids(&expected_1);
    assert_ids(&s.inspect(&["--ids"]).unwrap(), &expected);

    // Schema evolution through Apicurio: v2 adds `language`.
    let expected_2 = s.path("expected-2.json");
    let second = produce(&[
        "--first",
        "20000",
        "--records",
        "5000",
        "--schema-version",
        "2",
        "--expected",
        expected_2.to_str().unwrap(),
    ]);
    assert_ne!(second["schema_id"], first["schema_id"], "{second}");
    run();
    expected.extend(read_ids(&expected_2));
    let table = s.inspect(&["--ids"]).unwrap();
    assert_ids(&table, &expected);
    let columns = table["columns"].to_string();
    assert!(columns.contains("language"), "no v2 column: {columns}");
}

/// The number after `word` in the final progress line (`late 12`).
fn count_after(stderr: &str, word: &str) -> u64 {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.contains(" in ") && l.contains(" out "))
        .unwrap_or_else(|| panic!("no progress line in:\n{stderr}"));
    let mut words = line.split_whitespace();
    while let Some(w) = words.next() {
        if w == word {
            return words.next().unwrap().parse().unwrap();
        }
    }
    panic!("no `{word}` in {line}")
}

fn assert_ids(table: &Value, expected: &BTreeSet<String>) {
    let got: Vec<String> = serde_json::from_value(table["ids"].clone()).unwrap();
    let set: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(got.len(), set.len(), "duplicate ids in the table");
    assert!(
        &set == expected,
        "{} ids missing, {} unexpected",
        expected.difference(&set).count(),
        set.difference(expected).count()
    );
}
