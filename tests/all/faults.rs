//! The fault campaign of issue 19, with real components: while records flow,
//! the Kafka broker is killed (SIGKILL) and started again, the Schema
//! Registry stops answering for a minute, the PostgreSQL server that is both
//! the Iceberg catalog and the checkpoint store restarts, and the
//! warehouse's disk fills up. Each time the pipeline must wait (or stop with
//! a message that names what happened, and resume when run again), and the
//! table, read back by PyIceberg, must end with exactly the expected ids:
//! none lost, none twice. Every service is this test's own, on 127.0.0.1.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::*;
use crate::kafka_env::{Broker, Registry, read_ids};
use crate::open_world::PrivatePostgres;
use crate::registry_env::Apicurio;

/// An Iceberg table as PyIceberg finds it (`scripts/inspect_table.py`).
struct Table {
    catalog_uri: String,
    warehouse: PathBuf,
    name: String,
}

impl Table {
    fn of(s: &Scratch) -> Self {
        Self {
            catalog_uri: s.catalog_uri(),
            warehouse: s.warehouse(),
            name: s.table().into(),
        }
    }

    /// The sink writing this table.
    fn sink(&self) -> Value {
        json!({"type": "iceberg", "catalog_uri": self.catalog_uri,
               "warehouse": self.warehouse, "table": self.name})
    }

    /// Every id in the table (a missing table has none) and how many rows
    /// repeat an id; `Err` when the table cannot be read right now.
    fn ids(&self) -> Result<(BTreeSet<String>, u64), String> {
        let out = Command::new(python())
            .arg(repo_root().join("scripts/inspect_table.py"))
            .args(["--catalog-uri", &self.catalog_uri])
            .arg("--warehouse")
            .arg(&self.warehouse)
            .args(["--table", &self.name, "--ids"])
            .output_within(Duration::from_secs(120));
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let report: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
        let ids: Vec<String> = serde_json::from_value(report["ids"].clone()).unwrap_or_default();
        let rows = ids.len() as u64;
        let set: BTreeSet<String> = ids.into_iter().collect();
        let repeated = rows - set.len() as u64;
        Ok((set, repeated))
    }

    fn columns(&self) -> Vec<String> {
        let out = Command::new(python())
            .arg(repo_root().join("scripts/inspect_table.py"))
            .args(["--catalog-uri", &self.catalog_uri])
            .arg("--warehouse")
            .arg(&self.warehouse)
            .args(["--table", &self.name])
            .output_within(Duration::from_secs(120));
        assert!(out.status.success());
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        serde_json::from_value(report["columns"].clone()).unwrap_or_default()
    }

    /// Asserts the table holds exactly `want`, each once.
    fn assert_exactly(&self, want: &BTreeSet<String>, log: &str) {
        let (have, repeated) = self.ids().expect("the table is readable at the end");
        let lost = want.difference(&have).count();
        let unexpected = have.difference(want).count();
        assert!(
            repeated == 0 && lost == 0 && unexpected == 0,
            "{repeated} rows repeat an id, {lost} of {} ids lost, {unexpected} unexpected; \
             the runs logged:\n{log}",
            want.len()
        );
        eprintln!("the table holds all {} ids, each once", want.len());
    }
}

/// `tributary run <pipeline>` in the background (no `--available-now`: it
/// runs until its source ends or it is stopped), its stderr in a file; killed
/// if still running when dropped (a failing test leaves nothing behind).
struct Run {
    child: Child,
    log: PathBuf,
}

impl Run {
    fn start(s: &Scratch, pipeline: &Value, tag: &str) -> Self {
        Self::start_with(s, pipeline, tag, &[])
    }

