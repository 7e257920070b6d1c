//! Exactly-once in the open world (issue 19): what happens when something
//! other than the pipeline's one run touches it — an API client reading its
//! offsets, a commit that fails half-way, a crash right after a rename, a
//! config from someone who may POST but should not write anywhere. Each test
//! runs the release binary against real files, plugins and services, and
//! failed on the code before its fix.
//!
//! Over 800 lines, on purpose: one self-contained end-to-end test per
//! scenario of the issue, each with its own setup, so any one reads alone.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::*;
use crate::plugins::{csv_ids, plugin_folder};
use crate::serve::Worker;
use crate::sinks::{assert_exactly, duckdb_ids, folder_jsonl_ids};

/// Generated articles, every one unique and on time, so the sink must hold
/// exactly ids `a-0 … a-<records-1>`.
fn unique_articles(records: u64, rate: u64) -> Value {
    json!({"type": "generator", "seed": 19, "records": records, "rate_per_sec": rate,
           "duplicate_ratio": 0.0, "late_ratio": 0.0})
}

fn ids_of(source: &Value) -> BTreeSet<String> {
    tributary_generator::describe_expected(source).unwrap().ids
}

/// A pipeline with no transforms from `source` into `sink`.
fn plain(s: &Scratch, name: &str, source: &Value, sink: Value) -> Value {
    json!({
        "name": name,
        "source": source,
        "sink": sink,
        "checkpoint": {"location": s.path(&format!("chk-{name}"))},
        "trigger": {"interval_ms": 300, "max_records_per_epoch": 100000, "batch_size": 200},
    })
}

