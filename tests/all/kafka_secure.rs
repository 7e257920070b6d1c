//! Kafka as production clusters secure it: Apache Kafka with a SASL_SSL
//! listener (SCRAM-SHA-512 over TLS, its certificate signed by a CA the test
//! makes), the `kafka` source and sink connecting with the password given as
//! a secret reference (`${env:VAR}`, `${file:/path:key}`), and the two
//! mistakes users make — a wrong password, a CA that does not trust the
//! broker — failing within seconds with a message that says which and the
//! setting to fix, never quoting the password.
//!
//! The broker keeps a PLAINTEXT listener too, for the test's own producer
//! and for a source that is not under test.
//!
//! The Schema Registry client: Tributary's registry behind HTTPS with basic
//! auth (`scripts/registry_proxy.py`, a TLS-terminating proxy as registries
//! are often exposed), its certificate from the same kind of test CA.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{Value, json};

use crate::harness::*;
use crate::kafka_env::{Broker, KafkaEnv, free_port, json_source, wait_for_port};
use crate::test_ca::{KEYSTORE_PASSWORD, TestCa};

const USER: &str = "alice";
const PASSWORD: &str = "alice-scram-pw-7f3c";

/// A broker with a SASL_SSL listener besides its PLAINTEXT one.
struct SecureBroker {
    broker: Broker,
    sasl_port: u16,
    ca: TestCa,
}

impl SecureBroker {
    fn start() -> Result<Self> {
        let ca = TestCa::new()?;
        let port = free_port();
        let mut sasl_port = free_port();
        while sasl_port == port {
            sasl_port = free_port();
        }
        let keystore = ca.server_keystore();
        let broker = Broker::start_with(port, |data, controller| {
            std::fs::write(
                data.join("extra.properties"),
                format!(
                    "listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller},SASL_SSL://127.0.0.1:{sasl_port}\n\
                     advertised.listeners=PLAINTEXT://127.0.0.1:{port},SASL_SSL://127.0.0.1:{sasl_port}\n\
                     sasl.enabled.mechanisms=SCRAM-SHA-512\n\
                     listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;\n\
                     ssl.keystore.type=PKCS12\n\
                     ssl.keystore.location={}\n\
                     ssl.keystore.password={KEYSTORE_PASSWORD}\n",
                    keystore.display()
                ),
            )?;
            std::fs::write(
                data.join("scram-users"),
                format!("SCRAM-SHA-512=[name={USER},password={PASSWORD}]\n"),
            )?;
            Ok(())
        })?;
        Ok(Self {
            broker,
            sasl_port,
            ca,
        })
    }

    fn sasl_bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.sasl_port)
    }

    /// librdkafka properties for the SASL_SSL listener: `password` is what
    /// goes in the pipeline file (a secret reference), `ca` the CA to trust
    /// (none: the system's).
    fn properties(&self, password: &str, ca: Option<&Path>) -> Value {
        let mut p = json!({
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": USER,
            "sasl.password": password,
        });
        if let Some(ca) = ca {
            p["ssl.ca.location"] = json!(ca);
        }
        p
    }

    /// The `kafka` source on the SASL_SSL listener.
    fn source(&self, topic: &str, password: &str, ca: Option<&Path>) -> Value {
        let mut s = json_source(&self.broker, topic, "earliest");
        s["bootstrap_servers"] = json!(self.sasl_bootstrap());
        s["properties"] = self.properties(password, ca);
        s
    }

    /// The `kafka` sink on the SASL_SSL listener.
    fn sink(&self, topic: &str, password: &str, ca: Option<&Path>) -> Value {
        json!({
            "type": "kafka",
            "bootstrap_servers": self.sasl_bootstrap(),
            "topic": topic,
            "properties": self.properties(password, ca),
        })
    }

    /// Creates `topic` (on the PLAINTEXT listener) with `records` JSON
    /// records `{"id": "<topic>-<i>", "n": i}`; their ids.
    fn produce(&self, topic: &str, records: usize) -> BTreeSet<String> {
        let out = std::process::Command::new(python())
            .arg(repo_root().join("scripts/produce_txn.py"))
            .args(["--bootstrap", &self.broker.bootstrap(), "--topic", topic])
            .args(["--create", "--prefix", topic])
            .args(["--records", &records.to_string()])
            .output_within(Duration::from_secs(120));
        assert!(
            out.status.success(),
            "produce_txn.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        serde_json::from_value(report["committed"].clone()).unwrap()
    }
}

