//! The `kafka` source: every partition of one or more topics, read with
//! rdkafka, values decoded (Avro via a Schema Registry, or JSON) into Arrow.
//!
//! **Where it resumes.** The offsets the sink committed with the last epoch
//! (`{"<topic>": {"<partition>": <next offset>}}`) are the truth. Like Flink's
//! Kafka source, this one assigns itself every partition of its topics (no
//! group-managed subscription, hence no rebalance that could hand a partition
//! over mid-epoch and replay it elsewhere): resuming is a plain `assign` at the
//! committed offsets. The consumer group is used only to commit offsets after
//! each epoch, so `kafka-consumer-groups --describe` and lag dashboards work.
//! Partitions added to a topic while it runs are found (every
//! `partition_discovery_ms`) and read from their start.
//!
//! **Seeking is exact.** Every (re)assignment (start-up, resume after a
//! pause) fetches from the position itself: a Kafka broker answers a fetch
//! from the middle of a record batch with the whole batch, and librdkafka
//! drops the records before the requested offset. Offsets may have gaps (a
//! compacted log, transaction markers); the next record read is the next one
//! there is.
//!
//! **Memory.** librdkafka prefetches at most `max_prefetch_mb` per partition
//! queue and stops fetching when it is full; a poll returns at most the
//! pipeline's `batch_size` records; when the pipeline stalls (a sink outage)
//! the source is paused (fetching stops) until it goes on. A large backlog
//! therefore costs a bounded amount of memory.
//!
//! **Bad input.** A value that cannot be decoded (bad magic byte, unknown
//! schema id, truncated body, not JSON) becomes a [`BadRecord`] at
//! `topic/partition@offset` with the reason; the pipeline's error policy sends
//! it to the dead-letter output or stops. An unreachable broker or Schema
//! Registry is a retryable error: the pipeline backs off and tries again, and
//! the message being decoded is kept, not skipped.
//!
//! ```json
//! {"type": "kafka", "bootstrap_servers": "localhost:9092", "topics": ["articles.raw.v1"],
//!  "format": "avro", "schema_registry_url": "http://localhost:8081", "start": "earliest"}
//! ```
//!
//! One file of about a thousand lines, on purpose: positions, the poll loop,
//! marker skipping, pausing and the `--available-now` bounds all read and move
//! the same per-partition positions, and their invariants (a position only
//! moves past what was handed over, or past what holds nothing to read) are
//! checked by reading them side by side.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::base_consumer::PartitionQueue;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde::Deserialize;
use tributary_connector::{
    Backlog, BadRecord, ConnectorContext, Error, FromConfig, Offsets, Poll, Result, SchemaRef,
    Source, SourceBatch,
};

use crate::security::{self, Failures};
use tributary_formats::DecodeError;
use tributary_formats::registry::RegistryAccess;
use tributary_formats::rows::FieldSpec;
use tributary_formats::value::{ValueDecoder, ValueFormat};

/// Config of the `kafka` source.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSourceConfig {
    /// `host:port[,host:port…]` of the brokers.
    pub bootstrap_servers: String,
    /// The topics to read, every partition of each.
    pub topics: Vec<String>,
    /// The consumer group offsets are committed to, for lag monitoring only
    /// (Tributary resumes from the offsets in the sink). Default:
    /// `tributary-<pipeline name>`.
    #[serde(default)]
    pub group_id: Option<String>,
    /// Where a partition with no committed offset starts: `earliest` (default)
    /// or `latest`. Only for a pipeline's first run and for new partitions of
    /// a running one; after that the committed offsets decide.
    #[serde(default)]
    pub start: StartAt,
    /// How values are encoded: `avro` (Confluent wire format: magic byte,
    /// schema id, Avro body; needs `schema_registry_url`) or `json` (one JSON
    /// object per message; needs `schema`).
    #[serde(default)]
    pub format: ValueFormat,
    /// The Schema Registry, for `avro`: `http://host:port` or
    /// `https://host:port`.
    #[serde(default)]
    pub schema_registry_url: Option<String>,
    /// The registry's basic-auth user (on Confluent Cloud, the API key).
    #[serde(default)]
    pub schema_registry_username: Option<String>,
    /// The registry's basic-auth password (the API secret): best a secret
    /// reference, `${env:VAR}` or `${file:/path:key}`.
    #[serde(default)]
    pub schema_registry_password: Option<String>,
    /// A PEM file with the CA certificate(s) that signed the registry's TLS
    /// certificate, trusted instead of the system's (relative to the
    /// pipeline file).
    #[serde(default)]
    pub schema_registry_ca: Option<String>,
    /// The columns, for `json` (as the `file` source's `schema`).
    #[serde(default)]
    pub schema: Option<Vec<FieldSpec>>,
    /// Upper bound of prefetched data per partition, in MiB (librdkafka's
    /// `queued.max.messages.kbytes`).
    #[serde(default = "default_prefetch_mb")]
    pub max_prefetch_mb: u64,
    /// How often to look for partitions added to the topics, in ms.
    #[serde(default = "default_discovery_ms")]
    pub partition_discovery_ms: u64,
    /// Extra librdkafka properties (`security.protocol`, `sasl.*`, …), passed
    /// as they are. Ones Tributary sets itself (`group.id`,
    /// `enable.auto.commit`, …) cannot be overridden.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

fn default_prefetch_mb() -> u64 {
    16
}

fn default_discovery_ms() -> u64 {
    30_000
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    #[default]
    Earliest,
    Latest,
}

