//! What every end-to-end test needs: the release binary, a scratch folder with
//! a pipeline file, runs of `tributary`, and a reader we did not write
//! (PyIceberg, via `scripts/inspect_table.py`) to look at the table.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repo")
        .to_path_buf()
}

/// The release `tributary` binary: `$TRIBUTARY_BIN` when set (scripts/test.sh
/// builds it first and sets it), else built here once per test run, so that
/// `cargo test -p tributary-tests` works on its own.
pub fn binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("TRIBUTARY_BIN") {
            let bin = PathBuf::from(bin);
            assert!(
                bin.exists(),
                "TRIBUTARY_BIN={} does not exist",
                bin.display()
            );
            return bin;
        }
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args([
            "build",
            "--release",
            "-p",
            "tributary",
            "--bin",
            "tributary",
        ])
        .current_dir(repo_root());
        // The variables cargo sets for this test process would make the nested
        // build fingerprint differently and recompile half the tree.
        for (key, _) in std::env::vars() {
            if key.starts_with("CARGO_") && key != "CARGO_HOME" && key != "CARGO_TARGET_DIR" {
                cmd.env_remove(key);
            }
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "building the tributary binary failed");
        // The test executable lives in <target>/release/deps/.
        let exe = std::env::current_exe().expect("current exe");
        let release = exe.parent().and_then(Path::parent).expect("target/release");
        let bin = release.join("tributary");
        assert!(bin.exists(), "no binary at {}", bin.display());
        bin
    })
}

