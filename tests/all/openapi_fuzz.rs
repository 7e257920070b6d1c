//! `tributary serve` against its own OpenAPI description (docs/openapi.json),
//! driven by Schemathesis, a property-based API tester we did not write: it
//! generates valid and invalid requests for every operation from the
//! description and checks each answer. The bar: no 5xx, every status code,
//! content type, header and body as the description declares them, invalid
//! input refused, and no operation that works without the bearer token.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::*;
use crate::serve::Worker;

/// The `schemathesis` command next to the test Python (scripts/setup.sh
/// installs it from scripts/requirements.txt).
fn schemathesis() -> std::path::PathBuf {
    let python = python();
    let bin = Path::new(&python)
        .parent()
        .map(|d| d.join("schemathesis"))
        .filter(|p| p.exists());
    bin.unwrap_or_else(|| {
        panic!(
            "no schemathesis beside {python}: run scripts/setup.sh (it installs \
             scripts/requirements.txt) and set TRIBUTARY_PYTHON to the python it prints"
        )
    })
}

#[test]
fn openapi_fuzz_every_answer_of_the_worker_matches_its_description() {
    let data = tempfile::tempdir().unwrap();
    let token = "openapi-fuzz-token-0123456789";
    let token_file = data.path().join("token");
    std::fs::write(&token_file, token).unwrap();
    // Confined to its data folder: nothing Schemathesis sends may make the
    // worker write elsewhere.
    let worker = Worker::start_confined(
        &data.path().join("state"),
        &["--auth-token-file", token_file.to_str().unwrap()],
    );
    let report = data.path().join("report");
    let mut cmd = Command::new(schemathesis());
    cmd.arg("--config-file")
        .arg(repo_root().join("tests/schemathesis.toml"))
        .arg("--no-color")
        .arg("run")
        .arg(repo_root().join("docs/openapi.json"))
        .args(["--url", &worker.base_url()])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", "all"])
        // Every phase: the description's examples, the coverage phase
        // (boundaries and each kind of invalid value), random generation,
        // and stateful sequences (create, then use, then delete).
        .args(["--max-examples", "40"])
        .args(["--seed", "20261130"])
        .args(["--request-timeout", "60"])
        .args(["--workers", "1"])
        .args(["--report", "junit", "--report-dir"])
        .arg(&report)
        // Its cache folder (.schemathesis) goes with the scratch folder.
        .current_dir(data.path())
        .stdin(Stdio::null());
    let out = cmd.output_within(Duration::from_secs(600));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "schemathesis found answers that break docs/openapi.json ({}):\n{stdout}\n{stderr}\nworker log:\n{}",
        out.status,
        worker.log()
    );
    // It really ran every operation (a description it could not read, or a
    // worker it could not reach, must not pass as "no failures").
    assert!(stdout.contains("19 selected"), "{stdout}");
}

/// What Schemathesis found in the worker, each checked on its own: a typo in
/// `expand` was answered as if no expand had been asked for; a validate body
/// that is not an object, and an offset that is not an object, were taken.
#[test]
fn openapi_fuzz_findings_are_refused_with_a_message() {
    let data = tempfile::tempdir().unwrap();
    let worker = Worker::start_confined(&data.path().join("state"), &[]);
    let api = worker.api();

    let (code, reply) = api.get("/connectors?expand=staus");
    assert_eq!(code, 400, "{reply}");
    assert!(
        reply["message"].as_str().unwrap().contains("expand=status"),
        "{reply}"
    );
    assert_eq!(api.get("/connectors?expand=status&expand=info").0, 200);

    let (code, reply) = api.call(
        "PUT",
        "/connector-plugins/generator/config/validate",
        Some(&serde_json::json!([null, null])),
    );
    assert_eq!(code, 400, "{reply}");

    // A stopped connector whose offsets are patched with a non-object.
    let config = serde_json::json!({"source": {"type": "generator", "records": 10},
                                    "sink": {"type": "blackhole"},
                                    "checkpoint": {"location": "chk/probe"}});
    let (code, reply) = api.call("PUT", "/connectors/probe/config", Some(&config));
    assert_eq!(code, 201, "{reply}");
    assert_eq!(api.call("PUT", "/connectors/probe/stop", None).0, 204);
    let patch = serde_json::json!({"offsets": [{"partition": {}, "offset": [null, null]}]});
    let (code, reply) = api.call("PATCH", "/connectors/probe/offsets", Some(&patch));
    assert_eq!(code, 400, "{reply}");
    assert!(
        reply["message"].as_str().unwrap().contains("DELETE"),
        "{reply}"
    );
}