/// `tributary run --available-now` of `pipeline` with `env`, within `limit`.
fn run(s: &Scratch, pipeline: &Value, env: &[(&str, &str)], limit: Duration) -> Output {
    let path = s.write_pipeline(pipeline);
    let mut cmd = s.command(&[
        "run",
        "--available-now",
        "--progress-interval",
        "0",
        path.to_str().unwrap(),
    ]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output_within(limit)
}

fn pipeline(s: &Scratch, source: Value, sink: Value) -> Value {
    json!({
        "name": s.name,
        "source": source,
        "transforms": [],
        "sink": sink,
        "checkpoint": {"location": s.path("chk")},
        "trigger": {"interval_ms": 300, "max_records_per_epoch": 5000, "batch_size": 500},
    })
}

/// Every id in a `jsonl` output folder.
fn output_ids(dir: &Path) -> Vec<String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.retain(|p: &std::path::PathBuf| p.extension().is_some_and(|e| e == "jsonl"));
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(|l| {
                    serde_json::from_str::<Value>(l).unwrap()["id"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The source reads and the sink writes through SASL_SSL, the password
/// given as `${env:VAR}` to one and `${file:/path:key}` to the other, and
/// it appears in no output.
#[test]
fn kafka_secure_source_and_sink_over_sasl_ssl_with_secret_references() {
    let b = SecureBroker::start().unwrap();
    let want = b.produce("secure-in", 300);
    b.produce("secure-out", 0);
    let secrets = tempfile::tempdir().unwrap();
    let file = secrets.path().join("kafka.properties");
    std::fs::write(
        &file,
        format!("# the cluster's credentials\npassword={PASSWORD}\n"),
    )
    .unwrap();
    let file_ref = format!("${{file:{}:password}}", file.display());
    let env = [("TRIB_KAFKA_PASSWORD", PASSWORD)];

    // in → out, both over SASL_SSL: the source's password from the
    // environment, the sink's from a file.
    let copy = Scratch::new("kafka-secure-copy");
    let p = pipeline(
        &copy,
        b.source("secure-in", "${env:TRIB_KAFKA_PASSWORD}", Some(&b.ca.ca())),
        b.sink("secure-out", &file_ref, Some(&b.ca.ca())),
    );
    let out = run(&copy, &p, &env, Duration::from_secs(120));
    let log = assert_ok(&out);
    assert!(!log.contains(PASSWORD), "the password was printed:\n{log}");

    // out → a jsonl folder, read over SASL_SSL again (password from the file).
    let read = Scratch::new("kafka-secure-read");
    let p = pipeline(
        &read,
        b.source("secure-out", &file_ref, Some(&b.ca.ca())),
        json!({"type": "jsonl", "path": read.path("out")}),
    );
    let out = run(&read, &p, &[], Duration::from_secs(120));
    let log = assert_ok(&out);
    assert!(!log.contains(PASSWORD), "the password was printed:\n{log}");
    let got = output_ids(&read.path("out"));
    let set: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(got.len(), set.len(), "duplicated ids");
    assert_eq!(set, want, "what went in through SASL_SSL is what came out");
}

/// A wrong password and an untrusted broker certificate stop the source and
/// the sink within seconds (not after librdkafka's timeouts and the
/// runtime's retries), each saying which, naming the user or
/// `ssl.ca.location`, and never quoting the password given.
#[test]
fn kafka_secure_wrong_password_or_untrusted_certificate_fails_fast_saying_which() {
    let b = SecureBroker::start().unwrap();
    b.produce("secure-fail", 10);
    b.produce("secure-fail-out", 0);
    let wrong = "not-alices-pw-91d2";
    let env = [("TRIB_KAFKA_PASSWORD", wrong)];
    let ca = b.ca.ca();
    let other = b.ca.other_ca();
    let plain_source = json_source(&b.broker, "secure-fail", "earliest");
    // Each case: what is wrong, the source, the sink, what the error says.
    let cases: Vec<(&str, Value, Value, Vec<String>)> = vec![
        (
            "source, wrong password",
            b.source("secure-fail", "${env:TRIB_KAFKA_PASSWORD}", Some(&ca)),
            json!({"type": "blackhole"}),
            vec![
                "kafka source: authentication failed for user `alice` with SASL mechanism SCRAM-SHA-512".into(),
                "sasl.password".into(),
            ],
        ),
        (
            "sink, wrong password",
            plain_source.clone(),
            b.sink("secure-fail-out", "${env:TRIB_KAFKA_PASSWORD}", Some(&ca)),
            vec!["kafka sink: authentication failed for user `alice`".into(), "sasl.password".into()],
        ),
        (
            "source, a CA that did not sign the broker's certificate",
            b.source("secure-fail", PASSWORD, Some(&other)),
            json!({"type": "blackhole"}),
            vec![
                "kafka source: the TLS certificate of the broker".into(),
                "is not trusted".into(),
                format!("properties.`ssl.ca.location` ({})", other.display()),
            ],
        ),
        (
            "sink, no CA given (the system's CAs do not know the test CA)",
            plain_source,
            b.sink("secure-fail-out", PASSWORD, None),
            vec![
                "kafka sink: the TLS certificate of the broker".into(),
                "`ssl.ca.location` is not set".into(),
            ],
        ),
    ];
    for (i, (what, source, sink, says)) in cases.into_iter().enumerate() {
        let s = Scratch::new(&format!("kafka-secure-fail-{i}"));
        let started = Instant::now();
        let out = run(
            &s,
            &pipeline(&s, source, sink),
            &env,
            Duration::from_secs(30),
        );
        let took = started.elapsed();
        let log = assert_failed(&out);
        for needle in &says {
            assert!(
                log.contains(needle.as_str()),
                "{what}: no `{needle}` in:\n{log}"
            );
        }
        assert!(
            !log.contains(wrong) && !log.contains(PASSWORD),
            "{what}: a password was printed:\n{log}"
        );
        assert!(
            took < Duration::from_secs(15),
            "{what}: took {took:?} to fail, not seconds:\n{log}"
        );
    }
}

/// `scripts/registry_proxy.py`: `upstream` over HTTPS (a certificate `ca`
/// signed) with basic auth for `USER` and `PASSWORD`; killed when dropped.
struct HttpsRegistry {
    child: std::process::Child,
    port: u16,
    _log: tempfile::NamedTempFile,
}

impl HttpsRegistry {
    fn start(upstream: &str, ca: &TestCa) -> Result<Self> {
        let port = free_port();
        let log = tempfile::NamedTempFile::new()?;
        let mut child = std::process::Command::new(python())
            .arg(repo_root().join("scripts/registry_proxy.py"))
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--upstream",
                upstream,
            ])
            .arg("--cert")
            .arg(ca.server_cert())
            .arg("--key")
            .arg(ca.server_key())
            .args(["--user", USER, "--password-env", "REGISTRY_PASSWORD"])
            .env("REGISTRY_PASSWORD", PASSWORD)
            .stdout(std::process::Stdio::null())
            .stderr(log.reopen()?)
            .spawn()?;
        wait_for_port(port, &mut child, "registry_proxy.py", log.path())?;
        Ok(Self {
            child,
            port,
            _log: log,
        })
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

impl Drop for HttpsRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Kafka source reads Avro with writer schemas from a registry served
/// over HTTPS with basic auth: the password a secret reference, the test CA
/// given as `schema_registry_ca`. A wrong password and an untrusted
/// certificate each stop it at the first record, saying which (not "the
/// registry is unavailable", retried for ever); the Kafka sink registering
/// its schema with a wrong password says so too.
#[test]
fn kafka_secure_schema_registry_basic_auth_over_tls() {
    let env = KafkaEnv::start().unwrap();
    let ca = TestCa::new().unwrap();
    let https = HttpsRegistry::start(&env.registry.url(), &ca).unwrap();
    let topic = "sr-secure";
    let report = env
        .produce(&["--topic", topic, "--partitions", "2", "--records", "300"])
        .unwrap();
    let produced = report["produced"].as_u64().unwrap();
    env.produce(&[
        "--topic",
        "sr-secure-out",
        "--partitions",
        "1",
        "--records",
        "0",
    ])
    .unwrap();
    let source = |password: &str, ca_file: &Path| {
        json!({
            "type": "kafka",
            "bootstrap_servers": env.broker.bootstrap(),
            "topics": [topic],
            "format": "avro",
            "schema_registry_url": https.url(),
            "schema_registry_username": USER,
            "schema_registry_password": password,
            "schema_registry_ca": ca_file,
        })
    };
    let good = [
        ("TRIB_SR_PASSWORD", PASSWORD),
        ("TRIB_SR_WRONG", "not-the-sr-pw-55e1"),
    ];

    let s = Scratch::new("kafka-secure-registry");
    let p = pipeline(
        &s,
        source("${env:TRIB_SR_PASSWORD}", &ca.ca()),
        json!({"type": "jsonl", "path": s.path("out")}),
    );
    let out = run(&s, &p, &good, Duration::from_secs(120));
    let log = assert_ok(&out);
    assert!(!log.contains(PASSWORD), "the password was printed:\n{log}");
    assert_eq!(
        output_ids(&s.path("out")).len() as u64,
        produced,
        "every record read"
    );

    let cases: Vec<(&str, Value, Value, Vec<&str>)> = vec![
        (
            "source, wrong password",
            source("${env:TRIB_SR_WRONG}", &ca.ca()),
            json!({"type": "blackhole"}),
            vec!["refused", "401", "schema_registry_password"],
        ),
        (
            "source, a CA that did not sign the registry's certificate",
            source("${env:TRIB_SR_PASSWORD}", &ca.other_ca()),
            json!({"type": "blackhole"}),
            vec![
                "TLS certificate of the schema registry",
                "is not trusted",
                "schema_registry_ca",
            ],
        ),
        (
            "sink, wrong password",
            source("${env:TRIB_SR_PASSWORD}", &ca.ca()),
            json!({"type": "kafka", "bootstrap_servers": env.broker.bootstrap(), "topic": "sr-secure-out",
                   "format": "avro", "schema_registry_url": https.url(),
                   "schema_registry_username": USER, "schema_registry_password": "${env:TRIB_SR_WRONG}",
                   "schema_registry_ca": ca.ca()}),
            vec![
                "kafka sink: cannot register the value schema",
                "refused the credentials",
                "schema_registry_password",
            ],
        ),
    ];
    for (i, (what, source, sink, says)) in cases.into_iter().enumerate() {
        let s = Scratch::new(&format!("kafka-secure-registry-fail-{i}"));
        let started = Instant::now();
        let out = run(
            &s,
            &pipeline(&s, source, sink),
            &good,
            Duration::from_secs(60),
        );
        let took = started.elapsed();
        let log = assert_failed(&out);
        for needle in &says {
            assert!(log.contains(needle), "{what}: no `{needle}` in:\n{log}");
        }
        assert!(
            !log.contains(PASSWORD) && !log.contains("not-the-sr-pw-55e1"),
            "{what}: a password was printed:\n{log}"
        );
        assert!(
            took < Duration::from_secs(20),
            "{what}: took {took:?} to fail:\n{log}"
        );
    }
}
