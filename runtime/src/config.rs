//! Pipeline configuration: the JSON a user deploys.
//!
//! Loading happens in two steps, both before anything runs: **shape** (the text
//! is interpolated, then parsed with serde; unknown fields are errors that name
//! the field and where it is) and **meaning** ([`PipelineConfig::check`]: names,
//! ranges, cross-field rules). Connector-specific fields are checked by the
//! connector itself when the registry builds it.
//!
//! ```json
//! {
//!   "name": "articles_raw",
//!   "source": {"type": "generator", "records": 100000},
//!   "transforms": [
//!     {"name": "watermark", "module": "builtin:watermark",
//!      "config": {"event_time": "published_at", "delay": "2 hours"}},
//!     {"name": "dedup", "module": "builtin:dedup",
//!      "config": {"key": "id", "event_time": "published_at", "within": "2 hours"}}
//!   ],
//!   "sink": {"type": "iceberg", "catalog_uri": "sqlite:warehouse/catalog.db",
//!            "warehouse": "warehouse", "table": "demo.news.articles_raw"},
//!   "checkpoint": {"location": "${CHECKPOINT_LOCATION:-chk/articles_raw}"}
//! }
//! ```

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use tributary_wasm_host::sandbox;

/// A problem with a pipeline config, phrased for the person who wrote it,
/// and the file (or REST connector) it is in once that is known.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    file: Option<String>,
    message: String,
}

impl ConfigError {
    /// A problem not yet tied to a file.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            file: None,
            message: message.into(),
        }
    }
    fn new(file: &Path, message: impl Into<String>) -> Self {
        Self::invalid(message).in_file(&file.display().to_string())
    }
    /// Names the file (or label) the problem is in, unless one is named.
    pub fn in_file(mut self, file: &str) -> Self {
        self.file.get_or_insert_with(|| file.to_string());
        self
    }
    /// What is wrong and the fix, without the file.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{file}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// `Err` of a [`ConfigError`] not yet tied to a file.
fn invalid<T>(message: String) -> Result<T, ConfigError> {
    Err(ConfigError::invalid(message))
}

/// One pipeline: a source, a chain of WASM transforms, a sink, and where its
/// progress is kept.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// The pipeline's id. It is written into every commit and checkpoint, so two
    /// pipelines writing one table must have different names. Letters, digits,
    /// `_`, `-` and `.`.
    pub name: String,
    /// Where records come from: `{"type": "<connector>", ...its fields}`.
    pub source: ConnectorConfig,
    /// WASM transforms, applied in order to every batch.
    #[serde(default)]
    pub transforms: Vec<TransformConfig>,
    /// Where records go: `{"type": "<connector>", ...its fields}`.
    pub sink: ConnectorConfig,
    /// Where progress (offsets, watermark, transform state) is kept.
    pub checkpoint: CheckpointConfig,
    /// When epochs end and how big batches are.
    #[serde(default)]
    pub trigger: TriggerConfig,
    /// What happens to records that cannot be processed.
    #[serde(default)]
    pub errors: ErrorConfig,
    /// The delivery guarantee this pipeline needs: `exactly-once` or
    /// `at-least-once` (Flink's `sink.delivery-guarantee`). The run and
    /// `tributary validate` refuse a sink that gives less. Default: whatever
    /// the sink gives (it is logged at start).
    #[serde(default)]
    pub delivery: Option<tributary_connector::Delivery>,
}

/// A connector's config: its registered `type` plus the connector's own fields,
/// which the connector parses (and rejects unknown ones) itself.
#[derive(Clone, Debug)]
pub struct ConnectorConfig {
    pub kind: String,
    pub fields: serde_json::Value,
}

impl<'de> Deserialize<'de> for ConnectorConfig {
    // Hand-written because serde cannot combine `flatten` with
    // `deny_unknown_fields`: we split off `type` and hand the rest over intact.
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut map = serde_json::Map::deserialize(de)?;
        let kind = match map.remove("type") {
            Some(serde_json::Value::String(s)) => s,
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "`type` must be a string, got {other}"
                )));
            }
            None => {
                return Err(D::Error::custom(
                    "missing field `type` (the connector's name, e.g. \"iceberg\")",
                ));
            }
        };
        Ok(Self {
            kind,
            fields: serde_json::Value::Object(map),
        })
    }
}

