//! The command line as a user meets it: examples validate, a running pipeline
//! stops gracefully on SIGTERM with a final commit, the progress line shows.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::*;

#[test]
fn every_example_pipeline_validates() {
    let examples = repo_root().join("examples");
    let mut checked = 0;
    // Every `pipeline*.json` of every example folder.
    let pipelines = std::fs::read_dir(&examples)
        .unwrap()
        .flatten()
        .flat_map(|dir| {
            std::fs::read_dir(dir.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|f| f.path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("pipeline") && name.ends_with(".json")
        });
    for pipeline in pipelines {
        let out = std::process::Command::new(binary())
            .arg("validate")
            .arg(&pipeline)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}: {}",
            pipeline.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.starts_with("ok: pipeline"), "{stdout}");
        checked += 1;
    }
    assert!(
        checked >= 1,
        "no example pipelines found in {}",
        examples.display()
    );
}

#[test]
fn sigterm_stops_gracefully_with_a_final_commit() {
    let s = Scratch::new("sigterm");
    let lines: Vec<String> = (0..500)
        .map(|i| article(&format!("t{i:03}"), "2026-03-01T10:00:00Z"))
        .collect();
    write_lines(&s.path("in"), "a.jsonl", &lines);
    let mut pipeline = s.pipeline(file_source(&s), watermark_and_dedup("2 hours"));
    // A long trigger interval: only the shutdown can commit in time.
    pipeline["trigger"] =
        json!({"interval_ms": 600_000, "max_records_per_epoch": 1_000_000, "batch_size": 100});
    let path = s.write_pipeline(&pipeline);
    let mut child = s
        .command(&["run", "--progress-interval", "0.2", path.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until all 500 records were read (the progress line says so).
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut seen = Vec::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            seen.push(line);
        }
        seen
    });
    let started = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(300));
        // Nothing is committed before the stop: the interval is 10 minutes.
        if started.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    assert_eq!(
        s.inspect(&[]).unwrap()["rows"],
        0,
        "nothing committed before the signal"
    );
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    let lines = reader.join().unwrap();
    let log = lines.join("\n");
    assert!(exit.success(), "a graceful stop exits 0: {exit}\n{log}");
    assert!(log.contains("stopping"), "{log}");
    assert!(
        lines.iter().any(|l| l.starts_with("sigterm: in 500")),
        "progress lines show the input:\n{log}"
    );
    let table = s.inspect(&[]).unwrap();
    assert_eq!(table["rows"], 500, "the final commit holds everything read");
    assert_eq!(table["summary"]["tributary.epoch"], "1");
}
