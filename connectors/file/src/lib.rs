//! JSON-lines source: every file in a folder whose name matches `pattern`, in
//! name order, one JSON object per line.
//!
//! Offsets are `{"file": "<name>", "line": <lines consumed>, "byte": <byte offset>}`:
//! every file whose name sorts before `file` is done, and `file` continues at
//! `byte` (the line number is kept to check it and for messages). A file is left
//! for the next one only when a file with a later name exists, so a writer may
//! keep appending to the newest file; a last line without its newline is not
//! read until the newline arrives.
//!
//! Lines that cannot become a row — not JSON, not an object, a value of the
//! wrong type, a missing required field — become bad records naming the file,
//! line and problem; the runtime dead-letters them or stops, by its error policy.
//!
//! ```json
//! {"type": "file", "path": "incoming", "pattern": "*.jsonl",
//!  "schema": [{"name": "id", "type": "string", "required": true},
//!             {"name": "published_at", "type": "timestamp"}]}
//! ```

#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::PathBuf;

use arrow_schema::SchemaRef;
use serde::Deserialize;
use serde_json::Value;
use tributary_connector::{
    BadRecord, ConnectorContext, Error, FromConfig, Offsets, Poll, Result, Source, SourceBatch,
};

pub use tributary_formats::rows::{FieldKind, FieldSpec, JsonRows, UnknownFields};

/// Config of the `file` source.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSourceConfig {
    /// The folder to read (relative to the pipeline file).
    pub path: String,
    /// File names to read: `*` matches any run of characters.
    #[serde(default = "default_pattern")]
    pub pattern: String,
    /// The columns, in order. Fields of a line not listed here are ignored (or
    /// rejected, with `unknown_fields = "reject"`).
    pub schema: Vec<FieldSpec>,
    /// `ignore` (default) or `reject` fields not in `schema`.
    #[serde(default)]
    pub unknown_fields: UnknownFields,
}

fn default_pattern() -> String {
    "*.jsonl".into()
}

/// The source.
#[derive(Debug)]
pub struct FileSource {
    config: FileSourceConfig,
    dir: PathBuf,
    /// The columns being built; emptied by every poll.
    rows: JsonRows,
    /// The file being read, its reader, and lines/bytes consumed from it.
    current: Option<Current>,
    /// Files named up to and including this are done or current.
    position: Option<(String, u64, u64)>,
}

#[derive(Debug)]
struct Current {
    name: String,
    reader: BufReader<File>,
    line: u64,
    byte: u64,
}

impl FromConfig for FileSource {
    type Config = FileSourceConfig;
    const NAME: &'static str = "file source";
    fn from_config(config: FileSourceConfig, ctx: &ConnectorContext) -> Result<Self> {
        let dir = ctx.resolve(&config.path);
        FileSource::new(config, dir)
    }
}

fn matches(pattern: &str, name: &str) -> bool {
    // `*` as a wildcard is all the matching file names need; a glob crate
    // would bring directory walking we do not want.
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || !name.ends_with(last) || name.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

impl FileSource {
    pub fn new(config: FileSourceConfig, dir: PathBuf) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::config(format!(
                "file source: path `{}` is not a folder (resolved to {})",
                config.path,
                dir.display()
            )));
        }
        let rows = JsonRows::new("file source", config.schema.clone(), config.unknown_fields)?;
        Ok(Self {
            config,
            dir,
            rows,
            current: None,
            position: None,
        })
    }

    fn files(&self) -> Result<Vec<String>> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| {
            Error::external(format!(
                "file source: cannot list {}: {e}",
                self.dir.display()
            ))
        })?;
        let mut names: Vec<String> = entries
            .flatten()
            .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| matches(&self.config.pattern, n))
            .collect();
        names.sort();
        Ok(names)
    }

    fn open_file(&self, name: &str, byte: u64, line: u64) -> Result<Current> {
        let path = self.dir.join(name);
        let mut file = File::open(&path).map_err(|e| {
            Error::external(format!("file source: cannot open {}: {e}", path.display()))
        })?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if byte > len {
            return Err(Error::data(format!(
                "file source: {} is shorter ({len} bytes) than the committed offset ({byte} bytes): \
                 files must not be truncated or replaced once read",
                path.display()
            )));
        }
        file.seek(SeekFrom::Start(byte)).map_err(|e| {
            Error::external(format!(
                "file source: cannot seek in {}: {e}",
                path.display()
            ))
        })?;
        Ok(Current {
            name: name.to_string(),
            reader: BufReader::with_capacity(256 * 1024, file),
            line,
            byte,
        })
    }

    /// Makes `current` the file to read from now, moving past finished files.
    fn advance_file(&mut self, at_eof: bool) -> Result<bool> {
        let files = self.files()?;
        let next = match (&self.current, &self.position) {
            (Some(_), _) if !at_eof => return Ok(true),
            (Some(cur), _) => files
                .iter()
                .find(|n| n.as_str() > cur.name.as_str())
                .cloned(),
            (None, Some((name, line, byte))) => {
                if files.iter().any(|n| n == name) {
                    self.current = Some(self.open_file(&name.clone(), *byte, *line)?);
                    return Ok(true);
                }
                files.iter().find(|n| n.as_str() > name.as_str()).cloned()
            }
            (None, None) => files.first().cloned(),
        };
        match next {
            Some(name) => {
                self.current = Some(self.open_file(&name, 0, 0)?);
                Ok(true)
            }
            None => Ok(self.current.is_some()),
        }
    }

    fn offsets(&self) -> Offsets {
        match &self.current {
            Some(c) => {
                Offsets::new(serde_json::json!({"file": c.name, "line": c.line, "byte": c.byte}))
            }
            None => match &self.position {
                Some((f, l, b)) => {
                    Offsets::new(serde_json::json!({"file": f, "line": l, "byte": b}))
                }
                None => Offsets::default(),
            },
        }
    }
}