/// One WASM transform in the chain.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformConfig {
    /// Name used in logs, metrics, errors and checkpoints; unique in the pipeline.
    pub name: String,
    /// `builtin:watermark`, `builtin:dedup`, or a path to a `.wasm` component
    /// (relative to the pipeline file).
    pub module: String,
    /// Handed to the transform's `init`; each transform documents its keys.
    #[serde(default)]
    pub config: serde_json::Map<String, serde_json::Value>,
    /// Sandbox limits for this transform.
    #[serde(default)]
    pub limits: LimitsConfig,
}

/// Sandbox limits of one transform instance (defaults and ranges:
/// `tributary_wasm_host::sandbox`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Linear memory cap, in MiB.
    pub memory_mb: u64,
    /// Wall-clock limit of one call (one batch), in milliseconds.
    pub call_timeout_ms: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            memory_mb: sandbox::DEFAULT_MEMORY_MB,
            call_timeout_ms: sandbox::DEFAULT_CALL_TIMEOUT_MS,
        }
    }
}

/// Where progress is kept.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointConfig {
    /// A directory (the embedded default; relative to the pipeline file) or a
    /// `postgres://` URI (shared).
    pub location: String,
    /// What to do when the checkpoint for the last committed epoch is missing
    /// or damaged: `fail` (default) stops with an explanation; `table` resumes
    /// from the offsets and watermark committed in the sink, with empty
    /// transform state (dedup forgets the keys it had seen).
    #[serde(default)]
    pub on_damaged: OnDamaged,
    /// Epochs between full snapshots of transform state, at most. In
    /// between, a checkpoint holds only what its epoch changed (a
    /// changelog); a full snapshot is also written once the changelogs
    /// since the last one add up to its size (at least 1 MiB), so restoring
    /// reads at most about twice the state. 1: every checkpoint is a full
    /// snapshot. Default 1000.
    #[serde(default = "default_full_snapshot_every")]
    pub full_snapshot_every: u64,
}

fn default_full_snapshot_every() -> u64 {
    1000
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnDamaged {
    #[default]
    Fail,
    Table,
}

/// When an epoch ends (and its commit happens).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TriggerConfig {
    /// An epoch ends at most this long after it started, in milliseconds
    /// (Spark's trigger interval).
    pub interval_ms: u64,
    /// An epoch ends once it has read this many records (Spark's
    /// `maxOffsetsPerTrigger`).
    pub max_records_per_epoch: u64,
    /// An epoch ends once the sink has staged this many bytes: the data
    /// files' size as they will land (Parquet, encoded and compressed) for
    /// the `iceberg` sink, the records' in-memory (Arrow) size for a sink
    /// that cannot tell. Sized near the table's target file size, a busy
    /// pipeline commits files of about that size. Default: no limit.
    pub max_bytes_per_epoch: Option<u64>,
    /// Records per source poll and per transform call.
    pub batch_size: usize,
}

impl Default for TriggerConfig {
    fn default() -> Self {
        Self {
            interval_ms: 5_000,
            max_records_per_epoch: 100_000,
            max_bytes_per_epoch: None,
            batch_size: 2_000,
        }
    }
}

/// What happens to records that cannot be processed: malformed input, rows a
/// transform rejects, batches on which a transform fails; and how long a
/// worker keeps restarting a pipeline that failed on something transient.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorConfig {
    /// `fail` (default): stop before committing the epoch, so nothing is lost
    /// and the same records are read again after the fix. `dead-letter`: write
    /// them with the reason to `dead_letter_path` and continue.
    #[serde(default)]
    pub policy: ErrorPolicy,
    /// Folder of the dead-letter output (JSON lines, one file per epoch).
    /// Default: `dead-letter/` inside a local checkpoint location.
    #[serde(default)]
    pub dead_letter_path: Option<String>,
    /// Also write records dropped as late to the dead-letter output (they are
    /// always counted).
    #[serde(default)]
    pub late_to_dead_letter: bool,
    /// How long `tributary serve` keeps restarting a pipeline that failed on
    /// something that may pass (an unreachable broker, catalog or store, once
    /// the pipeline's own retries ran out), as Kafka Connect's
    /// `errors.retry.timeout`: 0 never restarts, -1 restarts forever. A
    /// failure nobody but a person can fix (a wrong config, bad input,
    /// damaged state) is never restarted. Default 10 minutes.
    #[serde(default = "default_retry_timeout_ms")]
    pub retry_timeout_ms: i64,
    /// The longest wait between two restarts (they back off from 1 s,
    /// doubling), as Kafka Connect's `errors.retry.delay.max.ms`. Default 60 s.
    #[serde(default = "default_retry_delay_max_ms")]
    pub retry_delay_max_ms: u64,
}

