//! The Iceberg sink where users keep their tables (issue 14): the catalog
//! follows the warehouse when no catalog URI is given, and `validate` says
//! where everything will live; epochs end on bytes as well as time and
//! records; rows the sink cannot write go to the dead-letter output while
//! the rest of the epoch commits. Read back with PyIceberg and DuckDB.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::{Value, json};

use crate::harness::*;

/// Runs a Python snippet with PyIceberg against the scratch catalog
/// (`sys.argv[1]` the catalog URI as SQLAlchemy wants it, `[2]` the
/// warehouse) and returns what it prints as JSON.
fn pyiceberg(s: &Scratch, catalog_db: &std::path::Path, code: &str) -> Value {
    let program = format!(
        "import json, sys\n\
         from pyiceberg.catalog.sql import SqlCatalog\n\
         catalog = SqlCatalog('tributary', uri='sqlite:///' + sys.argv[1], warehouse='file://' + sys.argv[2])\n\
         {code}"
    );
    let out = Command::new(python())
        .args(["-c", &program])
        .arg(catalog_db)
        .arg(s.warehouse())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "python printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Item 7: with `ICEBERG_WAREHOUSE` set to a folder and `ICEBERG_CATALOG_URI`
/// unset, the seed pipeline's catalog is `<warehouse>/catalog.db`, and
/// `validate` names the catalog, the data and the checkpoints; a run puts
/// the catalog there, and PyIceberg finds the table through it.
#[test]
fn the_catalog_follows_the_warehouse_and_validate_says_where_things_live() {
    let s = Scratch::new("follows");
    let seed = repo_root().join("examples/articles/pipeline.json");
    let warehouse = s.path("lake");
    let chk = s.path("chk/articles_raw");
    let out = s
        .command(&["validate", seed.to_str().unwrap()])
        .env("ICEBERG_WAREHOUSE", &warehouse)
        .env("CHECKPOINT_LOCATION", &chk)
        .env_remove("ICEBERG_CATALOG_URI")
        .env_remove("ICEBERG_TABLE")
        .output()
        .unwrap();
    assert_ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = |what: &str| {
        stdout
            .lines()
            .find(|l| l.trim_start().starts_with(what))
            .unwrap_or_else(|| panic!("no `{what}` line in:\n{stdout}"))
            .to_string()
    };
    let catalog = line("catalog:");
    assert!(
        catalog.ends_with(&format!("sqlite:{}/catalog.db", warehouse.display())),
        "the catalog must follow the warehouse: {catalog}"
    );
    assert!(!catalog.contains("sqlite:/warehouse/"), "{catalog}");
    let data = line("data:");
    assert!(
        data.contains(&format!("{}/demo/news/articles_raw", warehouse.display())),
        "{data}"
    );
    assert!(
        line("checkpoints:").ends_with(&chk.display().to_string()),
        "{stdout}"
    );
    assert!(
        line("dead letters:").ends_with(&chk.join("dead-letter").display().to_string()),
        "{stdout}"
    );
    // An explicit catalog URI still wins.
    let elsewhere = s.path("catalogs/mine.db");
    let out = s
        .command(&["validate", seed.to_str().unwrap()])
        .env("ICEBERG_WAREHOUSE", &warehouse)
        .env(
            "ICEBERG_CATALOG_URI",
            format!("sqlite:{}", elsewhere.display()),
        )
        .env("CHECKPOINT_LOCATION", &chk)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&assert_ok_stdout(&out)).into_owned();
    assert!(
        stdout.contains(&format!("sqlite:{}", elsewhere.display())),
        "{stdout}"
    );

    // A run with no catalog_uri at all: the catalog lands in the warehouse.
    let source = json!({"type": "generator", "seed": 3, "records": 3000});
    let mut pipeline = s.pipeline(source.clone(), watermark_and_dedup("2 hours"));
    pipeline["sink"] = json!({"type": "iceberg", "warehouse": "warehouse", "table": s.table()});
    assert_ok(&s.run(&pipeline));
    let db = s.warehouse().join("catalog.db");
    assert!(db.is_file(), "no catalog at {}", db.display());
    let table = s.inspect(&["--ids"]).unwrap();
    let expected = crate::sinks::expected(&source);
    let ids: BTreeSet<String> = serde_json::from_value(table["ids"].clone()).unwrap();
    assert_eq!(
        ids, expected,
        "PyIceberg reads the table through <warehouse>/catalog.db"
    );
    assert_eq!(table["duplicated_keys"], 0);
}

