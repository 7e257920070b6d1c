//! An Iceberg table's manifests as it ages: the sink merges small manifests
//! as commits accumulate (Java's `MergeAppend`, honouring the table's
//! `commit.manifest.*` properties), so a snapshot carries a bounded number of
//! manifests; the merged snapshots still carry the epoch record that a
//! restart resumes from, and PyIceberg and DuckDB read every row once.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;

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

/// 60 commits of 50 records, about ten a second: 4 under the default policy
/// (100 manifests before a merge), then `commit.manifest.min-count-to-merge`
/// = 5 set with PyIceberg, then the rest, with a crash after a merge landed
/// and a restart. Without merging the last snapshot would carry 60
/// manifests; with it, fewer than 5 per size tier (1-4 files, 5-24, 25-124:
/// three tiers at 60 files), and one or two more while a merge is prepared
/// (it lands with a commit after the one that made it due).
#[test]
fn iceberg_manifests_are_merged_as_commits_accumulate() {
    let s = Scratch::new("manifests");
    let records = 3000u64;
    let source = json!({"type": "generator", "seed": 5, "records": records, "rate_per_sec": 500,
                        "duplicate_ratio": 0.0, "late_ratio": 0.0});
    let mut pipeline = s.pipeline(source.clone(), json!([]));
    pipeline["trigger"] =
        json!({"interval_ms": 5000, "max_records_per_epoch": 50, "batch_size": 50});

    // Run 1: four commits (fast-append-sized: the default min count is 100),
    // then a crash.
    let crashed = |point: &str| {
        let mut child = s.spawn(&pipeline, &[("TRIBUTARY_CRASH_AT", point.to_string())]);
        let status = wait_within(&mut child, Duration::from_secs(120), point);
        assert!(
            !status.success(),
            "the injected crash {point} did not happen"
        );
    };
    crashed("committed@4");
    let table = s.inspect(&["--manifests"]).unwrap();
    assert_eq!(table["manifests"], 4, "{table}");
    assert_eq!(table["merges"], 0, "{table}");

    let set = maintain(&s, &["set", "commit.manifest.min-count-to-merge=5"]);
    assert_eq!(
        set["properties"]["commit.manifest.min-count-to-merge"], "5",
        "{set}"
    );

    // Run 2: its first commit makes five manifests, due for a merge that
    // lands with a later commit; it stops after its sixth (the table's
    // tenth).
    crashed("committed@6");
    let table = s.inspect(&["--manifests"]).unwrap();
    assert!(table["merges"].as_u64().unwrap() >= 1, "{table}");
    assert!(table["manifests"].as_u64().unwrap() < 10, "{table}");
    assert_eq!(table["summary"]["tributary.epoch"], "10", "{table}");

    // Run 3: resumes after epoch 10 and runs to the end.
    let out = s.run(&pipeline);
    assert_ok(&out);

    let mut table = s.inspect(&["--manifests", "--ids", "--duckdb"]).unwrap();
    let expected = tributary_generator::describe_expected(&source).unwrap();
    let got: Vec<String> = serde_json::from_value(table["ids"].take()).unwrap();
    let got_set: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(got.len(), got_set.len(), "a row is in the table twice");
    assert_eq!(got_set, expected.ids, "rows lost or unexpected");
    assert_eq!(table["rows"], records);
    assert_eq!(
        table["duckdb_rows"], records,
        "DuckDB and PyIceberg disagree"
    );

    let per_snapshot: Vec<u64> =
        serde_json::from_value(table["manifests_per_snapshot"].clone()).unwrap();
    // One snapshot, with one data file, per epoch: about 60 (a restart can
    // close an epoch early).
    let epochs = table["snapshots"].as_u64().unwrap();
    assert!(epochs >= 55, "{table}");
    assert_eq!(per_snapshot.len() as u64, epochs, "{table}");
    assert!(
        per_snapshot.iter().all(|&n| (1..=14).contains(&n)),
        "a snapshot carried more than 14 manifests: {per_snapshot:?}"
    );
    // One-file manifests merge about every 4 commits from the fifth.
    let merges = table["merges"].as_u64().unwrap();
    eprintln!("manifests per snapshot: {per_snapshot:?}; {merges} merges");
    assert!(merges >= 8, "{merges} merges: {per_snapshot:?}");
    // The merged entries kept their files: every file is listed once, as
    // EXISTING unless the snapshot added it.
    let files = &table["manifest_files"];
    assert_eq!(
        files["added"].as_u64().unwrap() + files["existing"].as_u64().unwrap(),
        epochs,
        "{files}"
    );
    assert!(files["existing"].as_u64().unwrap() > 0, "{files}");
    assert_eq!(files["deleted"], 0, "{files}");

    // The epoch record rides on the merged snapshots too.
    let summary = &table["summary"];
    assert_eq!(summary["tributary.pipeline-id"], "manifests");
    assert_eq!(summary["tributary.epoch"], epochs.to_string());
    assert_eq!(summary["operation"], "append");
    assert_eq!(summary["total-records"], records.to_string());
}