impl Default for ErrorConfig {
    fn default() -> Self {
        Self {
            policy: ErrorPolicy::default(),
            dead_letter_path: None,
            late_to_dead_letter: false,
            retry_timeout_ms: default_retry_timeout_ms(),
            retry_delay_max_ms: default_retry_delay_max_ms(),
        }
    }
}

fn default_retry_timeout_ms() -> i64 {
    600_000
}

fn default_retry_delay_max_ms() -> u64 {
    60_000
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorPolicy {
    #[default]
    Fail,
    DeadLetter,
}

impl fmt::Display for ErrorPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Fail => "fail",
            Self::DeadLetter => "dead-letter",
        })
    }
}

/// A loaded pipeline file.
#[derive(Clone, Debug)]
pub struct LoadedPipeline {
    pub config: PipelineConfig,
    /// The file's folder; relative paths in the config resolve against it.
    pub base_dir: PathBuf,
    pub path: PathBuf,
}

impl LoadedPipeline {
    pub fn resolve(&self, path: &str) -> PathBuf {
        tributary_connector::resolve(&self.base_dir, path)
    }

    /// What the connectors of this pipeline are told when they are built:
    /// its name, the folder relative paths resolve against, and (with a
    /// local checkpoint folder) `<checkpoint location>/connectors` for
    /// connector state of their own.
    pub fn connector_context(&self) -> tributary_connector::ConnectorContext {
        let location = &self.config.checkpoint.location;
        tributary_connector::ConnectorContext {
            pipeline_id: self.config.name.clone(),
            base_dir: self.base_dir.clone(),
            state_dir: (!location.contains("://"))
                .then(|| self.resolve(location).join("connectors")),
        }
    }

    /// The dead-letter folder, when the policy or `late_to_dead_letter` needs one.
    pub fn dead_letter_dir(&self) -> Option<PathBuf> {
        let errors = &self.config.errors;
        if errors.policy != ErrorPolicy::DeadLetter && !errors.late_to_dead_letter {
            return None;
        }
        Some(match &errors.dead_letter_path {
            Some(p) => self.resolve(p),
            None => self
                .resolve(&self.config.checkpoint.location)
                .join("dead-letter"),
        })
    }
}

/// Reads, interpolates, parses and checks a pipeline file.
pub fn load(path: &Path) -> Result<LoadedPipeline, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(path, format!("cannot read the pipeline file: {e}")))?;
    load_text(&text, path, |name| std::env::var(name).ok())
}

/// Pipeline JSON text as if read from `path`: interpolated with `lookup`
/// for `${NAME}` (and `${env:NAME}`), parsed and checked. What [`load`] does
/// after reading the file (the config fuzz target calls it too).
pub fn load_text(
    text: &str,
    path: &Path,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<LoadedPipeline, ConfigError> {
    let text = interpolate(text, lookup).map_err(|e| e.in_file(&path.display().to_string()))?;
    parse_checked(&text, path)
}

/// A pipeline given as JSON (by the REST API), interpolated, parsed and
/// checked; relative paths in it resolve against `base_dir`. `label` names
/// it in errors.
pub fn load_value(
    config: &serde_json::Value,
    base_dir: &Path,
    label: &str,
) -> Result<LoadedPipeline, ConfigError> {
    load_value_with(config, base_dir, label, &read_secrets_file)
}

/// [`load_value`], with `${file:…}` files read by `read_file`.
pub fn load_value_with(
    config: &serde_json::Value,
    base_dir: &Path,
    label: &str,
    read_file: &dyn Fn(&Path) -> Result<String, String>,
) -> Result<LoadedPipeline, ConfigError> {
    let origin = base_dir.join(label);
    let text = serde_json::to_string(config)
        .map_err(|e| ConfigError::invalid(e.to_string()).in_file(label))?;
    let text = interpolate_with(&text, |name| std::env::var(name).ok(), read_file)
        .map_err(|e| e.in_file(label))?;
    // Errors name the label, not the folder the paths resolve against.
    parse_checked(&text, &origin).map_err(|e| ConfigError {
        file: Some(label.to_string()),
        message: e.message,
    })
}

fn parse_checked(text: &str, path: &Path) -> Result<LoadedPipeline, ConfigError> {
    let config: PipelineConfig =
        serde_json::from_str(text).map_err(|e| ConfigError::new(path, shape_error(&e)))?;
    config
        .check()
        .map_err(|e| e.in_file(&path.display().to_string()))?;
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let base_dir = if base_dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        base_dir
    };
    Ok(LoadedPipeline {
        config,
        base_dir,
        path: path.to_path_buf(),
    })
}

