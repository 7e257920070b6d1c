//! Real Kafka for the tests: an Apache Kafka broker (KRaft, one node) and
//! Tributary's own Schema Registry, each started on a free 127.0.0.1 port and
//! stopped when dropped, and articles produced by confluent-kafka's Python
//! Avro serializer (`scripts/produce_articles.py`).

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::harness::{OutputWithin, binary, python, repo_root};

/// A port nobody listens on right now, for a server a test starts.
///
/// Not one the kernel hands out itself: a port from `bind(":0")` is in the
/// ephemeral range, where any outgoing connection (a test's client, the
/// broker's own) may take it between this check and the server's bind; that
/// made a broker fail with "Address already in use" now and then. Ports
/// 20000-32767 sit below Linux's ephemeral range (32768-60999), are picked at
/// random, and are never given twice in one test process.
pub fn free_port() -> u16 {
    use std::collections::HashSet;
    use std::hash::{BuildHasher, RandomState};
    use std::sync::Mutex;
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let random = RandomState::new();
    for attempt in 0u64.. {
        let port = 20_000 + (random.hash_one(attempt) % 12_768) as u16;
        let mut given = GIVEN.lock().unwrap();
        let given = given.get_or_insert_with(HashSet::new);
        if given.contains(&port) || TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        given.insert(port);
        return port;
    }
    unreachable!("the loop above returns")
}

/// Waits (30 s at most) until something listens on `port`; fails with the
/// child's log when it exits first.
pub fn wait_for_port(
    port: u16,
    child: &mut Child,
    what: &str,
    log: &std::path::Path,
) -> Result<()> {
    wait_for_port_within(port, child, what, log, Duration::from_secs(30))
}

fn wait_for_port_within(
    port: u16,
    child: &mut Child,
    what: &str,
    log: &std::path::Path,
    limit: Duration,
) -> Result<()> {
    let deadline = Instant::now() + limit;
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
    bail!("{what} did not listen on 127.0.0.1:{port} within {limit:?}")
}

/// A running Apache Kafka broker: one KRaft node (broker and controller) on
/// free 127.0.0.1 ports, its log in a temporary folder, started by
/// `scripts/kafka.sh` (the jars come from `scripts/jvm.sh kafka`) and killed
/// when dropped.
pub struct Broker {
    child: Child,
    pub port: u16,
    controller: u16,
    dir: tempfile::TempDir,
}

impl Broker {
    pub fn start() -> Result<Self> {
        Self::start_on(free_port())
    }

    /// A broker on `port` (a test that needs the address before the broker
    /// exists picks it with [`free_port`]).
    pub fn start_on(port: u16) -> Result<Self> {
        Self::start_with(port, |_, _| Ok(()))
    }

