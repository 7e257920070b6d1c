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