fn shape_error(e: &serde_json::Error) -> String {
    let mut msg = e.to_string();
    if msg.contains("unknown field") {
        msg.push_str(" (check the spelling; the allowed fields are listed above)");
    }
    msg
}

impl PipelineConfig {
    /// The meaning checks: everything serde cannot say.
    pub fn check(&self) -> Result<(), ConfigError> {
        check_name("name", &self.name)?;
        if self.source.kind.is_empty() {
            return invalid(
                "source.type is empty: name a source connector, e.g. \"generator\" or \"file\""
                    .into(),
            );
        }
        if self.sink.kind.is_empty() {
            return invalid("sink.type is empty: name a sink connector, e.g. \"iceberg\"".into());
        }
        let mut seen = HashSet::new();
        for (i, t) in self.transforms.iter().enumerate() {
            check_name(&format!("transforms[{i}].name"), &t.name)?;
            if !seen.insert(t.name.as_str()) {
                return invalid(format!(
                    "transforms[{i}].name `{}` is used twice: transform names must be unique (they key the checkpointed state)",
                    t.name
                ));
            }
            if t.module.trim().is_empty() {
                return invalid(format!(
                    "transforms[{i}].module is empty: give `builtin:watermark`, `builtin:dedup` or a path to a .wasm component"
                ));
            }
            if t.limits.memory_mb == 0 || t.limits.memory_mb > 4096 {
                return invalid(format!(
                    "transforms[{i}].limits.memory_mb must be between 1 and 4096, got {}",
                    t.limits.memory_mb
                ));
            }
            if t.limits.call_timeout_ms == 0 {
                return invalid(format!(
                    "transforms[{i}].limits.call_timeout_ms must be at least 1"
                ));
            }
        }
        self.check_dedup_windows_close()?;
        let needs_dead_letters =
            self.errors.policy == ErrorPolicy::DeadLetter || self.errors.late_to_dead_letter;
        if needs_dead_letters
            && self.errors.dead_letter_path.is_none()
            && self.checkpoint.location.contains("://")
        {
            // The default folder is inside a local checkpoint location; a
            // URI (with its password) must never become a folder name.
            return invalid(
                "errors.dead_letter_path is needed: the dead-letter output defaults to a folder inside a \
                 local checkpoint location, and checkpoint.location is a URI. Give a folder, e.g. \
                 \"errors\": {\"policy\": \"dead-letter\", \"dead_letter_path\": \"dead-letter\"}"
                    .into(),
            );
        }
        if self.checkpoint.location.trim().is_empty() {
            return invalid(
                "checkpoint.location is empty: give a directory or a postgres:// URI".into(),
            );
        }
        if self.checkpoint.full_snapshot_every == 0 {
            return invalid(
                "checkpoint.full_snapshot_every must be at least 1 (1: a full snapshot at every checkpoint)"
                    .into(),
            );
        }
        if self.trigger.interval_ms == 0 {
            return invalid("trigger.interval_ms must be at least 1".into());
        }
        if self.errors.retry_timeout_ms < -1 {
            return invalid(format!(
                "errors.retry_timeout_ms must be -1 (restart forever), 0 (never) or a duration in ms, got {}",
                self.errors.retry_timeout_ms
            ));
        }
        if self.errors.retry_delay_max_ms == 0 {
            return invalid("errors.retry_delay_max_ms must be at least 1".into());
        }
        if self.trigger.batch_size == 0 {
            return invalid("trigger.batch_size must be at least 1".into());
        }
        if self.trigger.max_records_per_epoch == 0 {
            return invalid("trigger.max_records_per_epoch must be at least 1".into());
        }
        if self.trigger.max_bytes_per_epoch == Some(0) {
            return invalid(
                "trigger.max_bytes_per_epoch must be at least 1 (leave it out for no byte limit; \
                 e.g. 134217728 ends an epoch at 128 MiB of data files)"
                    .into(),
            );
        }
        Ok(())
    }
}

