//! One behaviour, every backend: the conformance suite every
//! [`CheckpointStore`] passes, public so that a store written elsewhere runs
//! the same checks. This crate runs it against the local directory store and
//! the PostgreSQL store.
//!
//! ```no_run
//! use tributary_checkpoint::{LocalDirStore, testing};
//! let mut store = LocalDirStore::open("/tmp/chk".into()).unwrap();
//! testing::round_trips(&mut store, "my-pipeline");
//! ```

use crate::{Checkpoint, CheckpointError, CheckpointStore, Owner, TransformSnapshot};

/// A checkpoint of `pipeline` at `epoch`, with `state_bytes` of transform state.
pub fn checkpoint(pipeline: &str, epoch: u64, state_bytes: usize) -> Checkpoint {
    Checkpoint {
        pipeline_id: pipeline.into(),
        epoch,
        offsets: serde_json::json!({"position": epoch * 100}),
        watermark_micros: Some(epoch as i64 * 1_000_000),
        transforms: vec![
            TransformSnapshot {
                name: "watermark".into(),
                state: Vec::new(),
            },
            TransformSnapshot {
                name: "dedup".into(),
                state: (0..state_bytes).map(|i| (i % 251) as u8).collect(),
            },
        ],
        created_at_ms: 1_700_000_000_000 + epoch as i64,
        base: None,
    }
}

/// A checkpoint whose states are written by a callback (`put_streamed`)
/// reads back as if they had been given; a callback that writes another
/// length than announced stores nothing. Call it on an empty store.
pub fn streamed_puts(store: &mut dyn CheckpointStore, p: &str) {
    let states: [&[u8]; 2] = [b"", b"a full snapshot, streamed"];
    let mut c = checkpoint(p, 1, 0);
    let lens: Vec<u64> = states.iter().map(|s| s.len() as u64).collect();
    store
        .put_streamed(&c, &lens, &mut |i, w| w.write_all(states[i]))
        .unwrap();
    for (t, s) in c.transforms.iter_mut().zip(states) {
        t.state = s.to_vec();
    }
    assert_eq!(store.get(p, 1).unwrap().as_ref(), Some(&c));
    c.epoch = 2;
    let err = store
        .put_streamed(&c, &[0, 3], &mut |i, w| w.write_all(states[i]))
        .unwrap_err();
    assert!(err.to_string().contains("not the 3 announced"), "{err}");
    assert_eq!(store.get(p, 2).unwrap(), None, "nothing stored");
    assert_eq!(store.epochs(p).unwrap(), vec![1]);
}

