//! The contract between Tributary's runtime and its connectors.
//!
//! A **source** produces Arrow record batches and says, after every batch, where it
//! is (its [`Offsets`]); a **sink** stages batches and makes them visible atomically
//! at [`Sink::commit`], together with the epoch, the source offsets and the
//! watermark. That is the whole exactly-once protocol from a connector's point of
//! view: the runtime decides when an epoch ends, and on start asks the sink what
//! it last committed ([`Sink::last_commit`]) and hands those offsets back to the
//! source ([`Source::open`]).
//!
//! This crate has no dependency on the runtime, and its traits are object safe and
//! synchronous: connectors that need async I/O own a small runtime of their own, so
//! a connector can later be loaded from a shared library without sharing an async
//! executor or allocator across the boundary.
//!
//! ```
//! use tributary_connector::{Offsets, SourceBatch};
//! let offsets = Offsets::new(serde_json::json!({"file": "a.jsonl", "line": 3}));
//! assert_eq!(offsets.as_json()["line"], 3);
//! # let _ = SourceBatch::empty;
//! let ctx = tributary_connector::ConnectorContext { base_dir: "examples/generator".into(), ..Default::default() };
//! assert_eq!(ctx.resolve("../../quickstart/chk"), std::path::PathBuf::from("quickstart/chk"));
//! assert_eq!(ctx.resolve("/abs/x"), std::path::PathBuf::from("/abs/x"));
//! assert_eq!(tributary_connector::redact_uri("postgres://me:pw@h/db"), "postgres://me:***@h/db");
//! ```

#![forbid(unsafe_code)]

use std::fmt;
use std::sync::Arc;

pub mod commit_record;

pub use arrow_array::RecordBatch;
pub use arrow_schema::{Schema, SchemaRef};
use serde::{Deserialize, Serialize};

/// Where a source is. Opaque to the runtime: it is stored in checkpoints and in
/// the sink's commit metadata as JSON, and handed back to the same source type.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Offsets(serde_json::Value);

impl Offsets {
    pub fn new(value: serde_json::Value) -> Self {
        Self(value)
    }
    pub fn as_json(&self) -> &serde_json::Value {
        &self.0
    }
    pub fn into_json(self) -> serde_json::Value {
        self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_null()
    }
}

/// A record the source could not turn into a row (a malformed line, an unknown
/// schema id). The runtime sends it to the dead-letter output or stops, by the
/// pipeline's error policy; either way it is never silently skipped.
#[derive(Clone, Debug, PartialEq)]
pub struct BadRecord {
    /// The raw bytes as read.
    pub raw: Vec<u8>,
    /// Where it came from, e.g. `events.jsonl:17` or `topic/3@1042`.
    pub position: String,
    /// What is wrong with it, for a person.
    pub reason: String,
}

/// One poll's worth of input.
#[derive(Clone, Debug)]
pub struct SourceBatch {
    /// Good rows, in the source's schema.
    pub records: RecordBatch,
    /// Rows that could not be read, with reasons.
    pub bad: Vec<BadRecord>,
    /// The source position *after* this batch: resuming here continues with the
    /// next unread record.
    pub offsets: Offsets,
}