impl PipelineConfig {
    /// A `builtin:dedup` keeps each key until the watermark passes its event
    /// time + `within`; with nothing in the chain to move the watermark the
    /// window never closes and its state grows without bound. Spark refuses
    /// `dropDuplicatesWithinWatermark` without a watermark for the same
    /// reason. A custom module may move the watermark, so one is enough.
    fn check_dedup_windows_close(&self) -> Result<(), ConfigError> {
        let moves_watermark = |t: &TransformConfig| {
            t.module == "builtin:watermark" || !t.module.starts_with("builtin:")
        };
        if self.transforms.iter().any(moves_watermark) {
            return Ok(());
        }
        let Some((i, t)) = self
            .transforms
            .iter()
            .enumerate()
            .find(|(_, t)| t.module == "builtin:dedup")
        else {
            return Ok(());
        };
        let field = |k: &str, default: &str| {
            t.config
                .get(k)
                .and_then(|v| v.as_str())
                .unwrap_or(default)
                .to_string()
        };
        let (event_time, within) = (
            field("event_time", "published_at"),
            field("within", "2 hours"),
        );
        invalid(format!(
            "transforms[{i}] `{}` (builtin:dedup) forgets a key only when the watermark passes its event time + \
             within (\"{within}\"), but nothing in this pipeline moves the watermark: its window would never \
             close and its state would grow with every new key. Add a watermark before it: \
             {{\"name\": \"watermark\", \"module\": \"builtin:watermark\", \"config\": \
             {{\"event_time\": \"{event_time}\", \"delay\": \"{within}\"}}}}",
            t.name
        ))
    }
}

/// A name's rule (pipelines, connectors): 1-128 letters, digits, `_`, `-`
/// or `.`; `field` names it in the message.
pub fn check_name(field: &str, name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        invalid(format!(
            "{field} `{name}` must be 1-128 letters, digits, `_`, `-` or `.`"
        ))
    }
}

/// Replaces `${VAR}` and `${VAR:-default}` with values from `lookup`; `$$` is a
/// literal `$`. An unset `${VAR}` without a default is an error that names it.
/// `${file:…}` files are read with [`read_secrets_file`].
pub fn interpolate(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    interpolate_with(text, lookup, &read_secrets_file)
}

/// The largest `${file:…}` secrets file read: a properties file of secrets
/// is a few lines.
const MAX_SECRETS_FILE: u64 = 1024 * 1024;

/// Reads a `${file:PATH:KEY}` secrets file: a regular file of at most 1 MiB.
/// A device (`/dev/zero` would never end), a folder or a huge file is
/// refused without being read. The error never holds the file's content.
pub fn read_secrets_file(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read it: {e}"))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read it: {e}"))?;
    if !meta.is_file() {
        return Err("it is not a regular file".into());
    }
    if meta.len() > MAX_SECRETS_FILE {
        return Err(format!(
            "it is {} bytes; a secrets file may hold at most {MAX_SECRETS_FILE}",
            meta.len()
        ));
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_SECRETS_FILE), &mut text)
        .map_err(|e| format!("cannot read it: {e}"))?;
    Ok(text)
}