/// The registry settings of a connector's config: `None` without a URL
/// (then credentials and a CA are a mistake, said so).
pub(crate) fn registry_access(
    who: &str,
    url: Option<&str>,
    username: Option<&str>,
    password: Option<&str>,
    ca: Option<&str>,
    ctx: &ConnectorContext,
) -> Result<Option<RegistryAccess>> {
    let Some(url) = url else {
        if username.is_some() || password.is_some() || ca.is_some() {
            return Err(Error::config(format!(
                "{who}: schema_registry_username, schema_registry_password and schema_registry_ca are for a \
                 Schema Registry: set schema_registry_url (\"format\": \"avro\") or remove them"
            )));
        }
        return Ok(None);
    };
    Ok(Some(RegistryAccess {
        url: url.to_string(),
        username: username.map(str::to_string),
        password: password.map(str::to_string),
        ca: ca.map(|c| ctx.resolve(c)),
    }))
}

/// Properties this source owns; a user may not set them in `properties`.
const RESERVED: &[&str] = &[
    "bootstrap.servers",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "auto.offset.reset",
    "statistics.interval.ms",
    "queued.max.messages.kbytes",
    "enable.partition.eof",
    "isolation.level",
];

impl FromConfig for KafkaSource {
    type Config = KafkaSourceConfig;
    const NAME: &'static str = "kafka source";
    fn from_config(config: KafkaSourceConfig, ctx: &ConnectorContext) -> Result<Self> {
        KafkaSource::new(config, ctx)
    }
}

/// The end of each partition from librdkafka's statistics, which arrive on
/// the consumer's poll (twice a second): lag and "caught up" without a broker
/// round trip. The end is the last stable offset (read_committed: nothing at
/// or after the first open transaction can be read yet), or the high
/// watermark before the broker has reported one.
///
/// It also keeps librdkafka's last connection failure, for the message of
/// an authentication or TLS error ([`crate::security`]).
#[derive(Default)]
struct StatsContext {
    high: Mutex<HashMap<(String, i32), i64>>,
    failures: Failures,
}

impl ClientContext for StatsContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.failures.error(&error, reason);
    }

    /// librdkafka's own log lines, at debug level under the target
    /// `librdkafka` (`TRIBUTARY_LOG=info,librdkafka=debug`; its `debug`
    /// property turns on more): rdkafka would send them to the `log` crate,
    /// which nothing here reads. Errors that matter reach [`Self::error`].
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        tracing::debug!(target: "librdkafka", "{level:?} {fac} {message}");
    }

    fn stats(&self, stats: Statistics) {
        let mut high = self.high.lock().unwrap_or_else(|e| e.into_inner());
        for (topic, t) in stats.topics {
            for (partition, p) in t.partitions {
                // Partition -1 is librdkafka's internal "unassigned" queue.
                let end = if p.ls_offset >= 0 {
                    p.ls_offset
                } else {
                    p.hi_offset
                };
                if partition >= 0 && end >= 0 {
                    high.insert((topic.clone(), partition), end);
                }
            }
        }
    }
}

impl ConsumerContext for StatsContext {}

impl StatsContext {
    /// The latest high watermark of every partition fetched so far.
    fn high(&self) -> HashMap<Partition, i64> {
        self.high.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

type Partition = (String, i32);

/// The source. Connects at [`Source::open`], so building it (as `tributary
/// validate` does) touches no broker.
pub struct KafkaSource {
    config: KafkaSourceConfig,
    group_id: String,
    decoder: ValueDecoder,
    consumer: Option<Arc<BaseConsumer<StatsContext>>>,
    /// Next offset to read, per assigned partition: what a batch reports as
    /// its offsets.
    positions: BTreeMap<Partition, i64>,
    /// A message read but not decoded because the registry was unreachable;
    /// decoded first on the next poll.
    held: Option<HeldMessage>,
    paused: bool,
    last_discovery: Instant,
    /// When a transient consume error was last reported.
    last_warning: Option<Instant>,
    /// A consume error met after records were gathered: returned by the
    /// next poll.
    pending_error: Option<Error>,
    /// One queue per assigned partition (split off the main queue), so a
    /// poll can take from each its share.
    queues: Vec<(Partition, PartitionQueue<StatsContext>)>,
    /// With `--available-now`: the last stable offset of every partition
    /// when the run started. Nothing at or past them is taken, and the
    /// source is exhausted once every position has reached them (a position
    /// steps over transaction markers and aborted records, so an end that is
    /// a marker is reached too).
    ends: Option<BTreeMap<Partition, i64>>,
}

struct HeldMessage {
    topic: String,
    partition: i32,
    offset: i64,
    payload: Option<Vec<u8>>,
}

impl From<&BorrowedMessage<'_>> for HeldMessage {
    fn from(m: &BorrowedMessage<'_>) -> Self {
        Self {
            topic: m.topic().to_string(),
            partition: m.partition(),
            offset: m.offset(),
            payload: m.payload().map(<[u8]>::to_vec),
        }
    }
}

/// Decodes the record at `offset` of `partition` (its value `payload`, read
/// where it lies) into the batch being built and moves the partition's
/// position past it; `Ok(false)` when the registry is unreachable: then the
/// record is copied into `held`, for the next poll. A function of the
/// fields it needs rather than a method, so that the poll loop can call it
/// while a partition queue still lends it the message.
fn take_lent(
    decoder: &mut ValueDecoder,
    positions: &mut BTreeMap<Partition, i64>,
    held: &mut Option<HeldMessage>,
    partition: &Partition,
    offset: i64,
    payload: Option<&[u8]>,
    bad: &mut Vec<BadRecord>,
) -> Result<bool> {
    // Written out only for a record that needs it (bad, or held): not a
    // string per message.
    let position = || format!("{}/{}@{offset}", partition.0, partition.1);
    let outcome = match payload {
        None => Err(DecodeError::Bad(
            "the message has no value (a tombstone)".into(),
        )),
        Some(bytes) => decoder.push(bytes),
    };
    match outcome {
        Ok(()) => {}
        Err(DecodeError::Bad(reason)) => bad.push(BadRecord {
            raw: payload.unwrap_or_default().to_vec(),
            position: position(),
            reason,
        }),
        // Credentials refused, or the URL is not a registry: no retry helps.
        Err(DecodeError::Unavailable(e)) if !e.is_retryable() => return Err(e),
        Err(DecodeError::Unavailable(e)) => {
            tracing::warn!("kafka source: cannot decode {}: {e}", position());
            *held = Some(HeldMessage {
                topic: partition.0.clone(),
                partition: partition.1,
                offset,
                payload: payload.map(<[u8]>::to_vec),
            });
            return Ok(false);
        }
    }
    match positions.get_mut(partition) {
        Some(at) => *at = offset + 1,
        None => {
            positions.insert(partition.clone(), offset + 1);
        }
    }
    Ok(true)
}

/// What a queue gave.
enum Next {
    Record(HeldMessage),
    Failed(KafkaError),
}

impl std::fmt::Debug for KafkaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSource")
            .field("topics", &self.config.topics)
            .finish_non_exhaustive()
    }
}

