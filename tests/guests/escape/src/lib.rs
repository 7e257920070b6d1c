//! Tries to leave the sandbox — read and write files, open a socket, read
//! the environment — and reports each attempt in a field `escape` of every
//! row, so a test can check that all of them were denied.

// A test fixture that misbehaves on purpose, below the safe API.
#![allow(unsafe_code)]
#[cfg(target_arch = "wasm32")]
mod guest {
    wit_bindgen::generate!({ path: "../../../wit/v0.1", world: "transform" });

    use exports::tributary::transform::processor::Guest;
    use tributary::transform::types::{Batch, Emit, Output, Value};

    struct G;

    fn attempt(what: &str, result: Result<String, String>) -> String {
        match result {
            Ok(detail) => format!("{what}: succeeded ({detail})"),
            Err(e) => format!("{what}: denied ({e})"),
        }
    }

    fn attempts() -> String {
        [
            attempt(
                "read /etc/passwd",
                std::fs::read_to_string("/etc/passwd")
                    .map(|s| format!("{} bytes", s.len()))
                    .map_err(|e| e.to_string()),
            ),
            attempt(
                "write /tmp/tributary-escape",
                std::fs::write("/tmp/tributary-escape", b"x")
                    .map(|_| "written".into())
                    .map_err(|e| e.to_string()),
            ),
            attempt(
                "list /",
                std::fs::read_dir("/")
                    .map(|d| format!("{} entries", d.count()))
                    .map_err(|e| e.to_string()),
            ),
            attempt(
                "connect 127.0.0.1:5432",
                std::net::TcpStream::connect("127.0.0.1:5432")
                    .map(|_| "connected".into())
                    .map_err(|e| e.to_string()),
            ),
            attempt("env HOME", std::env::var("HOME").map_err(|e| e.to_string())),
        ]
        .join("; ")
    }

    impl Guest for G {
        fn init(_config: Vec<(String, String)>) -> Result<Option<Vec<String>>, String> {
            Ok(Some(Vec::new()))
        }

        fn process(batch: Batch) -> Result<Output, String> {
            let report = attempts();
            let emit = (0..batch.rows.len() as u32)
                .map(|i| {
                    Emit::Update((i, vec![("escape".to_string(), Value::Text(report.clone()))]))
                })
                .collect();
            Ok(Output {
                emit,
                dropped: Vec::new(),
                rejected: Vec::new(),
            })
        }

        fn on_watermark(_watermark: i64) -> Result<Output, String> {
            Ok(Output {
                emit: Vec::new(),
                dropped: Vec::new(),
                rejected: Vec::new(),
            })
        }
    }

    export!(G);
}