impl Source for FileSource {
    fn schema(&self) -> SchemaRef {
        self.rows.schema()
    }

    fn open(&mut self, resume: Option<&Offsets>) -> Result<()> {
        self.current = None;
        // Rows left by a poll that failed half-way belong to the old position.
        self.rows.finish()?;
        self.position = match resume.map(Offsets::as_json) {
            None | Some(Value::Null) => None,
            Some(o) => {
                let file = o.get("file").and_then(Value::as_str);
                let line = o.get("line").and_then(Value::as_u64);
                let byte = o.get("byte").and_then(Value::as_u64);
                match (file, line, byte) {
                    (Some(f), Some(l), Some(b)) => Some((f.to_string(), l, b)),
                    _ => {
                        return Err(Error::data(format!(
                            "file source: offsets {o} are not `{{file, line, byte}}`"
                        )));
                    }
                }
            }
        };
        Ok(())
    }

    fn poll(&mut self, max_records: usize) -> Result<Poll> {
        let mut bad = Vec::new();
        let mut buf = String::new();
        let mut read = 0;
        if !self.advance_file(false)? {
            return Ok(Poll::Idle);
        }
        while read < max_records {
            let Some(cur) = self.current.as_mut() else {
                break;
            };
            buf.clear();
            let n = cur.reader.read_line(&mut buf).map_err(|e| {
                Error::external(format!("file source: cannot read {}: {e}", cur.name))
            })?;
            if n == 0 || !buf.ends_with('\n') {
                // End of this file for now; a partial last line waits.
                if n > 0 {
                    cur.reader
                        .seek(SeekFrom::Start(cur.byte))
                        .map_err(|e| Error::external(e.to_string()))?;
                }
                let before = cur.name.clone();
                self.advance_file(true)?;
                if self.current.as_ref().map(|c| c.name.as_str()) == Some(before.as_str()) {
                    break;
                }
                continue;
            }
            cur.byte += n as u64;
            cur.line += 1;
            let position = format!("{}:{}", cur.name, cur.line);
            let text = buf.trim_end_matches(['\n', '\r']);
            if text.trim().is_empty() {
                continue;
            }
            read += 1;
            if let Err(reason) = self.rows.push_text(text) {
                bad.push(BadRecord {
                    raw: text.as_bytes().to_vec(),
                    position,
                    reason: reason.0,
                });
            }
        }
        if read == 0 {
            return Ok(Poll::Idle);
        }
        let records = self.rows.finish()?;
        Ok(Poll::Batch(SourceBatch {
            records,
            bad,
            offsets: self.offsets(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(dir: &std::path::Path) -> FileSource {
        let config: FileSourceConfig = serde_json::from_value(serde_json::json!({
            "path": dir,
            "schema": [
                {"name": "id", "type": "string", "required": true},
                {"name": "n", "type": "long"},
                {"name": "at", "type": "timestamp"},
            ],
        }))
        .unwrap();
        FileSource::new(config, dir.to_path_buf()).unwrap()
    }

    fn ids(batch: &SourceBatch) -> Vec<String> {
        let col = batch
            .records
            .column(0)
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .unwrap();
        col.iter().map(|v| v.unwrap().to_string()).collect()
    }

    fn read_all(s: &mut FileSource, max: usize) -> (Vec<String>, Vec<BadRecord>, Offsets) {
        let (mut all, mut bad, mut off) = (Vec::new(), Vec::new(), Offsets::default());
        while let Poll::Batch(b) = s.poll(max).unwrap() {
            all.extend(ids(&b));
            bad.extend(b.bad.clone());
            off = b.offsets;
        }
        (all, bad, off)
    }

    #[test]
    fn bad_lines_are_reported_and_the_rest_is_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.jsonl"),
            "{\"id\": \"1\", \"n\": 5}\n{oops\n[1]\n{\"id\": \"4\", \"n\": \"five\"}\n{\"n\": 1}\n{\"id\": \"6\", \"at\": \"2026-01-01T00:00:00Z\"}\n",
        )
        .unwrap();
        let mut s = source(dir.path());
        s.open(None).unwrap();
        let (ids, bad, _) = read_all(&mut s, 100);
        assert_eq!(ids, ["1", "6"]);
        let reasons: Vec<_> = bad
            .iter()
            .map(|b| format!("{} {}", b.position, b.reason))
            .collect();
        assert!(
            reasons[0].starts_with("a.jsonl:2 not valid JSON"),
            "{reasons:?}"
        );
        assert!(
            reasons[1].starts_with("a.jsonl:3 expected a JSON object"),
            "{reasons:?}"
        );
        assert!(
            reasons[2].contains("a.jsonl:4 field `n`: expected an integer, got \"five\""),
            "{reasons:?}"
        );
        assert!(
            reasons[3].contains("a.jsonl:5 required field `id` is missing"),
            "{reasons:?}"
        );
        assert_eq!(bad[1].raw, b"[1]");
    }

    #[test]
    fn partial_last_line_waits_and_new_files_are_picked_up() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.jsonl"),
            "{\"id\": \"1\"}\n{\"id\": \"2\"",
        )
        .unwrap();
        let mut s = source(dir.path());
        s.open(None).unwrap();
        assert_eq!(read_all(&mut s, 10).0, ["1"]);
        assert!(matches!(s.poll(10).unwrap(), Poll::Idle));
        std::fs::write(
            dir.path().join("a.jsonl"),
            "{\"id\": \"1\"}\n{\"id\": \"2\"}\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("b.jsonl"), "{\"id\": \"3\"}\n").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not matched\n").unwrap();
        let (ids, _, off) = read_all(&mut s, 10);
        assert_eq!(ids, ["2", "3"]);
        assert_eq!(off.as_json()["file"], "b.jsonl");
    }

    #[test]
    fn missing_folder_is_a_config_error() {
        let err = tributary_connector::build_source::<FileSource>(
            &serde_json::json!({"path": "/no/such/folder", "schema": [{"name": "id", "type": "string"}]}),
            &ConnectorContext::default(),
        )
        .err()
        .unwrap();
        assert!(
            err.to_string()
                .contains("`/no/such/folder` is not a folder"),
            "{err}"
        );
    }

    proptest::proptest! {
        #[test]
        fn resuming_anywhere_reads_each_line_once(split in 0usize..60, batch in 1usize..20) {
            let dir = tempfile::tempdir().unwrap();
            for f in 0..3 {
                let lines: String = (0..20).map(|i| format!("{{\"id\": \"{f}-{i}\"}}\n")).collect();
                std::fs::write(dir.path().join(format!("{f}.jsonl")), lines).unwrap();
            }
            let mut whole = source(dir.path());
            whole.open(None).unwrap();
            let (expected, _, _) = read_all(&mut whole, 7);
            let mut first = source(dir.path());
            first.open(None).unwrap();
            let (mut got, mut off) = (Vec::new(), Offsets::default());
            while got.len() < split {
                let Poll::Batch(b) = first.poll(batch.min(split - got.len())).unwrap() else { break };
                got.extend(ids(&b));
                off = b.offsets;
            }
            let mut second = source(dir.path());
            second.open(if off.is_empty() { None } else { Some(&off) }).unwrap();
            got.extend(read_all(&mut second, batch).0);
            proptest::prop_assert_eq!(got, expected);
        }
    }
}