/// A snapshot retention and metadata cleanup given as `table_properties`:
/// the sink creates the table with them, expires snapshots past the
/// retention on a run's first commit (and every 100 after), and deletes the
/// metadata files that fall out of the metadata log. The second run resumes
/// from the table property, with the first run's snapshots expired, and
/// every row is read once.
#[test]
fn iceberg_snapshot_retention_and_metadata_cleanup_keep_the_table_small() {
    let s = Scratch::new("retention");
    let records = 1000u64;
    let source = json!({"type": "generator", "seed": 6, "records": records, "rate_per_sec": 500,
                        "duplicate_ratio": 0.0, "late_ratio": 0.0});
    let mut pipeline = s.pipeline(source.clone(), json!([]));
    pipeline["sink"]["table_properties"] = json!({
        "history.expire.max-snapshot-age-ms": "1",
        "write.metadata.delete-after-commit.enabled": "true",
        "write.metadata.previous-versions-max": "3",
    });
    pipeline["trigger"] =
        json!({"interval_ms": 5000, "max_records_per_epoch": 50, "batch_size": 50});

    // Run 1: ten commits, then a crash.
    let mut child = s.spawn(
        &pipeline,
        &[("TRIBUTARY_CRASH_AT", "committed@10".to_string())],
    );
    let status = wait_within(&mut child, Duration::from_secs(120), "committed@10");
    assert!(!status.success(), "the injected crash did not happen");
    let table = s.inspect(&[]).unwrap();
    // Looked at on the run's first commit only, when the table had nothing
    // to expire (the current snapshot is always kept).
    assert_eq!(table["snapshots"], 10, "{table}");

    // Run 2: its first commit expires run 1's snapshots.
    let out = s.run(&pipeline);
    assert_ok(&out);
    let mut table = s.inspect(&["--ids", "--duckdb"]).unwrap();
    let got: Vec<String> = serde_json::from_value(table["ids"].take()).unwrap();
    let got_set: BTreeSet<String> = got.iter().cloned().collect();
    let expected = tributary_generator::describe_expected(&source).unwrap();
    assert_eq!(got.len(), got_set.len(), "a row is in the table twice");
    assert_eq!(got_set, expected.ids, "rows lost or unexpected");
    assert_eq!(
        table["duckdb_rows"], records,
        "DuckDB and PyIceberg disagree"
    );
    let epoch: u64 = table["summary"]["tributary.epoch"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let snapshots = table["snapshots"].as_u64().unwrap();
    assert_eq!(
        snapshots,
        epoch - 10,
        "{snapshots} snapshots of {epoch} epochs: run 1's 10 should be expired"
    );

    // The metadata log keeps 3 earlier versions: with the current one and
    // the expiry commit's, a handful of metadata files, not one per commit.
    let metadata = s.warehouse().join("demo/news/articles/metadata");
    let files = std::fs::read_dir(&metadata)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".metadata.json")
        })
        .count();
    assert!(
        files <= 5,
        "{files} metadata files in {} after {epoch} commits",
        metadata.display()
    );
}