/// Scenario 1: `GET /connectors/{name}/offsets`, polled all the time while
/// two connectors (parquet, and jsonl to a folder) run, changes nothing: every
/// record lands exactly once. Before the fix each read ran the folder's crash
/// recovery, deleting the running epoch's staged file; the commit then failed,
/// its retry committed an empty epoch, and rows were lost.
#[test]
fn open_world_reading_offsets_of_a_running_connector_changes_nothing() {
    let data = tempfile::tempdir().unwrap();
    let worker = Worker::start(&data.path().join("state"), &[]);
    let api = worker.api();
    let s = Scratch::new("offsets_read");
    let source = unique_articles(6000, 1500);
    let sinks = [
        (
            "reads_parquet",
            json!({"type": "parquet", "path": s.path("parquet")}),
        ),
        (
            "reads_jsonl",
            json!({"type": "jsonl", "path": s.path("jsonl")}),
        ),
    ];
    for (name, sink) in &sinks {
        let body = json!({"name": name, "config": plain(&s, name, &source, sink.clone())});
        let (code, created) = api.call("POST", "/connectors", Some(&body));
        assert_eq!(code, 201, "{created}");
    }
    // Read the offsets of both, as a dashboard polling the API would.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut reads = 0;
    loop {
        let states: Vec<String> = sinks.iter().map(|(n, _)| api.state(n)).collect();
        if states
            .iter()
            .all(|st| st != "RUNNING" && st != "UNASSIGNED")
        {
            assert!(
                states.iter().all(|st| st == "FINISHED"),
                "{states:?}\n{}",
                worker.log()
            );
            break;
        }
        assert!(Instant::now() < deadline, "never finished: {states:?}");
        for (name, _) in &sinks {
            let (code, body) = api.get(&format!("/connectors/{name}/offsets"));
            assert_eq!(code, 200, "{body}");
            reads += 1;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(reads > 100, "only {reads} reads of the offsets");
    let want = ids_of(&source);
    assert_exactly(
        "parquet after offset reads",
        &duckdb_ids(&s.path("parquet")),
        &want,
    );
    assert_exactly(
        "jsonl after offset reads",
        &folder_jsonl_ids(&s.path("jsonl")),
        &want,
    );
    assert!(
        !worker.log().contains("commit failed"),
        "a commit failed while the offsets were read:\n{}",
        worker.log()
    );
}

/// Scenario 1, the example CSV plugin: its crash recovery removed every
/// file of an epoch after the recorded one, so a read of the offsets between
/// the owner's two renames (the epoch's file, then its commit record) deleted
/// a file about to be committed. That moment is short; the test freezes it:
/// the next epoch's file is on disk and its record not yet, exactly as a
/// running commit leaves them, and the offsets are read.
#[test]
fn open_world_reading_offsets_never_deletes_a_plugin_sinks_files() {
    let data = tempfile::tempdir().unwrap();
    let plugins = plugin_folder().to_str().unwrap().to_string();
    let worker = Worker::start(&data.path().join("state"), &["--plugin-path", &plugins]);
    let api = worker.api();
    let s = Scratch::new("offsets_csv");
    let source = unique_articles(500, 0);
    let config = plain(
        &s,
        "reads_csv",
        &source,
        json!({"type": "csv", "path": s.path("csv")}),
    );
    let (code, created) = api.call(
        "POST",
        "/connectors",
        Some(&json!({"name": "reads_csv", "config": config})),
    );
    assert_eq!(code, 201, "{created}");
    api.wait_state("reads_csv", "FINISHED");
    let (_, before) = api.get("/connectors/reads_csv/offsets");
    let record: Value =
        serde_json::from_slice(&std::fs::read(s.path("csv/_commits/reads_csv.json")).unwrap())
            .unwrap();
    let next = record["epoch"].as_u64().unwrap() + 1;
    // The owner's commit of the next epoch, half-way: its file is written.
    let in_flight = s.path(&format!("csv/reads_csv-{next:010}.csv"));
    std::fs::write(
        &in_flight,
        "id,title,published_at\nin-flight,x,2026-01-01T00:00:00Z\n",
    )
    .unwrap();
    let (code, after) = api.get("/connectors/reads_csv/offsets");
    assert_eq!(code, 200, "{after}");
    assert_eq!(after, before, "the offsets read are the committed ones");
    assert!(
        in_flight.exists(),
        "GET /connectors/reads_csv/offsets deleted {}",
        in_flight.display()
    );
    std::fs::remove_file(&in_flight).unwrap();
    let ids = csv_ids(&s.path("csv"));
    assert_exactly(
        "csv",
        &ids.keys().cloned().collect::<Vec<_>>(),
        &ids_of(&source),
    );
    assert!(ids.values().all(|&n| n == 1), "duplicates in the csv files");
}

/// Scenario 2: a commit that fails part-way (the second epoch's file cannot
/// be moved to its visible name: something else holds that name for a few
/// seconds) is retried as the same commit, with its staged data, and every
/// record lands once. Before the fix the sink handed its staged files to the
/// first attempt, and the retry committed the epoch with nothing in it.
#[test]
fn open_world_a_retried_commit_keeps_its_staged_data() {
    let source = unique_articles(3000, 1500);
    let want = ids_of(&source);
    for (sink, ext) in [("parquet", "parquet"), ("jsonl", "jsonl")] {
        let s = Scratch::new(&format!("retry_{sink}"));
        let out = s.path("out");
        let name = format!("retry_{sink}");
        let pipeline = plain(&s, &name, &source, json!({"type": sink, "path": out}));
        // Epoch 2's first file name is taken by a folder for now.
        let blocker = out.join(format!("{name}-e{:020}-00000.{ext}", 2));
        std::fs::create_dir_all(blocker.join("held")).unwrap();
        let mut child = s.spawn(&pipeline, &[]);
        let log = s.path("runs.log");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("commit failed")
        {
            assert!(
                Instant::now() < deadline,
                "{sink}: the commit of epoch 2 never failed:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            assert!(child.try_wait().unwrap().is_none(), "{sink}: the run ended");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::fs::remove_dir_all(&blocker).unwrap();
        let status = wait_within(&mut child, Duration::from_secs(120), "the run");
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(status.success(), "{sink}: {status}\n{text}");
        let ids = if sink == "parquet" {
            duckdb_ids(&out)
        } else {
            folder_jsonl_ids(&out)
        };
        assert_exactly(&format!("{sink} after a retried commit"), &ids, &want);
    }
}

/// Every `rename` the process made under `root` (from strace's log), with
/// whether the folder the file landed in was fsynced after it.
fn renames_and_folder_syncs(trace: &str, root: &Path) -> Vec<(String, bool)> {
    // strace -f splits a call that another thread interrupts into
    // "<pid> call(args <unfinished ...>" and "<pid> <... call resumed>rest".
    let mut pending: std::collections::HashMap<&str, String> = Default::default();
    let mut calls = Vec::new();
    for line in trace.lines() {
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let rest = rest.trim_start();
        if let Some(head) = rest.strip_suffix(" <unfinished ...>") {
            pending.insert(pid, head.to_string());
        } else if let Some(resumed) = rest.strip_prefix("<... ") {
            let tail = resumed.split_once(" resumed>").map_or("", |(_, t)| t);
            if let Some(head) = pending.remove(pid) {
                calls.push(format!("{head}{tail}"));
            }
        } else {
            calls.push(rest.to_string());
        }
    }
    let quoted = |s: &str| -> Vec<String> {
        s.split('"')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    };
    let mut out: Vec<(String, bool)> = Vec::new();
    let mut open: Vec<(String, std::path::PathBuf)> = Vec::new();
    for call in calls {
        if !call.ends_with("= 0") {
            continue;
        }
        if call.starts_with("rename") {
            let Some(to) = quoted(&call).pop() else {
                continue;
            };
            let to = std::path::PathBuf::from(to);
            if to.starts_with(root) {
                let dir = to.parent().unwrap().to_path_buf();
                open.push((to.display().to_string(), dir));
            }
        } else if let Some(args) = call.strip_prefix("fsync(") {
            // `-y` shows the descriptor's path: fsync(7</some/folder>).
            let Some(path) = args.split_once('<').and_then(|(_, p)| p.split_once('>')) else {
                continue;
            };
            let synced = Path::new(path.0);
            open.retain(|(file, dir)| {
                if dir == synced {
                    out.push((file.clone(), true));
                    false
                } else {
                    true
                }
            });
        }
    }
    out.extend(open.into_iter().map(|(file, _)| (file, false)));
    out
}

/// Runs `cmd` under `strace -f -y` (renames and fsyncs only); returns the log.
fn strace(cmd: &mut std::process::Command, log: &Path) -> std::process::Command {
    let mut traced = std::process::Command::new("strace");
    traced
        .args([
            "-f",
            "-y",
            "-e",
            "trace=rename,renameat,renameat2,fsync,fdatasync",
            "-o",
        ])
        .arg(log)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    if let Some(dir) = cmd.get_current_dir() {
        traced.current_dir(dir);
    }
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            traced.env(k, v);
        }
    }
    traced
}

/// Scenario 9: after every rename that makes a commit durable — the folder
/// sinks' files and records, the example CSV plugin's, the checkpoint store's,
/// the dead letters', the worker's state files — the folder is fsynced, so a
/// power cut cannot undo a commit that was reported. Seen with strace on the
/// real binary and plugin. Before the fix the worker's state files and the
/// CSV plugin's files were renamed without a sync of their folder.
#[test]
fn open_world_every_rename_is_followed_by_a_sync_of_its_folder() {
    let s = Scratch::new("fsync");
    let root = s.dir.path().canonicalize().unwrap();
    let source = unique_articles(2000, 4000);
    let mut missing = Vec::new();
    let mut seen = 0;
    // Runs of `tributary run` into each folder sink.
    for (name, sink) in [
        (
            "fs_parquet",
            json!({"type": "parquet", "path": root.join("parquet")}),
        ),
        (
            "fs_jsonl",
            json!({"type": "jsonl", "path": root.join("jsonl")}),
        ),
        ("fs_csv", json!({"type": "csv", "path": root.join("csv")})),
    ] {
        let mut p = plain(&s, name, &source, sink);
        p["checkpoint"]["location"] = json!(root.join(format!("chk-{name}")));
        p["errors"] =
            json!({"policy": "dead-letter", "dead_letter_path": root.join(format!("dl-{name}"))});
        let path = s.write_pipeline(&p);
        let mut cmd = s.command(&["run", "--available-now", "--progress-interval", "0"]);
        cmd.arg("--plugin-path").arg(plugin_folder()).arg(&path);
        let log = s.path(&format!("{name}.strace"));
        assert_ok(&strace(&mut cmd, &log).output_within(RUN_LIMIT));
        for (file, synced) in
            renames_and_folder_syncs(&std::fs::read_to_string(&log).unwrap(), &root)
        {
            seen += 1;
            if !synced {
                missing.push(file);
            }
        }
    }
    // The worker's state files.
    let data = root.join("worker");
    let port = crate::kafka_env::free_port();
    let log = s.path("serve.strace");
    let mut cmd = std::process::Command::new(binary());
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(&data)
        .arg("--allow-path")
        .arg(&root);
    let mut child = strace(&mut cmd, &log)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(s.path("serve.log")).unwrap())
        .spawn()
        .unwrap();
    crate::kafka_env::wait_for_port(port, &mut child, "the worker", &s.path("serve.log")).unwrap();
    let http = reqwest::blocking::Client::new();
    let config = plain(
        &s,
        "fs_worker",
        &unique_articles(10, 0),
        json!({"type": "jsonl", "path": root.join("worker-out")}),
    );
    let resp = http
        .post(format!("http://127.0.0.1:{port}/connectors"))
        .json(&json!({"name": "fs_worker", "config": config}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let resp = http
        .put(format!(
            "http://127.0.0.1:{port}/connectors/fs_worker/pause"
        ))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    sigterm_tracee(&child);
    wait_within(&mut child, Duration::from_secs(60), "the worker");
    let worker_renames = renames_and_folder_syncs(&std::fs::read_to_string(&log).unwrap(), &root);
    assert!(
        worker_renames
            .iter()
            .any(|(f, _)| f.ends_with("connectors/fs_worker.json")),
        "the worker's state file was never renamed into place: {worker_renames:?}"
    );
    for (file, synced) in worker_renames {
        seen += 1;
        if !synced {
            missing.push(file);
        }
    }
    assert!(seen > 10, "only {seen} renames seen");
    assert!(
        missing.is_empty(),
        "renamed without an fsync of the folder afterwards: {missing:#?}"
    );
}

/// SIGTERM (the worker's graceful stop) to the process strace runs: strace
/// itself would only detach and leave it running.
fn sigterm_tracee(strace: &std::process::Child) {
    let pid = strace.id();
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    let tracee = children
        .split_whitespace()
        .next()
        .expect("strace runs the worker");
    let status = std::process::Command::new("kill")
        .args(["-TERM", tracee])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Scenario 11: `builtin:dedup` keeps a key until the watermark passes its
/// window; with nothing to move the watermark its state grows with every new
/// key. `validate` (and `run`, and the worker's POST) refuse such a chain and
/// say what to add; with a watermark the same chain is fine.
#[test]
fn open_world_a_dedup_window_that_cannot_close_is_refused() {
    let s = Scratch::new("dedup_window");
    let dedup = json!({"name": "dedup", "module": "builtin:dedup",
        "config": {"key": "id", "event_time": "published_at", "within": "1 minute"}});
    let lonely = s.pipeline(unique_articles(100, 0), json!([dedup.clone()]));
    let path = s.write_pipeline(&lonely);
    for cmd in ["validate", "run"] {
        let out = s
            .command(&[cmd, path.to_str().unwrap()])
            .output_within(RUN_LIMIT);
        let stderr = assert_failed(&out);
        assert!(
            stderr.contains("nothing in this pipeline moves the watermark")
                && stderr.contains("\"module\": \"builtin:watermark\"")
                && stderr.contains("\"delay\": \"1 minute\""),
            "{cmd}: {stderr}"
        );
    }
    let watermark = json!({"name": "watermark", "module": "builtin:watermark",
        "config": {"event_time": "published_at", "delay": "1 minute"}});
    let fixed = s.pipeline(unique_articles(100, 0), json!([watermark, dedup]));
    let path = s.write_pipeline(&fixed);
    assert_ok(
        &s.command(&["validate", path.to_str().unwrap()])
            .output_within(RUN_LIMIT),
    );
}

/// Scenario 12: a worker writes only inside its `--data` folder and the
/// folders named with `--allow-path`. Paths that step out by `..`, by being
/// absolute, or through a symlink inside the data folder are refused with a
/// message naming the path and the flag, and nothing is created there; a
/// folder the operator allows is accepted.
#[test]
fn open_world_a_worker_writes_only_where_its_operator_allows() {
    let data = tempfile::tempdir().unwrap();
    let state = data.path().join("state");
    let outside = tempfile::tempdir().unwrap();
    let escape = outside.path().join("escaped");
    std::fs::create_dir_all(&state).unwrap();
    let worker = Worker::start_confined(&state, &[]);
    let api = worker.api();
    let depth = state.components().count();
    let dots = "../".repeat(depth + 2);
    let escape_rel = format!(
        "{dots}{}",
        escape.display().to_string().trim_start_matches('/')
    );
    std::os::unix::fs::symlink(outside.path(), state.join("link")).unwrap();
    let config = |chk: &str, sink_path: &str, module: Option<&str>| {
        let mut c = json!({
            "source": unique_articles(50, 0),
            "sink": {"type": "jsonl", "path": sink_path},
            "checkpoint": {"location": chk},
        });
        if let Some(m) = module {
            c["transforms"] = json!([{"name": "t", "module": m}]);
        }
        c
    };
    let escaped = escape.display().to_string();
    let link_out = "link/out".to_string();
    let cases: Vec<(&str, Value, String)> = vec![
        (
            "dotdot",
            config(&escape_rel, "out", None),
            "checkpoint.location".into(),
        ),
        (
            "absolute",
            config("chk", &escaped, None),
            "sink.path".into(),
        ),
        (
            "symlink",
            config("chk", &link_out, None),
            "sink.path".into(),
        ),
        (
            "module",
            config("chk", "out", Some(&format!("{escaped}/t.wasm"))),
            "transforms[0].module".into(),
        ),
        (
            "warehouse",
            {
                let mut c = config("chk", "out", None);
                c["sink"] = json!({"type": "iceberg", "catalog_uri": format!("sqlite:{escaped}/catalog.db"),
                               "warehouse": "wh", "table": "a.b"});
                c
            },
            "sink.catalog_uri".into(),
        ),
    ];
    for (name, config, field) in &cases {
        let (code, body) = api.call(
            "POST",
            "/connectors",
            Some(&json!({"name": name, "config": config})),
        );
        let message = body["message"].as_str().unwrap_or_default();
        assert_eq!(code, 400, "{name}: {body}");
        assert!(
            message.contains(field.as_str())
                && message.contains("--allow-path")
                && message.contains("outside the folders this worker may use"),
            "{name}: {message}"
        );
    }
    // A `${file:…}` secret from outside the worker's folders: not read (the
    // value would end up in the config, and could come back in a message).
    let secrets = tempfile::tempdir().unwrap();
    let secrets_file = secrets.path().join("s.properties");
    std::fs::write(&secrets_file, "path=leaked-value\n").unwrap();
    let reference = format!("${{file:{}:path}}", secrets_file.display());
    let (code, body) = api.call(
        "POST",
        "/connectors",
        Some(&json!({"name": "secret", "config": config("chk", &reference, None)})),
    );
    let message = body["message"].as_str().unwrap_or_default();
    assert_eq!(code, 400, "{body}");
    assert!(
        message.contains("secrets file")
            && message.contains("--allow-path")
            && !message.contains("leaked-value"),
        "{message}"
    );
    assert!(
        std::fs::read_dir(outside.path()).unwrap().count() == 0,
        "something was created outside the worker's folders: {:?}",
        std::fs::read_dir(outside.path())
            .unwrap()
            .collect::<Vec<_>>()
    );
    drop(worker);
    // Allowed by the operator: the same config runs.
    let worker =
        Worker::start_confined(&state, &["--allow-path", outside.path().to_str().unwrap()]);
    let api = worker.api();
    let (code, body) = api.call(
        "POST",
        "/connectors",
        Some(&json!({"name": "absolute", "config": config("chk", &escaped, None)})),
    );
    assert_eq!(code, 201, "{body}");
    api.wait_state("absolute", "FINISHED");
    assert_eq!(folder_jsonl_ids(&escape).len(), 50);
}

/// Scenario 10: `limits.memory_mb` caps the sum of a component's linear
/// memories. The guest (tests/guests/two-memories) grows two memories to
/// 3 MiB each: under a 4 MiB cap it is stopped and the pipeline says which
/// limit; under 8 MiB it runs. Before the fix the cap applied to each memory
/// alone, and the 4 MiB run went through with 6 MiB in use.
#[test]
fn open_world_sandbox_memory_is_capped_across_memories() {
    let s = Scratch::new("two_memories");
    let module = s.path("two_memories.wasm");
    std::fs::write(&module, tributary_guest_two_memories::component().unwrap()).unwrap();
    let pipeline = |memory_mb: u64| {
        let mut p = s.pipeline(
            unique_articles(300, 0),
            json!([{"name": "twomem", "module": module, "limits": {"memory_mb": memory_mb}}]),
        );
        p["sink"] = json!({"type": "jsonl", "path": s.path(&format!("out-{memory_mb}"))});
        p["checkpoint"]["location"] = json!(s.path(&format!("chk-{memory_mb}")));
        p
    };
    let stderr = assert_failed(&s.run(&pipeline(4)));
    assert!(
        stderr.contains("transform `twomem` exceeded its 4 MiB memory limit"),
        "{stderr}"
    );
    assert_ok(&s.run(&pipeline(8)));
}

/// A PostgreSQL server of this test's own (Debian's binaries, a fresh
/// cluster in a temporary folder, trust auth, a free loopback port), so the
/// test can stop and restart it without disturbing anyone else's server.
pub(crate) struct PrivatePostgres {
    dir: tempfile::TempDir,
    port: u16,
}

impl PrivatePostgres {
    fn bin(tool: &str) -> std::path::PathBuf {
        let versions = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL is installed (scripts/postgres.sh installs it)");
        let mut found: Vec<_> = versions.flatten().map(|e| e.path()).collect();
        found.sort();
        found
            .last()
            .expect("a PostgreSQL version")
            .join("bin")
            .join(tool)
    }

    /// Runs a PostgreSQL tool as the `postgres` user (the server refuses root).
    fn as_postgres(args: &[&str]) -> std::process::Output {
        let mut cmd = std::process::Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).args(args);
        cmd.output_within(Duration::from_secs(120))
    }

    pub(crate) fn start_new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("trib-pg-")
            .tempdir()
            .unwrap();
        let status = std::process::Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success());
        let data = dir.path().join("data");
        let initdb = Self::bin("initdb");
        let out = Self::as_postgres(&[
            initdb.to_str().unwrap(),
            "-D",
            data.to_str().unwrap(),
            "-A",
            "trust",
            "-U",
            "postgres",
        ]);
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pg = Self {
            dir,
            port: crate::kafka_env::free_port(),
        };
        pg.start();
        let out = Self::as_postgres(&[
            Self::bin("createdb").to_str().unwrap(),
            "-h",
            "127.0.0.1",
            "-p",
            &pg.port.to_string(),
            "test",
        ]);
        assert!(
            out.status.success(),
            "createdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg
    }

    fn ctl(&self, args: &[&str]) -> std::process::Output {
        let data = self.dir.path().join("data");
        let pg_ctl = Self::bin("pg_ctl");
        let mut all = vec![pg_ctl.to_str().unwrap(), "-D", data.to_str().unwrap()];
        all.extend_from_slice(args);
        Self::as_postgres(&all)
    }

    pub(crate) fn start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        let out = self.ctl(&["-o", &options, "-l", log.to_str().unwrap(), "-w", "start"]);
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub(crate) fn stop(&self) {
        let out = self.ctl(&["-m", "fast", "-w", "stop"]);
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub(crate) fn uri(&self, password: &str) -> String {
        format!(
            "postgres://postgres:{password}@127.0.0.1:{}/test",
            self.port
        )
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.ctl(&["-m", "immediate", "-w", "stop"]);
    }
}

/// Waits until `log` contains `text` (the run must still be going).
fn wait_for_log(log: &Path, text: &str, child: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let now = std::fs::read_to_string(log).unwrap_or_default();
        if now.contains(text) {
            return;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before logging `{text}`:\n{now}"
        );
        assert!(Instant::now() < deadline, "never logged `{text}`:\n{now}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Scenario 5: a PostgreSQL checkpoint store that is briefly unreachable —
/// stopped while records flow, and down when the pipeline starts — is
/// waited for (one log line per attempt) and never taken for a damaged
/// checkpoint: the second run resumes with its dedup state, so no duplicate
/// gets through even with `on_damaged: "table"`. Before the fix the first
/// run stopped at the failed checkpoint write, and the second could not
/// start at all.
#[test]
fn open_world_an_unreachable_checkpoint_store_is_waited_for() {
    let pg = PrivatePostgres::start_new();
    let s = Scratch::new("pg_restart");
    let run = |records: u64| {
        let source =
            json!({"type": "generator", "seed": 5, "records": records, "rate_per_sec": 2000});
        let mut p = s.pipeline(source.clone(), watermark_and_dedup("2 hours"));
        p["sink"] = json!({"type": "parquet", "path": s.path("out")});
        p["checkpoint"] = json!({"location": pg.uri("x"), "on_damaged": "table"});
        p["trigger"]["interval_ms"] = json!(300);
        (source, p)
    };
    // Run 1: the store goes away while records flow, and comes back.
    let (_, first) = run(6000);
    let mut child = s.spawn(&first, &[]);
    let log = s.path("runs.log");
    let second_epoch = s.path(&format!("out/{}-e{:020}-00000.parquet", s.name, 2));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !second_epoch.exists() {
        assert!(child.try_wait().unwrap().is_none() && Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    pg.stop();
    wait_for_log(
        &log,
        "the checkpoint store is unreachable (attempt 2",
        &mut child,
    );
    pg.start();
    let status = wait_within(&mut child, Duration::from_secs(180), "run 1");
    assert!(
        status.success(),
        "run 1: {}",
        std::fs::read_to_string(&log).unwrap()
    );
    // Run 2 starts while the store is down, and goes on from run 1.
    pg.stop();
    let (source, second) = run(12000);
    let mut child = s.spawn(&second, &[]);
    wait_for_log(
        &log,
        "open the checkpoint store: the checkpoint store is unreachable (attempt 2",
        &mut child,
    );
    pg.start();
    let status = wait_within(&mut child, Duration::from_secs(180), "run 2");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "run 2: {text}");
    assert!(!text.contains("EMPTY transform state"), "{text}");
    assert_exactly("parquet", &duckdb_ids(&s.path("out")), &ids_of(&source));
}

/// Every file under `root` whose name or content holds `secret`.
fn files_holding(root: &Path, secret: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.to_string_lossy().contains(secret) {
                found.push(path.display().to_string());
            }
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                let bytes = std::fs::read(&path).unwrap_or_default();
                if bytes.windows(secret.len()).any(|w| w == secret.as_bytes()) {
                    found.push(path.display().to_string());
                }
            }
        }
    }
    found
}

/// Scenario 7: dead letters are exactly-once and private. Two pipelines
/// share a dead-letter folder: one with bad records, one without; the second
/// one's empty epoch must not remove the first one's letters (before the fix
/// both wrote `epoch-<n>.jsonl`, and an epoch without letters deleted it). A
/// `postgres://` checkpoint location with a password never becomes a local
/// folder (before the fix the default dead-letter folder was the URI joined
/// to the pipeline's folder, password and all): without a `dead_letter_path`
/// such a config is refused. Afterwards no file, file name or log of any run
/// holds the password.
#[test]
fn open_world_dead_letters_are_exactly_once_and_private() {
    let pg = PrivatePostgres::start_new();
    let secret = format!("hush-{}-pw", std::process::id());
    let s = Scratch::new("dead_letters");
    let at = "2026-01-01T00:00:00Z";
    write_lines(
        &s.path("in-a"),
        "a.jsonl",
        &[
            article("a1", at),
            "{not json".into(),
            article("a2", at),
            "[1, 2".into(),
        ],
    );
    write_lines(
        &s.path("in-b"),
        "b.jsonl",
        &[article("b1", at), article("b2", at)],
    );
    // The URI reaches the pipeline through the environment, as a secret
    // should: the pipeline file on disk holds only `${TRIB_PG_URI}`.
    let pipeline = |name: &str, input: &str, dead_letters: Option<&str>| {
        let mut errors = json!({"policy": "dead-letter"});
        if let Some(d) = dead_letters {
            errors["dead_letter_path"] = json!(d);
        }
        json!({
            "name": name,
            "source": {"type": "file", "path": s.path(input), "schema": [
                {"name": "id", "type": "string"}, {"name": "title", "type": "string"},
                {"name": "published_at", "type": "timestamp"}]},
            "sink": {"type": "jsonl", "path": s.path(&format!("out-{name}"))},
            "checkpoint": {"location": "${TRIB_PG_URI}"},
            "errors": errors,
        })
    };
    let run = |p: &Value, uri: &str| {
        let path = s.write_pipeline(p);
        s.command(&["run", "--available-now", "--progress-interval", "0"])
            .arg(&path)
            .env("TRIB_PG_URI", uri)
            .output_within(RUN_LIMIT)
    };
    let uri = pg.uri(&secret);
    let mut logs = String::new();
    // A URI location and no dead-letter folder: refused, naming the field.
    let stderr = assert_failed(&run(&pipeline("dl_a", "in-a", None), &uri));
    assert!(stderr.contains("errors.dead_letter_path"), "{stderr}");
    logs += &stderr;
    // Two pipelines, one shared folder; the second has no letters.
    for (name, input) in [("dl_a", "in-a"), ("dl_b", "in-b"), ("dl_a", "in-a")] {
        logs += &assert_ok(&run(&pipeline(name, input, Some("dlq")), &uri));
    }
    let letters = s.dead_letters("dlq");
    let raws: Vec<&str> = letters.iter().filter_map(|l| l["raw"].as_str()).collect();
    assert_eq!(raws, ["{not json", "[1, 2"], "{letters:#?}");
    assert!(
        letters.iter().all(|l| l["pipeline"] == "dl_a"),
        "{letters:#?}"
    );
    assert_eq!(folder_jsonl_ids(&s.path("out-dl_a")), ["a1", "a2"]);
    assert_eq!(folder_jsonl_ids(&s.path("out-dl_b")), ["b1", "b2"]);
    // A store that refuses the connection: the message shows no password.
    let bad = uri.replace("/test", "/no_such_db");
    let stderr = assert_failed(&run(&pipeline("dl_c", "in-b", Some("dlq")), &bad));
    assert!(stderr.contains("no_such_db"), "{stderr}");
    logs += &stderr;
    assert!(!logs.contains(&secret), "a log holds the password:\n{logs}");
    let leaked = files_holding(s.dir.path(), &secret);
    assert!(leaked.is_empty(), "files holding the password: {leaked:#?}");
}

/// Scenario 6: a transform chain fails as a unit. `dedup keep: latest` holds
/// each id until its window closes and releases it at a watermark move; the
/// transform after it (`picky`, a test guest) traps on any batch holding a
/// `poison` title. Under `dead-letter`, every row must land in the sink or
/// the dead-letter output exactly once: the three poison rows alone in the
/// dead-letter output (isolated from the released batches by splitting
/// them), every other id in the sink once. Before the fix the failure threw
/// away everything dedup released at that watermark (lost), and sent the
/// batch being read to the dead-letter output although dedup still held its
/// rows and released them later (written twice).
#[test]
fn open_world_a_transform_chain_fails_as_a_unit() {
    let s = Scratch::new("chain_unit");
    let at = |secs: i64| {
        let t = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap()
            + chrono::Duration::seconds(secs);
        t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let line = |id: &str, title: &str, secs: i64| {
        json!({"id": id, "title": title, "published_at": at(secs)}).to_string()
    };
    let poison = [40, 125, 210];
    let mut lines = Vec::new();
    let mut expected = BTreeSet::new();
    for i in 0..300i64 {
        if poison.contains(&i) {
            lines.push(line(&format!("p{i}"), "poison", i * 10));
        } else if i % 10 == 9 {
            // A later version of a{i-3}: dedup keeps it instead.
            lines.push(line(&format!("a{}", i - 3), "newer", i * 10));
        } else {
            lines.push(line(&format!("a{i}"), "fine", i * 10));
            expected.insert(format!("a{i}"));
        }
    }
    // Far later rows move the watermark past every window above; they stay
    // held themselves.
    for j in 0..20 {
        lines.push(line(&format!("t{j}"), "fine", 3 * 3600 + j));
    }
    write_lines(&s.path("in"), "articles.jsonl", &lines);
    let pipeline = json!({
        "name": "chain_unit",
        "source": file_source(&s),
        "transforms": [
            {"name": "watermark", "module": "builtin:watermark",
             "config": {"event_time": "published_at", "delay": "1 minute"}},
            {"name": "dedup", "module": "builtin:dedup",
             "config": {"key": "id", "event_time": "published_at", "within": "2 minutes",
                        "keep": "latest"}},
            {"name": "picky", "module": guest("trap"),
             "config": {"field": "title", "equals": "poison"}},
        ],
        "sink": {"type": "jsonl", "path": s.path("out")},
        "checkpoint": {"location": s.path("chk")},
        "trigger": {"batch_size": 50},
        "errors": {"policy": "dead-letter", "dead_letter_path": s.path("dlq")},
    });
    let path = s.write_pipeline(&pipeline);
    let stderr = assert_ok(
        &s.command(&["run", "--available-now", "--progress-interval", "0"])
            .arg(&path)
            .output_within(RUN_LIMIT),
    );

    let landed: Vec<String> = folder_jsonl_ids(&s.path("out"))
        .into_iter()
        .filter(|id| !id.starts_with('t'))
        .collect();
    let unique: BTreeSet<String> = landed.iter().cloned().collect();
    assert_eq!(landed.len(), unique.len(), "an id landed twice: {landed:?}");
    let missing: Vec<_> = expected.difference(&unique).collect();
    let extra: Vec<_> = unique.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "sink: missing {missing:?}, unexpected {extra:?}\n{stderr}"
    );

    let letters = s.dead_letters("dlq");
    let dead: Vec<(String, String)> = letters
        .iter()
        .map(|l| {
            (
                l["stage"].as_str().unwrap_or("").to_string(),
                l["record"]["id"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let picky = "transform:picky".to_string();
    assert_eq!(
        dead,
        [
            (picky.clone(), "p40".to_string()),
            (picky.clone(), "p125".to_string()),
            (picky, "p210".to_string())
        ],
        "{letters:#?}\n{stderr}"
    );
    for l in &letters {
        let reason = l["reason"].as_str().unwrap();
        assert!(reason.contains("trapped"), "{reason}");
        assert!(reason.contains("this record alone"), "{reason}");
    }
    assert!(
        stderr.contains("were isolated from a batch"),
        "the run should say it isolated records:\n{stderr}"
    );
}