impl SourceBatch {
    pub fn empty(schema: SchemaRef, offsets: Offsets) -> Self {
        Self {
            records: RecordBatch::new_empty(schema),
            bad: Vec::new(),
            offsets,
        }
    }
    pub fn len(&self) -> usize {
        self.records.num_rows() + self.bad.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What [`Source::poll`] found.
#[derive(Debug)]
pub enum Poll {
    /// Some records (possibly only bad ones).
    Batch(SourceBatch),
    /// Nothing new right now; the source may have more later.
    Idle,
    /// The source is bounded and has been read to the end.
    Exhausted,
}

/// Produces record batches. Called from one dedicated thread; may block briefly.
pub trait Source: Send {
    /// Arrow schema of the batches this source produces.
    fn schema(&self) -> SchemaRef;

    /// Positions the source. `resume` is what an earlier batch reported as its
    /// `offsets` (and the sink committed); `None` means start from the beginning
    /// (or the configured start position).
    fn open(&mut self, resume: Option<&Offsets>) -> Result<()>;

    /// Reads up to `max_records` records.
    fn poll(&mut self, max_records: usize) -> Result<Poll>;

    /// Where an opened source stands before anything is read, when that is
    /// not simply "the beginning": a Kafka source started at `latest` resolves
    /// the end of each partition at [`Source::open`]. The runtime stores it
    /// in the checkpoint store before the first poll, so a crash before the
    /// first commit resumes there instead of resolving `latest` anew (and
    /// skipping what arrived in between). Default: `None` (a restart from
    /// the beginning reads the same records).
    fn start_position(&self) -> Option<Offsets> {
        None
    }

    /// Bounds an opened source to what is available now (`--available-now`,
    /// Spark's `prepareForTriggerAvailableNow`): it fixes its end positions
    /// and returns [`Poll::Exhausted`] once it has read up to them, however
    /// much more arrives meanwhile. Default: nothing to fix; the run ends at
    /// the first [`Poll::Idle`].
    fn bound_to_available_now(&mut self) -> Result<()> {
        Ok(())
    }

    /// Everything the runtime has seen up to `offsets` is durably committed
    /// downstream. Sources may acknowledge upstream (e.g. Kafka group offsets, for
    /// lag monitoring only). Default: nothing to do.
    fn committed(&mut self, offsets: &Offsets) -> Result<()> {
        let _ = offsets;
        Ok(())
    }

    /// How far behind its input the source is, per partition (Kafka consumer
    /// lag), when it knows. Called from the source's thread after polls, for
    /// metrics only. Default: nothing to report.
    fn backlog(&mut self) -> Vec<Backlog> {
        Vec::new()
    }

    /// Backpressure: the pipeline is busy (`true`) and will not take another
    /// batch soon, or has caught up again (`false`). A source that prefetches
    /// (Kafka) stops fetching meanwhile. Default: nothing to do.
    fn pause(&mut self, paused: bool) {
        let _ = paused;
    }
}

/// Records a source has not read yet in one partition of its input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backlog {
    /// The partition, e.g. `articles.raw.v1/3`.
    pub partition: String,
    /// Records between the source's position and the end of the partition.
    pub records: u64,
}

/// What a pipeline commits at the end of an epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochCommit {
    /// The pipeline's id (its name); a table may be written by several pipelines.
    pub pipeline_id: String,
    /// Strictly increasing per pipeline, starting at 1.
    pub epoch: u64,
    /// Source position after the last record of this epoch.
    pub offsets: Offsets,
    /// Watermark after this epoch, in microseconds since the Unix epoch (UTC).
    pub watermark_micros: Option<i64>,
}

/// What a sink reports about its last commit for a pipeline: the truth from
/// which the runtime resumes.
pub type CommittedEpoch = EpochCommit;

/// The run of a pipeline that owns it now. Each run that starts takes the
/// pipeline over with a generation one higher than the last (the checkpoint
/// store hands them out), so of two instances of one pipeline — a rolling
/// deploy, `tributary run` next to a worker — the one that started last
/// owns it, and the older one is fenced: its commits fail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// Strictly increasing per pipeline, starting at 1.
    pub generation: u64,
    /// A random id of the run.
    pub run_id: String,
    /// The host name of the machine it runs on.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// When it started, RFC 3339 in UTC.
    pub started_at: String,
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "run {} (pid {} on {}, started {}, generation {})",
            self.run_id, self.pid, self.host, self.started_at, self.generation
        )
    }
}

/// The error of a run that a newer owner fenced: `other` took pipeline
/// `pipeline` over (`found` says where that was seen) while `me` ran. Not
/// retryable: the run stops without committing.
pub fn fenced(pipeline: &str, me: &Owner, other: &dyn fmt::Display, found: &str) -> Error {
    Error::external(format!(
        "pipeline `{pipeline}` is fenced: {other} owns it now ({found}), and this {me} stops without \
         committing, so that only one instance writes. Two instances of one pipeline were running \
         (a rolling deploy, `tributary run` next to `tributary serve`, a second worker). Nothing is \
         lost: the owner goes on from the last commit. If this instance is the one you want, stop the \
         other one and start this one again"
    ))
    .retryable(false)
}