/// The Python with PyIceberg and DuckDB (`scripts/setup.sh` prints it).
pub fn python() -> String {
    std::env::var("TRIBUTARY_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Where the sandbox test guests (`tests/guests/*`) were built.
pub fn guest(name: &str) -> PathBuf {
    let path = Path::new(env!("TRIBUTARY_TEST_GUEST_DIR")).join(format!("{name}.wasm"));
    assert!(path.exists(), "test guest {} was not built", path.display());
    path
}

/// A scratch folder holding one pipeline, its table, checkpoints and dead letters.
pub struct Scratch {
    pub dir: tempfile::TempDir,
    pub name: String,
}

impl Scratch {
    pub fn new(name: &str) -> Self {
        Self {
            dir: tempfile::Builder::new()
                .prefix(&format!("trib-{name}-"))
                .tempdir()
                .unwrap(),
            name: name.into(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn warehouse(&self) -> PathBuf {
        self.path("warehouse")
    }

    pub fn catalog_uri(&self) -> String {
        format!("sqlite:{}", self.path("warehouse/catalog.db").display())
    }

    pub fn table(&self) -> &str {
        "demo.news.articles"
    }

    /// The Iceberg sink every test uses (SQLite catalog in the scratch folder).
    pub fn iceberg_sink(&self) -> Value {
        json!({
            "type": "iceberg",
            "catalog_uri": self.catalog_uri(),
            "warehouse": self.warehouse(),
            "table": self.table(),
        })
    }

    /// A pipeline around `source` and `transforms` writing to this scratch table.
    pub fn pipeline(&self, source: Value, transforms: Value) -> Value {
        json!({
            "name": self.name,
            "source": source,
            "transforms": transforms,
            "sink": self.iceberg_sink(),
            "checkpoint": {"location": self.path("chk")},
            "trigger": {"interval_ms": 500, "max_records_per_epoch": 20000, "batch_size": 1000},
        })
    }

    pub fn write_pipeline(&self, pipeline: &Value) -> PathBuf {
        let path = self.path("pipeline.json");
        std::fs::write(&path, serde_json::to_vec_pretty(pipeline).unwrap()).unwrap();
        path
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(binary());
        cmd.args(args).current_dir(self.dir.path());
        // TRIBUTARY_TEST_LOG (e.g. `info,tributary_kafka=debug`) turns up
        // the binary's logging when a test needs looking into.
        let level = std::env::var("TRIBUTARY_TEST_LOG").unwrap_or_else(|_| "info".into());
        cmd.env("TRIBUTARY_LOG", level);
        cmd
    }

    /// `tributary run --available-now pipeline.json`, to completion.
    pub fn run(&self, pipeline: &Value) -> Output {
        let path = self.write_pipeline(pipeline);
        self.command(&[
            "run",
            "--available-now",
            "--progress-interval",
            "0",
            path.to_str().unwrap(),
        ])
        .output_within(RUN_LIMIT)
    }

    /// `tributary run pipeline.json` in the background.
    pub fn spawn(&self, pipeline: &Value, extra_env: &[(&str, String)]) -> Child {
        let path = self.write_pipeline(pipeline);
        let mut cmd = self.command(&["run", "--progress-interval", "0", path.to_str().unwrap()]);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        // stderr goes to a file (a pipe nobody reads could fill and stall it).
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("runs.log"))
            .unwrap();
        cmd.stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn tributary")
    }

    /// Reads the table with PyIceberg.
    pub fn inspect(&self, extra: &[&str]) -> Result<Value> {
        let script = repo_root().join("scripts/inspect_table.py");
        let out = Command::new(python())
            .arg(&script)
            .args([
                "--catalog-uri",
                &self.catalog_uri(),
                "--warehouse",
                self.warehouse().to_str().unwrap(),
            ])
            .args(["--table", self.table()])
            .args(extra)
            .output()
            .context("run inspect_table.py")?;
        if !out.status.success() {
            bail!(
                "inspect_table.py failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        serde_json::from_slice(&out.stdout).context("inspect_table.py output")
    }

    /// Every dead letter written so far, in epoch order.
    pub fn dead_letters(&self, dir: &str) -> Vec<Value> {
        let Ok(entries) = std::fs::read_dir(self.path(dir)) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
            .collect();
        files.sort();
        files
            .iter()
            .flat_map(|f| {
                std::fs::read_to_string(f)
                    .unwrap()
                    .lines()
                    .map(|l| serde_json::from_str::<Value>(l).unwrap())
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// Asserts a run succeeded, showing its stderr when it did not.
pub fn assert_ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "tributary failed ({}):\n{stderr}",
        out.status
    );
    stderr
}

/// Asserts a run failed, returning its stderr.
pub fn assert_failed(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "tributary should have failed:\n{stderr}"
    );
    stderr
}

/// The two standard transforms, as the quickstart uses them.
pub fn watermark_and_dedup(delay: &str) -> Value {
    json!([
        {"name": "watermark", "module": "builtin:watermark", "config": {"event_time": "published_at", "delay": delay}},
        {"name": "dedup", "module": "builtin:dedup",
         "config": {"key": "id", "event_time": "published_at", "within": delay, "keep": "first"}},
    ])
}

/// Writes JSON lines into `dir/name`.
pub fn write_lines(dir: &Path, name: &str, lines: &[String]) {
    std::fs::create_dir_all(dir).unwrap();
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(dir.join(name), text).unwrap();
}

/// A JSON-lines article with an RFC 3339 event time.
pub fn article(id: &str, published_at: &str) -> String {
    json!({"id": id, "title": format!("title {id}"), "published_at": published_at}).to_string()
}

/// The file source over `scratch/in`, with the article schema.
pub fn file_source(scratch: &Scratch) -> Value {
    json!({
        "type": "file",
        "path": scratch.path("in"),
        "schema": [
            {"name": "id", "type": "string"},
            {"name": "title", "type": "string"},
            {"name": "published_at", "type": "timestamp"},
        ],
    })
}

/// The longest any single `tributary run --available-now` may take in a test:
/// a hang fails the test with the run's log instead of stalling CI.
pub const RUN_LIMIT: Duration = Duration::from_secs(300);

/// `Command::output`, but a process still running after `limit` is killed and
/// the test fails with what it printed so far.
pub trait OutputWithin {
    fn output_within(&mut self, limit: Duration) -> Output;
}

impl OutputWithin for Command {
    fn output_within(&mut self, limit: Duration) -> Output {
        let dir = tempfile::tempdir().expect("temp dir");
        let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
        let mut child = self
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", self.get_program()));
        let Some(status) = wait_or_kill(&mut child, limit) else {
            panic!(
                "{:?} {:?} was still running after {} s; killed. stderr:\n{}",
                self.get_program(),
                self.get_args().collect::<Vec<_>>(),
                limit.as_secs(),
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        };
        Output {
            status,
            stdout: std::fs::read(&out_path).unwrap(),
            stderr: std::fs::read(&err_path).unwrap(),
        }
    }
}

/// Waits for a background process, killing it and failing the test when it
/// is still running after `limit`.
pub fn wait_within(child: &mut Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    wait_or_kill(child, limit).unwrap_or_else(|| {
        panic!(
            "{what} was still running after {} s; killed",
            limit.as_secs()
        )
    })
}

/// The exit status, or `None` when it was still running after `limit` (it
/// is then killed).
fn wait_or_kill(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `examples/transforms/python` built into a component with componentize-py
/// (the one in the venv `scripts/setup.sh` made, else on the PATH), once per
/// test run.
pub fn python_transform() -> &'static Path {
    static BUILT: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = BUILT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("curate.wasm");
        let venv_tool = Path::new(&python()).with_file_name("componentize-py");
        let tool = if venv_tool.exists() {
            venv_tool
        } else {
            PathBuf::from("componentize-py")
        };
        let src = repo_root().join("examples/transforms/python");
        let built = Command::new(&tool)
            .args(["-d", repo_root().join("wit").to_str().unwrap()])
            .args(["-w", "transform", "componentize", "app", "-o"])
            .arg(&out)
            .current_dir(&src)
            .output_within(Duration::from_secs(300));
        assert!(
            built.status.success(),
            "{} failed (scripts/setup.sh installs it): {}",
            tool.display(),
            String::from_utf8_lossy(&built.stderr)
        );
        (dir, out)
    });
    path
}

/// `examples/transforms/js` built into a component with componentize-js
/// (its `build.sh`: npm install when needed, then node), once per test run.
pub fn js_transform() -> &'static Path {
    static BUILT: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = BUILT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("curate.wasm");
        let built = Command::new(repo_root().join("examples/transforms/js/build.sh"))
            .arg(&out)
            .output_within(Duration::from_secs(600));
        assert!(
            built.status.success(),
            "building the JavaScript transform failed (it needs Node.js and npm): {}",
            String::from_utf8_lossy(&built.stderr)
        );
        (dir, out)
    });
    path
}

/// `examples/transforms/rust` (on the guest SDK) built for wasm32-wasip2 by
/// cargo, in a target folder of its own, once per test run.
pub fn rust_transform() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join("target"))
            .join("example-guests");
        let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        for (key, _) in std::env::vars() {
            if key.starts_with("CARGO_") && key != "CARGO_HOME" {
                cargo.env_remove(key);
            }
        }
        let built = cargo
            .args([
                "build",
                "--release",
                "--locked",
                "--target",
                "wasm32-wasip2",
            ])
            .args(["-p", "tributary-example-curate"])
            .current_dir(repo_root())
            .env("CARGO_TARGET_DIR", &target)
            .output_within(Duration::from_secs(600));
        assert!(
            built.status.success(),
            "building examples/transforms/rust failed: {}",
            String::from_utf8_lossy(&built.stderr)
        );
        target.join("wasm32-wasip2/release/curate.wasm")
    })
}

/// `examples/transforms/c` built into a component by its `build.sh`
/// (clang + wasi-libc; bindings and component from the binary under test),
/// once per test run.
pub fn c_transform() -> &'static Path {
    static BUILT: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = BUILT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("curate.wasm");
        let built = Command::new(repo_root().join("examples/transforms/c/build.sh"))
            .arg(&out)
            .env("TRIBUTARY_BIN", binary())
            .output_within(Duration::from_secs(300));
        assert!(
            built.status.success(),
            "building the C transform failed (it needs clang, lld and wasi-libc; \
             scripts/setup.sh installs them): {}",
            String::from_utf8_lossy(&built.stderr)
        );
        (dir, out)
    });
    path
}

/// A small xorshift so the kill schedule varies per run yet can be replayed
/// from the seed printed in the output.
pub struct Rng(u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

impl Rng {
    /// Seeded from `$CRASH_SEED`, else the clock; the seed is printed so a
    /// failing kill schedule can be replayed.
    pub fn kill_schedule() -> Self {
        let seed = std::env::var("CRASH_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("kill schedule seed: CRASH_SEED={seed}");
        Self(seed)
    }
}
