//! The seed pipeline against real Kafka: an Apache Kafka broker, Tributary's Schema
//! Registry, articles produced by confluent-kafka's Python `AvroSerializer`,
//! `examples/articles/pipeline.json` run by the release binary, and the
//! Iceberg table read back by PyIceberg (and DuckDB).

use std::collections::BTreeSet;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::*;
use crate::kafka_env::*;

/// `examples/articles/pipeline.json`, pointed at this broker, registry and
/// scratch folder through the environment variables it honours.
fn seed_env(env: &KafkaEnv, s: &Scratch, topic: &str) -> Vec<(&'static str, String)> {
    vec![
        ("KAFKA_BOOTSTRAP_SERVERS", env.broker.bootstrap()),
        ("KAFKA_TOPIC", topic.to_string()),
        ("SCHEMA_REGISTRY_URL", env.registry.url()),
        ("ICEBERG_TABLE", s.table().to_string()),
        ("ICEBERG_WAREHOUSE", s.warehouse().display().to_string()),
        ("ICEBERG_CATALOG_URI", s.catalog_uri()),
        (
            "CHECKPOINT_LOCATION",
            s.path("chk/articles_raw").display().to_string(),
        ),
    ]
}

fn run_seed(env: &KafkaEnv, s: &Scratch, topic: &str) -> Output {
    let example = repo_root().join("examples/articles/pipeline.json");
    let mut cmd = s.command(&[
        "run",
        "--available-now",
        "--progress-interval",
        "0",
        example.to_str().unwrap(),
    ]);
    for (k, v) in seed_env(env, s, topic) {
        cmd.env(k, v);
    }
    cmd.output_within(RUN_LIMIT)
}

/// The number after `word` in the final progress line (`late 12`).
fn progress_count(stderr: &str, word: &str) -> u64 {
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

fn ids_of(table: &Value) -> Vec<String> {
    serde_json::from_value(table["ids"].clone()).unwrap()
}

fn assert_exactly(table: &Value, expected: &BTreeSet<String>) {
    let got = ids_of(table);
    let set: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(
        table["duplicated_keys"], 0,
        "duplicate ids in the table: {}",
        table["duplicated_examples"]
    );
    assert_eq!(got.len(), set.len());
    let missing: Vec<_> = expected.difference(&set).take(5).collect();
    let extra: Vec<_> = set.difference(expected).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{} ids missing (e.g. {missing:?}), {} unexpected (e.g. {extra:?})",
        expected.difference(&set).count(),
        set.difference(expected).count()
    );
}

/// The seed's Definition of Done: no duplicate ids within the watermark
/// window, late data dropped and counted, restart resumes from the last commit
/// with no duplicates and no loss, continuous append, offsets tracked.
#[test]
fn seed_pipeline_definition_of_done() {
    let env = KafkaEnv::start().unwrap();
    let s = Scratch::new("seed");
    let topic = "articles.raw.v1";
    let expected_file = s.path("expected-1.json");
    let first = env
        .produce(&[
            "--topic",
            topic,
            "--partitions",
            "3",
            "--records",
            "60000",
            "--expected",
            expected_file.to_str().unwrap(),
        ])
        .unwrap();
    assert!(first["late"].as_u64().unwrap() > 0, "{first}");
    assert!(first["duplicate"].as_u64().unwrap() > 0, "{first}");

    let out = run_seed(&env, &s, topic);
    let stderr = assert_ok(&out);
    let late = progress_count(&stderr, "late");
    let dup = progress_count(&stderr, "dup");
    assert_eq!(
        late,
        first["late"].as_u64().unwrap(),
        "late events dropped and counted"
    );
    assert_eq!(
        dup,
        first["duplicate"].as_u64().unwrap(),
        "duplicates dropped and counted"
    );
    let table = s.inspect(&["--ids", "--duckdb"]).unwrap();
    let mut expected = read_ids(&expected_file);
    assert_exactly(&table, &expected);
    assert_eq!(
        table["duckdb_rows"], table["rows"],
        "DuckDB and PyIceberg disagree"
    );
    // Offsets tracked: the last commit names the end of every partition.
    let offsets: Value =
        serde_json::from_str(table["summary"]["tributary.offsets"].as_str().unwrap()).unwrap();
    let parts = offsets[topic].as_object().unwrap();
    assert_eq!(parts.len(), 3, "{offsets}");
    let total: i64 = parts.values().map(|o| o.as_i64().unwrap()).sum();
    assert_eq!(total, first["produced"].as_i64().unwrap(), "{offsets}");
    let snapshots_before = table["snapshots"].as_u64().unwrap();

    // Continuous append: more articles, the same stream going on; a restart
    // resumes after the last commit and adds only the new ones.
    let expected_file2 = s.path("expected-2.json");
    env.produce(&[
        "--topic",
        topic,
        "--first",
        "60000",
        "--records",
        "20000",
        "--expected",
        expected_file2.to_str().unwrap(),
    ])
    .unwrap();
    let out = run_seed(&env, &s, topic);
    let stderr = assert_ok(&out);
    assert!(stderr.contains("resuming after epoch"), "{stderr}");
    let table = s.inspect(&["--ids"]).unwrap();
    expected.extend(read_ids(&expected_file2));
    assert_exactly(&table, &expected);
    assert!(table["snapshots"].as_u64().unwrap() > snapshots_before);
    assert!(
        progress_count(&stderr, "late") > 0,
        "the second round has late events too"
    );

    // A third run with nothing new commits nothing and changes nothing.
    let out = run_seed(&env, &s, topic);
    assert_ok(&out);
    let again = s.inspect(&[]).unwrap();
    assert_eq!(again["rows"], table["rows"]);
    assert_eq!(again["snapshots"], table["snapshots"]);
}