/// Receives record batches and makes them visible atomically per epoch.
pub trait Sink: Send {
    /// Called once, by the run that owns the pipeline, before
    /// [`Sink::recover`]: `owner` takes the pipeline over in this sink.
    /// From then on a commit of an older owner (a lower generation) must
    /// fail inside its [`Sink::commit`], checked atomically with the commit
    /// itself, with the error of [`fenced`] naming `owner`; and if a newer
    /// owner has taken over already, `fence` fails so. Default: nothing, and
    /// such a sink is fenced only by the checkpoint store, whose write
    /// before each commit refuses an older owner (a commit already past that
    /// write still lands).
    fn fence(&mut self, pipeline_id: &str, owner: &Owner) -> Result<()> {
        let _ = (pipeline_id, owner);
        Ok(())
    }

    /// Called once, only by the run that owns the pipeline, before
    /// [`Sink::last_commit`]: undo what an interrupted commit left behind
    /// (files made visible without their commit record, say). Default:
    /// nothing to do.
    fn recover(&mut self, pipeline_id: &str) -> Result<()> {
        let _ = pipeline_id;
        Ok(())
    }

    /// The last epoch this sink committed for `pipeline_id`, if any. Only
    /// reads: anyone may ask at any time (the REST worker's offsets call asks
    /// while the pipeline runs), so nothing may be changed or removed here;
    /// clean-up belongs in [`Sink::recover`] or the owner's `write`/`commit`.
    fn last_commit(&mut self, pipeline_id: &str) -> Result<Option<CommittedEpoch>>;

    /// Stages a batch. For an exactly-once sink nothing written here may be
    /// visible to readers before [`Sink::commit`] returns; an at-least-once
    /// sink may send it on at once (a Kafka producer does).
    fn write(&mut self, batch: &RecordBatch) -> Result<()>;

    /// Makes everything staged since the previous commit visible, together with
    /// `commit`'s metadata, in one atomic step. Must be idempotent per epoch: if
    /// `commit.epoch` is already committed for the pipeline, return
    /// `Ok(CommitOutcome::AlreadyCommitted)` without writing again. After a
    /// retryable error the runtime calls it again with the same `commit`: the
    /// staged data must still be there for that call (a sink that lost it
    /// returns a non-retryable error, and the pipeline stops and replays the
    /// epoch from its last commit).
    fn commit(&mut self, commit: &EpochCommit) -> Result<CommitOutcome>;

    /// Short human description of where the data goes (for the progress line).
    fn describe(&self) -> String {
        String::from("sink")
    }

    /// Rows currently visible in the destination, if cheap to know.
    fn row_count(&mut self) -> Option<u64> {
        None
    }

    /// The delivery guarantee this sink gives, as configured. The runtime
    /// refuses a pipeline that asks for more (its `delivery` setting) and
    /// states the guarantee in force when it starts. Default: at-least-once,
    /// the most a sink that does not say otherwise can be trusted with.
    fn delivery(&self) -> Delivery {
        Delivery::AtLeastOnce
    }

    /// [`Sink::write`] for a batch some of whose rows this sink may be
    /// unable to write (a value that does not fit its column's type, a null
    /// in a required field): those rows are left out and returned, each
    /// with its reason, and the others are staged. The runtime sends the
    /// refused rows to the dead-letter output or stops, by the pipeline's
    /// error policy. An error is still an error for the whole batch (a
    /// schema that cannot be written at all, an I/O failure). Default:
    /// [`Sink::write`], refusing nothing.
    fn write_or_refuse(&mut self, batch: &RecordBatch) -> Result<Vec<RefusedRow>> {
        self.write(batch).map(|()| Vec::new())
    }

    /// Bytes this epoch has staged so far, as they will land (a data
    /// file's encoded size), for the runtime's `max_bytes_per_epoch`
    /// trigger. `None` (the default): the sink does not know, and the
    /// runtime counts the in-memory size of the batches it wrote instead.
    fn staged_bytes(&mut self) -> Option<u64> {
        None
    }

