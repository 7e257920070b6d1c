//! Exactly-once under crashes: SIGKILL at random points (and aborts injected at
//! the protocol's most delicate instants), restart each time, and PyIceberg
//! must see exactly the ids the generator's semantics promise.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::*;

#[test]
fn kill_9_at_random_points_loses_nothing_and_duplicates_nothing() {
    let s = Scratch::new("crash");
    let records = 120_000u64;
    let source = json!({"type": "generator", "seed": 7, "records": records, "rate_per_sec": 15000});
    let mut pipeline = s.pipeline(source.clone(), watermark_and_dedup("2 hours"));
    pipeline["trigger"] =
        json!({"interval_ms": 150, "max_records_per_epoch": 4000, "batch_size": 500});

    let mut rng = Rng::kill_schedule();

    // The first kills land exactly where recovery is hardest: after the
    // checkpoint is durable but before the sink commit, and after the commit
    // but before anything else records it.
    let injected = [
        "checkpoint-written@2",
        "committed@3",
        "checkpoint-written@1",
        "committed@1",
    ];
    let mut kills = 0;
    let mut finished = false;
    let started = Instant::now();
    while kills < 14 && started.elapsed() < Duration::from_secs(240) {
        let env: Vec<(&str, String)> = match injected.get(kills) {
            Some(point) => vec![("TRIBUTARY_CRASH_AT", point.to_string())],
            None => vec![],
        };
        let mut child = s.spawn(&pipeline, &env);
        if kills < injected.len() {
            let status = child.wait().unwrap();
            assert!(
                !status.success(),
                "the injected crash {} did not happen",
                injected[kills]
            );
        } else {
            std::thread::sleep(Duration::from_millis(rng.between(150, 1200)));
            if let Some(status) = child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "tributary failed before it was killed: {status}"
                );
                finished = true;
                break;
            }
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
        }
        kills += 1;
    }
    eprintln!("{kills} crashes, source finished during the kills: {finished}");
    assert!(
        kills >= 10,
        "only {kills} kills happened before the source ran out; slow the generator down"
    );

    // Run to the end.
    let out = s.run(&pipeline);
    assert_ok(&out);

    let table = s.inspect(&["--ids", "--duckdb"]).unwrap();
    let expected = tributary_generator::describe_expected(&source).unwrap();
    let got: Vec<String> = serde_json::from_value(table["ids"].clone()).unwrap();
    let got_set: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(
        table["duplicated_keys"], 0,
        "duplicates in the table: {}",
        table["duplicated_examples"]
    );
    assert_eq!(got.len(), got_set.len());
    let missing: Vec<_> = expected.ids.difference(&got_set).take(5).collect();
    let extra: Vec<_> = got_set.difference(&expected.ids).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, unexpected {extra:?}"
    );
    assert!(
        got.iter().all(|id| !id.starts_with("late-")),
        "a late event reached the table"
    );
    assert_eq!(table["rows"], expected.ids.len());
    assert_eq!(
        table["duckdb_rows"], table["rows"],
        "DuckDB and PyIceberg disagree"
    );
    assert_eq!(table["summary"]["tributary.pipeline-id"], "crash");
}
