//! A Schema Registry we did not write: Apicurio Registry (its Confluent
//! compatible API, `/apis/ccompat/v7`), packaged from Maven Central by
//! `scripts/jvm.sh apicurio`, started on a free 127.0.0.1 port with in-memory
//! storage and killed when dropped. Our own `tributary schema-registry` is
//! [`crate::kafka_env::Registry`]; the tests run the same clients against both.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::harness::repo_root;
use crate::kafka_env::free_port;

/// How long the registry may take to answer: a JVM (Quarkus) starting on two
/// cores shared with builds and other tests; about 5 s when the machine is idle.
const START_LIMIT: Duration = Duration::from_secs(120);

/// The folder `scripts/jvm.sh <tool>` resolves (once per machine) and prints.
pub fn jvm_tool(tool: &str) -> Result<PathBuf> {
    let out = Command::new(repo_root().join("scripts/jvm.sh"))
        .arg(tool)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("run scripts/jvm.sh {tool}"))?;
    if !out.status.success() {
        bail!(
            "scripts/jvm.sh {tool} failed ({}); see its output above (it needs mvn and Maven Central)",
            out.status
        );
    }
    let text = String::from_utf8(out.stdout)?;
    let dir = text.lines().last().unwrap_or_default().trim();
    Ok(PathBuf::from(dir))
}

/// `$TRIBUTARY_JAVA`, else `java` on the PATH.
pub fn java() -> String {
    std::env::var("TRIBUTARY_JAVA").unwrap_or_else(|_| "java".into())
}

/// A running Apicurio Registry, global compatibility BACKWARD (Confluent's
/// default; Apicurio's own is NONE).
pub struct Apicurio {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Apicurio {
    pub fn start() -> Result<Self> {
        let jars = jvm_tool("apicurio")?;
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let log = dir.path().join("apicurio.log");
        let out = std::fs::File::create(&log)?;
        let child = Command::new(java())
            // A small heap and the C1 compiler only: it serves a few schemas.
            .args(["-Xmx384m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"])
            .arg(format!("-Dquarkus.http.port={port}"))
            .arg("-Dquarkus.http.host=127.0.0.1")
            .arg("-jar")
            .arg(jars.join("apicurio-registry-runner.jar"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("start Apicurio Registry (java -jar apicurio-registry-runner.jar)")?;
        let mut registry = Self { child, port, dir };
        if let Err(e) = registry.wait_ready() {
            bail!("{e:#}\n{}", registry.log());
        }
        Ok(registry)
    }

    /// Waits until the Confluent API answers, then sets the global
    /// compatibility to BACKWARD as an operator would (`PUT /config`).
    fn wait_ready(&mut self) -> Result<()> {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("Apicurio Registry exited ({status}) before it answered");
            }
            if let Ok(resp) = http.get(format!("{}/subjects", self.url())).send()
                && resp.status().is_success()
            {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "Apicurio Registry did not answer on {} within {START_LIMIT:?}",
                    self.url()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let resp = http
            .put(format!("{}/config", self.url()))
            .header("Content-Type", "application/vnd.schemaregistry.v1+json")
            .body(r#"{"compatibility": "BACKWARD"}"#)
            .send()?;
        if !resp.status().is_success() {
            bail!(
                "PUT {}/config BACKWARD answered {}: {}",
                self.url(),
                resp.status(),
                resp.text().unwrap_or_default()
            );
        }
        Ok(())
    }

    /// The base URL Confluent clients take (`schema_registry_url`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/apis/ccompat/v7", self.port)
    }

    /// The JVM's process id (to freeze it with SIGSTOP, say).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the registry logged, for a failure message.
    pub fn log(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("apicurio.log")).unwrap_or_default();
        format!("Apicurio's log:\n{log}")
    }
}

impl Drop for Apicurio {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
