//! Misbehaving transforms inside a real pipeline: each is stopped and named,
//! the default policy fails cleanly without committing, and the dead-letter
//! policy keeps every record.

use serde_json::json;

use crate::harness::*;

fn pipeline_with(s: &Scratch, guest_name: &str, policy: Option<&str>) -> serde_json::Value {
    write_lines(
        &s.path("in"),
        "a.jsonl",
        &[
            article("s1", "2026-03-01T10:00:00Z"),
            article("s2", "2026-03-01T10:01:00Z"),
            article("s3", "2026-03-01T10:02:00Z"),
        ],
    );
    // The memory bomb must meet the memory cap, not the clock, even on a
    // loaded machine; the others are stopped by the clock or trap at once.
    let timeout_ms = if guest_name == "membomb" { 10_000 } else { 300 };
    let transforms = json!([{
        "name": format!("bad-{guest_name}"),
        "module": guest(guest_name),
        "limits": {"memory_mb": 32, "call_timeout_ms": timeout_ms},
    }]);
    let mut p = s.pipeline(file_source(s), transforms);
    if let Some(policy) = policy {
        p["errors"] = json!({"policy": policy, "dead_letter_path": s.path("dlq")});
    }
    p
}

fn misbehaving(guest_name: &str, named: &str) {
    let s = Scratch::new(&format!("sandbox-{guest_name}"));
    let stderr = assert_failed(&s.run(&pipeline_with(&s, guest_name, None)));
    assert!(
        stderr.contains(&format!("bad-{guest_name}")),
        "the transform is named:\n{stderr}"
    );
    assert!(
        stderr.to_lowercase().contains(named),
        "the failure is named ({named}):\n{stderr}"
    );
    assert_eq!(s.inspect(&[]).unwrap()["rows"], 0);

    let s = Scratch::new(&format!("sandbox-{guest_name}-dlq"));
    assert_ok(&s.run(&pipeline_with(&s, guest_name, Some("dead-letter"))));
    let letters = s.dead_letters("dlq");
    let ids: Vec<_> = letters
        .iter()
        .map(|l| l["record"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ids,
        ["s1", "s2", "s3"],
        "every record is in the dead-letter output"
    );
    assert!(
        letters
            .iter()
            .all(|l| l["stage"] == format!("transform:bad-{guest_name}"))
    );
    assert!(
        letters[0]["reason"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains(named),
        "{}",
        letters[0]
    );
}

#[test]
fn runaway_loop_is_stopped_by_the_time_limit() {
    misbehaving("spin", "time limit");
}

#[test]
fn memory_bomb_is_stopped_by_the_memory_limit() {
    misbehaving("membomb", "memory");
}

#[test]
fn trap_is_reported() {
    misbehaving("trap", "trap");
}

#[test]
fn files_and_sockets_are_denied() {
    let s = Scratch::new("sandbox-escape");
    let p = pipeline_with(&s, "escape", None);
    assert_ok(&s.run(&p));
    let table = s.inspect(&["--rows"]).unwrap();
    let records = table["records"].as_array().unwrap();
    assert_eq!(records.len(), 3);
    for r in records {
        // The guest reports what it managed to do; all of it must be denied.
        let report = r["escape"].as_str().unwrap_or_default();
        assert!(
            !report.is_empty(),
            "the escape guest reports its attempts: {r}"
        );
        assert!(!report.contains("succeeded"), "sandbox escape: {report}");
    }
}