    /// A broker on `port` whose data folder `prepare` fills before
    /// `scripts/kafka.sh` starts (`extra.properties`, `scram-users`: see
    /// the script); `prepare` is given the folder and the controller port.
    pub fn start_with(
        port: u16,
        prepare: impl FnOnce(&std::path::Path, u16) -> Result<()>,
    ) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut controller = free_port();
        while controller == port {
            controller = free_port();
        }
        std::fs::create_dir_all(dir.path().join("data"))?;
        prepare(&dir.path().join("data"), controller)?;
        let child = Self::spawn(dir.path(), port, controller)?;
        let mut broker = Self {
            child,
            port,
            controller,
            dir,
        };
        broker.wait_serving()?;
        Ok(broker)
    }

    fn spawn(dir: &std::path::Path, port: u16, controller: u16) -> Result<Child> {
        // Appended to: a restarted broker's log follows the first one's.
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("kafka.log"))?;
        Command::new(repo_root().join("scripts/kafka.sh"))
            .arg(dir.join("data"))
            .arg(port.to_string())
            .arg(controller.to_string())
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("start Apache Kafka with scripts/kafka.sh")
    }

    fn wait_serving(&mut self) -> Result<()> {
        let log = self.dir.path().join("kafka.log");
        let serving = wait_for_port_within(self.port, &mut self.child, "kafka", &log, KAFKA_START)
            .and_then(|()| wait_for_metadata(self.port, &mut self.child));
        if let Err(e) = serving {
            // Dropping the broker stops whatever did start.
            bail!("{e:#}\n{}", self.log());
        }
        Ok(())
    }

    /// SIGKILL: the broker dies at once, as in a crash or an OOM kill.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the broker again on the same ports and log folders (after
    /// [`Broker::kill`]), and waits until it serves.
    pub fn restart(&mut self) -> Result<()> {
        self.child = Self::spawn(self.dir.path(), self.port, self.controller)?;
        self.wait_serving()
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What the broker logged (warnings and errors), for a failure message.
    pub fn log(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("kafka.log")).unwrap_or_default();
        format!("kafka's log:\n{log}")
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How long a broker may take to start: a JVM on two cores shared with
/// builds and other tests.
const KAFKA_START: Duration = Duration::from_secs(90);

/// Waits until the broker on `port` answers a metadata request naming itself
/// as a broker: it listens a moment before it has registered with its
/// controller, and until then clients see no brokers and cannot create topics.
fn wait_for_metadata(port: u16, child: &mut Child) -> Result<()> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let client: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", format!("127.0.0.1:{port}"))
        .set("reconnect.backoff.max.ms", "100")
        .create()
        .context("an rdkafka client to ask the broker for metadata")?;
    let deadline = Instant::now() + KAFKA_START;
    while Instant::now() < deadline {
        if let Ok(md) = client.fetch_metadata(None, Duration::from_millis(500))
            && !md.brokers().is_empty()
        {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("kafka exited ({status}) before it served metadata");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("kafka on 127.0.0.1:{port} did not serve metadata within {KAFKA_START:?}")
}

/// Tributary's Schema Registry (`tributary schema-registry`), schemas kept in
/// a temporary folder.
pub struct Registry {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let child = Self::spawn(dir.path(), port)?;
        let mut registry = Self { child, port, dir };
        registry.wait_serving()?;
        Ok(registry)
    }

    fn spawn(dir: &std::path::Path, port: u16) -> Result<Child> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("registry.log"))?;
        Ok(Command::new(binary())
            .args(["schema-registry", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data")
            .arg(dir.join("schemas"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?)
    }

    fn wait_serving(&mut self) -> Result<()> {
        let log = self.dir.path().join("registry.log");
        wait_for_port(self.port, &mut self.child, "schema registry", &log)
    }

    /// SIGKILL: the registry is gone; its schemas stay in its folder.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the registry again on the same port and folder (after
    /// [`Registry::kill`]).
    pub fn restart(&mut self) -> Result<()> {
        self.child = Self::spawn(self.dir.path(), self.port)?;
        self.wait_serving()
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

/// A `kafka` source reading `topic`'s JSON values `{"id", "n"}` (what
/// `scripts/produce_txn.py` writes), from `start`.
pub fn json_source(broker: &Broker, topic: &str, start: &str) -> Value {
    let mut source = serde_json::json!({
        "type": "kafka",
        "bootstrap_servers": broker.bootstrap(),
        "topics": [topic],
        "format": "json",
        "schema": [{"name": "id", "type": "string", "required": true},
                   {"name": "n", "type": "long"}],
        "start": start,
    });
    // TRIBUTARY_TEST_KAFKA_PROPERTIES (a JSON object, e.g.
    // `{"debug": "consumer,fetch"}`) adds librdkafka properties to the
    // source when a test needs looking into.
    if let Ok(extra) = std::env::var("TRIBUTARY_TEST_KAFKA_PROPERTIES") {
        source["properties"] = serde_json::from_str(&extra)
            .expect("TRIBUTARY_TEST_KAFKA_PROPERTIES is a JSON object of strings");
    }
    source
}