const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a poll that has records waits for a lagging partition's share
/// before it hands over what it has (alignment over latency, within reason).
const ALIGN_WAIT: Duration = Duration::from_secs(1);

/// Splits `budget` over partitions in proportion to their lags (`None`:
/// not known yet, counted as the largest); equal shares when none lags.
fn share_out(budget: usize, lags: &[Option<i64>]) -> Vec<usize> {
    let n = lags.len().max(1);
    let known_max = lags.iter().flatten().copied().max().unwrap_or(0);
    let lags: Vec<i64> = lags.iter().map(|l| l.unwrap_or(known_max.max(1))).collect();
    let total: i64 = lags.iter().sum();
    if total == 0 {
        return vec![budget.div_ceil(n); lags.len()];
    }
    lags.iter()
        .map(|lag| {
            if *lag == 0 {
                0
            } else {
                ((budget as u128 * *lag as u128).div_ceil(total as u128) as usize).max(1)
            }
        })
        .collect()
}

impl KafkaSource {
    pub fn new(config: KafkaSourceConfig, ctx: &ConnectorContext) -> Result<Self> {
        if config.bootstrap_servers.trim().is_empty() {
            return Err(Error::config(
                "kafka source: bootstrap_servers is empty; give host:port of a broker, e.g. \"localhost:9092\"",
            ));
        }
        if config.topics.is_empty() || config.topics.iter().any(|t| t.trim().is_empty()) {
            return Err(Error::config(
                "kafka source: topics must name at least one topic, e.g. [\"articles.raw.v1\"]",
            ));
        }
        for key in config.properties.keys() {
            if RESERVED.contains(&key.as_str()) {
                return Err(Error::config(format!(
                    "kafka source: properties.`{key}` is set by Tributary itself; use the source's own field \
                     (bootstrap_servers, group_id, start, max_prefetch_mb) or remove it"
                )));
            }
        }
        if config.max_prefetch_mb == 0 {
            return Err(Error::config(
                "kafka source: max_prefetch_mb must be at least 1",
            ));
        }
        let group_id = config
            .group_id
            .clone()
            .unwrap_or_else(|| format!("tributary-{}", ctx.pipeline_id));
        let registry = registry_access(
            "kafka source",
            config.schema_registry_url.as_deref(),
            config.schema_registry_username.as_deref(),
            config.schema_registry_password.as_deref(),
            config.schema_registry_ca.as_deref(),
            ctx,
        )?;
        let decoder = ValueDecoder::with_registry(
            config.format,
            registry.as_ref(),
            config.schema.as_deref(),
        )?;
        Ok(Self {
            config,
            group_id,
            decoder,
            consumer: None,
            positions: BTreeMap::new(),
            held: None,
            paused: false,
            last_discovery: Instant::now(),
            last_warning: None,
            pending_error: None,
            queues: Vec::new(),
            ends: None,
        })
    }

