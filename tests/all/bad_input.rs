//! Bad input gets a clear error and loses nothing: malformed lines, records
//! without the event-time or key field, config typos, missing modules.

use serde_json::json;

use crate::harness::*;

fn input_with(s: &Scratch, bad: &str) {
    write_lines(
        &s.path("in"),
        "a.jsonl",
        &[
            article("g1", "2026-03-01T10:00:00Z"),
            bad.to_string(),
            article("g2", "2026-03-01T10:05:00Z"),
        ],
    );
}

/// With the default policy the run stops and commits nothing; fixing the input
/// and running again gets every good record in once.
fn fails_then_recovers(name: &str, bad: &str, expect_in_error: &[&str]) {
    let s = Scratch::new(name);
    input_with(&s, bad);
    let pipeline = s.pipeline(file_source(&s), watermark_and_dedup("2 hours"));
    let stderr = assert_failed(&s.run(&pipeline));
    for needle in expect_in_error {
        assert!(
            stderr.contains(needle),
            "error should mention {needle:?}:\n{stderr}"
        );
    }
    assert!(
        stderr.contains("dead-letter"),
        "the error should offer the dead-letter policy:\n{stderr}"
    );
    assert_eq!(
        s.inspect(&[]).unwrap()["rows"],
        0,
        "nothing may be committed past a bad record"
    );

    // Fix the line; nothing was committed, so everything is read again.
    write_lines(
        &s.path("in"),
        "a.jsonl",
        &[
            article("g1", "2026-03-01T10:00:00Z"),
            article("g2", "2026-03-01T10:05:00Z"),
        ],
    );
    assert_ok(&s.run(&pipeline));
    assert_eq!(s.inspect(&["--ids"]).unwrap()["ids"], json!(["g1", "g2"]));
}

/// With `dead-letter` the bad record is written with its reason and the good
/// ones reach the table.
fn dead_lettered(name: &str, bad: &str, stage: &str, reason_has: &str) {
    let s = Scratch::new(name);
    input_with(&s, bad);
    let mut pipeline = s.pipeline(file_source(&s), watermark_and_dedup("2 hours"));
    pipeline["errors"] = json!({"policy": "dead-letter", "dead_letter_path": s.path("dlq")});
    assert_ok(&s.run(&pipeline));
    assert_eq!(s.inspect(&["--ids"]).unwrap()["ids"], json!(["g1", "g2"]));
    let letters = s.dead_letters("dlq");
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["stage"], stage);
    assert!(
        letters[0]["reason"].as_str().unwrap().contains(reason_has),
        "{}",
        letters[0]
    );
}

#[test]
fn malformed_json_line() {
    fails_then_recovers("malformed", "{\"id\": \"x\", oops", &["a.jsonl:2"]);
    dead_lettered("malformed-dlq", "{\"id\": \"x\", oops", "source", "JSON");
}

#[test]
fn record_without_event_time() {
    let bad = json!({"id": "no-time", "title": "t"}).to_string();
    fails_then_recovers("noevent", &bad, &["watermark", "published_at"]);
    dead_lettered("noevent-dlq", &bad, "transform:watermark", "published_at");
}

#[test]
fn record_without_key() {
    let bad = json!({"title": "t", "published_at": "2026-03-01T10:01:00Z"}).to_string();
    fails_then_recovers("nokey", &bad, &["dedup", "`id`"]);
    dead_lettered("nokey-dlq", &bad, "transform:dedup", "id");
}

#[test]
fn config_typo_names_the_field() {
    let s = Scratch::new("typo");
    let mut pipeline = s.pipeline(file_source(&s), watermark_and_dedup("2 hours"));
    let transforms = pipeline
        .as_object_mut()
        .unwrap()
        .remove("transforms")
        .unwrap();
    pipeline["transfroms"] = transforms;
    let path = s.write_pipeline(&pipeline);
    let out = s
        .command(&["validate", path.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = assert_failed(&out);
    assert!(stderr.contains("unknown field `transfroms`"), "{stderr}");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn missing_module_is_named() {
    let s = Scratch::new("nomodule");
    std::fs::create_dir_all(s.path("in")).unwrap();
    let pipeline = s.pipeline(
        file_source(&s),
        json!([{"name": "mine", "module": "transforms/mine.wasm"}]),
    );
    let path = s.write_pipeline(&pipeline);
    let stderr = assert_failed(
        &s.command(&["validate", path.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    assert!(
        stderr.contains("transforms[0].module `transforms/mine.wasm`"),
        "{stderr}"
    );
    assert!(stderr.contains("cannot read"), "{stderr}");
    // And a transform refusing its config says why.
    let pipeline = s.pipeline(
        file_source(&s),
        json!([{"name": "w", "module": "builtin:watermark", "config": {"delay": "2 hours"}}]),
    );
    let path = s.write_pipeline(&pipeline);
    let stderr = assert_failed(
        &s.command(&["validate", path.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    assert!(stderr.contains("event_time"), "{stderr}");
}
