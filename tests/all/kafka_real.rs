//! What a real broker makes testable: against Apache Kafka, the `kafka`
//! source started at `latest` and crashing before its first commit, topics
//! written by confluent-kafka's transactional producer (commit markers,
//! aborted transactions, `--available-now` over them, a restart on a marker),
//! `--available-now` stopping at its ends while a producer writes, and
//! offsets that go backwards (a topic deleted and recreated).
//! Every output is a `jsonl` folder (exactly-once) read back line by line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::*;
use crate::kafka_env::{Broker, json_source};

/// `scripts/produce_txn.py` with these arguments; its JSON report.
fn produce(broker: &Broker, args: &[&str]) -> Value {
    let out = Command::new(python())
        .arg(repo_root().join("scripts/produce_txn.py"))
        .args(["--bootstrap", &broker.bootstrap()])
        .args(args)
        .output_within(Duration::from_secs(120));
    assert!(
        out.status.success(),
        "produce_txn.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn ids(report: &Value, key: &str) -> BTreeSet<String> {
    serde_json::from_value(report[key].clone()).unwrap()
}

/// A pipeline reading `topic` (JSON values `{"id", "n"}`) into a `jsonl`
/// folder, no transforms.
fn pipeline(s: &Scratch, broker: &Broker, topic: &str, start: &str) -> Value {
    json!({
        "name": s.name,
        "source": json_source(broker, topic, start),
        "transforms": [],
        "sink": {"type": "jsonl", "path": s.path("out")},
        "checkpoint": {"location": s.path("chk")},
        "trigger": {"interval_ms": 300, "max_records_per_epoch": 5000, "batch_size": 500},
    })
}

/// Every id in the output folder, in file order.
fn output_ids(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(|l| {
                    serde_json::from_str::<Value>(l).unwrap()["id"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `got` holds each of `want` exactly once and nothing else.
fn assert_exactly(what: &str, got: &[String], want: &BTreeSet<String>) {
    let set: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(got.len(), set.len(), "{what}: duplicated ids");
    let missing: Vec<_> = want.difference(&set).take(5).collect();
    let extra: Vec<_> = set.difference(want).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: {} missing (e.g. {missing:?}), {} unexpected (e.g. {extra:?})",
        want.difference(&set).count(),
        set.difference(want).count()
    );
}

/// `--available-now` that must end by itself (within a minute).
fn run_now(s: &Scratch, p: &Value) -> std::process::Output {
    let path = s.write_pipeline(p);
    s.command(&[
        "run",
        "--available-now",
        "--progress-interval",
        "0",
        path.to_str().unwrap(),
    ])
    .output_within(Duration::from_secs(60))
}

/// The ends an `--available-now` run logged it reads up to
/// (`reads up to {("t", 0): 12, ("t", 1): 9}`), by partition.
fn logged_ends(stderr: &str) -> BTreeMap<i32, i64> {
    let line = stderr
        .lines()
        .find(|l| l.contains("--available-now reads up to {"))
        .unwrap_or_else(|| panic!("no `--available-now reads up to` in the log:\n{stderr}"));
    let ends = &line[line.find('{').unwrap() + 1..line.rfind('}').unwrap()];
    ends.split('(')
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let (name, offset) = e.split_once("): ").unwrap();
            let partition = name.rsplit(", ").next().unwrap().parse().unwrap();
            let offset = offset.trim_end_matches([',', ' ']).parse().unwrap();
            (partition, offset)
        })
        .collect()
}

/// A committed record as confluent-kafka reads it.
struct Read {
    id: String,
    partition: i32,
    offset: i64,
}

/// Every committed record of `topic` up to its ends now, read by
/// confluent-kafka (scripts/read_topic.py, read_committed), in log order per
/// partition.
fn read_topic(broker: &Broker, topic: &str) -> Vec<Read> {
    let out = Command::new(python())
        .arg(repo_root().join("scripts/read_topic.py"))
        .args(["--bootstrap", &broker.bootstrap(), "--topic", topic])
        .args(["--timeout", "30"])
        .output_within(Duration::from_secs(60));
    assert!(
        out.status.success(),
        "read_topic.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: Value = serde_json::from_slice(&out.stdout).unwrap();
    let column = |name: &str| read[name].as_array().unwrap().clone();
    let (ids, partitions, offsets) = (column("values"), column("partitions"), column("offsets"));
    assert!(ids.len() == partitions.len() && ids.len() == offsets.len());
    ids.iter()
        .zip(&partitions)
        .zip(&offsets)
        .map(|((id, p), o)| Read {
            id: id.as_str().unwrap().to_string(),
            partition: p.as_i64().unwrap() as i32,
            offset: o.as_i64().unwrap(),
        })
        .collect()
}

/// The ids of the records below `ends`: what an `--available-now` run that
/// fixed these ends has read, counting every run before it.
fn below(read: &[Read], ends: &BTreeMap<i32, i64>) -> BTreeSet<String> {
    read.iter()
        .filter(|r| ends.get(&r.partition).is_some_and(|end| r.offset < *end))
        .map(|r| r.id.clone())
        .collect()
}

/// `scripts/produce_txn.py --forever` with these arguments, once it writes.
fn start_writer(broker: &Broker, topic: &str, args: &[&str]) -> std::process::Child {
    let mut writer = Command::new(python())
        .arg(repo_root().join("scripts/produce_txn.py"))
        .args(["--bootstrap", &broker.bootstrap(), "--topic", topic])
        .args(args)
        .arg("--forever")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut first_line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(writer.stdout.as_mut().unwrap()),
        &mut first_line,
    )
    .unwrap();
    assert_eq!(
        first_line.trim(),
        "producing",
        "produce_txn.py did not start"
    );
    writer
}

/// Waits until `file` contains `text`.
fn wait_for_log(file: &Path, text: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if std::fs::read_to_string(file).is_ok_and(|t| t.contains(text)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "no `{text}` in {} within {limit:?}:\n{}",
        file.display(),
        std::fs::read_to_string(file).unwrap_or_default()
    );
}

/// `start: latest` resolves the end of each partition when the pipeline
/// first opens; a crash before the first commit must not resolve it again
/// on restart, or whatever arrived in between would be skipped.
#[test]
fn kafka_real_start_latest_survives_a_crash_before_the_first_commit() {
    let broker = Broker::start().unwrap();
    let s = Scratch::new("latest-crash");
    let topic = "latest.crash";
    // Before the pipeline exists: not to be read (`latest`).
    produce(
        &broker,
        &[
            "--topic",
            topic,
            "--create",
            "--partitions",
            "2",
            "--prefix",
            "old",
            "--records",
            "100",
        ],
    );
    let p = pipeline(&s, &broker, topic, "latest");
    // The first run reads what arrives after it started, then dies between
    // writing its first checkpoint and committing it.
    let mut child = s.spawn(
        &p,
        &[("TRIBUTARY_CRASH_AT", "checkpoint-written@1".to_string())],
    );
    wait_for_log(
        &s.path("runs.log"),
        "kafka source: reading 2 partition(s)",
        Duration::from_secs(60),
    );
    let mid = produce(
        &broker,
        &[
            "--topic",
            topic,
            "--prefix",
            "mid",
            "--records",
            "100",
            "--partitions",
            "2",
        ],
    );
    let status = wait_within(&mut child, Duration::from_secs(60), "tributary");
    assert!(!status.success(), "the crash point should have stopped it");
    assert!(
        output_ids(&s.path("out")).is_empty(),
        "nothing may be committed before the crash"
    );
    // While it is down.
    let gap = produce(
        &broker,
        &[
            "--topic",
            topic,
            "--prefix",
            "gap",
            "--records",
            "100",
            "--partitions",
            "2",
        ],
    );
    let out = run_now(&s, &p);
    let stderr = assert_ok(&out);
    let mut want = ids(&mid, "committed");
    want.extend(ids(&gap, "committed"));
    assert_exactly(
        &format!("after a crash before the first commit\n{stderr}"),
        &output_ids(&s.path("out")),
        &want,
    );
}

/// A topic written by a transactional producer, with aborted transactions:
/// only committed records are read, `--available-now` ends although the last
/// offset of every partition is a commit marker, a restart whose position
/// sits after (on) a marker reads nothing again and ends, and a run while a
/// producer keeps writing transactions reads exactly what was committed
/// below its ends. That last run used to fail about once in fifteen (read on
/// past its ends for over the test's minute; docs/reliability.md).
#[test]
fn kafka_real_transactional_topic_is_read_committed_and_available_now_ends() {
    let broker = Broker::start().unwrap();
    let s = Scratch::new("txn-source");
    let topic = "txn.in";
    let first = produce(
        &broker,
        &[
            "--topic",
            topic,
            "--create",
            "--partitions",
            "3",
            "--records",
            "600",
            "--transactions",
            "--per-txn",
            "60",
            "--abort-every",
            "3",
        ],
    );
    let committed = ids(&first, "committed");
    assert!(!ids(&first, "aborted").is_empty());
    let p = pipeline(&s, &broker, topic, "earliest");
    let stderr = assert_ok(&run_now(&s, &p));
    assert_exactly(
        &format!("first run\n{stderr}"),
        &output_ids(&s.path("out")),
        &committed,
    );

    // A restart: every position is past the last commit marker; nothing is
    // read again and the run ends by itself.
    let stderr = assert_ok(&run_now(&s, &p));
    assert!(stderr.contains(": in 0 "), "nothing read again:\n{stderr}");
    assert_exactly("restart", &output_ids(&s.path("out")), &committed);

    // More transactions, then a third run: only the new committed records.
    let second = produce(
        &broker,
        &[
            "--topic",
            topic,
            "--partitions",
            "3",
            "--prefix",
            "b",
            "--records",
            "300",
            "--transactions",
            "--per-txn",
            "40",
            "--abort-every",
            "2",
        ],
    );
    let mut all = committed.clone();
    all.extend(ids(&second, "committed"));
    let stderr = assert_ok(&run_now(&s, &p));
    assert_exactly(
        &format!("after more transactions\n{stderr}"),
        &output_ids(&s.path("out")),
        &all,
    );

    // `--available-now` while a producer keeps writing transactions: it
    // reads up to the ends fixed when it started (last stable offsets: the
    // open transaction and all after it are left), then stops. It used to
    // read on until a poll came back empty, which the busy producer could
    // put off past the test's minute (docs/reliability.md).
    let mut writer = start_writer(
        &broker,
        topic,
        &[
            "--partitions",
            "3",
            "--prefix",
            "c",
            "--transactions",
            "--per-txn",
            "20",
            "--seconds",
            "50",
        ],
    );
    std::thread::sleep(Duration::from_secs(2));
    let out = run_now(&s, &p);
    writer.kill().unwrap();
    writer.wait().unwrap();
    let stderr = assert_ok(&out);
    let ends = logged_ends(&stderr);

    // confluent-kafka reading the same topic (scripts/read_topic.py) stops
    // at the end although the end is a marker; it reads the earlier records
    // exactly once.
    let read = read_topic(&broker, topic);
    let earlier: Vec<String> = read
        .iter()
        .filter(|r| !r.id.starts_with("c-"))
        .map(|r| r.id.clone())
        .collect();
    assert_exactly("read_topic.py", &earlier, &all);
    let unique: BTreeSet<&String> = read.iter().map(|r| &r.id).collect();
    assert_eq!(unique.len(), read.len(), "read_topic.py: duplicated ids");

    // Exactly the committed records below the ends, each once: nothing the
    // writer committed after the run started.
    let want = below(&read, &ends);
    assert!(
        want.len() > all.len(),
        "the writer had written nothing when the run started:\n{stderr}"
    );
    assert!(
        read.len() > want.len(),
        "the writer wrote nothing past the ends; the test shows nothing"
    );
    assert_exactly(
        &format!("--available-now while transactions are written\n{stderr}"),
        &output_ids(&s.path("out")),
        &want,
    );
}

/// `--available-now` reads what the topic held when it started and stops
/// there, however fast records keep arriving. It used to read on past its
/// ends until a poll came back empty: a producer writing without pause kept
/// it running as long as it wrote (the "hang" of the transactional test).
#[test]
fn kafka_real_available_now_stops_at_its_ends_while_a_producer_writes() {
    let broker = Broker::start().unwrap();
    let s = Scratch::new("now-live");
    let topic = "live.in";
    produce(
        &broker,
        &[
            "--topic",
            topic,
            "--create",
            "--partitions",
            "3",
            "--records",
            "3000",
        ],
    );
    // Plain writes, 30 at a time without pause; --seconds bounds a run that
    // would read on as long as it writes.
    let mut writer = start_writer(
        &broker,
        topic,
        &[
            "--partitions",
            "3",
            "--prefix",
            "live",
            "--per-txn",
            "30",
            "--seconds",
            "30",
        ],
    );
    std::thread::sleep(Duration::from_secs(1));
    let out = run_now(&s, &pipeline(&s, &broker, topic, "earliest"));
    writer.kill().unwrap();
    writer.wait().unwrap();
    let stderr = assert_ok(&out);
    let ends = logged_ends(&stderr);
    let read = read_topic(&broker, topic);
    let want = below(&read, &ends);
    assert!(
        want.len() > 3000,
        "nothing written before the run:\n{stderr}"
    );
    assert!(
        read.len() > want.len(),
        "the writer wrote nothing past the ends; the test shows nothing"
    );
    assert_exactly(
        &format!("--available-now while a producer writes\n{stderr}"),
        &output_ids(&s.path("out")),
        &want,
    );
    // The run ends at its ends: a second run reads on from there.
    let stderr = assert_ok(&run_now(&s, &pipeline(&s, &broker, topic, "earliest")));
    let read = read_topic(&broker, topic);
    assert_exactly(
        &format!("second run\n{stderr}"),
        &output_ids(&s.path("out")),
        &below(&read, &logged_ends(&stderr)),
    );
}

/// A topic deleted and recreated after a commit: the committed positions are
/// beyond the new log's end. The source stops with a message that names the
/// topic, the partition, both offsets and the choices; nothing is skipped.
#[test]
fn kafka_real_offsets_that_go_backwards_stop_the_pipeline() {
    let broker = Broker::start().unwrap();
    let s = Scratch::new("backwards");
    let topic = "back.in";
    let first = produce(
        &broker,
        &[
            "--topic",
            topic,
            "--create",
            "--partitions",
            "1",
            "--records",
            "50",
        ],
    );
    let p = pipeline(&s, &broker, topic, "earliest");
    assert_ok(&run_now(&s, &p));
    assert_exactly(
        "first run",
        &output_ids(&s.path("out")),
        &ids(&first, "committed"),
    );

    // Deleted and created again, with fewer records than were read.
    let out = Command::new(python())
        .args([
            "-c",
            "import sys, time\n\
             from confluent_kafka.admin import AdminClient\n\
             a = AdminClient({'bootstrap.servers': sys.argv[1]})\n\
             for f in a.delete_topics([sys.argv[2]]).values(): f.result(30)\n\
             while sys.argv[2] in a.list_topics(timeout=10).topics: time.sleep(0.2)\n",
        ])
        .args([&broker.bootstrap(), topic])
        .output_within(Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The broker may still be removing the old log: retry the creation.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = Command::new(python())
            .arg(repo_root().join("scripts/produce_txn.py"))
            .args(["--bootstrap", &broker.bootstrap()])
            .args([
                "--topic",
                topic,
                "--create",
                "--partitions",
                "1",
                "--prefix",
                "new",
            ])
            .args(["--records", "10"])
            .output_within(Duration::from_secs(60));
        if out.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "recreate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let stderr = assert_failed(&run_now(&s, &p));
    for part in [
        "offsets went backwards in back.in/0",
        "committed position is 50",
        "now ends at 10",
        "deleted and recreated",
        "PATCH /connectors/<name>/offsets",
        "new \"name\"",
    ] {
        assert!(stderr.contains(part), "`{part}` missing from:\n{stderr}");
    }
    assert_eq!(output_ids(&s.path("out")).len(), 50, "nothing more written");
}

/// The `kafka` sink with `"transactions": true`: every epoch one Kafka
/// transaction carrying its commit record. After SIGKILLs at random moments,
/// and a second instance started while the first runs (the first, a zombie,
/// is fenced and stops), confluent-kafka reading with read_committed finds
/// every id exactly once.
#[test]
fn kafka_real_sink_exactly_once_with_transactions_survives_kill_9_and_fences_a_zombie() {
    let broker = Broker::start().unwrap();
    let s = Scratch::new("txn-sink");
    let topic = "eo.out";
    produce(
        &broker,
        &[
            "--topic",
            topic,
            "--create",
            "--partitions",
            "3",
            "--records",
            "0",
        ],
    );
    let source = json!({"type": "generator", "seed": 7, "records": 120000, "rate_per_sec": 5000});
    let want = tributary_generator::describe_expected(&source).unwrap().ids;
    let mut p = s.pipeline(source, watermark_and_dedup("2 hours"));
    p["sink"] = json!({"type": "kafka", "bootstrap_servers": broker.bootstrap(), "topic": topic,
                       "key_field": "id", "transactions": true});
    p["delivery"] = json!("exactly-once");
    p["trigger"] = json!({"interval_ms": 200, "max_records_per_epoch": 2000, "batch_size": 500});

    // SIGKILLs at random moments, some inside a transaction.
    let mut rng = Rng::kill_schedule();
    for _ in 0..4 {
        let mut child = s.spawn(&p, &[]);
        std::thread::sleep(Duration::from_millis(rng.between(1500, 3000)));
        assert!(child.try_wait().unwrap().is_none(), "ended too early");
        child.kill().unwrap();
        child.wait().unwrap();
    }
    // A zombie: the first instance still runs when a second one starts.
    let mut zombie = s.spawn(&p, &[]);
    std::thread::sleep(Duration::from_millis(2500));
    let mut second = s.spawn(&p, &[]);
    let status = wait_within(&mut zombie, Duration::from_secs(60), "the fenced instance");
    assert!(!status.success(), "the zombie should have stopped");
    let log = std::fs::read_to_string(s.path("runs.log")).unwrap();
    // Either fence may stop it first: Kafka's (the second instance's
    // `initTransactions` bumped the producer epoch) or the checkpoint
    // store's (the second instance claimed the pipeline). Both name why.
    assert!(
        log.contains("fenced: another instance started") || log.contains("is fenced:"),
        "the zombie's log should say it was fenced: {log}"
    );
    std::thread::sleep(Duration::from_millis(1000));
    second.kill().unwrap();
    second.wait().unwrap();

    let stderr = assert_ok(&s.run(&p));
    assert!(stderr.contains("exactly-once"), "{stderr}");
    let out = Command::new(python())
        .arg(repo_root().join("scripts/read_topic.py"))
        .args(["--bootstrap", &broker.bootstrap(), "--topic", topic])
        .output_within(Duration::from_secs(120));
    assert!(
        out.status.success(),
        "read_topic.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<String> = serde_json::from_value(read["values"].clone()).unwrap();
    assert_exactly("kafka topic after kills and a zombie", &ids, &want);
}

/// A commit held up for longer than the pipeline lets a batch wait (2 s:
/// the source is then paused so it stops fetching) must not stop the
/// source for good. The SQLite catalog is locked for 6 s while records
/// arrive; every record written before, during and after must reach the
/// table once. Before the fix the source was "resumed" by a new `assign`,
/// which librdkafka does not take as a resume: the run read nothing more,
/// with no message, until restarted (found by the soak run,
/// docs/reliability.md "Soak").
#[test]
fn kafka_real_a_commit_held_up_does_not_stop_the_source_for_good() {
    use crate::owners::{kafka_to_iceberg, produce, sigterm, spawn_run, table_ids, wait_for_rows};
    let broker = Broker::start().unwrap();
    let s = Scratch::new("stall");
    let topic = "stall.in";
    let mut want: BTreeSet<String> = produce(&broker, topic, "a", 300, true)
        .into_iter()
        .collect();
    let (mut run, log) = spawn_run(&s, &kafka_to_iceberg(&s, &broker, topic, 300), "run");
    wait_for_rows(&s, &want, &mut [&mut run]);

    // Hold the catalog: the next commit waits for it.
    let mut lock = Command::new(python())
        .args([
            "-c",
            "import sqlite3, sys, time\n\
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n\
c.execute('BEGIN EXCLUSIVE')\n\
print('locked', flush=True)\n\
time.sleep(float(sys.argv[2]))\n\
c.execute('COMMIT')",
        ])
        .arg(s.path("warehouse/catalog.db"))
        .arg("6")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(lock.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "locked");
    // A few records start an epoch whose commit waits on the lock; the
    // next thousand arrive while it waits, fill the pipeline's queue, and
    // the source is paused.
    want.extend(produce(&broker, topic, "b", 50, false));
    std::thread::sleep(Duration::from_millis(1500));
    want.extend(produce(&broker, topic, "w", 1000, false));
    assert!(lock.wait().unwrap().success());
    want.extend(produce(&broker, topic, "c", 300, false));

    let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for_rows(&s, &want, &mut [&mut run])
    }));
    sigterm(&run);
    let _ = run.wait();
    if let Err(e) = waited {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        panic!(
            "{}\nthe run's log ends:\n{}",
            e.downcast_ref::<String>().cloned().unwrap_or_default(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    let (have, twice) = table_ids(&s);
    assert_eq!(twice, 0, "ids in the table twice");
    assert_eq!(have, want);
}
