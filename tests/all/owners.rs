//! Exactly-once in the open world (issue 19), scenarios 3 and 4: who owns a
//! pipeline, and where its progress is found. Two instances of one pipeline
//! run side by side against Apache Kafka into one Iceberg table, and a table
//! whose snapshot history other engines rewrote (PyIceberg as the other
//! writer and as the maintenance job) is resumed. The table is read back
//! with PyIceberg. Each test failed on the code before its fix.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::*;
use crate::kafka_env::{Broker, json_source};

/// `scripts/produce_txn.py` (plain idempotent producer): JSON records
/// `{"id": "<prefix>-<i>", "n": i}`; returns the ids written.
pub(crate) fn produce(
    broker: &Broker,
    topic: &str,
    prefix: &str,
    records: u64,
    create: bool,
) -> Vec<String> {
    let records = records.to_string();
    let mut args = vec!["--topic", topic, "--prefix", prefix, "--records", &records];
    if create {
        args.push("--create");
    }
    let out = Command::new(python())
        .arg(repo_root().join("scripts/produce_txn.py"))
        .args(["--bootstrap", &broker.bootstrap()])
        .args(&args)
        .output_within(Duration::from_secs(120));
    assert!(
        out.status.success(),
        "produce_txn.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    serde_json::from_value(report["committed"].clone()).unwrap()
}

/// A pipeline reading `topic` (JSON `{"id", "n"}`) into the scratch Iceberg
/// table, no transforms: a record read twice shows as a duplicate.
pub(crate) fn kafka_to_iceberg(
    s: &Scratch,
    broker: &Broker,
    topic: &str,
    interval_ms: u64,
) -> Value {
    json!({
        "name": s.name,
        "source": json_source(broker, topic, "earliest"),
        "transforms": [],
        "sink": s.iceberg_sink(),
        "checkpoint": {"location": s.path("chk")},
        "trigger": {"interval_ms": interval_ms, "max_records_per_epoch": 5000, "batch_size": 100},
    })
}

/// `tributary run <pipeline>` in the background, its stderr in `<tag>.log`.
pub(crate) fn spawn_run(s: &Scratch, pipeline: &Value, tag: &str) -> (Child, PathBuf) {
    let file = s.path(&format!("pipeline-{tag}.json"));
    std::fs::write(&file, serde_json::to_vec_pretty(pipeline).unwrap()).unwrap();
    let log = s.path(&format!("{tag}.log"));
    let child = s
        .command(&["run", "--progress-interval", "0", file.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("spawn tributary");
    (child, log)
}

/// The table's ids as PyIceberg reads them, and how many are there twice.
pub(crate) fn table_ids(s: &Scratch) -> (BTreeSet<String>, u64) {
    let report = s.inspect(&["--ids"]).unwrap();
    let ids: Vec<String> = serde_json::from_value(report["ids"].clone()).unwrap_or_default();
    let rows = ids.len() as u64;
    let set: BTreeSet<String> = ids.into_iter().collect();
    let extra = rows - set.len() as u64;
    (set, extra)
}

pub(crate) fn wait_for_rows(s: &Scratch, want: &BTreeSet<String>, children: &mut [&mut Child]) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (have, _) = table_ids(s);
        if want.is_subset(&have) {
            return;
        }
        for c in children.iter_mut() {
            assert!(
                c.try_wait().unwrap().is_none(),
                "a run ended early; {} of {} ids in the table",
                have.len(),
                want.len()
            );
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {} ids reached the table",
            have.len(),
            want.len()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

pub(crate) fn sigterm(child: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

/// Scenario 3: two instances of one pipeline — a rolling deploy that starts
/// the new version (here with another trigger interval) while the old one
/// still runs. Both resume at the same epoch. Exactly one may go on
/// committing; the other stops, naming the owner that fenced it, and the
/// table holds every record once. Before the fix nothing fenced them: both
/// ran on, each committing its own epochs over the same offsets, and the
/// table held records twice.
#[test]
fn open_world_two_instances_of_one_pipeline_one_is_fenced() {
    let broker = Broker::start().unwrap();
    let s = Scratch::new("two_owners");
    let mut want: BTreeSet<String> = produce(&broker, "t", "a", 400, true).into_iter().collect();
    let (mut old, old_log) = spawn_run(&s, &kafka_to_iceberg(&s, &broker, "t", 250), "old");
    wait_for_rows(&s, &want, &mut [&mut old]);
    let (mut new, new_log) = spawn_run(&s, &kafka_to_iceberg(&s, &broker, "t", 700), "new");
    let started = Instant::now();
    while !std::fs::read_to_string(&new_log)
        .unwrap_or_default()
        .contains("delivery:")
    {
        assert!(
            new.try_wait().unwrap().is_none(),
            "{}",
            std::fs::read_to_string(&new_log).unwrap()
        );
        assert!(started.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(50));
    }
    // Records flow while both run, in waves that straddle their epochs.
    for wave in 0..8 {
        want.extend(produce(&broker, "t", &format!("w{wave}"), 150, false));
        std::thread::sleep(Duration::from_millis(400));
    }
    // One of them stops within a while: the fenced one.
    let deadline = Instant::now() + Duration::from_secs(60);
    let stopped = loop {
        if let Some(status) = old.try_wait().unwrap() {
            break Some(("old", status));
        }
        if let Some(status) = new.try_wait().unwrap() {
            break Some(("new", status));
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let Some((which, status)) = stopped else {
        sigterm(&old);
        sigterm(&new);
        wait_within(&mut old, Duration::from_secs(60), "old");
        wait_within(&mut new, Duration::from_secs(60), "new");
        let (have, twice) = table_ids(&s);
        panic!(
            "both instances ran on for 60 s: nothing fenced either; the table holds {} rows twice, \
             misses {} of {} ids\nold:\n{}\nnew:\n{}",
            twice,
            want.difference(&have).count(),
            want.len(),
            std::fs::read_to_string(&old_log).unwrap(),
            std::fs::read_to_string(&new_log).unwrap()
        );
    };
    let (mut survivor, fenced_log, survivor_log) = if which == "old" {
        (new, old_log, new_log)
    } else {
        (old, new_log, old_log)
    };
    let fenced_text = std::fs::read_to_string(&fenced_log).unwrap();
    assert!(
        !status.success(),
        "the {which} instance stopped but did not fail:\n{fenced_text}"
    );
    assert!(
        fenced_text.contains("fenced") && fenced_text.contains(&format!("pid {}", survivor.id())),
        "the {which} instance stopped without naming the owner that fenced it (pid {}):\n{fenced_text}",
        survivor.id()
    );
    eprintln!("the {which} instance was fenced:\n{fenced_text}");
    // The survivor goes on, alone.
    want.extend(produce(&broker, "t", "after", 300, false));
    wait_for_rows(&s, &want, &mut [&mut survivor]);
    sigterm(&survivor);
    let status = wait_within(&mut survivor, Duration::from_secs(60), "the survivor");
    let survivor_text = std::fs::read_to_string(&survivor_log).unwrap();
    assert!(status.success(), "{survivor_text}");
    let (have, twice) = table_ids(&s);
    assert_eq!(
        twice, 0,
        "rows present twice\n{fenced_text}\n{survivor_text}"
    );
    assert_eq!(have, want, "ids lost or unexpected");
}

/// `scripts/table_maintenance.py <action>` on the scratch table.
fn maintain(s: &Scratch, action: &[&str]) -> Value {
    let out = Command::new(python())
        .arg(repo_root().join("scripts/table_maintenance.py"))
        .args(["--catalog-uri", &s.catalog_uri()])
        .args(["--warehouse", s.warehouse().to_str().unwrap()])
        .args(["--table", s.table()])
        .args(action)
        .output_within(Duration::from_secs(120));
    assert!(
        out.status.success(),
        "table_maintenance.py {action:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Scenario 4: a pipeline's progress survives what other engines do to its
/// table between two runs: another writer appends, and expiring snapshots
/// removes every snapshot Tributary wrote. The next run goes on where the
/// last one stopped — no record read again, none lost. When the table and
/// the checkpoint store disagree beyond repair (the table dropped and made
/// again), the run stops instead of reading the topic from the start.
/// Before the fix the last commit was found only by walking the snapshot
/// parents: after the expiry the walk found nothing, and the second run
/// read the topic from the start, writing the first run's records again.
#[test]
fn open_world_resume_survives_expired_snapshots_and_foreign_commits() {
    let broker = Broker::start().unwrap();
    let s = Scratch::new("expired_history");
    let pipeline = kafka_to_iceberg(&s, &broker, "t", 300);
    let mut want: BTreeSet<String> = produce(&broker, "t", "a", 500, true).into_iter().collect();
    assert_ok(&s.run(&pipeline));
    // Another writer appends; the maintenance job expires the history.
    let foreign = ["other-1", "other-2", "other-3"];
    let mut args = vec!["append", "--ids"];
    args.extend(foreign);
    maintain(&s, &args);
    let report = maintain(&s, &["expire"]);
    assert_eq!(report["snapshots"], 1, "{report}");
    want.extend(foreign.iter().map(|s| s.to_string()));
    want.extend(produce(&broker, "t", "b", 500, false));
    let stderr = assert_ok(&s.run(&pipeline));
    let (have, twice) = table_ids(&s);
    assert_eq!(
        twice, 0,
        "the second run read records again after the snapshots were expired:\n{stderr}"
    );
    assert_eq!(have, want, "ids lost or unexpected:\n{stderr}");
    // Again, with the history expired right after Tributary's own commit.
    maintain(&s, &["append", "--ids", "other-4"]);
    maintain(&s, &["expire"]);
    want.insert("other-4".into());
    want.extend(produce(&broker, "t", "c", 200, false));
    let stderr = assert_ok(&s.run(&pipeline));
    let (have, twice) = table_ids(&s);
    assert_eq!(twice, 0, "{stderr}");
    assert_eq!(have, want, "{stderr}");
    // The table dropped and made again: its commits are gone, the
    // checkpoint store still has the pipeline's progress. Stop, do not
    // read the topic again from the start.
    maintain(&s, &["recreate"]);
    let stderr = assert_failed(&s.run(&pipeline));
    assert!(
        stderr.contains("checkpoint") && stderr.contains("no commit of pipeline"),
        "{stderr}"
    );
    let (have, _) = table_ids(&s);
    assert!(
        have.is_empty(),
        "the run wrote {} rows into the new table",
        have.len()
    );
}