/// SIGKILL at random points over 100k+ Kafka records produced while the
/// pipeline runs; PyIceberg must see exactly the expected ids.
#[test]
fn kill_9_over_kafka_loses_nothing_and_duplicates_nothing() {
    let env = KafkaEnv::start().unwrap();
    let s = Scratch::new("kafka_crash");
    let topic = "articles.crash";
    let records = 120_000;
    let expected_file = s.path("expected.json");
    // Create the topic first, so the pipeline can start before the producer
    // is done.
    env.produce(&["--topic", topic, "--partitions", "4", "--records", "0"])
        .unwrap();
    let mut producer = env
        .produce_command(&[
            "--topic",
            topic,
            "--records",
            &records.to_string(),
            "--rate",
            "8000",
            "--expected",
            expected_file.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();

    let mut pipeline: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("examples/articles/pipeline.json")).unwrap(),
    )
    .unwrap();
    pipeline["name"] = json!("kafka_crash");
    pipeline["source"]["bootstrap_servers"] = json!(env.broker.bootstrap());
    pipeline["source"]["topics"] = json!([topic]);
    pipeline["source"]["schema_registry_url"] = json!(env.registry.url());
    pipeline["sink"] = s.iceberg_sink();
    pipeline["checkpoint"] = json!({"location": s.path("chk")});
    pipeline["trigger"] =
        json!({"interval_ms": 200, "max_records_per_epoch": 5000, "batch_size": 1000});

    let mut rng = Rng::kill_schedule();
    let mut kills = 0;
    let started = Instant::now();
    while kills < 12 && started.elapsed() < Duration::from_secs(180) {
        let mut child = s.spawn(&pipeline, &[]);
        std::thread::sleep(Duration::from_millis(rng.between(300, 1500)));
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "tributary exited ({status}) before it was killed:\n{}",
                std::fs::read_to_string(s.path("runs.log")).unwrap_or_default()
            );
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
    }
    let produced = wait_within(&mut producer, Duration::from_secs(300), "the producer");
    assert!(produced.success(), "the producer failed");
    eprintln!("{kills} kills");
    assert!(kills >= 10, "only {kills} kills in the time allowed");

    let out = s.run(&pipeline);
    assert_ok(&out);
    let log = std::fs::read_to_string(s.path("runs.log")).unwrap();
    assert!(
        log.contains("resuming after epoch"),
        "no run resumed:\n{log}"
    );
    let table = s.inspect(&["--ids", "--duckdb"]).unwrap();
    assert_exactly(&table, &read_ids(&expected_file));
    assert!(ids_of(&table).iter().all(|id| !id.starts_with("late-")));
    assert_eq!(table["duckdb_rows"], table["rows"]);
}