/// Changelogs: a chain of checkpoints, each a changelog over the one before
/// it back to a full one, is read back whole; a full checkpoint starts a new
/// chain; a crash between a changelog and the full snapshot after it leaves
/// both chains readable; pruning to the chain's base keeps it; a changelog
/// whose base is gone is damage. Call it on an empty store.
pub fn changelog_chains(store: &mut dyn CheckpointStore, p: &str) {
    let put = |store: &mut dyn CheckpointStore, epoch: u64, base: Option<u64>| {
        let mut c = checkpoint(p, epoch, 10 + epoch as usize);
        c.base = base;
        store.put(&c).unwrap();
        c
    };
    let epochs = |chain: Option<Vec<Checkpoint>>| -> Vec<(u64, Option<u64>)> {
        chain.unwrap().iter().map(|c| (c.epoch, c.base)).collect()
    };
    assert_eq!(store.load_chain(p, 1).unwrap(), None);
    let full = put(store, 1, None);
    put(store, 2, Some(1));
    let third = put(store, 3, Some(2));
    let chain = store.load_chain(p, 3).unwrap().unwrap();
    assert_eq!(chain.first(), Some(&full));
    assert_eq!(chain.last(), Some(&third));
    assert_eq!(
        epochs(Some(chain)),
        vec![(1, None), (2, Some(1)), (3, Some(2))]
    );
    // The pipeline prunes to the full checkpoint its last commit builds on.
    store.prune(p, 1).unwrap();
    assert_eq!(store.epochs(p).unwrap(), vec![1, 2, 3]);
    // A changelog, then a full snapshot that was written but never
    // committed (a crash): both chains read back.
    put(store, 4, Some(3));
    put(store, 5, None);
    assert_eq!(epochs(store.load_chain(p, 4).unwrap()).len(), 4);
    assert_eq!(epochs(store.load_chain(p, 5).unwrap()), vec![(5, None)]);
    // After the crash, epoch 5 is processed again as a changelog over 4.
    put(store, 5, Some(4));
    assert_eq!(
        epochs(store.load_chain(p, 5).unwrap())
            .iter()
            .map(|e| e.0)
            .collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    put(store, 6, None);
    store.prune(p, 6).unwrap();
    assert_eq!(epochs(store.load_chain(p, 6).unwrap()), vec![(6, None)]);
    // A changelog over an epoch that is gone cannot be restored.
    put(store, 7, Some(5));
    let err = store.load_chain(p, 7).unwrap_err();
    assert!(
        err.is_damage() && err.to_string().contains("builds on epoch 5"),
        "{err}"
    );
    put(store, 8, Some(8));
    assert!(store.load_chain(p, 8).unwrap_err().is_damage());
}

/// The contract: put, get, latest, epochs and prune behave as the pipeline
/// relies on (a 3 MiB state, a rewritten epoch). Panics on the first breach.
/// Call it on an empty store.
pub fn round_trips(store: &mut dyn CheckpointStore, p: &str) {
    assert_eq!(store.latest(p).unwrap(), None);
    assert_eq!(store.get(p, 1).unwrap(), None);
    let big = checkpoint(p, 1, 3 * 1024 * 1024 + 7);
    store.put(&big).unwrap();
    assert_eq!(store.get(p, 1).unwrap().as_ref(), Some(&big));
    let second = checkpoint(p, 2, 10);
    store.put(&second).unwrap();
    assert_eq!(store.epochs(p).unwrap(), vec![1, 2]);
    assert_eq!(store.latest(p).unwrap().as_ref(), Some(&second));
    // Re-processing after a crash rewrites an epoch.
    let mut again = checkpoint(p, 2, 20);
    again.offsets = serde_json::json!({"position": 999});
    store.put(&again).unwrap();
    assert_eq!(store.get(p, 2).unwrap().as_ref(), Some(&again));
    store.prune(p, 2).unwrap();
    assert_eq!(store.epochs(p).unwrap(), vec![2]);
    assert_eq!(store.get(p, 1).unwrap(), None);
    assert!(store.describe().len() > 5);
}

/// Owners: two stores on one location, as two instances of a pipeline
/// have. Each claim gets the next generation; once the second claims, the
/// first cannot write (the error names the second), and the second can.
/// Call it on an empty store.
pub fn claims_fence_older_runs(
    first: &mut dyn CheckpointStore,
    second: &mut dyn CheckpointStore,
    p: &str,
) {
    let run = |pid: u32| Owner {
        generation: 0,
        run_id: format!("run-{pid}"),
        host: "host".into(),
        pid,
        started_at: "2026-11-30T00:00:00Z".into(),
    };
    let a = first.claim(p, &run(1)).unwrap();
    assert_eq!((a.owner.generation, a.owner.pid), (1, 1));
    assert_eq!(a.previous, None);
    first.put(&checkpoint(p, 1, 10)).unwrap();
    let b = second.claim(p, &run(2)).unwrap();
    assert_eq!(b.owner.generation, 2);
    assert_eq!(
        b.previous.as_ref().map(|o| (o.pid, o.generation)),
        Some((1, 1))
    );
    let err = first.put(&checkpoint(p, 2, 10)).unwrap_err();
    assert!(
        matches!(err, CheckpointError::Fenced(_))
            && !err.is_retryable()
            && err.to_string().contains("pid 2")
            && err.to_string().contains("generation 2"),
        "{err}"
    );
    assert_eq!(second.epochs(p).unwrap(), vec![1]);
    second.put(&checkpoint(p, 2, 10)).unwrap();
    assert_eq!(first.epochs(p).unwrap(), vec![1, 2]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::*;

    #[test]
    fn format_detects_every_kind_of_damage() {
        let c = checkpoint("p", 5, 1000);
        let bytes = encode(&c);
        assert_eq!(decode(&bytes, "x").unwrap(), c);
        for flip in [0, 9, 20, bytes.len() / 2, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[flip] ^= 0x01;
            let err = decode(&bad, "the-file").unwrap_err().to_string();
            assert!(err.contains("the-file is damaged"), "byte {flip}: {err}");
            assert!(err.contains("on_damaged"), "the fix is named: {err}");
        }
        assert!(
            decode(&bytes[..bytes.len() - 10], "f")
                .unwrap_err()
                .to_string()
                .contains("damaged")
        );
        assert!(
            decode(b"garbage", "f")
                .unwrap_err()
                .to_string()
                .contains("truncated")
        );
    }

    #[test]
    fn local_store_conforms() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LocalDirStore::open(dir.path().join("chk")).unwrap();
        round_trips(&mut store, "pipe");
        let mut store = LocalDirStore::open(dir.path().join("chained")).unwrap();
        changelog_chains(&mut store, "chained");
        let mut store = LocalDirStore::open(dir.path().join("streamed")).unwrap();
        streamed_puts(&mut store, "streamed");
    }

    #[test]
    fn a_checkpoint_without_a_base_reads_as_full() {
        let mut c = checkpoint("p", 5, 10);
        c.base = Some(4);
        assert_eq!(decode(&encode(&c), "x").unwrap().base, Some(4));
        // Written before changelogs existed: no "base" in the header.
        c.base = None;
        let bytes = encode(&c);
        assert!(!String::from_utf8_lossy(&bytes).contains("\"base\""));
        assert_eq!(decode(&bytes, "x").unwrap(), c);
    }

    #[test]
    fn local_store_fences_older_runs() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = LocalDirStore::open(dir.path().join("chk")).unwrap();
        let mut second = LocalDirStore::open(dir.path().join("chk")).unwrap();
        claims_fence_older_runs(&mut first, &mut second, "pipe");
    }

    #[test]
    fn local_store_refuses_another_pipeline_and_reports_damage() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LocalDirStore::open(dir.path().to_path_buf()).unwrap();
        store.put(&checkpoint("a", 1, 10)).unwrap();
        let err = store.put(&checkpoint("b", 1, 10)).unwrap_err().to_string();
        assert!(
            err.contains("holds checkpoints of pipeline `a`, not `b`"),
            "{err}"
        );
        // Truncate the file as a crash of a non-atomic writer would.
        let file = dir.path().join("epoch-00000000000000000001.ckpt");
        let bytes = std::fs::read(&file).unwrap();
        std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
        let err = store.get("a", 1).unwrap_err().to_string();
        assert!(
            err.contains(&file.display().to_string()) && err.contains("damaged"),
            "{err}"
        );
    }

    #[test]
    fn local_store_ignores_a_write_interrupted_by_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LocalDirStore::open(dir.path().to_path_buf()).unwrap();
        store.put(&checkpoint("a", 1, 10)).unwrap();
        // A crash between create and rename leaves a partial temp file behind
        // (an hour ago); another process may be writing a young one now.
        let leftover = dir.path().join("epoch-00000000000000000002.1.x.tmp");
        std::fs::write(&leftover, b"TRBCKPT1 partial").unwrap();
        let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(&leftover)
            .and_then(|f| f.set_modified(an_hour_ago))
            .unwrap();
        let in_progress = dir.path().join("epoch-00000000000000000002.2.y.tmp");
        std::fs::write(&in_progress, b"TRBCKPT1 being written").unwrap();
        let mut reopened = LocalDirStore::open(dir.path().to_path_buf()).unwrap();
        assert_eq!(reopened.epochs("a").unwrap(), vec![1]);
        assert_eq!(reopened.latest("a").unwrap().unwrap().epoch, 1);
        assert!(!leftover.exists(), "leftovers are cleaned");
        assert!(
            in_progress.exists(),
            "another process's write in progress is left alone"
        );
    }

    /// PostgreSQL on 127.0.0.1:5432 (trust auth). CI machines run it; elsewhere
    /// set TRIBUTARY_SKIP_POSTGRES=1 to skip loudly.
    fn postgres_uri(table: &str) -> Option<String> {
        if std::env::var_os("TRIBUTARY_SKIP_POSTGRES").is_some() {
            eprintln!("SKIPPED: PostgreSQL checkpoint store (TRIBUTARY_SKIP_POSTGRES is set)");
            return None;
        }
        let base = std::env::var("TRIBUTARY_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        Some(format!("{base}?table={table}"))
    }

    fn unique(prefix: &str) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        format!("{prefix}_{}_{nanos}", std::process::id())
    }

    #[test]
    fn postgres_store_conforms() {
        let Some(uri) = postgres_uri(&unique("trib_ckpt")) else {
            return;
        };
        let mut store = PostgresStore::connect(&uri)
            .expect("PostgreSQL at 127.0.0.1:5432 (set TRIBUTARY_SKIP_POSTGRES=1 to skip)");
        round_trips(&mut store, "pipe");
        changelog_chains(&mut store, "chained");
        streamed_puts(&mut store, "streamed");
        // Pipelines share the table without seeing each other.
        store.put(&checkpoint("other", 7, 1)).unwrap();
        assert_eq!(store.epochs("pipe").unwrap(), vec![2]);
        assert_eq!(store.epochs("other").unwrap(), vec![7]);
        // Damage a row behind the store's back.
        let table = store.table().to_string();
        store
        .rt
        .block_on(
            sqlx::query(&format!(
                "UPDATE {table} SET payload = set_byte(payload, 20, 0) WHERE pipeline_id = 'other'"
            ))
            .execute(&store.pool),
        )
        .unwrap();
        let err = store.get("other", 7).unwrap_err().to_string();
        assert!(err.contains("damaged") && err.contains("epoch 7"), "{err}");
        for t in [table.clone(), format!("{table}_owners")] {
            store
                .rt
                .block_on(sqlx::query(&format!("DROP TABLE {t}")).execute(&store.pool))
                .unwrap();
        }
    }

    #[test]
    fn postgres_store_fences_older_runs() {
        let Some(uri) = postgres_uri(&unique("trib_own")) else {
            return;
        };
        let mut first = PostgresStore::connect(&uri).unwrap();
        let mut second = PostgresStore::connect(&uri).unwrap();
        claims_fence_older_runs(&mut first, &mut second, "pipe");
        let table = first.table().to_string();
        for t in [table.clone(), format!("{table}_owners")] {
            first
                .rt
                .block_on(sqlx::query(&format!("DROP TABLE {t}")).execute(&first.pool))
                .unwrap();
        }
    }

    #[test]
    fn unreachable_postgres_is_a_clear_retryable_error() {
        let err = PostgresStore::connect("postgres://nobody:hunter2@127.0.0.1:1/none").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("cannot connect"), "{msg}");
        assert!(
            !msg.contains("hunter2"),
            "the password must not be shown: {msg}"
        );
        assert!(matches!(
            err,
            CheckpointError::Io {
                retryable: true,
                ..
            }
        ));
    }
}