fn assert_ok_stdout(out: &std::process::Output) -> Vec<u8> {
    assert_ok(out);
    out.stdout.clone()
}

/// Item 4: with a long interval and a huge record limit, only
/// `max_bytes_per_epoch` can end an epoch before the source runs out: the
/// table gets several snapshots whose data files are each about that size,
/// never much more; kills at the protocol's delicate points lose nothing
/// and write nothing twice.
#[test]
fn bytes_end_epochs_and_files_are_sized_by_them() {
    let s = Scratch::new("bytes");
    let max_bytes: u64 = 1 << 20;
    let source = json!({"type": "generator", "seed": 5, "records": 60000});
    let mut pipeline = s.pipeline(source.clone(), watermark_and_dedup("2 hours"));
    pipeline["trigger"] = json!({"interval_ms": 600_000, "max_records_per_epoch": 10_000_000,
                                 "max_bytes_per_epoch": max_bytes, "batch_size": 500});
    // A crash after an epoch's checkpoint, and one right after a commit.
    for point in ["checkpoint-written@2", "committed@3"] {
        let mut child = s.spawn(&pipeline, &[("TRIBUTARY_CRASH_AT", point.to_string())]);
        let status = wait_within(&mut child, RUN_LIMIT, "the crashing run");
        assert!(
            !status.success(),
            "the injected crash {point} did not happen"
        );
    }
    assert_ok(&s.run(&pipeline));

    let table = s.inspect(&["--ids", "--duckdb"]).unwrap();
    let expected = crate::sinks::expected(&source);
    let ids: Vec<String> = serde_json::from_value(table["ids"].clone()).unwrap();
    crate::sinks::assert_exactly("the table", &ids, &expected);
    assert_eq!(
        table["duckdb_rows"], table["rows"],
        "DuckDB and PyIceberg disagree"
    );

    // Every snapshot this pipeline made, oldest first: its epoch, files
    // and their bytes.
    let snapshots = pyiceberg(
        &s,
        &s.warehouse().join("catalog.db"),
        "t = catalog.load_table('demo.news.articles')\n\
         out = []\n\
         for snap in t.metadata.snapshots:\n\
         \x20   p = snap.summary.additional_properties\n\
         \x20   if 'tributary.epoch' not in p: continue\n\
         \x20   files = [e.data_file.file_size_in_bytes for m in snap.manifests(t.io) for e in m.fetch_manifest_entry(t.io) if e.snapshot_id == snap.snapshot_id]\n\
         \x20   out.append({'epoch': int(p['tributary.epoch']), 'records': int(p['added-records']), 'files': files})\n\
         print(json.dumps(out))",
    );
    let mut snapshots = snapshots.as_array().unwrap().clone();
    snapshots.sort_by_key(|s| s["epoch"].as_u64().unwrap());
    eprintln!("snapshots (epoch, records, file bytes): {snapshots:?}");
    assert!(
        snapshots.len() >= 4,
        "60,000 records ({} bytes of Parquet in all) in epochs of at most {max_bytes} bytes: {snapshots:?}",
        snapshots
            .iter()
            .flat_map(|s| s["files"].as_array().unwrap())
            .map(|f| f.as_u64().unwrap())
            .sum::<u64>()
    );
    let (last, full) = snapshots.split_last().unwrap();
    let mut sizes = Vec::new();
    for snap in full {
        let files: Vec<u64> = serde_json::from_value(snap["files"].clone()).unwrap();
        assert_eq!(
            files.len(),
            1,
            "one file per epoch below the target size: {snap}"
        );
        // The epoch ended once the open file reached the limit (by the
        // Parquet writer's estimate, which counts what it still buffers
        // before compression), so its file is at most the limit plus the
        // batch that crossed it, and not far below.
        assert!(
            files[0] <= max_bytes + max_bytes / 4 && files[0] >= max_bytes / 8,
            "epoch {} wrote {} bytes against a limit of {max_bytes}: {snapshots:?}",
            snap["epoch"],
            files[0]
        );
        sizes.push(files[0]);
    }
    // Every epoch the bytes ended wrote about as much as the others.
    let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
    assert!(
        *max as f64 <= *min as f64 * 1.25,
        "file sizes {min}..{max} vary more than a batch's worth: {snapshots:?}"
    );
    assert!(last["records"].as_u64().unwrap() > 0);
}