/// [`interpolate`], with `${file:…}` files read by `read_file` (a REST
/// worker reads only inside the folders its operator allows).
pub fn interpolate_with(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
    read_file: &dyn Fn(&Path) -> Result<String, String>,
) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        let Some(body) = after.strip_prefix('{') else {
            out.push('$');
            rest = after;
            continue;
        };
        let Some(end) = body.find('}') else {
            return invalid(format!(
                "unclosed `${{` near `${}`",
                body.chars().take(30).collect::<String>()
            ));
        };
        let expr = &body[..end];
        if let Some(secret) = secret_reference(expr, &lookup, read_file)? {
            out.push_str(&json_escape_inner(&secret));
            rest = &body[end + 1..];
            continue;
        }
        let (name, default) = match expr.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (expr, None),
        };
        let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return invalid(format!(
                "`${{{expr}}}` is not a variable reference: use ${{NAME}} or ${{NAME:-default}}"
            ));
        }
        match (lookup(name).filter(|v| !v.is_empty()), default) {
            (Some(v), _) => out.push_str(&json_escape_inner(&v)),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return invalid(format!(
                    "environment variable {name} is not set: set it, or write ${{{name}:-default}} to give a default"
                ));
            }
        }
        rest = &body[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `${env:NAME}` and `${file:/path/to/file.properties:key}` (Kafka Connect's
/// config providers): secrets kept out of the pipeline JSON, so a REST
/// worker stores and shows the reference, never the value. `None` when
/// `expr` is not such a reference.
fn secret_reference(
    expr: &str,
    lookup: &impl Fn(&str) -> Option<String>,
    read_file: &dyn Fn(&Path) -> Result<String, String>,
) -> Result<Option<String>, ConfigError> {
    if let Some(name) = expr.strip_prefix("env:") {
        return lookup(name).map(Some).ok_or_else(|| {
            ConfigError::invalid(format!(
                "`${{env:{name}}}`: environment variable {name} is not set"
            ))
        });
    }
    let Some(spec) = expr.strip_prefix("file:") else {
        return Ok(None);
    };
    let Some((path, key)) = spec.rsplit_once(':') else {
        return invalid(format!(
            "`${{file:{spec}}}` names no key: write ${{file:/path/to/file.properties:key}}"
        ));
    };
    let text = read_file(Path::new(path))
        .map_err(|e| ConfigError::invalid(format!("`${{file:{path}:{key}}}`: {path}: {e}")))?;
    // Java-properties style, as Kafka Connect's FileConfigProvider reads:
    // `key=value` lines, `#` comments.
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| Some(v.trim().to_string()))
        .ok_or_else(|| {
            ConfigError::invalid(format!(
                "`${{file:{path}:{key}}}`: {path} has no key `{key}`"
            ))
        })
}

/// Values from the environment land inside JSON strings: escape what would
/// break them (quotes, backslashes, control characters).
fn json_escape_inner(value: &str) -> String {
    let quoted = serde_json::to_string(value).unwrap_or_default();
    quoted[1..quoted.len() - 1].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOPIC" => Some("articles.raw.v1".into()),
            "EMPTY" => Some(String::new()),
            "QUOTE" => Some("a\"b".into()),
            "HOME" => Some("/home/me".into()),
            _ => None,
        }
    }

    #[test]
    fn a_secrets_file_is_a_small_regular_file_and_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.properties");
        std::fs::write(&file, "# secrets\npassword = hunter2\n").unwrap();
        let r = |t: &str| interpolate(t, env);
        let good = format!("${{file:{}:password}}", file.display());
        assert_eq!(r(&good).unwrap(), "hunter2");
        let missing_key = format!("${{file:{}:user}}", file.display());
        let err = r(&missing_key).unwrap_err().to_string();
        assert!(
            err.contains("has no key `user`") && !err.contains("hunter2"),
            "{err}"
        );
        // A device is refused at once, not read for ever.
        let err = r("${file:/dev/zero:k}").unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'#'; 2 * 1024 * 1024]).unwrap();
        let err = r(&format!("${{file:{}:k}}", big.display()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("at most"), "{err}");
    }

    #[test]
    fn interpolation_forms() {
        assert_eq!(interpolate("t=${TOPIC}", env).unwrap(), "t=articles.raw.v1");
        assert_eq!(interpolate("${MISSING:-/chk/x}", env).unwrap(), "/chk/x");
        assert_eq!(interpolate("${EMPTY:-fallback}", env).unwrap(), "fallback");
        assert_eq!(
            interpolate("${TOPIC:-unused}", env).unwrap(),
            "articles.raw.v1"
        );
        assert_eq!(
            interpolate("cost $$5 and $x", env).unwrap(),
            "cost $5 and $x"
        );
        assert_eq!(interpolate("\"${QUOTE}\"", env).unwrap(), "\"a\\\"b\"");
        let err = interpolate("${MISSING}", env).unwrap_err().to_string();
        assert!(err.contains("MISSING is not set"), "{err}");
        assert!(
            interpolate("${bad name}", env)
                .unwrap_err()
                .message()
                .contains("not a variable reference")
        );
        assert!(
            interpolate("${OPEN", env)
                .unwrap_err()
                .message()
                .contains("unclosed")
        );
    }

    fn parse(json: &str) -> Result<PipelineConfig, String> {
        let c: PipelineConfig = serde_json::from_str(json).map_err(|e| e.to_string())?;
        c.check().map_err(|e| e.to_string())?;
        Ok(c)
    }

    const MINIMAL: &str = r#"{"name": "p", "source": {"type": "generator"}, "sink": {"type": "iceberg", "table": "a.b"},
        "checkpoint": {"location": "chk"}}"#;

    #[test]
    fn minimal_config_gets_defaults() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.source.kind, "generator");
        assert_eq!(c.sink.fields["table"], "a.b");
        assert_eq!(c.trigger.batch_size, 2_000);
        assert_eq!(c.errors.policy, ErrorPolicy::Fail);
        assert_eq!(c.checkpoint.on_damaged, OnDamaged::Fail);
        assert_eq!(c.delivery, None, "no guarantee asked for unless written");
    }

    #[test]
    fn delivery_is_spelled_as_flink_spells_it() {
        use tributary_connector::Delivery;
        let exactly = MINIMAL.replace("}}", "}, \"delivery\": \"exactly-once\"}");
        assert_eq!(
            parse(&exactly).unwrap().delivery,
            Some(Delivery::ExactlyOnce)
        );
        let least = MINIMAL.replace("}}", "}, \"delivery\": \"at-least-once\"}");
        assert_eq!(parse(&least).unwrap().delivery, Some(Delivery::AtLeastOnce));
        let typo = MINIMAL.replace("}}", "}, \"delivery\": \"exactly_once\"}");
        let err = parse(&typo).unwrap_err();
        assert!(err.contains("unknown variant `exactly_once`"), "{err}");
    }

    #[test]
    fn typos_are_named() {
        let typo = MINIMAL.replace("\"checkpoint\"", "\"checkpiont\"");
        let err = parse(&typo).unwrap_err();
        assert!(err.contains("unknown field `checkpiont`"), "{err}");
        let err = parse(&MINIMAL.replace("\"type\": \"generator\"", "\"kind\": \"generator\""))
            .unwrap_err();
        assert!(err.contains("missing field `type`"), "{err}");
        let bad_policy = MINIMAL.replace("}}", "}, \"errors\": {\"policy\": \"deadletter\"}}");
        let err = parse(&bad_policy).unwrap_err();
        assert!(err.contains("unknown variant `deadletter`"), "{err}");
    }

    #[test]
    fn meaning_checks_name_the_field() {
        let dup = MINIMAL.replace(
            "\"sink\"",
            r#""transforms": [{"name": "d", "module": "builtin:dedup"}, {"name": "d", "module": "builtin:dedup"}], "sink""#,
        );
        assert!(
            parse(&dup)
                .unwrap_err()
                .contains("transforms[1].name `d` is used twice")
        );
        let bad_name = MINIMAL.replace("\"name\": \"p\"", "\"name\": \"my pipeline\"");
        assert!(
            parse(&bad_name)
                .unwrap_err()
                .starts_with("name `my pipeline`")
        );
        let zero = MINIMAL.replace("}}", "}, \"trigger\": {\"batch_size\": 0}}");
        assert!(parse(&zero).unwrap_err().contains("trigger.batch_size"));
        let zero = MINIMAL.replace("}}", "}, \"trigger\": {\"max_bytes_per_epoch\": 0}}");
        assert!(
            parse(&zero)
                .unwrap_err()
                .contains("trigger.max_bytes_per_epoch must be at least 1")
        );
        let bytes = MINIMAL.replace("}}", "}, \"trigger\": {\"max_bytes_per_epoch\": 1048576}}");
        let c = parse(&bytes).unwrap();
        assert_eq!(c.trigger.max_bytes_per_epoch, Some(1 << 20));
        assert_eq!(
            c.trigger.max_records_per_epoch, 100_000,
            "the others keep their defaults"
        );
    }

    #[test]
    fn secret_references_read_the_environment_and_properties_files() {
        let dir = tempfile::tempdir().unwrap();
        let props = dir.path().join("secrets.properties");
        std::fs::write(&props, "# creds\nuser = app\npassword=s3cr\"et\n").unwrap();
        let p = props.display();
        let text = format!("{{\"a\": \"${{file:{p}:password}}\", \"b\": \"${{env:HOME}}\"}}");
        let out = interpolate(&text, env).unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["a"], "s3cr\"et");
        assert_eq!(v["b"], "/home/me");
        let err = interpolate(&format!("${{file:{p}:missing}}"), env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("has no key `missing`"), "{err}");
        let err = interpolate("${env:NOPE}", env).unwrap_err().to_string();
        assert!(err.contains("NOPE is not set"), "{err}");
    }
}