    /// Where this sink keeps what it writes, as `(what, where)` pairs
    /// (`("catalog", "sqlite:/data/warehouse/catalog.db")`), for
    /// `tributary validate` to tell the user. Computed from the config
    /// alone: nothing is touched. Default: nothing to say.
    fn locations(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// A row of a batch that a sink could not write ([`Sink::write_or_refuse`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefusedRow {
    /// The row's index in the batch.
    pub row: usize,
    /// Why, for a person: the field, the value and the column's type.
    pub reason: String,
}

/// What a sink promises about each record the source produced, across crashes
/// and restarts (Flink's `DeliveryGuarantee`, minus `none`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Delivery {
    /// Nothing is lost; after a crash, records of the epoch that was in flight
    /// may be delivered again.
    AtLeastOnce,
    /// Nothing is lost and nothing is delivered twice: an epoch's records
    /// become visible atomically, together with the offsets they came from.
    ExactlyOnce,
}

impl Delivery {
    /// `at-least-once` or `exactly-once`, as configs spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AtLeastOnce => "at-least-once",
            Self::ExactlyOnce => "exactly-once",
        }
    }
}

impl fmt::Display for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Result of [`Sink::commit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitOutcome {
    Committed,
    /// The epoch was already committed (for example by a run that crashed after
    /// committing but before recording it); nothing was written.
    AlreadyCommitted,
}

/// Builds a connector from its JSON config (the object under `source` or `sink`
/// in the pipeline, without its `type`).
pub type SourceFactory = fn(&serde_json::Value, &ConnectorContext) -> Result<Box<dyn Source>>;
pub type SinkFactory = fn(&serde_json::Value, &ConnectorContext) -> Result<Box<dyn Sink>>;

/// What the runtime tells a connector when it builds it.
#[derive(Clone, Debug, Default)]
pub struct ConnectorContext {
    /// The pipeline's name.
    pub pipeline_id: String,
    /// Folder of the pipeline file, for resolving relative paths in the config.
    pub base_dir: std::path::PathBuf,
    /// A local folder, private to this pipeline, where a connector may keep
    /// small state of its own: the commit record of a sink whose destination
    /// cannot hold one (Kafka, stdout). The runtime sets it to
    /// `<checkpoint location>/connectors` when checkpoints are kept in a local
    /// folder; `None` otherwise (a `postgres://` checkpoint store).
    pub state_dir: Option<std::path::PathBuf>,
}

impl ConnectorContext {
    /// Resolves `path` against the pipeline file's folder when it is relative.
    pub fn resolve(&self, path: &str) -> std::path::PathBuf {
        resolve(&self.base_dir, path)
    }
}

/// `path` against `base` when relative, with `.` and `..` folded away
/// lexically (the path may not exist yet), so messages show clean paths.
pub fn resolve(base: &std::path::Path, path: &str) -> std::path::PathBuf {
    use std::path::Component;
    let p = std::path::Path::new(path);
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    };
    let mut out = std::path::PathBuf::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir) => {}
                _ => out.push(".."),
            },
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        std::path::PathBuf::from(".")
    } else {
        out
    }
}

/// A connector made from its typed config. Implementing this is all a
/// connector does to be registered: the one generic factory
/// ([`build_source`] / [`build_sink`], or [`ConnectorKind::source`] /
/// [`ConnectorKind::sink`] for a registry entry) parses the JSON into
/// [`FromConfig::Config`], naming the connector in serde's message, and calls
/// [`FromConfig::from_config`].
///
/// ```ignore
/// impl FromConfig for Blackhole {
///     type Config = BlackholeConfig;
///     const NAME: &'static str = "blackhole sink";
///     fn from_config(_: BlackholeConfig, _: &ConnectorContext) -> Result<Self> {
///         Ok(Blackhole::default())
///     }
/// }
/// registry.insert("blackhole", ConnectorKind::sink::<Blackhole>());
/// ```
pub trait FromConfig: Sized {
    /// The config struct (serde, `deny_unknown_fields`).
    type Config: serde::de::DeserializeOwned;
    /// How messages name the connector: `"kafka source"`.
    const NAME: &'static str;
    /// Builds the connector; checks the config's meaning (ranges, paths).
    fn from_config(config: Self::Config, ctx: &ConnectorContext) -> Result<Self>;
}

/// The factory of every source: parse the config as `S::Config`, build `S`.
pub fn build_source<S: Source + FromConfig + 'static>(
    config: &serde_json::Value,
    ctx: &ConnectorContext,
) -> Result<Box<dyn Source>> {
    Ok(Box::new(S::from_config(
        parse_config(S::NAME, config)?,
        ctx,
    )?))
}

