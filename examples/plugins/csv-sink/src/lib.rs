//! An external sink plugin: CSV files, exactly once.
//!
//! ```json
//! "sink": {"type": "csv", "path": "out/articles"}
//! ```
//!
//! Each committed epoch becomes one file, `<path>/<pipeline>-<epoch>.csv`
//! (a header line, then RFC 4180 rows; null is an empty field). The commit
//! record `<path>/_commits/<pipeline>.json` holds the last committed epoch
//! with its offsets and watermark — what the runtime resumes from. An epoch is
//! written to a temporary file, renamed into place, and then the commit record
//! is replaced (write, fsync, rename, fsync of the folder). A crash between
//! the two leaves a file for an epoch the record does not have: the run's
//! first commit removes it, and the epoch is written again from the same
//! offsets. So a reader of `*.csv` sees every record exactly once. Reading
//! the last commit (`last_commit`, which the REST worker's offsets call makes
//! while the pipeline runs) only reads: the file it would take for a leftover
//! may be a running commit's.
//!
//! Build: `cargo build --release -p tributary-example-csv-sink`, then copy
//! `$CARGO_TARGET_DIR/release/libtributary_example_csv_sink.so` (default
//! `target/`) into the plugin folder.

mod sink;

use tributary_plugin::connector::{ConnectorContext, Result};
use tributary_plugin::{SinkPlugin, export_sink};

pub use sink::CsvSink;

impl SinkPlugin for CsvSink {
    const NAME: &'static str = "csv";
    const DESCRIPTION: &'static str =
        "CSV files, one per committed epoch, exactly once (example plugin)";

    fn config_schema() -> serde_json::Value {
        serde_json::json!({
            "type": "object",
            "required": ["path"],
            "properties": {"path": {"type": "string", "description": "folder of the CSV files"}},
            "additionalProperties": false
        })
    }

    fn open(config: &serde_json::Value, ctx: &ConnectorContext) -> Result<Self> {
        CsvSink::new(config, ctx)
    }
}

export_sink!(CsvSink);
