//! Differential test against Spark, the seed's own system: the seed's job as
//! the seed writes it (pyspark, Kafka source,
//! `withWatermark("published_at", "2 hours").dropDuplicates(["id"])`, Iceberg
//! sink with a checkpoint location, `Trigger.AvailableNow`; and its bounded
//! form `dropDuplicatesWithinWatermark`), run by `scripts/spark_articles.py`,
//! and Tributary's `examples/articles/pipeline.json` read the same Apache Kafka
//! topic. PyIceberg compares the tables; Spark also reads Tributary's table.
//!
//! The input is small (15,000 articles, one a second of event time, one
//! partition) and unambiguous: every late event is 3 hours behind the stream
//! (1 hour past the 2-hour watermark), so it is late however either system
//! cuts the stream into batches, as long as neither lags by more than an hour
//! of event time: Tributary's watermark lags one batch (2,000 records, 33
//! minutes), Spark's late-event filter two micro-batches (2 × 500 records,
//! 17 minutes). Where the batches decide, the second test shows the
//! difference (docs/semantics.md).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::harness::*;
use crate::kafka_env::*;
use crate::registry_env::jvm_tool;

/// The largest a Spark run may take: a JVM on two busy cores, 30 micro-batches.
const SPARK_LIMIT: Duration = Duration::from_secs(600);

const TOPIC: &str = "articles.raw.v1";

/// Produces the unambiguous input; returns (the producer's report, the ids
/// a 2-hour watermark + dedup must deliver).
fn produce(env: &KafkaEnv, s: &Scratch) -> (Value, BTreeSet<String>) {
    let expected = s.path("expected.json");
    let report = env
        .produce(&[
            "--topic",
            TOPIC,
            "--partitions",
            "1",
            "--records",
            "15000",
            "--spacing-ms",
            "1000",
            "--expected",
            expected.to_str().unwrap(),
        ])
        .unwrap();
    assert!(report["late"].as_u64().unwrap() >= 20, "{report}");
    assert!(report["duplicate"].as_u64().unwrap() >= 1000, "{report}");
    (report, read_ids(&expected))
}

/// `examples/articles/pipeline.json`, unchanged, to the end of the topic.
fn run_tributary(env: &KafkaEnv, s: &Scratch) -> String {
    let example = repo_root().join("examples/articles/pipeline.json");
    let mut cmd = s.command(&[
        "run",
        "--available-now",
        "--progress-interval",
        "0",
        example.to_str().unwrap(),
    ]);
    cmd.env("KAFKA_BOOTSTRAP_SERVERS", env.broker.bootstrap())
        .env("KAFKA_TOPIC", TOPIC)
        .env("SCHEMA_REGISTRY_URL", env.registry.url())
        .env("ICEBERG_TABLE", s.table())
        .env("ICEBERG_WAREHOUSE", s.warehouse())
        .env("ICEBERG_CATALOG_URI", s.catalog_uri())
        .env("CHECKPOINT_LOCATION", s.path("chk/articles_raw"));
    assert_ok(&cmd.output_within(RUN_LIMIT))
}

/// A Spark warehouse: its own SQLite catalog file (catalog name `spark`).
struct SparkTable {
    dir: tempfile::TempDir,
}

impl SparkTable {
    fn new() -> Self {
        Self {
            dir: tempfile::Builder::new()
                .prefix("trib-spark-")
                .tempdir()
                .unwrap(),
        }
    }

    fn warehouse(&self) -> std::path::PathBuf {
        self.dir.path().join("warehouse")
    }

    fn catalog_uri(&self) -> String {
        format!("sqlite:{}", self.warehouse().join("catalog.db").display())
    }

    /// `spark_articles.py run`: the seed's job with `dedup` (`drop` or
    /// `within`) and at most `per_trigger` records per micro-batch (0: Spark's
    /// default, everything in one).
    fn run(&self, env: &KafkaEnv, dedup: &str, per_trigger: u32) -> Value {
        std::fs::create_dir_all(self.warehouse()).unwrap();
        let checkpoint = self.dir.path().join("chk");
        spark(&[
            "run",
            "--bootstrap",
            &env.broker.bootstrap(),
            "--registry",
            &env.registry.url(),
            "--topic",
            TOPIC,
            "--catalog-uri",
            &self.catalog_uri(),
            "--warehouse",
            self.warehouse().to_str().unwrap(),
            "--table",
            "demo.news.articles_raw",
            "--checkpoint",
            checkpoint.to_str().unwrap(),
            "--dedup",
            dedup,
            "--max-offsets-per-trigger",
            &per_trigger.to_string(),
        ])
    }

    /// Every row, read by PyIceberg.
    fn rows(&self) -> Vec<Value> {
        rows_with_pyiceberg(
            &self.catalog_uri(),
            "spark",
            &self.warehouse(),
            "demo.news.articles_raw",
        )
    }
}