/// v1 articles, then v2 articles with a new optional field, on one topic:
/// both land in one table; the new column is null for v1 rows.
#[test]
fn schema_evolution_mid_stream_lands_in_one_table() {
    let env = KafkaEnv::start().unwrap();
    let s = Scratch::new("evolution");
    let topic = "articles.evolving";
    let v1 = env
        .produce(&[
            "--topic",
            topic,
            "--partitions",
            "2",
            "--records",
            "3000",
            "--late-ratio",
            "0",
            "--duplicate-ratio",
            "0",
        ])
        .unwrap();
    let v2 = env
        .produce(&[
            "--topic",
            topic,
            "--first",
            "3000",
            "--records",
            "3000",
            "--schema-version",
            "2",
            "--late-ratio",
            "0",
            "--duplicate-ratio",
            "0",
        ])
        .unwrap();
    assert_ne!(v1["schema_id"], v2["schema_id"], "v2 got its own schema id");
    let out = run_seed(&env, &s, topic);
    assert_ok(&out);
    let table = s.inspect(&["--rows"]).unwrap();
    assert_eq!(table["rows"], 6000);
    let columns: Vec<String> = serde_json::from_value(table["columns"].clone()).unwrap();
    assert!(columns.contains(&"language".to_string()), "{columns:?}");
    // v1 rows (a-0 … a-2999) read as null; v2 rows alternate "en" / null.
    let rows = table["records"].as_array().unwrap();
    let mut v1_nulls = 0;
    let mut v2_en = 0;
    for row in rows {
        let id = row["id"].as_str().unwrap();
        let n: u64 = id.trim_start_matches("a-").parse().unwrap();
        if n < 3000 {
            assert!(row["language"].is_null(), "v1 row {row}");
            v1_nulls += 1;
        } else if row["language"] == "en" {
            v2_en += 1;
        }
    }
    assert_eq!(v1_nulls, 3000);
    assert_eq!(v2_en, 1500, "every other v2 article has language = en");
}

/// Each bad record kind is dead-lettered with its reason at its position,
/// and the records after it arrive.
#[test]
fn bad_kafka_records_are_dead_lettered_and_nothing_after_them_is_lost() {
    let env = KafkaEnv::start().unwrap();
    let s = Scratch::new("kafka_bad");
    let topic = "articles.bad";
    let expected_file = s.path("expected.json");
    let report = env
        .produce(&[
            "--topic",
            topic,
            "--partitions",
            "1",
            "--records",
            "4000",
            "--bad",
            "bad-magic",
            "--bad",
            "unknown-schema-id",
            "--bad",
            "truncated",
            "--bad",
            "tombstone",
            "--expected",
            expected_file.to_str().unwrap(),
        ])
        .unwrap();
    let bad = report["bad"].as_array().unwrap();
    assert_eq!(bad.len(), 4, "{report}");

    // Policy `fail`: stops at the first bad record, naming it; nothing past it
    // is committed.
    let mut strict: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("examples/articles/pipeline.json")).unwrap(),
    )
    .unwrap();
    strict["source"]["bootstrap_servers"] = json!(env.broker.bootstrap());
    strict["source"]["topics"] = json!([topic]);
    strict["source"]["schema_registry_url"] = json!(env.registry.url());
    strict["sink"] = s.iceberg_sink();
    strict["checkpoint"] = json!({"location": s.path("chk")});
    strict["trigger"] =
        json!({"interval_ms": 200, "max_records_per_epoch": 500, "batch_size": 100});
    strict["errors"] = json!({"policy": "fail"});
    let out = s.run(&strict);
    let stderr = assert_failed(&out);
    let first_bad = bad
        .iter()
        .map(|b| b["offset"].as_i64().unwrap())
        .min()
        .unwrap();
    assert!(
        stderr.contains(&format!("{topic}/0@{first_bad}")),
        "the error names the position {topic}/0@{first_bad}:\n{stderr}"
    );
    assert!(stderr.contains("magic byte"), "{stderr}");
    if let Ok(table) = s.inspect(&[]) {
        let offsets: Value = serde_json::from_str(
            table["summary"]["tributary.offsets"]
                .as_str()
                .unwrap_or("{}"),
        )
        .unwrap_or_default();
        if let Some(o) = offsets[topic]["0"].as_i64() {
            assert!(
                o <= first_bad,
                "committed past the bad record: {o} > {first_bad}"
            );
        }
    }

    // Policy `dead-letter`: every bad record is written with its reason and
    // position, and everything after it arrives.
    let mut lenient = strict.clone();
    lenient["errors"] = json!({"policy": "dead-letter", "dead_letter_path": s.path("dlq")});
    let out = s.run(&lenient);
    assert_ok(&out);
    let letters = s.dead_letters("dlq");
    assert_eq!(letters.len(), 4, "{letters:#?}");
    for b in bad {
        let position = format!("{topic}/0@{}", b["offset"]);
        let letter = letters
            .iter()
            .find(|l| l["position"] == position.as_str())
            .unwrap_or_else(|| panic!("no dead letter at {position}: {letters:#?}"));
        let reason = letter["reason"].as_str().unwrap().to_lowercase();
        let says = match b["kind"].as_str().unwrap() {
            "bad-magic" => "magic byte",
            "unknown-schema-id" => "999999",
            "truncated" => "truncated",
            "tombstone" => "tombstone",
            other => panic!("kind {other}"),
        };
        assert!(reason.contains(says), "{position}: {reason}");
        assert_eq!(letter["stage"], "source");
    }
    let table = s.inspect(&["--ids"]).unwrap();
    assert_exactly(&table, &read_ids(&expected_file));
}