    fn client_config(&self) -> ClientConfig {
        let mut cc = ClientConfig::new();
        for (k, v) in &self.config.properties {
            cc.set(k, v);
        }
        cc.set("bootstrap.servers", &self.config.bootstrap_servers)
            .set("group.id", &self.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            // An offset that no longer exists (deleted by retention) must not
            // be skipped silently: it surfaces as an error.
            .set("auto.offset.reset", "error")
            .set("statistics.interval.ms", "500")
            .set(
                "queued.max.messages.kbytes",
                (self.config.max_prefetch_mb * 1024).to_string(),
            )
            .set("enable.partition.eof", "false")
            // Topics written by transactional producers (Kafka Streams,
            // Flink, Debezium): only committed records, never aborted ones;
            // the ends this source reads up to are last stable offsets.
            .set("isolation.level", "read_committed");
        cc
    }

    fn consumer(&self) -> &BaseConsumer<StatsContext> {
        self.consumer.as_ref().expect("open() before use")
    }

    /// Waits until the brokers answer (the first topic's metadata), and
    /// fails at once when they refuse this client: wrong credentials or an
    /// untrusted certificate are reported as such within a second or so,
    /// not as "unreachable" after [`METADATA_TIMEOUT`].
    fn reach(&self) -> Result<()> {
        let topic = &self.config.topics[0];
        let answered =
            security::metadata(self.consumer().client(), topic, METADATA_TIMEOUT, || {
                // Error events wait on the consumer's queue among
                // statistics and log lines; polling serves them, and the
                // context keeps a refusal. Nothing is assigned yet, so no
                // record is taken here.
                for _ in 0..64 {
                    if let Some(Err(e)) = self.consumer().poll(Duration::ZERO)
                        && let Some(refused) = self.refused(&e)
                    {
                        return Some(refused);
                    }
                }
                let (code, reason) = self.consumer().context().failures.last()?;
                security::refused(
                    "kafka source",
                    code,
                    Some(&reason),
                    &self.config.bootstrap_servers,
                    &self.config.properties,
                )
            })?;
        answered
            .map(|_| ())
            .map_err(|e| self.unreachable(&format!("read the metadata of topic `{topic}`"), e))
    }

    /// The error for brokers that refused this client (authentication or
    /// TLS), when `e` is one.
    fn refused(&self, e: &KafkaError) -> Option<Error> {
        security::refused(
            "kafka source",
            e.rdkafka_error_code()?,
            self.consumer
                .as_ref()
                .and_then(|c| c.context().failures.last())
                .map(|(_, reason)| reason)
                .as_deref(),
            &self.config.bootstrap_servers,
            &self.config.properties,
        )
    }

    /// Every partition of every topic, from the brokers' metadata.
    fn discover(&self) -> Result<Vec<Partition>> {
        let mut found = Vec::new();
        for topic in &self.config.topics {
            let md = self
                .consumer()
                .fetch_metadata(Some(topic), METADATA_TIMEOUT)
                .map_err(|e| {
                    self.unreachable(&format!("read the metadata of topic `{topic}`"), e)
                })?;
            let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
                return Err(self.missing_topic(topic));
            };
            if let Some(err) = t.error() {
                let code = RDKafkaErrorCode::from(err);
                if code == RDKafkaErrorCode::UnknownTopicOrPartition
                    || code == RDKafkaErrorCode::UnknownTopic
                {
                    return Err(self.missing_topic(topic));
                }
                return Err(Error::external(format!(
                    "kafka source: metadata of topic `{topic}` on {}: {code}",
                    self.config.bootstrap_servers
                )));
            }
            if t.partitions().is_empty() {
                return Err(self.missing_topic(topic));
            }
            for p in t.partitions() {
                found.push((topic.clone(), p.id()));
            }
        }
        Ok(found)
    }

    /// Retryable: at start-up the topic may be created a moment after the
    /// pipeline starts; a misspelt name fails once the retries run out.
    fn missing_topic(&self, topic: &str) -> Error {
        Error::external(format!(
            "kafka source: topic `{topic}` does not exist on {}; create it (Tributary does not create topics), \
             or fix source.topics",
            self.config.bootstrap_servers
        ))
    }

    fn unreachable(&self, what: &str, e: KafkaError) -> Error {
        Error::external(format!(
            "kafka source: cannot {what}: {e}; is a broker running at {}? (bootstrap_servers)",
            self.config.bootstrap_servers
        ))
        .with_source(e)
    }

    /// Where a partition without a resume offset starts: resolved to a
    /// concrete offset now, so the first epoch's offsets name real positions.
    fn start_offset(&self, (topic, partition): &Partition, start: StartAt) -> Result<i64> {
        let (low, high) = self
            .consumer()
            .fetch_watermarks(topic, *partition, METADATA_TIMEOUT)
            .map_err(|e| {
                self.unreachable(&format!("read the offsets of {topic}/{partition}"), e)
            })?;
        Ok(match start {
            StartAt::Earliest => low,
            StartAt::Latest => high,
        })
    }

