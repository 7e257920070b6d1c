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
