//! Real Kafka for the tests: a Tansu broker (a Kafka-API broker in Rust) and
//! Tributary's own Schema Registry, each started on a free 127.0.0.1 port and
//! stopped when dropped, and articles produced by confluent-kafka's Python
//! Avro serializer (`scripts/produce_articles.py`).

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::harness::{OutputWithin, binary, python, repo_root};

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (30 s at most) until something listens on `port`; fails with the
/// child's log when it exits first.
pub fn wait_for_port(
    port: u16,
    child: &mut Child,
    what: &str,
    log: &std::path::Path,
) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!(
                "{what} exited ({status}) before listening on {port}:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("{what} did not listen on 127.0.0.1:{port} within 30 s")
}

/// The Tansu binary: `$TANSU_BIN`, else where `scripts/setup.sh` installs it,
/// else `tansu` on the PATH.
pub fn tansu_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("TANSU_BIN") {
        return bin.into();
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let installed = home.join(".cache/tributary/tools/bin/tansu");
    if installed.exists() {
        return installed;
    }
    PathBuf::from("tansu")
}

/// A running Tansu broker with in-memory storage.
pub struct Broker {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Broker {
    pub fn start() -> Result<Self> {
        Self::start_on(free_port())
    }

    pub fn start_on(port: u16) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let log = dir.path().join("tansu.log");
        let url = format!("tcp://127.0.0.1:{port}");
        let mut child = Command::new(tansu_binary())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| {
                format!(
                    "start the Tansu broker {} (scripts/setup.sh installs it)",
                    tansu_binary().display()
                )
            })?;
        wait_for_port(port, &mut child, "tansu", &log)?;
        Ok(Self {
            child,
            port,
            _dir: dir,
        })
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Tributary's Schema Registry (`tributary schema-registry`), schemas kept in
/// a temporary folder.
pub struct Registry {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let log = dir.path().join("registry.log");
        let mut child = Command::new(binary())
            .args(["schema-registry", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data")
            .arg(dir.path().join("schemas"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        wait_for_port(port, &mut child, "schema registry", &log)?;
        Ok(Self {
            child,
            port,
            _dir: dir,
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A broker and a registry together.
pub struct KafkaEnv {
    pub broker: Broker,
    pub registry: Registry,
}

impl KafkaEnv {
    pub fn start() -> Result<Self> {
        Ok(Self {
            broker: Broker::start()?,
            registry: Registry::start()?,
        })
    }

    /// Runs `scripts/produce_articles.py` with these extra arguments and
    /// returns its JSON report; `expected` (when given) receives the ids a
    /// 2-hour watermark + dedup must deliver.
    pub fn produce(&self, args: &[&str]) -> Result<Value> {
        let out = self
            .produce_command(args)
            .output_within(Duration::from_secs(300));
        if !out.status.success() {
            bail!(
                "produce_articles.py failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        serde_json::from_slice(&out.stdout).context("produce_articles.py output")
    }

    pub fn produce_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(python());
        cmd.arg(repo_root().join("scripts/produce_articles.py"))
            .args(["--bootstrap", &self.broker.bootstrap()])
            .args(["--registry", &self.registry.url()])
            .args(args);
        cmd
    }
}

/// The ids written by `produce_articles.py --expected <file>`.
pub fn read_ids(path: &std::path::Path) -> std::collections::BTreeSet<String> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str::<Vec<String>>(&text)
        .unwrap()
        .into_iter()
        .collect()
}