    /// With more options of `tributary run` (`--available-now`).
    fn start_with(s: &Scratch, pipeline: &Value, tag: &str, options: &[&str]) -> Self {
        let file = s.path(&format!("pipeline-{tag}.json"));
        std::fs::write(&file, serde_json::to_vec_pretty(pipeline).unwrap()).unwrap();
        let log = s.path(&format!("{tag}.log"));
        let child = s
            .command(&["run", "--progress-interval", "0"])
            .args(options)
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn tributary");
        Self { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// SIGTERM (a graceful stop: the open epoch is committed), then waits.
    fn stop(&mut self) -> ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        wait_within(&mut self.child, Duration::from_secs(90), "tributary run")
    }

    fn wait(&mut self, limit: Duration) -> ExitStatus {
        wait_within(&mut self.child, limit, "tributary run")
    }

    /// Waits until the log holds `text`; fails if the run ends first.
    fn wait_for_log(&mut self, text: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if self.log().contains(text) {
                return;
            }
            if let Some(status) = self.exited() {
                panic!(
                    "the run ended ({status}) before logging `{text}`:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "nothing logged `{text}` within {limit:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the table holds at least `at_least` ids (or all of `want`),
/// while `run` goes on; panics when it ends or `limit` passes.
fn wait_for_rows(table: &Table, run: &mut Run, at_least: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let have = table.ids().map(|(ids, _)| ids.len()).unwrap_or(0);
        if have >= at_least {
            return;
        }
        if let Some(status) = run.exited() {
            panic!(
                "the run ended ({status}) with {have} of {at_least} ids in the table:\n{}",
                run.log()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{have} of {at_least} ids reached the table within {limit:?}:\n{}",
            run.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Waits until the table holds every id of `want` (the run must be going).
fn wait_for_ids(table: &Table, run: &mut Run, want: &BTreeSet<String>, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let have = table.ids().map(|(ids, _)| ids).unwrap_or_default();
        if want.is_subset(&have) {
            return;
        }
        if let Some(status) = run.exited() {
            panic!(
                "the run ended ({status}) with {} of {} ids in the table:\n{}",
                want.intersection(&have).count(),
                want.len(),
                run.log()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} ids reached the table within {limit:?}:\n{}",
            want.intersection(&have).count(),
            want.len(),
            run.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `scripts/produce_articles.py` with these arguments, to the end; its JSON
/// report.
fn produce(broker: &Broker, args: &[&str]) -> Value {
    let out = produce_command(broker, args).output_within(Duration::from_secs(300));
    assert!(
        out.status.success(),
        "produce_articles.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn produce_command(broker: &Broker, args: &[&str]) -> Command {
    let mut cmd = Command::new(python());
    cmd.arg(repo_root().join("scripts/produce_articles.py"))
        .args(["--bootstrap", &broker.bootstrap()])
        // Every record a new id: a row there twice is a duplicate.
        .args(["--duplicate-ratio", "0", "--late-ratio", "0"])
        .args(args);
    cmd
}

/// The JSON columns of `produce_articles.py --format json` this test keeps.
fn json_articles(broker: &Broker, topic: &str) -> Value {
    json!({
        "type": "kafka",
        "bootstrap_servers": broker.bootstrap(),
        "topics": [topic],
        "format": "json",
        "schema": [
            {"name": "id", "type": "string", "required": true},
            {"name": "title", "type": "string"},
            {"name": "published_at", "type": "timestamp", "required": true},
        ],
        "start": "earliest",
    })
}

/// Generated articles, every one unique, so the table must hold exactly
/// ids `a-0 … a-<records-1>`.
fn unique_articles(records: u64, rate: u64) -> Value {
    json!({"type": "generator", "seed": 19, "records": records, "rate_per_sec": rate,
           "duplicate_ratio": 0.0, "late_ratio": 0.0})
}

fn generated_ids(source: &Value) -> BTreeSet<String> {
    tributary_generator::describe_expected(source).unwrap().ids
}

/// Kafka → Iceberg with a broker that dies: SIGKILL while a producer writes
/// and the pipeline reads, down for 10 s, then started again on the same
/// port and log folders. The producer (librdkafka, idempotent) holds its
/// records meanwhile; the pipeline must wait for the broker and go on from
/// where it was: every id once.
#[test]
fn faults_kafka_broker_killed_and_restarted_mid_run() {
    let mut broker = Broker::start().unwrap();
    let s = Scratch::new("broker_kill");
    let table = Table::of(&s);
    let topic = "articles.json";
    produce(
        &broker,
        &["--format", "json", "--topic", topic, "--records", "0"],
    );
    let pipeline = json!({
        "name": s.name,
        "source": json_articles(&broker, topic),
        "sink": table.sink(),
        "checkpoint": {"location": s.path("chk")},
        "trigger": {"interval_ms": 500, "max_records_per_epoch": 2000, "batch_size": 200},
    });
    let mut run = Run::start(&s, &pipeline, "run");
    // 6,000 records at 200 a second: the broker dies in the middle.
    let expected = s.path("expected.json");
    let mut producer = produce_command(&broker, &["--format", "json", "--topic", topic])
        .args(["--records", "6000", "--rate", "200", "--expected"])
        .arg(&expected)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_rows(&table, &mut run, 600, Duration::from_secs(120));
    assert!(
        producer.try_wait().unwrap().is_none(),
        "the producer was done before the broker was killed: nothing would flow during the outage"
    );
    broker.kill();
    let killed = Instant::now();
    eprintln!("broker killed");
    while killed.elapsed() < Duration::from_secs(10) {
        if let Some(status) = run.exited() {
            panic!(
                "the run ended ({status}) while the broker was down:\n{}",
                run.log()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    broker.restart().unwrap();
    eprintln!("broker back after {:?}", killed.elapsed());
    let status = wait_within(&mut producer, Duration::from_secs(180), "the producer");
    let out = producer.wait_with_output().unwrap();
    assert!(
        status.success(),
        "produce_articles.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = read_ids(&expected);
    assert_eq!(want.len(), 6000);
    wait_for_ids(&table, &mut run, &want, Duration::from_secs(120));
    let status = run.stop();
    let log = run.log();
    assert!(status.success(), "{log}");
    table.assert_exactly(&want, &log);
    let waiting = format!("is a broker running at {}?", broker.bootstrap());
    let said = log.lines().find(|l| l.contains(&waiting));
    eprintln!("while the broker was down the run said: {said:?}");
    assert!(
        said.is_some(),
        "the run never said which broker it waits for:\n{log}"
    );
}

/// A Schema Registry that goes away for a while: Apicurio (a server we did
/// not write) frozen with SIGSTOP, so it accepts connections and answers
/// nothing, as in a long pause or a hung server; or Tributary's own
/// registry killed, so connections are refused, and started again on the
/// same port and folder.
enum Outage {
    Frozen(Apicurio),
    Killed(Registry),
}

impl Outage {
    fn url(&self) -> String {
        match self {
            Self::Frozen(r) => r.url(),
            Self::Killed(r) => r.url(),
        }
    }

    fn begin(&mut self) {
        match self {
            Self::Frozen(r) => signal("-STOP", r.pid()),
            Self::Killed(r) => r.kill(),
        }
    }

    fn end(&mut self) {
        match self {
            Self::Frozen(r) => signal("-CONT", r.pid()),
            Self::Killed(r) => r.restart().unwrap(),
        }
    }
}

fn signal(which: &str, pid: u32) {
    let status = Command::new("kill")
        .args([which, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {which} {pid}");
}

/// Avro records flow through `registry`, which goes away for 60 s just as
/// records with a schema id the pipeline has not fetched yet arrive (a new
/// schema version, written by a producer that has its id). The source must
/// hold those records and say which registry it waits for, not dead-letter
/// them as bad; when the registry is back they land, every id once.
fn registry_away_for_a_minute(broker: &Broker, mut registry: Outage, name: &str) {
    let s = Scratch::new(name);
    let table = Table::of(&s);
    let topic = "articles.raw.v1";
    let with_registry = |args: &[&str]| {
        let mut all = vec!["--registry".to_string(), registry.url()];
        all.extend(args.iter().map(|a| a.to_string()));
        all
    };
    let first = s.path("expected-1.json");
    let args = with_registry(&["--topic", topic, "--records", "2000", "--expected"]);
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.push(first.to_str().unwrap());
    produce(broker, &args);
    // The next schema version is registered now, and its records are
    // written while the registry is stopped by a producer that has the id.
    let args = with_registry(&["--topic", topic, "--schema-version", "2", "--register"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let v2 = produce(broker, &args)["schema_id"].as_u64().unwrap();
    let pipeline = json!({
        "name": s.name,
        "source": {
            "type": "kafka",
            "bootstrap_servers": broker.bootstrap(),
            "topics": [topic],
            "format": "avro",
            "schema_registry_url": registry.url(),
            "start": "earliest",
        },
        "sink": table.sink(),
        "checkpoint": {"location": s.path("chk")},
        "trigger": {"interval_ms": 500, "max_records_per_epoch": 5000, "batch_size": 500},
        "errors": {"policy": "dead-letter", "dead_letter_path": s.path("dlq")},
    });
    let mut run = Run::start(&s, &pipeline, "run");
    let mut want = read_ids(&first);
    wait_for_ids(&table, &mut run, &want, Duration::from_secs(120));

    registry.begin();
    let stopped = Instant::now();
    eprintln!("registry gone");
    let second = s.path("expected-2.json");
    let v2 = v2.to_string();
    produce(
        broker,
        &[
            "--topic",
            topic,
            "--schema-version",
            "2",
            "--schema-id",
            &v2,
            "--first",
            "2000",
            "--records",
            "1000",
            "--expected",
            second.to_str().unwrap(),
        ],
    );
    let waiting = format!("schema registry {} is unavailable", registry.url());
    run.wait_for_log(&waiting, Duration::from_secs(60));
    while stopped.elapsed() < Duration::from_secs(60) {
        assert!(run.exited().is_none(), "{}", run.log());
        std::thread::sleep(Duration::from_millis(500));
    }
    let (have, _) = table.ids().unwrap();
    let second_ids = read_ids(&second);
    assert!(
        have.is_disjoint(&second_ids),
        "records of a schema nobody could fetch reached the table"
    );
    assert!(
        s.dead_letters("dlq").is_empty(),
        "records were dead-lettered while the registry was away: {:?}\n{}",
        s.dead_letters("dlq"),
        run.log()
    );
    registry.end();
    eprintln!("registry back after {:?}", stopped.elapsed());
    want.extend(second_ids);
    wait_for_ids(&table, &mut run, &want, Duration::from_secs(120));
    let status = run.stop();
    let log = run.log();
    assert!(status.success(), "{log}");
    table.assert_exactly(&want, &log);
    assert!(s.dead_letters("dlq").is_empty(), "{log}");
    assert!(
        table.columns().iter().any(|c| c == "language"),
        "the v2 column is missing"
    );
    let waits = log.lines().filter(|l| l.contains(&waiting)).count();
    eprintln!("{waits} log lines name the registry it waited for, e.g.:");
    eprintln!("{}", log.lines().find(|l| l.contains(&waiting)).unwrap());
}

/// Apicurio frozen (SIGSTOP) for 60 s: requests time out.
#[test]
fn faults_schema_registry_frozen_for_a_minute() {
    let broker = Broker::start().unwrap();
    let registry = Outage::Frozen(Apicurio::start().unwrap());
    registry_away_for_a_minute(&broker, registry, "registry_frozen");
}

/// Tributary's registry killed for 60 s: connections are refused.
#[test]
fn faults_schema_registry_killed_for_a_minute() {
    let broker = Broker::start().unwrap();
    let registry = Outage::Killed(Registry::start().unwrap());
    registry_away_for_a_minute(&broker, registry, "registry_killed");
}

/// Generated records into an Iceberg table whose SQL catalog is a private
/// PostgreSQL (and, with `store_too`, the checkpoint store as well), which is
/// stopped for `down` after 1,500 rows landed and started again. The run must
/// retry whatever needs the server (with backoff, a log line per attempt) and
/// go on to the end with every id once. Returns the run's log.
fn restart_postgres_under_a_run(name: &str, store_too: bool, down: Duration) -> String {
    let pg = PrivatePostgres::start_new();
    let s = Scratch::new(name);
    let table = Table {
        catalog_uri: pg.uri("x"),
        warehouse: s.warehouse(),
        name: s.table().into(),
    };
    let source = unique_articles(9000, 300);
    let checkpoint = if store_too {
        json!({"location": pg.uri("x")})
    } else {
        json!({"location": s.path("chk")})
    };
    let pipeline = json!({
        "name": s.name,
        "source": source,
        "sink": table.sink(),
        "checkpoint": checkpoint,
        "trigger": {"interval_ms": 300, "max_records_per_epoch": 100000, "batch_size": 200},
    });
    let mut run = Run::start(&s, &pipeline, "run");
    wait_for_rows(&table, &mut run, 1500, Duration::from_secs(120));
    pg.stop();
    let stopped = Instant::now();
    eprintln!("postgres stopped");
    while stopped.elapsed() < down {
        assert!(run.exited().is_none(), "{}", run.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    pg.start();
    eprintln!("postgres back after {:?}", stopped.elapsed());
    let status = run.wait(Duration::from_secs(180));
    let log = run.log();
    assert!(status.success(), "{log}");
    table.assert_exactly(&generated_ids(&source), &log);
    let retried: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains("(attempt")
                || l.contains("retried with backoff")
                || l.contains("exceeded slow threshold")
        })
        .collect();
    eprintln!("retried calls:\n{}", retried.join("\n"));
    log
}

/// PostgreSQL as both the Iceberg catalog and the checkpoint store,
/// restarted mid-run. Each epoch writes its checkpoint before it commits,
/// so the outage usually meets the store first: it is waited for, and the
/// commit that follows finds the server back. When it begins during a
/// commit, the catalog's connection pool waits instead (up to 30 s), and
/// the store finds the server back.
#[test]
fn faults_postgres_restart_as_catalog_and_checkpoint_store() {
    let log = restart_postgres_under_a_run("pg_both", true, Duration::from_secs(10));
    let waited = [
        "the checkpoint store is unreachable (attempt",
        "commit failed (attempt",
        "the commit is retried with backoff",
        // sqlx, when its pool waited for the server (no error to retry).
        "time to acquire exceeded slow threshold",
    ];
    assert!(
        log.lines().any(|l| waited.iter().any(|w| l.contains(w))),
        "nothing in the log shows the outage was met:\n{log}"
    );
}

/// PostgreSQL as the Iceberg catalog only (checkpoints in a folder),
/// restarted mid-run: now the commit meets the outage, and the catalog's
/// errors (connection refused, pool timed out) must be taken for
/// transient and the commit retried with backoff, not the run stopped
/// (issue 19, scenario 8, end to end).
#[test]
fn faults_postgres_restart_as_iceberg_catalog() {
    // Longer than the catalog's connection pool waits for a connection
    // (sqlx's 30 s): a shorter outage is ridden out inside the pool and no
    // error reaches the sink (seen in the first version of this test).
    let log = restart_postgres_under_a_run("pg_catalog", false, Duration::from_secs(45));
    // The outage meets either the sink's own catalog calls (retried by the
    // pipeline's commit loop) or the catalog row update inside iceberg-rust's
    // transaction (retried there): either way it is retried and says so.
    assert!(
        log.lines().any(
            |l| (l.contains("commit failed (attempt") && l.contains("iceberg sink"))
                || l.contains("the commit is retried with backoff")
        ),
        "no retried catalog call in the log:\n{log}"
    );
}

/// A tmpfs mounted on a folder, unmounted when dropped (also when the test
/// fails half-way).
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Result<Self, String> {
        std::fs::create_dir_all(path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(Self {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Still busy (a process of a failed test): detach it anyway.
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

/// Writes zeros into `path` until the file system is full; the bytes written.
fn fill(path: &Path) -> u64 {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    let mut written = 0u64;
    let mut size = chunk.len();
    while size > 0 {
        match file.write(&chunk[..size]) {
            Ok(0) => size /= 2,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => size /= 2,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    let _ = file.sync_all();
    written
}

/// A small disk (a 32 MiB tmpfs) holds the warehouse and the SQLite
/// catalog (and, with `checkpoint_too`, the checkpoint folder); it fills up
/// while generated records flow into Iceberg. The run must wait, or stop
/// with an error that names the full disk and the path; after space is
/// freed it goes on (or, run again, resumes) to every id once.
fn fill_the_disk_under_a_run(name: &str, checkpoint_too: bool) {
    let s = Scratch::new(name);
    let mount = s.path("disk");
    let disk = match Tmpfs::mount(&mount, "32m") {
        Ok(disk) => disk,
        Err(e) => panic!(
            "cannot mount a tmpfs on {} (this test needs root; skip it with \
             `--skip faults_warehouse`): {e}",
            mount.display()
        ),
    };
    let table = Table {
        catalog_uri: format!("sqlite:{}", mount.join("catalog.db").display()),
        warehouse: mount.join("warehouse"),
        name: s.table().into(),
    };
    let checkpoint = if checkpoint_too {
        mount.join("chk")
    } else {
        s.path("chk")
    };
    let source = unique_articles(9000, 300);
    let pipeline = json!({
        "name": s.name,
        "source": source,
        "sink": table.sink(),
        "checkpoint": {"location": checkpoint},
        "trigger": {"interval_ms": 300, "max_records_per_epoch": 100000, "batch_size": 200},
    });
    let mut run = Run::start(&s, &pipeline, "run");
    wait_for_rows(&table, &mut run, 1500, Duration::from_secs(120));
    let filler = disk.path.join("filler");
    let filled = fill(&filler);
    eprintln!("the disk is full ({filled} bytes of filler)");
    // Wait until the run meets the full disk: it stops, or logs it.
    let deadline = Instant::now() + Duration::from_secs(60);
    let full = "No space left on device";
    while !run.log().contains(full) && run.exited().is_none() {
        assert!(
            Instant::now() < deadline,
            "60 s on a full disk and nothing said so:\n{}",
            run.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(3));
    let first = run.log();
    let mentions = first.lines().find(|l| l.contains(full)).unwrap_or_else(|| {
        panic!("the run met the full disk without saying so:\n{first}");
    });
    let path = mount.display().to_string();
    assert!(
        mentions.contains(&path) && mentions.contains("run the pipeline again"),
        "the error does not name the path on the full disk ({path}) and what to do: {mentions}"
    );
    eprintln!("the run said: {mentions}");
    std::fs::remove_file(&filler).unwrap();
    eprintln!("space freed");
    // Either it waited and goes on, or it stopped (now or after its
    // retries) and a second run resumes.
    let status = run.wait(Duration::from_secs(180));
    let mut log = run.log();
    if !status.success() {
        eprintln!("the run stopped ({status}); run again");
        let mut again = Run::start(&s, &pipeline, "again");
        let status = again.wait(Duration::from_secs(180));
        log = format!("{log}\n--- run again ---\n{}", again.log());
        assert!(status.success(), "{log}");
    }
    table.assert_exactly(&generated_ids(&source), &log);
}

/// The warehouse's disk fills up (checkpoints elsewhere).
#[test]
fn faults_warehouse_disk_full() {
    fill_the_disk_under_a_run("disk_full", false);
}

/// The disk holding the warehouse and the checkpoints fills up: whichever
/// write meets it first (a data file, the catalog, a checkpoint), the run
/// stops clearly and the next one resumes.
#[test]
fn faults_warehouse_and_checkpoint_disk_full() {
    fill_the_disk_under_a_run("disk_full_chk", true);
}

/// `--available-now` (read what is there, then stop) over 20,000 records
/// while the broker is killed (as soon as the run has fixed where the topic
/// ends) and restarted 10 s later: the run must neither hang nor stop early with records missing;
/// it waits, then ends by itself with every id once.
#[test]
fn faults_kafka_broker_killed_during_an_available_now_run() {
    let mut broker = Broker::start().unwrap();
    let s = Scratch::new("broker_kill_now");
    let table = Table::of(&s);
    let topic = "articles.json";
    let expected = s.path("expected.json");
    let expected_arg = expected.to_str().unwrap();
    produce(
        &broker,
        &[
            "--format",
            "json",
            "--topic",
            topic,
            "--records",
            "20000",
            "--expected",
            expected_arg,
        ],
    );
    let want = read_ids(&expected);
    // Small epochs, batches and fetches: the run takes a while over 20,000
    // records and has most of them still to fetch when the broker dies.
    let mut source = json_articles(&broker, topic);
    source["max_prefetch_mb"] = json!(1);
    source["properties"] = json!({"max.partition.fetch.bytes": "65536"});
    let pipeline = json!({
        "name": s.name,
        "source": source,
        "sink": table.sink(),
        "checkpoint": {"location": s.path("chk")},
        "trigger": {"interval_ms": 200, "max_records_per_epoch": 500, "batch_size": 50},
    });
    let mut run = Run::start_with(&s, &pipeline, "now", &["--available-now"]);
    // As soon as the run knows where the topic ends: it reads 20,000
    // records in a few seconds, faster than the table can be polled.
    run.wait_for_log("--available-now reads up to", Duration::from_secs(120));
    broker.kill();
    eprintln!("broker killed");
    std::thread::sleep(Duration::from_secs(10));
    assert!(
        run.exited().is_none(),
        "the run ended while the broker was down:\n{}",
        run.log()
    );
    broker.restart().unwrap();
    eprintln!("broker back");
    let status = run.wait(Duration::from_secs(180));
    let text = run.log();
    assert!(status.success(), "{text}");
    // Everything was in the topic when the run started: it must all be
    // read by the one run, not some of it left for a next one.
    table.assert_exactly(&want, &text);
    let waiting = format!("is a broker running at {}?", broker.bootstrap());
    let waits = text.lines().filter(|l| l.contains(&waiting)).count();
    assert!(
        waits > 0,
        "the run never said it waits for the broker:\n{text}"
    );
    eprintln!(
        "{waits} log lines name the broker it waited for; {}",
        text.lines()
            .rev()
            .find(|l| l.starts_with("done:"))
            .unwrap_or("")
    );
}