/// The factory of every sink: parse the config as `S::Config`, build `S`.
pub fn build_sink<S: Sink + FromConfig + 'static>(
    config: &serde_json::Value,
    ctx: &ConnectorContext,
) -> Result<Box<dyn Sink>> {
    Ok(Box::new(S::from_config(
        parse_config(S::NAME, config)?,
        ctx,
    )?))
}

/// A registered connector type.
#[derive(Clone, Copy)]
pub enum ConnectorKind {
    Source(SourceFactory),
    Sink(SinkFactory),
}

impl ConnectorKind {
    /// The registry entry of a source type.
    pub fn source<S: Source + FromConfig + 'static>() -> Self {
        Self::Source(build_source::<S>)
    }

    /// The registry entry of a sink type.
    pub fn sink<S: Sink + FromConfig + 'static>() -> Self {
        Self::Sink(build_sink::<S>)
    }

    /// `source` or `sink`, as listings name it.
    pub fn role(&self) -> &'static str {
        match self {
            Self::Source(_) => "source",
            Self::Sink(_) => "sink",
        }
    }
}

impl fmt::Debug for ConnectorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Source(_) => "Source",
            Self::Sink(_) => "Sink",
        })
    }
}

/// Who is at fault, which decides what the user should do. New kinds may be
/// added: match with a fallback arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The connector's config is wrong: fix it and run again.
    Config,
    /// The external system failed or is unreachable: retrying may help.
    External,
    /// Stored data (offsets, a table, a file) is not what we expect.
    Data,
    /// A bug in the connector.
    Internal,
}

/// A connector error: a kind, a message that names the thing and the fix, and
/// whether retrying the same call may succeed. Built with the constructors
/// below and read with the accessors, so fields can be added without breaking
/// connectors.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    retryable: bool,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            retryable: kind == ErrorKind::External,
            source: None,
        }
    }
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }
    pub fn external(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::External, message)
    }
    pub fn data(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Data, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }
    pub fn retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }
    /// Who is at fault.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    /// The message: what failed and the fix.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// Whether trying the same call again may succeed.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Parses a connector config into its typed struct, turning serde's message into
/// one that names the connector.
pub fn parse_config<T: serde::de::DeserializeOwned>(
    connector: &str,
    value: &serde_json::Value,
) -> Result<T> {
    serde_json::from_value(value.clone())
        .map_err(|e| Error::config(format!("{connector} config: {e}")))
}

/// A URI fit for messages and logs: `postgres://user:secret@host/db` →
/// `postgres://user:***@host/db`.
pub fn redact_uri(uri: &str) -> String {
    match (uri.find("://"), uri.rfind('@')) {
        (Some(s), Some(at)) if at > s => match uri[s + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &uri[..s + 3], &uri[at..]),
            None => uri.to_string(),
        },
        _ => uri.to_string(),
    }
}

/// Microseconds since the Unix epoch for Arrow's timestamp types with a UTC zone,
/// the one time zone Tributary writes (`+00:00`, as Iceberg's `timestamptz`).
pub const UTC: &str = "+00:00";

/// Test hook for crash tests: `TRIBUTARY_CRASH_AT=<point>@<n>` aborts the
/// process the n-th time it reaches `point`. The runtime's points are
/// `checkpoint-written` and `committed`; folder sinks add `files-published`
/// (an epoch's files are visible, its commit record not yet written). Off
/// unless the variable is set.
pub fn crash_point(point: &str) {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    static TARGET: OnceLock<Option<(String, u64)>> = OnceLock::new();
    static SEEN: AtomicU64 = AtomicU64::new(0);
    let target = TARGET.get_or_init(|| {
        let spec = std::env::var("TRIBUTARY_CRASH_AT").ok()?;
        let (name, n) = spec.split_once('@')?;
        Some((name.to_string(), n.parse().ok()?))
    });
    if let Some((name, n)) = target
        && name == point
        && SEEN.fetch_add(1, Relaxed) + 1 == *n
    {
        eprintln!("TRIBUTARY_CRASH_AT: aborting at {point} #{n}");
        std::process::abort();
    }
}

/// Shared-ownership schema helper.
pub fn schema_ref(schema: Schema) -> SchemaRef {
    Arc::new(schema)
}