    /// Assigns every known partition at its position. A full `assign` rather
    /// than an incremental one: it happens at start-up, on new partitions and
    /// after a pause.
    fn assign_all(&mut self) -> Result<()> {
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), position) in &self.positions {
            tpl.add_partition_offset(topic, *partition, Offset::Offset(*position))
                .map_err(|e| Error::internal(format!("kafka source: assignment: {e}")))?;
        }
        self.queues.clear();
        let consumer = self.consumer.as_ref().expect("open() before use");
        consumer
            .assign(&tpl)
            .map_err(|e| Error::external(format!("kafka source: assign partitions: {e}")))?;
        // A partition the application paused stays paused across a new
        // `assign` (librdkafka keeps the pause flag on the partition): only
        // `resume` clears it. Without this a source paused while the
        // pipeline was stalled (see `pause`) never fetched again.
        consumer
            .resume(&tpl)
            .map_err(|e| Error::external(format!("kafka source: resume partitions: {e}")))?;
        // `assign` deactivates earlier partition queues: split them again.
        // Records fetched before the split arrive on the main queue, which
        // `poll` reads too.
        self.queues = self
            .positions
            .keys()
            .filter_map(|p| {
                consumer
                    .split_partition_queue(&p.0, p.1)
                    .map(|q| (p.clone(), q))
            })
            .collect();
        self.paused = false;
        Ok(())
    }

    /// Picks up partitions added to the topics since the last look.
    fn discover_new(&mut self) -> Result<()> {
        self.last_discovery = Instant::now();
        let found = self.discover()?;
        let mut added = false;
        for p in found {
            if !self.positions.contains_key(&p) {
                let offset = self.start_offset(&p, StartAt::Earliest)?;
                tracing::info!(
                    "kafka source: new partition {}/{} (from offset {offset})",
                    p.0,
                    p.1
                );
                self.positions.insert(p, offset);
                added = true;
            }
        }
        if added { self.assign_all() } else { Ok(()) }
    }

    fn offsets(&self) -> Offsets {
        let mut by_topic: BTreeMap<&str, serde_json::Map<String, serde_json::Value>> =
            BTreeMap::new();
        for ((topic, partition), offset) in &self.positions {
            by_topic
                .entry(topic)
                .or_default()
                .insert(partition.to_string(), (*offset).into());
        }
        Offsets::new(serde_json::Value::Object(
            by_topic
                .into_iter()
                .map(|(t, m)| (t.to_string(), serde_json::Value::Object(m)))
                .collect(),
        ))
    }

    /// Decodes one message into the batch being built; `Ok(false)` when the
    /// registry is unreachable (the message is held for the next poll).
    fn take(&mut self, msg: HeldMessage, bad: &mut Vec<BadRecord>) -> Result<bool> {
        let partition = (msg.topic, msg.partition);
        take_lent(
            &mut self.decoder,
            &mut self.positions,
            &mut self.held,
            &partition,
            msg.offset,
            msg.payload.as_deref(),
            bad,
        )
    }

    /// Moves positions over offsets that hold nothing to read: transaction
    /// commit/abort markers and the records of aborted transactions.
    /// librdkafka skips them without handing anything over, but advances the
    /// consumer's position past them (when the queue holding the marker is
    /// polled). Without this a partition whose last offset is a marker would
    /// never look read to its end (`--available-now` would not stop), and a
    /// restart would resume on the marker. Safe because every record librdkafka
    /// handed over was taken, except a held one (then nothing moves).
    fn skip_markers(&mut self) {
        if self.held.is_some() {
            return;
        }
        let Ok(at) = self.consumer().position() else {
            return;
        };
        for e in at.elements() {
            let partition = (e.topic().to_string(), e.partition());
            // Under `--available-now` librdkafka may have handed over (and
            // this source dropped, see `admit`) records past the end: the
            // position stops at the end, so the next run reads them.
            let end = self.end(&partition).unwrap_or(i64::MAX);
            if let (Offset::Offset(o), Some(position)) =
                (e.offset(), self.positions.get_mut(&partition))
                && o.min(end) > *position
            {
                *position = o.min(end);
            }
        }
    }

    /// True when every partition has been read up to the high watermark of
    /// the brokers' latest fetch responses (librdkafka's statistics): what
    /// the consumer has actually been offered, with no extra round trip. A
    /// partition not fetched yet is not caught up.
    fn caught_up(&self) -> bool {
        let high = self.consumer().context().high();
        self.positions
            .iter()
            .all(|(p, position)| high.get(p).is_some_and(|h| *position >= *h))
    }

    /// An error event librdkafka recovers from by itself (a broker down or
    /// unreachable, a request timed out): polling goes on.
    fn is_transient(e: &KafkaError) -> bool {
        !matches!(
            e.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::AutoOffsetReset
                    | RDKafkaErrorCode::OffsetOutOfRange
                    | RDKafkaErrorCode::TopicAuthorizationFailed
                    | RDKafkaErrorCode::GroupAuthorizationFailed
                    | RDKafkaErrorCode::SaslAuthenticationFailed
                    | RDKafkaErrorCode::Authentication
                    | RDKafkaErrorCode::SSL
                    | RDKafkaErrorCode::Fatal
            )
        )
    }

    /// The next event of the main queue (statistics are served inside).
    fn next_main(&mut self, wait: Duration) -> Option<Next> {
        Some(match self.consumer().poll(wait)? {
            Ok(m) => Next::Record(HeldMessage::from(&m)),
            Err(e) => Next::Failed(e),
        })
    }

    /// Whether to read `msg`: not when it is below the position, which only
    /// a record fetched before the last (re)assignment can be (it may still
    /// wait on the main queue), nor at or past the partition's end under
    /// `--available-now` (written after the run started: the next run reads
    /// it).
    fn admit(&self, msg: &HeldMessage) -> bool {
        self.admit_at(&(msg.topic.clone(), msg.partition), msg.offset)
    }

    /// [`admit`](Self::admit) of the record at `offset` of `partition`.
    fn admit_at(&self, partition: &Partition, offset: i64) -> bool {
        let position = self.positions.get(partition).copied().unwrap_or(0);
        offset >= position && self.end(partition).is_none_or(|end| offset < end)
    }

    /// Where reading `p` stops: its end under `--available-now`, else none.
    /// A partition found after the run started has no end fixed: it is not
    /// read in this run (end 0) and the next run reads it from its start.
    fn end(&self, p: &Partition) -> Option<i64> {
        self.ends
            .as_ref()
            .map(|ends| ends.get(p).copied().unwrap_or(0))
    }

    /// True when `p` has been read up to its end (`--available-now`).
    fn at_end(&self, p: &Partition) -> bool {
        self.end(p)
            .is_some_and(|end| self.positions.get(p).is_some_and(|at| *at >= end))
    }

    /// A consume error. Transient ones (a broker down: librdkafka reconnects
    /// by itself, with `reconnect.backoff.ms`) are reported at most every
    /// 10 s and polling goes on. Others fail the poll; when records were
    /// already gathered they are handed over first and the error comes back
    /// on the next poll. True when gathering must stop.
    fn failed(&mut self, e: KafkaError, gathered: bool) -> Result<bool> {
        if Self::is_transient(&e) {
            if self
                .last_warning
                .is_none_or(|at| at.elapsed() >= Duration::from_secs(10))
            {
                tracing::warn!("{} (retrying)", self.unreachable("read messages", e));
                self.last_warning = Some(Instant::now());
            }
            return Ok(false);
        }
        let err = self.consume_error(e);
        if gathered {
            self.pending_error = Some(err);
            return Ok(true);
        }
        Err(err)
    }

    /// Lag per partition queue: records on the broker not read yet, from the
    /// latest fetch statistics; `None` before the first statistics name it.
    fn lags(&self) -> Vec<Option<i64>> {
        let high = self.consumer().context().high();
        self.queues
            .iter()
            .map(|(p, _)| {
                let position = self.positions.get(p).copied().unwrap_or(0);
                // Under `--available-now` what lies past the end is not read.
                let end = self.end(p).unwrap_or(i64::MAX);
                high.get(p).map(|h| ((*h).min(end) - position).max(0))
            })
            .collect()
    }

    /// How many records to take from each partition queue this poll: shares
    /// of `budget` in proportion to each partition's lag, as Spark splits
    /// `maxOffsetsPerTrigger` across partitions, so that partitions with a
    /// backlog go through it together and a watermark does not outrun the
    /// partition librdkafka happened to fetch last. A partition whose lag is
    /// not known yet counts as the most lagging one; with no lag anywhere
    /// (caught up), an equal share each.
    fn shares(&self, budget: usize) -> Vec<usize> {
        share_out(budget, &self.lags())
    }

    /// True when a partition that is short of its share has records on the
    /// broker (or may have: lag not known yet), so its fetch is in flight.
    fn lagging(&self, want: &[usize]) -> bool {
        self.lags()
            .iter()
            .zip(want)
            .any(|(lag, want)| *want > 0 && lag.is_none_or(|l| l > 0))
    }

    /// The first partition whose position is outside what the broker holds
    /// now, as a data error that names it, both offsets and the choices.
    /// Beyond the end: the offsets went backwards (the topic was deleted and
    /// recreated, or its log truncated); reading on from the end would skip
    /// whatever the new log holds, so Tributary stops instead.
    fn out_of_range(&self, only: Option<&HashMap<Partition, i64>>) -> Result<Option<Error>> {
        for ((topic, partition), position) in &self.positions {
            if only.is_some_and(|o| !o.contains_key(&(topic.clone(), *partition))) {
                continue;
            }
            let (low, end) = self
                .consumer()
                .fetch_watermarks(topic, *partition, METADATA_TIMEOUT)
                .map_err(|e| {
                    self.unreachable(&format!("read the offsets of {topic}/{partition}"), e)
                })?;
            if *position > end {
                return Ok(Some(Error::data(format!(
                    "kafka source: offsets went backwards in {topic}/{partition}: the committed position is {position} \
                     but the partition now ends at {end} (its log starts at {low}). The topic was deleted and recreated, \
                     or its log was truncated, after the last commit; nothing was read from it. Choose: read the \
                     partition again from its start ({low}) or from its end ({end}) — under `tributary serve`, stop the \
                     connector and PATCH /connectors/<name>/offsets with the offset you choose; with `tributary run`, \
                     give the pipeline a new \"name\" with \"start\": \"earliest\" or \"latest\" — or restore the topic."
                ))));
            }
            if *position < low {
                return Ok(Some(Error::data(format!(
                    "kafka source: {topic}/{partition}: the position to resume from, {position}, is no longer in Kafka: \
                     the log now starts at {low} (ends at {end}); records {position}..{low} were deleted (retention) \
                     before Tributary read them. Choose: go on from {low}, accepting the loss — under `tributary serve`, \
                     stop the connector and PATCH /connectors/<name>/offsets; with `tributary run`, give the pipeline a \
                     new \"name\" with \"start\": \"earliest\" — or restore the records."
                ))));
            }
        }
        Ok(None)
    }

    fn consume_error(&self, e: KafkaError) -> Error {
        if let Some(refused) = self.refused(&e) {
            return refused;
        }
        match e.rdkafka_error_code() {
            Some(RDKafkaErrorCode::AutoOffsetReset) | Some(RDKafkaErrorCode::OffsetOutOfRange) => {
                if let Ok(Some(named)) = self.out_of_range(None) {
                    return named;
                }
                Error::data(format!(
                    "kafka source: {e}: the offset to resume from is no longer in Kafka (deleted by retention \
                     before Tributary read it), so records were lost upstream. To go on from the earliest \
                     offset still there, reset the pipeline's offsets (start a new pipeline name with \
                     \"start\": \"earliest\")"
                ))
            }
            Some(RDKafkaErrorCode::TopicAuthorizationFailed)
            | Some(RDKafkaErrorCode::GroupAuthorizationFailed) => Error::config(format!(
                "kafka source: {e}: check the credentials in properties"
            )),
            _ => self.unreachable("read messages", e),
        }
    }
}