/// `format: json`: JSON values, no registry, columns declared in the
/// pipeline; a message that is not JSON is dead-lettered, the rest arrive.
#[test]
fn json_values_without_a_registry() {
    let broker = Broker::start().unwrap();
    let s = Scratch::new("kafka_json");
    let topic = "articles.json";
    let expected_file = s.path("expected.json");
    let mut produce = std::process::Command::new(python());
    produce
        .arg(repo_root().join("scripts/produce_articles.py"))
        .args(["--bootstrap", &broker.bootstrap(), "--format", "json"])
        .args(["--topic", topic, "--partitions", "2", "--records", "5000"])
        .args(["--bad", "truncated", "--expected"])
        .arg(&expected_file);
    let out = produce.output_within(Duration::from_secs(300));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let bad = &report["bad"][0];

    let source = json!({
        "type": "kafka",
        "bootstrap_servers": broker.bootstrap(),
        "topics": [topic],
        "format": "json",
        "schema": [
            {"name": "id", "type": "string", "required": true},
            {"name": "source", "type": "string"},
            {"name": "title", "type": "string"},
            {"name": "url", "type": "string"},
            {"name": "author", "type": "string"},
            {"name": "body", "type": "string"},
            {"name": "published_at", "type": "timestamp", "required": true},
        ],
    });
    let mut pipeline = s.pipeline(source, watermark_and_dedup("2 hours"));
    pipeline["errors"] = json!({"policy": "dead-letter", "dead_letter_path": s.path("dlq")});
    let out = s.run(&pipeline);
    assert_ok(&out);
    let table = s.inspect(&["--ids"]).unwrap();
    assert_exactly(&table, &read_ids(&expected_file));
    let letters = s.dead_letters("dlq");
    assert_eq!(letters.len(), 1, "{letters:?}");
    let position = format!("{topic}/{}@{}", bad["partition"], bad["offset"]);
    assert_eq!(letters[0]["position"], position.as_str(), "{letters:?}");
    assert!(
        letters[0]["reason"].as_str().unwrap().contains("JSON"),
        "{letters:?}"
    );
    assert!(
        letters[0]["raw"].as_str().is_some(),
        "the text is kept: {letters:?}"
    );
}

/// A broker that is not there yet: the pipeline says so, retries with
/// backoff, and reads everything once the broker comes up.
#[test]
fn unreachable_broker_is_retried_and_nothing_is_lost() {
    let registry = Registry::start().unwrap();
    let port = free_port();
    let s = Scratch::new("kafka_down");
    let topic = "articles.later";
    let mut pipeline: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("examples/articles/pipeline.json")).unwrap(),
    )
    .unwrap();
    pipeline["source"]["bootstrap_servers"] = json!(format!("127.0.0.1:{port}"));
    pipeline["source"]["topics"] = json!([topic]);
    pipeline["source"]["schema_registry_url"] = json!(registry.url());
    pipeline["sink"] = s.iceberg_sink();
    pipeline["checkpoint"] = json!({"location": s.path("chk")});
    pipeline["trigger"]["interval_ms"] = json!(500);
    let path = s.write_pipeline(&pipeline);
    // A continuous run: `--available-now` would stop at whatever the topic
    // held the moment it appeared.
    let mut child = s
        .command(&["run", "--progress-interval", "0", path.to_str().unwrap()])
        .stderr(std::fs::File::create(s.path("run.log")).unwrap())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    assert!(child.try_wait().unwrap().is_none(), "it gave up at once");
    let env = KafkaEnv {
        broker: Broker::start_on(port).unwrap(),
        registry,
    };
    let expected_file = s.path("expected.json");
    env.produce(&[
        "--topic",
        topic,
        "--records",
        "2000",
        "--expected",
        expected_file.to_str().unwrap(),
    ])
    .unwrap();
    let expected = read_ids(&expected_file);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(120) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "tributary exited ({status}):\n{}",
                std::fs::read_to_string(s.path("run.log")).unwrap_or_default()
            );
        }
        if s.inspect(&[])
            .is_ok_and(|t| t["rows"].as_u64() >= Some(expected.len() as u64))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = wait_within(&mut child, Duration::from_secs(60), "tributary run");
    let stderr = std::fs::read_to_string(s.path("run.log")).unwrap();
    assert!(status.success(), "tributary failed ({status}):\n{stderr}");
    assert!(
        stderr.contains(&format!("127.0.0.1:{port}")) && stderr.contains("retrying"),
        "the retries name the broker:\n{stderr}"
    );
    let table = s.inspect(&["--ids"]).unwrap();
    assert_exactly(&table, &expected);
}