/// Item 8: a table made by another engine with an `int` column and a
/// required `id`; records whose `n` does not fit an int, or that have no
/// id, reach the sink. Under `fail` the run stops naming the record and
/// commits nothing; under `dead-letter` they go to the dead-letter output
/// with their reasons and the rest of the epoch commits — also when the
/// run crashes between the checkpoint and the commit.
#[test]
fn rows_the_sink_cannot_write_are_dead_lettered_and_the_rest_commits() {
    let s = Scratch::new("sinkdlq");
    std::fs::create_dir_all(s.warehouse()).unwrap();
    let db = s.warehouse().join("catalog.db");
    // The table as another engine made it: `id` required, `n` an int.
    pyiceberg(
        &s,
        &db,
        "from pyiceberg.schema import Schema\n\
         from pyiceberg.types import NestedField, StringType, IntegerType, TimestamptzType\n\
         catalog.create_namespace('demo.news')\n\
         catalog.create_table('demo.news.articles', Schema(\n\
         \x20   NestedField(1, 'id', StringType(), required=True),\n\
         \x20   NestedField(2, 'title', StringType(), required=False),\n\
         \x20   NestedField(3, 'published_at', TimestamptzType(), required=False),\n\
         \x20   NestedField(4, 'n', IntegerType(), required=False)))\n\
         print(json.dumps('ok'))",
    );
    let row = |id: Option<&str>, n: i64| {
        let mut r = json!({"title": "t", "published_at": "2026-03-01T10:00:00Z", "n": n});
        if let Some(id) = id {
            r["id"] = json!(id);
        }
        r.to_string()
    };
    write_lines(
        &s.path("in"),
        "a.jsonl",
        &[
            row(Some("g1"), 1),
            row(Some("too-big"), 5_000_000_000),
            row(Some("g2"), -2_147_483_648),
            row(None, 7),
            row(Some("g3"), 2_147_483_647),
        ],
    );
    let source = json!({
        "type": "file",
        "path": s.path("in"),
        "schema": [
            {"name": "id", "type": "string"},
            {"name": "title", "type": "string"},
            {"name": "published_at", "type": "timestamp"},
            {"name": "n", "type": "long"},
        ],
    });
    let mut pipeline = s.pipeline(source, json!([]));
    pipeline["sink"]["catalog_uri"] = json!(format!("sqlite:{}", db.display()));

    // `fail`: the run stops, naming the field, the value and the type.
    let stderr = assert_failed(&s.run(&pipeline));
    assert!(
        stderr.contains("field `n`: the value 5000000000 does not fit the column's type int"),
        "{stderr}"
    );
    assert!(
        stderr.contains("\"dead-letter\""),
        "the error offers the policy: {stderr}"
    );
    assert_eq!(s.inspect(&[]).unwrap()["rows"], 0, "nothing committed");

    // `dead-letter`, with a crash after the checkpoint and before the commit.
    pipeline["errors"] = json!({"policy": "dead-letter", "dead_letter_path": s.path("dlq")});
    let mut child = s.spawn(
        &pipeline,
        &[("TRIBUTARY_CRASH_AT", "checkpoint-written@1".to_string())],
    );
    let status = wait_within(&mut child, RUN_LIMIT, "the crashing run");
    assert!(!status.success(), "the injected crash did not happen");
    assert!(
        s.dead_letters("dlq").is_empty(),
        "letters are visible only with their commit"
    );
    assert_ok(&s.run(&pipeline));

    let table = s.inspect(&["--ids", "--duckdb"]).unwrap();
    assert_eq!(table["ids"], json!(["g1", "g2", "g3"]), "{table}");
    assert_eq!(table["duckdb_rows"], 3, "{table}");
    let letters = s.dead_letters("dlq");
    assert_eq!(letters.len(), 2, "each refused record once: {letters:?}");
    for l in &letters {
        assert_eq!(l["stage"], "sink", "{l}");
    }
    let too_big = letters
        .iter()
        .find(|l| l["record"]["id"] == "too-big")
        .expect("the record that does not fit is dead-lettered with its values");
    assert_eq!(too_big["record"]["n"], 5_000_000_000i64);
    let reason = too_big["reason"].as_str().unwrap();
    assert!(
        reason.contains("field `n`: the value 5000000000 does not fit the column's type int")
            && reason.contains("demo.news.articles"),
        "{reason}"
    );
    let no_id = letters
        .iter()
        .find(|l| l["record"]["n"] == 7)
        .expect("the record without its required id is dead-lettered");
    assert!(
        no_id["reason"]
            .as_str()
            .unwrap()
            .contains("field `id` is required but the record has no value"),
        "{no_id}"
    );
}