impl Source for KafkaSource {
    fn schema(&self) -> SchemaRef {
        self.decoder.schema()
    }

    fn open(&mut self, resume: Option<&Offsets>) -> Result<()> {
        if self.consumer.is_none() {
            let consumer: BaseConsumer<StatsContext> = self
                .client_config()
                .create_with_context(StatsContext::default())
                .map_err(|e| Error::config(format!("kafka source: {e}")))?;
            self.consumer = Some(Arc::new(consumer));
            self.reach()?;
        }
        let partitions = self.discover()?;
        let resume: HashMap<Partition, i64> = match resume.map(Offsets::as_json) {
            None | Some(serde_json::Value::Null) => HashMap::new(),
            Some(serde_json::Value::Object(topics)) => {
                let mut out = HashMap::new();
                for (topic, parts) in topics {
                    let bad = || {
                        Error::data(format!(
                            "kafka source: committed offsets {} are not {{\"<topic>\": {{\"<partition>\": <offset>}}}}; \
                             they were not written by the kafka source",
                            resume.map(|o| o.as_json().to_string()).unwrap_or_default()
                        ))
                    };
                    let parts = parts.as_object().ok_or_else(bad)?;
                    for (p, o) in parts {
                        let p: i32 = p.parse().map_err(|_| bad())?;
                        let o = o.as_i64().ok_or_else(bad)?;
                        out.insert((topic.clone(), p), o);
                    }
                }
                out
            }
            Some(_) => {
                return Err(Error::data(
                    "kafka source: the committed offsets are not a JSON object; they were not written by the kafka source",
                ));
            }
        };
        let first_run = resume.is_empty();
        self.positions.clear();
        for p in &partitions {
            let offset = match resume.get(p) {
                Some(o) => *o,
                // A partition the last commit did not know is new: read all of it.
                None if !first_run => self.start_offset(p, StartAt::Earliest)?,
                None => self.start_offset(p, self.config.start)?,
            };
            self.positions.insert(p.clone(), offset);
        }
        for (topic, partition) in resume.keys() {
            if !self.positions.contains_key(&(topic.clone(), *partition)) {
                tracing::warn!(
                    "kafka source: {topic}/{partition} has committed offsets but is no longer in source.topics or on the broker; not read"
                );
            }
        }
        // Resumed positions outside the log: stop now, before a fetch
        // (librdkafka would only say "offset out of range").
        if let Some(e) = self.out_of_range(Some(&resume))? {
            return Err(e);
        }
        self.assign_all()?;
        self.last_discovery = Instant::now();
        tracing::info!(
            "kafka source: reading {} partition(s) of {} from {}",
            self.positions.len(),
            self.config.topics.join(", "),
            self.config.bootstrap_servers
        );
        Ok(())
    }

