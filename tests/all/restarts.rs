//! Dedup state and the watermark survive restarts; a damaged or missing
//! checkpoint is reported with the fix, and the documented fallback works.

use serde_json::{Value, json};

use crate::harness::*;

fn micros(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_micros()
}

fn first_run(s: &Scratch) -> Value {
    write_lines(
        &s.path("in"),
        "a.jsonl",
        &[
            article("a1", "2026-03-01T10:00:00Z"),
            article("a2", "2026-03-01T10:30:00Z"),
            article("a3", "2026-03-01T12:00:00Z"),
        ],
    );
    let pipeline = s.pipeline(file_source(s), watermark_and_dedup("2 hours"));
    assert_ok(&s.run(&pipeline));
    let table = s.inspect(&["--ids"]).unwrap();
    assert_eq!(table["ids"], json!(["a1", "a2", "a3"]));
    // The watermark (max event time 12:00 − 2 h) is committed with the data.
    assert_eq!(
        table["summary"]["tributary.watermark"],
        micros("2026-03-01T10:00:00Z").to_string()
    );
    pipeline
}

fn second_input(s: &Scratch) {
    write_lines(
        &s.path("in"),
        "b.jsonl",
        &[
            // After the watermark (10:00) and inside a2's window: only the
            // restored dedup state can recognise it.
            article("a2", "2026-03-01T10:30:00Z"),
            // At or before the restored watermark: late.
            article("late1", "2026-03-01T09:59:00Z"),
            article("late2", "2026-03-01T10:00:00Z"),
            article("b1", "2026-03-01T12:30:00Z"),
        ],
    );
}

#[test]
fn dedup_state_and_watermark_survive_a_restart() {
    let s = Scratch::new("restart");
    let pipeline = first_run(&s);
    second_input(&s);
    let stderr = assert_ok(&s.run(&pipeline));
    let table = s.inspect(&["--ids", "--duckdb"]).unwrap();
    assert_eq!(
        table["ids"],
        json!(["a1", "a2", "a3", "b1"]),
        "run 2 log:\n{stderr}"
    );
    assert!(
        stderr.contains("late 2 dup 1"),
        "counts in the final progress line:\n{stderr}"
    );
    assert_eq!(table["duckdb_rows"], 4);
    assert_eq!(table["summary"]["tributary.epoch"], "2");
}

#[test]
fn missing_checkpoint_stops_with_the_fix_and_table_fallback_resumes() {
    let s = Scratch::new("lostckpt");
    let mut pipeline = first_run(&s);
    std::fs::remove_dir_all(s.path("chk")).unwrap();
    second_input(&s);

    let stderr = assert_failed(&s.run(&pipeline));
    assert!(stderr.contains("no checkpoint for epoch 1"), "{stderr}");
    assert!(
        stderr.contains("on_damaged"),
        "the error should name the fallback setting:\n{stderr}"
    );
    assert_eq!(
        s.inspect(&["--ids"]).unwrap()["ids"],
        json!(["a1", "a2", "a3"]),
        "nothing written meanwhile"
    );

    // The documented fallback: offsets and watermark from the table, dedup
    // state empty — so late events are still dropped, but the duplicate a2
    // (which only the lost state could recognise) gets through.
    pipeline["checkpoint"]["on_damaged"] = json!("table");
    assert_ok(&s.run(&pipeline));
    let table = s.inspect(&["--ids"]).unwrap();
    assert_eq!(table["ids"], json!(["a1", "a2", "a2", "a3", "b1"]));
}

#[test]
fn damaged_checkpoint_is_detected_and_named() {
    let s = Scratch::new("badckpt");
    let pipeline = first_run(&s);
    let files: Vec<_> = std::fs::read_dir(s.path("chk"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ckpt"))
        .collect();
    assert_eq!(files.len(), 1, "one checkpoint after one epoch: {files:?}");
    let mut bytes = std::fs::read(&files[0]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&files[0], bytes).unwrap();
    second_input(&s);

    let stderr = assert_failed(&s.run(&pipeline));
    assert!(stderr.contains("damaged"), "{stderr}");
    assert!(
        stderr.contains(&files[0].display().to_string()),
        "the error names the file:\n{stderr}"
    );
    assert_eq!(
        s.inspect(&["--ids"]).unwrap()["ids"],
        json!(["a1", "a2", "a3"])
    );
}

/// The JSON header of each checkpoint file in `dir` (see the checkpoint
/// crate's format), by epoch.
fn checkpoint_headers(dir: &std::path::Path) -> Vec<Value> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ckpt"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            let bytes = std::fs::read(f).unwrap();
            assert_eq!(&bytes[..8], b"TRBCKPT1");
            let len = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
            serde_json::from_slice(&bytes[12..12 + len]).unwrap()
        })
        .collect()
}

/// Checkpoints are changelogs over a full snapshot: after a run of many
/// epochs the store holds one full snapshot and changelogs much smaller than
/// it, and the next run restores the state from them (a duplicate of a record
/// from the first run is still recognised), exactly once end to end.
#[test]
fn dedup_state_survives_a_restart_through_changelog_checkpoints() {
    let s = Scratch::new("changelogs");
    let source = |records: u64| json!({"type": "generator", "seed": 11, "records": records});
    let mut pipeline = s.pipeline(source(12_000), watermark_and_dedup("2 hours"));
    // 24 epochs of 500 records: full snapshots at epochs 1 and 17, once the
    // 2-hour window holds its ~7,200 ids; changelogs in between and after.
    pipeline["trigger"] =
        json!({"interval_ms": 60000, "max_records_per_epoch": 500, "batch_size": 500});
    pipeline["checkpoint"]["full_snapshot_every"] = json!(16);
    assert_ok(&s.run(&pipeline));

    let headers = checkpoint_headers(&s.path("chk"));
    let state = |h: &Value| -> u64 {
        h["transforms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t[1].as_u64().unwrap())
            .sum()
    };
    let full: Vec<&Value> = headers.iter().filter(|h| h["base"].is_null()).collect();
    let changelogs: Vec<&Value> = headers.iter().filter(|h| !h["base"].is_null()).collect();
    assert_eq!(full.len(), 1, "one full snapshot kept: {headers:?}");
    assert!(changelogs.len() >= 5, "changelogs after it: {headers:?}");
    for (before, log) in headers.iter().zip(&headers[1..]) {
        assert_eq!(
            log["base"], before["epoch"],
            "each builds on the one before"
        );
    }
    let last = changelogs.last().unwrap();
    assert_eq!(full[0]["epoch"], 17, "{headers:?}");
    assert!(
        state(last) * 4 < state(full[0]),
        "a changelog ({} bytes) holds what one epoch changed, not all {} bytes of state",
        state(last),
        state(full[0])
    );

    pipeline["source"] = source(30_000);
    let stderr = assert_ok(&s.run(&pipeline));
    assert!(
        stderr.contains("changelog(s) after it"),
        "restored from the chain:\n{stderr}"
    );
    let table = s.inspect(&["--ids"]).unwrap();
    let expected = tributary_generator::describe_expected(&source(30_000)).unwrap();
    let got: Vec<String> = serde_json::from_value(table["ids"].clone()).unwrap();
    assert_eq!(
        table["duplicated_keys"], 0,
        "{}",
        table["duplicated_examples"]
    );
    let got: std::collections::BTreeSet<String> = got.into_iter().collect();
    assert_eq!(got, expected.ids);
}
