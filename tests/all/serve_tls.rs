//! `tributary serve` over HTTPS (`--tls-cert`, `--tls-key`): the REST API
//! answers curl that trusts the test CA, refuses to be trusted by another
//! CA, serves nothing in plain HTTP on that port, and a key that does not
//! load stops the worker at start with a message naming the flag.

use std::process::Command;
use std::time::Duration;

use crate::harness::*;
use crate::serve::Worker;
use crate::test_ca::TestCa;

/// `curl` with `args`, 10 s at most: (exit code, stdout).
fn curl(args: &[&str]) -> (i32, String) {
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "10"])
        .args(args)
        .output_within(Duration::from_secs(30));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn serve_over_tls_answers_a_client_that_trusts_its_ca() {
    let ca = TestCa::new().unwrap();
    let data = tempfile::tempdir().unwrap();
    let cert = ca.server_cert();
    let key = ca.server_key();
    let worker = Worker::start(
        &data.path().join("worker"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let https = worker.base_url().replace("http://", "https://");
    let ca_pem = ca.ca();
    let other = ca.other_ca();

    let (code, body) = curl(&[
        "--cacert",
        ca_pem.to_str().unwrap(),
        &format!("{https}/connectors"),
    ]);
    assert_eq!(
        code,
        0,
        "GET /connectors over HTTPS: {body}\n{}",
        worker.log()
    );
    assert_eq!(body.trim(), "[]", "{body}");
    let (code, body) = curl(&[
        "--cacert",
        ca_pem.to_str().unwrap(),
        "--write-out",
        " %{http_code}",
        &format!("{https}/health"),
    ]);
    assert!(
        code == 0 && body.trim_end().ends_with(" 200"),
        "GET /health: {code} {body}"
    );
    assert!(
        worker.log().contains("worker listening on https://"),
        "{}",
        worker.log()
    );

    // Another CA: curl's "certificate verify failed" (60).
    let (code, body) = curl(&[
        "--cacert",
        other.to_str().unwrap(),
        &format!("{https}/connectors"),
    ]);
    assert_eq!(
        code, 60,
        "a client trusting another CA must refuse the worker: {body}"
    );
    // Plain HTTP on the TLS port gets no API answer.
    let (code, body) = curl(&[&format!("{}/connectors", worker.base_url())]);
    assert!(
        code != 0 || !body.contains("[]"),
        "plain HTTP was served: {body}"
    );
}

#[test]
fn serve_with_a_key_that_does_not_load_stops_at_start_naming_the_flag() {
    let ca = TestCa::new().unwrap();
    let data = tempfile::tempdir().unwrap();
    let junk = data.path().join("junk.key");
    std::fs::write(&junk, "not a key\n").unwrap();
    let out = Command::new(binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data.path().join("worker"))
        .arg("--tls-cert")
        .arg(ca.server_cert())
        .arg("--tls-key")
        .arg(&junk)
        .output_within(Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--tls-key") && stderr.contains("junk.key"),
        "{stderr}"
    );
    // --tls-cert without --tls-key: refused by the argument parser.
    let out = Command::new(binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data.path().join("worker"))
        .arg("--tls-cert")
        .arg(ca.server_cert())
        .output_within(Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("--tls-key"),
        "--tls-cert alone: {stderr}"
    );
}