/// Runs `scripts/spark_articles.py` with the Spark jars; returns its JSON line.
fn spark(args: &[&str]) -> Value {
    let jars = jvm_tool("spark").unwrap();
    let mut cmd = Command::new(python());
    cmd.arg(repo_root().join("scripts/spark_articles.py"))
        .arg(args[0])
        .arg("--jars-dir")
        .arg(&jars)
        .args(&args[1..]);
    let out = cmd.output_within(SPARK_LIMIT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "spark_articles.py {} failed ({}):\n{}",
        args[0],
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.trim().lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// The table's rows as PyIceberg reads them, sorted by id.
fn rows_with_pyiceberg(catalog_uri: &str, name: &str, warehouse: &Path, table: &str) -> Vec<Value> {
    let out = Command::new(python())
        .arg(repo_root().join("scripts/inspect_table.py"))
        .args(["--catalog-uri", catalog_uri, "--catalog-name", name])
        .args(["--warehouse", warehouse.to_str().unwrap()])
        .args(["--table", table, "--rows"])
        .output_within(Duration::from_secs(120));
    assert!(
        out.status.success(),
        "inspect_table.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["exists"], true, "no table {table} in {catalog_uri}");
    let mut rows: Vec<Value> = serde_json::from_value(report["records"].clone()).unwrap();
    rows.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    rows
}

fn ids(rows: &[Value]) -> BTreeSet<String> {
    rows.iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// Which ids two tables do not share, for a failure message.
fn difference(a: &BTreeSet<String>, b: &BTreeSet<String>) -> String {
    let only_a: Vec<_> = a.difference(b).take(5).collect();
    let only_b: Vec<_> = b.difference(a).take(5).collect();
    format!(
        "{} only in the first (e.g. {only_a:?}), {} only in the second (e.g. {only_b:?})",
        a.difference(b).count(),
        b.difference(a).count()
    )
}

/// On unambiguous input Spark's `dropDuplicates` and
/// `dropDuplicatesWithinWatermark` tables and Tributary's hold exactly the same
/// rows, which are exactly the expected ones; Spark reads Tributary's table.
#[test]
fn spark_and_tributary_agree_on_the_seed_job() {
    let env = KafkaEnv::start().unwrap();
    let s = Scratch::new("spark-diff");
    let (report, expected) = produce(&env, &s);

    run_tributary(&env, &s);
    let ours = rows_with_pyiceberg(&s.catalog_uri(), "tributary", &s.warehouse(), s.table());
    assert_eq!(ours.len(), expected.len(), "{report}");
    assert_eq!(
        ids(&ours),
        expected,
        "{}",
        difference(&ids(&ours), &expected)
    );

    for dedup in ["drop", "within"] {
        let spark_table = SparkTable::new();
        let run = spark_table.run(&env, dedup, 500);
        assert_eq!(run["input_rows"], report["produced"], "{run}");
        assert!(run["micro_batches"].as_u64().unwrap() >= 30, "{run}");
        let theirs = spark_table.rows();
        assert_eq!(
            ids(&theirs),
            ids(&ours),
            "Spark ({dedup}) and Tributary: {}",
            difference(&ids(&theirs), &ids(&ours))
        );
        let changed: Vec<_> = theirs
            .iter()
            .zip(&ours)
            .filter(|(a, b)| a != b)
            .take(3)
            .collect();
        assert!(
            changed.is_empty(),
            "rows differ (Spark, Tributary): {changed:?}"
        );
    }

    // Spark reads Tributary's table through the same SQLite catalog.
    let read = spark(&[
        "read",
        "--catalog-uri",
        &s.catalog_uri(),
        "--catalog-name",
        "tributary",
        "--warehouse",
        s.warehouse().to_str().unwrap(),
        "--table",
        s.table(),
        "--ids",
    ]);
    let spark_ids: BTreeSet<String> = serde_json::from_value(read["ids"].clone()).unwrap();
    assert_eq!(read["rows"], read["distinct"], "{}", read["rows"]);
    assert_eq!(spark_ids, expected, "{}", difference(&spark_ids, &expected));
}

/// Where batches decide, the systems differ, and this says how (see
/// docs/semantics.md). With Spark's default for AvailableNow, all of the topic
/// in one micro-batch, Spark's watermark is still unset while it reads every
/// record, so it keeps every late event; Tributary judges each batch of 2,000
/// against the watermark of the batches before it and drops them.
#[test]
fn spark_judges_lateness_per_micro_batch() {
    let env = KafkaEnv::start().unwrap();
    let s = Scratch::new("spark-batch");
    let (report, expected) = produce(&env, &s);

    let stderr = run_tributary(&env, &s);
    assert!(
        stderr.contains(&format!("late {}", report["late"])),
        "{stderr}"
    );
    let ours = ids(&rows_with_pyiceberg(
        &s.catalog_uri(),
        "tributary",
        &s.warehouse(),
        s.table(),
    ));
    assert_eq!(ours, expected, "{}", difference(&ours, &expected));

    let spark_table = SparkTable::new();
    let run = spark_table.run(&env, "drop", 0);
    assert!(run["micro_batches"].as_u64().unwrap() <= 2, "{run}");
    let theirs = ids(&spark_table.rows());
    let extra: BTreeSet<String> = theirs.difference(&ours).cloned().collect();
    assert!(ours.is_subset(&theirs), "{}", difference(&theirs, &ours));
    assert_eq!(
        extra.len() as u64,
        report["late"].as_u64().unwrap(),
        "{extra:?}"
    );
    assert!(extra.iter().all(|id| id.starts_with("late-")), "{extra:?}");
}
