//! The built-in watermark and dedup guests through the real wasmtime host:
//! late rows, duplicates, `keep: latest` emitted when the window closes, and a
//! restore from a snapshot continuing exactly.
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use tributary_wasm_host::{ChainOutput, Limits, TransformChain, TransformEngine, TransformSpec};

const H: i64 = 3_600_000_000;
const T0: i64 = 1_700_000_000_000_000;

fn batch(rows: &[(&str, Option<i64>, &str)]) -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new(
            "published_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
            true,
        ),
        Field::new("title", DataType::Utf8, true),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(StringArray::from(
                rows.iter().map(|r| Some(r.0)).collect::<Vec<_>>(),
            )),
            Arc::new(
                TimestampMicrosecondArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())
                    .with_timezone("+00:00"),
            ),
            Arc::new(StringArray::from(
                rows.iter().map(|r| Some(r.2)).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap()
}

fn chain(engine: &TransformEngine, keep: &str) -> TransformChain {
    let spec = |name: &str, config: serde_json::Value| TransformSpec {
        name: name.into(),
        bytes: tributary_wasm_host::builtin::builtin(name)
            .unwrap()
            .to_vec(),
        config,
        limits: Limits {
            memory_bytes: 64 << 20,
            call_timeout: Duration::from_secs(5),
        },
    };
    TransformChain::new(
        engine,
        vec![
            spec("watermark", serde_json::json!({"event_time": "published_at", "delay": "1 hour"})),
            spec("dedup", serde_json::json!({"key": "id", "event_time": "published_at", "within": "1 hour", "keep": keep})),
        ],
    )
    .unwrap()
}

fn rows(out: &ChainOutput) -> Vec<(String, i64, String)> {
    let mut v = Vec::new();
    for b in &out.batches {
        let id = b
            .column_by_name("id")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        let t = b
            .column_by_name("published_at")
            .unwrap()
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap();
        let title = b
            .column_by_name("title")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        for i in 0..b.num_rows() {
            v.push((
                id.value(i).to_string(),
                t.value(i) - T0,
                title.value(i).to_string(),
            ));
        }
    }
    v
}

#[test]
fn first_through_the_host() {
    let engine = TransformEngine::new(Some(tempfile::tempdir().unwrap().keep())).unwrap();
    let mut c = chain(&engine, "first");
    let out = c
        .run(&batch(&[
            ("a", Some(T0), "a1"),
            ("a", Some(T0 + 1), "a2"),
            ("b", Some(T0 + 2), "b1"),
        ]))
        .unwrap();
    assert_eq!(
        rows(&out),
        [("a".into(), 0, "a1".into()), ("b".into(), 2, "b1".into())]
    );
    assert_eq!((out.duplicates, out.filtered, out.late.len()), (1, 0, 0));
    assert_eq!(c.watermark(), Some(T0 + 2 - H));
    let saved = c.snapshot();
    let second = batch(&[
        ("c", Some(T0 - 2 * H), "late"),
        ("a", Some(T0 + 3), "a3"),
        ("d", None, "no time"),
        ("e", Some(T0 + 4), "e1"),
    ]);
    let out = c.run(&second).unwrap();
    assert_eq!(rows(&out), [("e".into(), 4, "e1".into())]);
    assert_eq!((out.duplicates, out.late.len()), (1, 1));
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(
        out.rejected[0].reason,
        "missing event-time field `published_at`"
    );
    assert_eq!(out.rejected[0].transform, "watermark");
    // Restore into a new chain: the same answer.
    let mut again = chain(&engine, "first");
    again.restore(saved).unwrap();
    let out2 = again.run(&second).unwrap();
    assert_eq!(rows(&out2), rows(&out));
    assert_eq!(out2.duplicates, out.duplicates);
}

#[test]
fn latest_through_the_host() {
    let engine = TransformEngine::new(Some(tempfile::tempdir().unwrap().keep())).unwrap();
    let mut c = chain(&engine, "latest");
    let out = c
        .run(&batch(&[
            ("a", Some(T0), "v1"),
            ("a", Some(T0 + 600), "v2"),
            ("b", Some(T0 + 300), "b1"),
            ("a", Some(T0 + 600), "v2-tie"),
        ]))
        .unwrap();
    assert_eq!(rows(&out), []);
    assert_eq!((out.duplicates, out.filtered), (2, 2));
    assert_eq!(c.state_entries(), 2);
    let saved = c.snapshot();
    let next = batch(&[("x", Some(T0 + 3 * H), "x1")]);
    let out = c.run(&next).unwrap();
    assert_eq!(
        rows(&out),
        [
            ("a".into(), 600, "v2-tie".into()),
            ("b".into(), 300, "b1".into())
        ]
    );
    assert_eq!((out.duplicates, out.filtered), (0, 1));
    assert_eq!(c.state_entries(), 1, "x is held, a and b emitted and gone");
    let mut again = chain(&engine, "latest");
    again.restore(saved).unwrap();
    let out2 = again.run(&next).unwrap();
    assert_eq!(rows(&out2), rows(&out));
    println!(
        "latest emitted schema: {:?}",
        out.batches.iter().map(|b| b.schema()).collect::<Vec<_>>()
    );
}

/// Restore equivalence, with changelog checkpoints: any sequence of
/// batches, checkpoints (full or changelog over the previous one) and
/// crashes — after a crash a new chain restores the last full snapshot and
/// the changelogs after it, and the batches since that checkpoint are read
/// again — commits the same rows and ends in the same state as one run
/// without a crash.
#[test]
fn changelog_checkpoints_restore_exactly() {
    use proptest::prelude::*;
    use tributary_wasm_host::ChainState;

    #[derive(Clone, Copy, Debug)]
    enum Then {
        Nothing,
        Full,
        Changelog,
        Crash,
    }
    let then = prop_oneof![
        1 => Just(Then::Nothing),
        1 => Just(Then::Full),
        3 => Just(Then::Changelog),
        2 => Just(Then::Crash),
    ];
    // Ids from a small set (duplicates), event times over three hours (the
    // window closes, keys expire, `latest` emits).
    let row = (0u8..12, 0i64..180);
    let step = (proptest::collection::vec(row, 1..12), then);
    let engine = TransformEngine::new(Some(tempfile::tempdir().unwrap().keep())).unwrap();
    let config = ProptestConfig {
        cases: 48,
        ..ProptestConfig::default()
    };
    proptest!(config, |(steps in proptest::collection::vec(step, 1..24), latest in any::<bool>())| {
        let keep = if latest { "latest" } else { "first" };
        let batches: Vec<RecordBatch> = steps
            .iter()
            .map(|(rows, _)| {
                let ids: Vec<String> = rows.iter().map(|(k, _)| format!("id-{k}")).collect();
                let rows: Vec<(&str, Option<i64>, &str)> = rows
                    .iter()
                    .zip(&ids)
                    .map(|((_, minute), id)| (id.as_str(), Some(T0 + minute * 60_000_000), "t"))
                    .collect();
                batch(&rows)
            })
            .collect();

        let mut whole = chain(&engine, keep);
        let mut expected = Vec::new();
        for b in &batches {
            expected.extend(rows(&whole.run(b).unwrap()));
        }

        // The store: (is a changelog, state), in order.
        let mut store: Vec<(bool, ChainState)> = Vec::new();
        let mut c = chain(&engine, keep);
        let mut committed = Vec::new();
        let mut pending = Vec::new();
        let mut checkpointed_upto = 0;
        let mut crashed = vec![false; batches.len()];
        let mut i = 0;
        while i < batches.len() {
            pending.extend(rows(&c.run(&batches[i]).unwrap()));
            match steps[i].1 {
                Then::Nothing => {}
                Then::Full | Then::Changelog => {
                    let changelog = matches!(steps[i].1, Then::Changelog) && !store.is_empty();
                    store.push((changelog, if changelog { c.changelog() } else { c.snapshot() }));
                    c.clear_changes();
                    committed.append(&mut pending);
                    checkpointed_upto = i + 1;
                }
                Then::Crash if !crashed[i] => {
                    crashed[i] = true;
                    pending.clear();
                    c = chain(&engine, keep);
                    let full = store.iter().rposition(|(changelog, _)| !changelog);
                    if let Some(full) = full {
                        c.restore(ChainState {
                            watermark: store[full].1.watermark,
                            transforms: store[full].1.transforms.clone(),
                        })
                        .unwrap();
                        for (_, log) in &store[full + 1..] {
                            c.apply_changelog(ChainState {
                                watermark: log.watermark,
                                transforms: log.transforms.clone(),
                            })
                            .unwrap();
                        }
                    }
                    i = checkpointed_upto;
                    continue;
                }
                Then::Crash => {}
            }
            i += 1;
        }
        committed.append(&mut pending);
        prop_assert_eq!(&committed, &expected);
        prop_assert_eq!(c.watermark(), whole.watermark());
        prop_assert_eq!(c.snapshot().transforms, whole.snapshot().transforms);
    });
}