    fn poll(&mut self, max_records: usize) -> Result<Poll> {
        if self.last_discovery.elapsed()
            >= Duration::from_millis(self.config.partition_discovery_ms)
        {
            self.discover_new()?;
        }
        if let Some(e) = self.pending_error.take() {
            return Err(e);
        }
        if self.paused {
            // A resume that failed (see `pause`): try it again.
            self.assign_all()?;
        }
        let mut bad = Vec::new();
        let mut taken = 0usize;
        if let Some(held) = self.held.take() {
            if !self.take(held, &mut bad)? {
                return Err(Error::external(
                    "kafka source: the Schema Registry is unreachable; retrying",
                ));
            }
            taken += 1;
        }
        // Gather up to `max_records`: each partition's share in proportion
        // to its lag (see `shares`), waiting a little for the first record
        // and, after that, only for partitions known to have more.
        let started = Instant::now();
        let mut want = self.shares(max_records.saturating_sub(taken));
        'gather: loop {
            // The main queue: statistics and error events, and any records
            // fetched before the partition queues were split off.
            while let Some(next) = self.next_main(Duration::ZERO) {
                match next {
                    Next::Record(msg) => {
                        if self.admit(&msg) {
                            if !self.take(msg, &mut bad)? {
                                break 'gather;
                            }
                            taken += 1;
                        }
                    }
                    Next::Failed(e) => {
                        if self.failed(e, taken > 0 || !bad.is_empty())? {
                            break 'gather;
                        }
                    }
                }
            }
            // By index: the loop body needs `&mut self` while it reads a queue.
            #[allow(clippy::needless_range_loop)]
            for i in 0..self.queues.len() {
                while want[i] > 0 && taken < max_records {
                    if self.at_end(&self.queues[i].0) {
                        want[i] = 0;
                        break;
                    }
                    // The record is decoded where librdkafka lent it: its
                    // payload is not copied (a partition queue holds one
                    // partition, so the queue's key is the record's).
                    let failed = match self.queues[i].1.poll(Duration::ZERO) {
                        None => break,
                        Some(Ok(m)) => {
                            let partition = &self.queues[i].0;
                            if !self.admit_at(partition, m.offset()) {
                                if self.end(partition).is_some_and(|e| m.offset() >= e) {
                                    // Past the end: so is all that follows.
                                    want[i] = 0;
                                    break;
                                }
                                continue;
                            }
                            if !take_lent(
                                &mut self.decoder,
                                &mut self.positions,
                                &mut self.held,
                                partition,
                                m.offset(),
                                m.payload(),
                                &mut bad,
                            )? {
                                break 'gather;
                            }
                            taken += 1;
                            want[i] -= 1;
                            None
                        }
                        Some(Err(e)) => Some(e),
                    };
                    match failed {
                        None => {}
                        Some(e) => {
                            if self.failed(e, taken > 0 || !bad.is_empty())? {
                                break 'gather;
                            }
                            break;
                        }
                    }
                }
            }
            if taken >= max_records || want.iter().all(|w| *w == 0) {
                break;
            }
            // Wait (briefly) only for partitions that have records on the
            // broker not read yet: their fetch is in flight. Others are
            // caught up; waiting for them would only add latency.
            let waiting = if taken == 0 {
                started.elapsed() < Duration::from_millis(100)
            } else {
                started.elapsed() < ALIGN_WAIT && self.lagging(&want)
            };
            if !waiting {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if tracing::enabled!(tracing::Level::DEBUG) {
            tracing::debug!(
                "kafka source: poll took {taken} (unfilled shares {:?}, lags {:?}, positions {:?})",
                want,
                self.lags(),
                self.positions.values().collect::<Vec<_>>()
            );
        }
        self.skip_markers();
        if taken == 0 {
            if self.held.is_some() {
                return Err(Error::external(
                    "kafka source: the Schema Registry is unreachable; retrying",
                ));
            }
            if let Some(ends) = &self.ends {
                // `--available-now`: done once every partition is read up to
                // where it ended at the start. Records that arrived since are
                // not taken (`admit`), so this comes however fast they do.
                let done = ends
                    .iter()
                    .all(|(p, end)| self.positions.get(p).is_some_and(|at| at >= end));
                return Ok(if done {
                    Poll::Exhausted
                } else {
                    Poll::Batch(SourceBatch::empty(self.decoder.schema(), self.offsets()))
                });
            }
            // Idle only when truly caught up: a poll can come back empty while
            // a fetch is in flight. An empty batch says "nothing yet, more to
            // come".
            return Ok(if self.caught_up() {
                Poll::Idle
            } else {
                Poll::Batch(SourceBatch::empty(self.decoder.schema(), self.offsets()))
            });
        }
        let records = self.decoder.finish()?;
        Ok(Poll::Batch(SourceBatch {
            records,
            bad,
            offsets: self.offsets(),
        }))
    }

    fn start_position(&self) -> Option<Offsets> {
        // Only `latest` moves: a restart from `earliest` reads the same.
        (self.config.start == StartAt::Latest).then(|| self.offsets())
    }

    fn bound_to_available_now(&mut self) -> Result<()> {
        let mut ends = BTreeMap::new();
        for p in self.positions.keys() {
            // read_committed: the "high" end of a ListOffsets is the last
            // stable offset, as Spark's AvailableNow takes it.
            let (_, end) = self
                .consumer()
                .fetch_watermarks(&p.0, p.1, METADATA_TIMEOUT)
                .map_err(|e| self.unreachable(&format!("read the end of {}/{}", p.0, p.1), e))?;
            ends.insert(p.clone(), end);
        }
        tracing::info!("kafka source: --available-now reads up to {ends:?}");
        self.ends = Some(ends);
        Ok(())
    }

    fn committed(&mut self, offsets: &Offsets) -> Result<()> {
        let Some(topics) = offsets.as_json().as_object() else {
            return Ok(());
        };
        let mut tpl = TopicPartitionList::new();
        for (topic, parts) in topics {
            for (p, o) in parts.as_object().into_iter().flatten() {
                if let (Ok(p), Some(o)) = (p.parse::<i32>(), o.as_i64()) {
                    let _ = tpl.add_partition_offset(topic, p, Offset::Offset(o));
                }
            }
        }
        // For lag dashboards only; a failure here loses nothing.
        self.consumer()
            .commit(&tpl, CommitMode::Async)
            .map_err(|e| Error::external(format!("kafka source: commit group offsets: {e}")))
    }

    fn backlog(&mut self) -> Vec<Backlog> {
        let Some(consumer) = self.consumer.as_ref() else {
            return Vec::new();
        };
        let high = consumer.context().high();
        self.positions
            .iter()
            .filter_map(|((topic, partition), position)| {
                let h = high.get(&(topic.clone(), *partition))?;
                Some(Backlog {
                    partition: format!("{topic}/{partition}"),
                    records: (*h - *position).max(0) as u64,
                })
            })
            .collect()
    }

    fn pause(&mut self, paused: bool) {
        if paused == self.paused || self.consumer.is_none() {
            return;
        }
        if paused {
            let consumer = self.consumer();
            match consumer.assignment().and_then(|a| consumer.pause(&a)) {
                Ok(()) => self.paused = true,
                Err(e) => tracing::warn!("kafka source: pause fetching: {e}"),
            }
        } else {
            // Re-assign at the positions, and resume (`assign_all`):
            // librdkafka dropped what it had prefetched when paused, and
            // records still on the main queue are below them and skipped. A
            // failure leaves the partitions paused and is tried again by the
            // next poll.
            if let Err(e) = self.assign_all() {
                tracing::warn!("kafka source: resume fetching: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_follow_the_lag() {
        // Proportional to lag, at least one for any partition that lags.
        assert_eq!(
            share_out(2000, &[Some(300), Some(100), Some(0)]),
            vec![1500, 500, 0]
        );
        assert_eq!(share_out(10, &[Some(1_000_000), Some(1)]), vec![10, 1]);
        // Nothing known: equal shares; an unknown lag counts as the largest.
        assert_eq!(share_out(2000, &[None, None]), vec![1000, 1000]);
        assert_eq!(
            share_out(3000, &[Some(100), None, Some(50)]),
            vec![1200, 1200, 600]
        );
        // All caught up: equal shares of whatever arrives.
        assert_eq!(share_out(2000, &[Some(0), Some(0)]), vec![1000, 1000]);
    }

    #[test]
    fn reserved_properties_are_refused_with_the_field_to_use() {
        let config: KafkaSourceConfig = serde_json::from_value(serde_json::json!({
            "bootstrap_servers": "localhost:9092",
            "topics": ["t"],
            "format": "bytes",
            "properties": {"group.id": "x"}
        }))
        .unwrap();
        let ctx = ConnectorContext {
            pipeline_id: "p".into(),
            base_dir: ".".into(),
            state_dir: None,
        };
        let err = KafkaSource::new(config, &ctx).unwrap_err().to_string();
        assert!(
            err.contains("properties.`group.id`") && err.contains("group_id"),
            "{err}"
        );
    }
}
