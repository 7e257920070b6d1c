//! The `kafka` sink: every row becomes one message on a topic, its value JSON
//! or Avro (Confluent wire format: magic byte 0, the 4-byte schema id, the
//! Avro body; the schema is derived from the rows' Arrow schema and registered
//! as `<topic>-value`), its key optionally a column's value.
//!
//! **Delivery: exactly-once with `"transactions": true`.** Each epoch is one
//! Kafka transaction (`transactional.id` `tributary-<pipeline>` by default):
//! the epoch's messages and its commit record — epoch, source offsets,
//! watermark, as JSON in the metadata of an offset committed for the consumer
//! group `tributary-sink-<pipeline>` on partition 0 of the topic, through
//! `send_offsets_to_transaction` — become visible together or not at all.
//! Readers with `isolation.level=read_committed` (librdkafka's default, not
//! the Java client's) see every row once. At start `init_transactions` fences
//! any older instance with the same `transactional.id` (a zombie: its next
//! commit fails and it stops) and aborts its open transaction; the commit
//! record is then read back with `require_stable` offsets.
//!
//! **Delivery otherwise: at-least-once.** Without transactions a topic cannot
//! take an epoch's messages and its offsets in one atomic step. So rows are
//! produced as they arrive (idempotent producer:
//! librdkafka's own retries add no duplicates), and at the end of an epoch
//! [`Sink::commit`] waits until every message is acknowledged by the broker
//! (`acks=all`), fails the epoch if any was not, and only then writes the
//! commit record: a small local file,
//! `<checkpoint location>/connectors/kafka-<topic>.commit.json` (or
//! `commit_record`), holding the epoch, offsets and watermark. A restart
//! resumes from that record, so nothing is lost; a crash (or a failed
//! delivery) after some of an epoch's messages were sent but before its
//! record was written sends that epoch's rows again. Consumers see duplicates
//! only then, and only of that one epoch; dedup downstream by key if that
//! matters.
//!
//! ```json
//! {"type": "kafka", "bootstrap_servers": "localhost:9092", "topic": "articles.curated.v1",
//!  "format": "avro", "schema_registry_url": "http://localhost:8081", "key_field": "id"}
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apache_avro::writer::datum::GenericDatumWriter;
use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use schema_registry_converter::blocking::schema_registry::{SrSettings, post_schema};
use schema_registry_converter::schema_registry_common::{SchemaType, SuppliedSchema};
use serde::Deserialize;
use tributary_connector::commit_record::{CommitRecord, RecordFile};
use tributary_connector::{
    CommitOutcome, CommittedEpoch, ConnectorContext, Delivery, EpochCommit, Error, FromConfig,
    RecordBatch, Result, SchemaRef, Sink, crash_point, redact_uri,
};

use crate::security::{self, Failures};
use crate::source::registry_access;
use tributary_formats::registry::untrusted_certificate;
use tributary_formats::{confluent, encode};

/// Config of the `kafka` sink.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSinkConfig {
    /// `host:port[,host:port…]` of the brokers.
    pub bootstrap_servers: String,
    /// The topic to write; it must exist.
    pub topic: String,
    /// `json` (default: one JSON object per message) or `avro` (Confluent
    /// wire format; needs `schema_registry_url`).
    #[serde(default)]
    pub format: SinkFormat,
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
    /// The column whose value (as text) keys each message; none: no key
    /// (messages spread over partitions by librdkafka).
    #[serde(default)]
    pub key_field: Option<String>,
    /// Where the commit record is kept (relative to the pipeline file).
    /// Default: `<checkpoint location>/connectors/kafka-<topic>.commit.json`;
    /// required when the checkpoint location is not a local folder.
    #[serde(default)]
    pub commit_record: Option<String>,
    /// How long a commit waits for the broker to acknowledge the epoch's
    /// messages, in milliseconds (librdkafka's `message.timeout.ms`).
    #[serde(default = "default_delivery_timeout_ms")]
    pub delivery_timeout_ms: u64,
    /// Write each epoch as one Kafka transaction: exactly-once for
    /// `read_committed` readers. Default: false (at-least-once, commit record
    /// in a local file).
    #[serde(default)]
    pub transactions: bool,
    /// With `transactions`: the producer's `transactional.id`, one per
    /// pipeline (a second instance with the same id fences the first).
    /// Default: `tributary-<pipeline name>`.
    #[serde(default)]
    pub transactional_id: Option<String>,
    /// With `transactions`: the consumer group whose committed offset (on
    /// partition 0 of `topic`) holds the commit record. Default:
    /// `tributary-sink-<pipeline name>`.
    #[serde(default)]
    pub commit_group: Option<String>,
    /// Extra librdkafka producer properties (`security.protocol`, `sasl.*`,
    /// `compression.type`, `linger.ms`, …), passed as they are. Ones this sink
    /// sets for its guarantee cannot be overridden.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

fn default_delivery_timeout_ms() -> u64 {
    60_000
}

/// How message values are encoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkFormat {
    #[default]
    Json,
    Avro,
}

/// Properties this sink owns.
const RESERVED: &[&str] = &[
    "bootstrap.servers",
    "enable.idempotence",
    "acks",
    "message.timeout.ms",
    "transactional.id",
];

/// Kafka brokers refuse offset metadata longer than this by default
/// (`offset.metadata.max.bytes`).
const METADATA_MAX: usize = 4096;

/// Delivery reports, counted by the producer's background thread.
#[derive(Default)]
struct Reports {
    failed: u64,
    first_error: Option<String>,
}

struct DeliveryContext {
    reports: Arc<Mutex<Reports>>,
    /// Authentication and TLS failures, for their message.
    failures: Failures,
}

impl ClientContext for DeliveryContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.failures.error(&error, reason);
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            let mut r = self.reports.lock().unwrap_or_else(|p| p.into_inner());
            r.failed += 1;
            r.first_error.get_or_insert_with(|| e.to_string());
        }
    }
}

/// The Avro schema in use: for which Arrow schema, and its registry id.
struct AvroWriter {
    arrow: SchemaRef,
    schema: apache_avro::Schema,
    id: u32,
}

/// The sink. Connects lazily, at [`Sink::last_commit`].
pub struct KafkaSink {
    config: KafkaSinkConfig,
    /// The local commit record (without transactions).
    record: Option<RecordFile>,
    /// With transactions: reads the commit record back, and names the group
    /// it is committed for.
    txn: Option<Txn>,
    /// A transaction is open (with transactions).
    in_txn: bool,
    pipeline_id: String,
    producer: Option<ThreadedProducer<DeliveryContext>>,
    reports: Arc<Mutex<Reports>>,
    avro: Option<AvroWriter>,
    /// The Schema Registry client, for `avro`.
    registry: Option<SrSettings>,
    last: Option<CommitRecord>,
    rows: u64,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl FromConfig for KafkaSink {
    type Config = KafkaSinkConfig;
    const NAME: &'static str = "kafka sink";
    fn from_config(config: KafkaSinkConfig, ctx: &ConnectorContext) -> Result<Self> {
        KafkaSink::new(config, ctx)
    }
}

impl KafkaSink {
    pub fn new(config: KafkaSinkConfig, ctx: &ConnectorContext) -> Result<Self> {
        if config.topic.trim().is_empty() {
            return Err(Error::config("kafka sink: `topic` is empty"));
        }
        match (config.format, config.schema_registry_url.as_deref()) {
            (SinkFormat::Avro, None | Some("")) => {
                return Err(Error::config(
                    "kafka sink: \"format\": \"avro\" needs schema_registry_url, e.g. \"http://localhost:8081\" \
                     (or use \"format\": \"json\")",
                ));
            }
            (SinkFormat::Json, Some(_)) => {
                return Err(Error::config(
                    "kafka sink: schema_registry_url is for \"format\": \"avro\"; remove it or set the format to avro",
                ));
            }
            _ => {}
        }
        if let Some(key) = config
            .properties
            .keys()
            .find(|k| RESERVED.contains(&k.as_str()))
        {
            return Err(Error::config(format!(
                "kafka sink: properties.`{key}` is set by the sink itself (for its delivery guarantee); remove it"
            )));
        }
        if !config.transactions
            && (config.transactional_id.is_some() || config.commit_group.is_some())
        {
            return Err(Error::config(
                "kafka sink: transactional_id and commit_group are for \"transactions\": true; set it or remove them",
            ));
        }
        if config.transactions && config.commit_record.is_some() {
            return Err(Error::config(
                "kafka sink: with \"transactions\": true the commit record is kept in Kafka; remove commit_record",
            ));
        }
        let registry = registry_access(
            "kafka sink",
            config.schema_registry_url.as_deref(),
            config.schema_registry_username.as_deref(),
            config.schema_registry_password.as_deref(),
            config.schema_registry_ca.as_deref(),
            ctx,
        )?
        .map(|access| access.settings("kafka sink", Duration::from_secs(10)))
        .transpose()?;
        let file_name = format!("kafka-{}.commit.json", config.topic);
        let record = match (&config.commit_record, &ctx.state_dir) {
            _ if config.transactions => None,
            (Some(path), _) => Some(ctx.resolve(path)),
            (None, Some(dir)) => Some(dir.join(file_name)),
            (None, None) => {
                return Err(Error::config(
                    "kafka sink: the commit record needs a local file, and checkpoint.location is not a local \
                     folder: set the sink's \"commit_record\" to a file path (e.g. \"state/kafka-sink.commit.json\"), \
                     or use \"transactions\": true",
                ));
            }
        };
        Ok(Self {
            config,
            record: record.map(RecordFile::new),
            txn: None,
            in_txn: false,
            pipeline_id: ctx.pipeline_id.clone(),
            producer: None,
            reports: Arc::default(),
            avro: None,
            registry,
            last: None,
            rows: 0,
        })
    }

    fn connect(&mut self) -> Result<&ThreadedProducer<DeliveryContext>> {
        if self.producer.is_none() {
            let mut cc = ClientConfig::new();
            cc.set("linger.ms", "5");
            for (k, v) in &self.config.properties {
                cc.set(k, v);
            }
            cc.set("bootstrap.servers", &self.config.bootstrap_servers)
                .set("enable.idempotence", "true")
                .set("acks", "all")
                .set(
                    "message.timeout.ms",
                    self.config.delivery_timeout_ms.to_string(),
                );
            if self.config.transactions {
                cc.set("transactional.id", self.transactional_id());
            }
            let producer: ThreadedProducer<DeliveryContext> = cc
                .create_with_context(DeliveryContext {
                    reports: self.reports.clone(),
                    failures: Failures::default(),
                })
                .map_err(|e| Error::config(format!("kafka sink: {e}")))?;
            // Brokers with auto-creation off (as production clusters are
            // usually set) will not create the topic: say so now rather than
            // after a delivery timeout. Brokers that refuse the credentials
            // or the TLS handshake: said within a second or so.
            let meta = security::metadata(
                producer.client(),
                &self.config.topic,
                Duration::from_secs(10),
                || {
                    // The producer's own thread serves its error events.
                    let (code, reason) = producer.context().failures.last()?;
                    security::refused(
                        "kafka sink",
                        code,
                        Some(&reason),
                        &self.config.bootstrap_servers,
                        &self.config.properties,
                    )
                },
            )?
            .map_err(|e| {
                Error::external(format!(
                    "kafka sink: cannot reach {}: {e}",
                    self.config.bootstrap_servers
                ))
            })?;
            let known = meta.topics().iter().any(|t| {
                t.name() == self.config.topic && t.error().is_none() && !t.partitions().is_empty()
            });
            if !known {
                return Err(Error::config(format!(
                    "kafka sink: topic `{}` does not exist on {}: create it first (kafka-topics --create)",
                    self.config.topic, self.config.bootstrap_servers
                )));
            }
            if self.config.transactions {
                let id = self.transactional_id();
                // Fences any older instance with this id and aborts (or
                // completes) its open transaction.
                producer
                    .init_transactions(Duration::from_secs(30))
                    .map_err(|e| {
                        Error::external(format!(
                            "kafka sink: cannot start transactions (transactional.id `{id}`) on {}: {e}",
                            self.config.bootstrap_servers
                        ))
                    })?;
                let group = self
                    .config
                    .commit_group
                    .clone()
                    .unwrap_or_else(|| format!("tributary-sink-{}", self.pipeline_id));
                let mut cc = ClientConfig::new();
                for (k, v) in &self.config.properties {
                    if k.starts_with("security.") || k.starts_with("sasl.") || k.starts_with("ssl.")
                    {
                        cc.set(k, v);
                    }
                }
                let consumer: BaseConsumer = cc
                    .set("bootstrap.servers", &self.config.bootstrap_servers)
                    .set("group.id", &group)
                    .set("enable.auto.commit", "false")
                    // OffsetFetch with require_stable: waits for a pending
                    // transactional offset commit to be decided.
                    .set("isolation.level", "read_committed")
                    .create()
                    .map_err(|e| Error::config(format!("kafka sink: {e}")))?;
                self.txn = Some(Txn { consumer, group });
            }
            self.producer = Some(producer);
        }
        Ok(self.producer.as_ref().expect("connected above"))
    }

    fn transactional_id(&self) -> String {
        self.config
            .transactional_id
            .clone()
            .unwrap_or_else(|| format!("tributary-{}", self.pipeline_id))
    }

    /// The commit record in the metadata of the group's offset on
    /// partition 0 of the topic, if this pipeline committed one.
    fn read_txn_record(&self) -> Result<Option<CommitRecord>> {
        let txn = self.txn.as_ref().expect("connected");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.config.topic, 0);
        let got = txn
            .consumer
            .committed_offsets(tpl, Duration::from_secs(30))
            .map_err(|e| {
                Error::external(format!(
                    "kafka sink: cannot read the commit record (offsets of group `{}`) on {}: {e}",
                    txn.group, self.config.bootstrap_servers
                ))
            })?;
        let Some(elem) = got.find_partition(&self.config.topic, 0) else {
            return Ok(None);
        };
        if !matches!(elem.offset(), Offset::Offset(_)) || elem.metadata().is_empty() {
            return Ok(None);
        }
        let record: CommitRecord = serde_json::from_str(elem.metadata()).map_err(|e| {
            Error::data(format!(
                "kafka sink: the offset metadata of group `{}` on {}/0 is not a Tributary commit record ({e}); \
                 is the group used by something else? Set the sink's commit_group",
                txn.group, self.config.topic
            ))
        })?;
        if record.pipeline_id != self.pipeline_id {
            return Err(Error::config(format!(
                "kafka sink: group `{}` holds the commit record of pipeline `{}`, not `{}`; set the sink's commit_group",
                txn.group, record.pipeline_id, self.pipeline_id
            )));
        }
        Ok(Some(record))
    }

    /// A transaction call that failed: the open transaction is aborted when
    /// it can be, and the pipeline stops (not retryable: the epoch's
    /// messages are gone with it; the restart writes the epoch again).
    fn txn_failed(&mut self, what: &str, epoch: u64, e: KafkaError) -> Error {
        self.in_txn = false;
        let id = self.transactional_id();
        let fenced = matches!(
            e.rdkafka_error_code(),
            Some(RDKafkaErrorCode::ProducerFenced | RDKafkaErrorCode::Fenced)
                | Some(RDKafkaErrorCode::InvalidProducerEpoch)
        );
        if let Some(fenced) = self.fenced(epoch) {
            return fenced;
        }
        if fenced {
            return Error::external(format!(
                "kafka sink: fenced: another instance started with transactional.id `{id}` (the same pipeline run \
                 twice?), so this one stops without committing epoch {epoch}; the other goes on ({what}: {e})"
            ))
            .retryable(false);
        }
        let fatal = matches!(&e, KafkaError::Transaction(t) if t.is_fatal());
        if !fatal
            && let Some(p) = self.producer.as_ref()
            && let Err(abort) = p.abort_transaction(Duration::from_secs(30))
        {
            tracing::warn!("kafka sink: abort the transaction of epoch {epoch}: {abort}");
        }
        Error::external(format!(
            "kafka sink: {what} of epoch {epoch} failed on {}: {e}; the transaction was aborted and the epoch is \
             written again on restart",
            self.config.bootstrap_servers
        ))
        .retryable(false)
    }

    /// The error for an instance fenced by a newer one with the same
    /// `transactional.id`, when librdkafka says so (a fatal error).
    fn fenced(&self, epoch: u64) -> Option<Error> {
        let (code, reason) = self.producer.as_ref()?.client().fatal_error()?;
        matches!(
            code,
            RDKafkaErrorCode::Fenced
                | RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::InvalidProducerEpoch
        )
        .then(|| {
            Error::external(format!(
                "kafka sink: fenced: another instance started with transactional.id `{}` (the same pipeline run \
                 twice?), so this one stops without committing epoch {epoch}; the other goes on ({reason})",
                self.transactional_id()
            ))
            .retryable(false)
        })
    }

    fn begin(&mut self, epoch: u64) -> Result<()> {
        if self.config.transactions && !self.in_txn {
            let producer = self.connect()?;
            if let Err(e) = producer.begin_transaction() {
                return Err(self.txn_failed("begin the transaction", epoch, e));
            }
            self.in_txn = true;
        }
        Ok(())
    }

    /// The Avro schema and id for rows of `arrow`, registered on first use.
    fn avro_for(&mut self, arrow: &SchemaRef) -> Result<&AvroWriter> {
        if self.avro.as_ref().is_none_or(|a| a.arrow != *arrow) {
            let json = encode::avro_schema(arrow, &self.config.topic)?;
            let schema = apache_avro::Schema::parse(&json)
                .map_err(|e| Error::internal(format!("kafka sink: derived Avro schema: {e}")))?;
            let url = redact_uri(
                self.config
                    .schema_registry_url
                    .as_deref()
                    .unwrap_or_default(),
            );
            let subject = format!("{}-value", self.config.topic);
            let registry = self.registry.as_ref().ok_or_else(|| {
                Error::internal("kafka sink: avro without a registry client (checked in new)")
            })?;
            let registered = post_schema(
                registry,
                subject.clone(),
                SuppliedSchema::new(None, SchemaType::Avro, json.to_string()),
            )
            .map_err(|e| {
                let what = format!("kafka sink: cannot register the value schema under `{subject}` at {url}");
                if untrusted_certificate(&e) {
                    Error::config(format!(
                        "{what}: the registry's TLS certificate is not trusted; set schema_registry_ca to a PEM \
                         file with the CA certificate that signed it ({e})"
                    ))
                } else if e.error.contains("with status 401") || e.error.contains("with status 403") {
                    Error::config(format!(
                        "{what}: the registry refused the credentials; check schema_registry_username and \
                         schema_registry_password ({e})"
                    ))
                } else {
                    Error::external(format!("{what}: {e}"))
                }
            })?;
            self.avro = Some(AvroWriter {
                arrow: arrow.clone(),
                schema,
                id: registered.id,
            });
        }
        Ok(self.avro.as_ref().expect("set above"))
    }

    fn values(&mut self, batch: &RecordBatch) -> Result<Vec<Vec<u8>>> {
        match self.config.format {
            SinkFormat::Json => encode::json_values(batch),
            SinkFormat::Avro => {
                let avro = self.avro_for(&batch.schema())?;
                let fail = |e: apache_avro::Error| {
                    Error::data(format!("kafka sink: encode a row as Avro: {e}"))
                };
                let writer = GenericDatumWriter::builder(&avro.schema)
                    .build()
                    .map_err(fail)?;
                (0..batch.num_rows())
                    .map(|row| {
                        let mut out = confluent::header(avro.id).to_vec();
                        let value = encode::avro_record(batch, row)?;
                        writer.write_value(&mut out, value).map_err(fail)?;
                        Ok(out)
                    })
                    .collect()
            }
        }
    }
}

impl Sink for KafkaSink {
    fn last_commit(&mut self, _pipeline_id: &str) -> Result<Option<CommittedEpoch>> {
        self.connect()?;
        self.last = match &self.record {
            Some(record) => record.read()?,
            None => self.read_txn_record()?,
        };
        Ok(self.last.as_ref().map(CommitRecord::committed))
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let next = self.last.as_ref().map_or(1, |l| l.epoch + 1);
        self.begin(next)?;
        let values = self.values(batch)?;
        let keys = match &self.config.key_field {
            Some(field) => encode::keys(batch, field)?,
            None => vec![None; batch.num_rows()],
        };
        let topic = self.config.topic.clone();
        self.connect()?;
        let producer = self.producer.as_ref().expect("connected");
        for (value, key) in values.iter().zip(&keys) {
            let mut record = BaseRecord::<str, [u8]>::to(&topic).payload(value.as_slice());
            if let Some(key) = key {
                record = record.key(key.as_str());
            }
            // A full local queue: wait for deliveries to make room.
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err((e, _)) => {
                        if let Some(fenced) = self.fenced(next) {
                            return Err(fenced);
                        }
                        return Err(Error::external(format!(
                            "kafka sink: cannot produce to `{topic}`: {e}"
                        ))
                        .retryable(false));
                    }
                }
            }
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    fn commit(&mut self, commit: &EpochCommit) -> Result<CommitOutcome> {
        if self.last.as_ref().is_some_and(|l| l.epoch >= commit.epoch) {
            if self.in_txn {
                self.in_txn = false;
                if let Some(p) = self.producer.as_ref() {
                    p.abort_transaction(Duration::from_secs(30)).map_err(|e| {
                        Error::external(format!("kafka sink: abort a transaction: {e}"))
                            .retryable(false)
                    })?;
                }
            }
            return Ok(CommitOutcome::AlreadyCommitted);
        }
        if self.config.transactions {
            return self.commit_transaction(commit);
        }
        let timeout = Duration::from_millis(self.config.delivery_timeout_ms + 10_000);
        let producer = self.connect()?;
        // Not retryable: a message that failed is not sent again by
        // retrying the commit. The pipeline stops, and the restart sends the
        // whole epoch again from the last commit.
        producer.flush(timeout).map_err(|e| {
            Error::external(format!(
                "kafka sink: epoch {} was not acknowledged by {} in time: {e}; it is sent again on restart",
                commit.epoch, self.config.bootstrap_servers
            ))
            .retryable(false)
        })?;
        let failed = std::mem::take(&mut *self.reports.lock().unwrap_or_else(|p| p.into_inner()));
        if failed.failed > 0 {
            return Err(Error::external(format!(
                "kafka sink: {} message(s) of epoch {} were not delivered to `{}` ({}); the epoch is sent again on restart",
                failed.failed,
                commit.epoch,
                self.config.topic,
                failed.first_error.unwrap_or_default()
            ))
            .retryable(false));
        }
        let rows = std::mem::take(&mut self.rows);
        let total = self.last.as_ref().map_or(0, |l| l.total_rows) + rows;
        let record = CommitRecord::new(commit, rows, total, Vec::new());
        self.record
            .as_ref()
            .expect("a commit record file without transactions")
            .write(&record)?;
        self.last = Some(record);
        Ok(CommitOutcome::Committed)
    }

    fn describe(&self) -> String {
        format!(
            "kafka topic {} on {}",
            self.config.topic, self.config.bootstrap_servers
        )
    }

    fn row_count(&mut self) -> Option<u64> {
        self.last.as_ref().map(|l| l.total_rows)
    }

    fn delivery(&self) -> Delivery {
        if self.config.transactions {
            Delivery::ExactlyOnce
        } else {
            Delivery::AtLeastOnce
        }
    }
}

/// The transactional side of a sink: the group its commit record is
/// committed for, and a consumer to read it back.
struct Txn {
    consumer: BaseConsumer,
    group: String,
}

impl KafkaSink {
    /// Ends the epoch's transaction: the commit record goes in as a
    /// transactional offset commit, then the transaction commits — messages
    /// and record together.
    fn commit_transaction(&mut self, commit: &EpochCommit) -> Result<CommitOutcome> {
        self.begin(commit.epoch)?;
        let rows = self.rows;
        let total = self.last.as_ref().map_or(0, |l| l.total_rows) + rows;
        let record = CommitRecord::new(commit, rows, total, Vec::new());
        let json = serde_json::to_string(&record)
            .map_err(|e| Error::internal(format!("kafka sink: commit record: {e}")))?;
        if json.len() > METADATA_MAX {
            return Err(Error::config(format!(
                "kafka sink: the commit record of epoch {} is {} bytes, more than the {METADATA_MAX} Kafka keeps as \
                 offset metadata by default (many source partitions?); raise the brokers' offset.metadata.max.bytes",
                commit.epoch,
                json.len()
            ))
            .retryable(false));
        }
        let txn = self.txn.as_ref().expect("connected");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.config.topic, 0, Offset::Offset(commit.epoch as i64))
            .map_err(|e| Error::internal(format!("kafka sink: {e}")))?;
        if let Some(mut elem) = tpl.find_partition(&self.config.topic, 0) {
            elem.set_metadata(json);
        }
        let Some(cgm) = txn.consumer.group_metadata() else {
            return Err(Error::internal("kafka sink: no consumer group metadata"));
        };
        let timeout = Duration::from_millis(self.config.delivery_timeout_ms + 10_000);
        let producer = self.producer.as_ref().expect("connected");
        if let Err(e) = producer.send_offsets_to_transaction(&tpl, &cgm, timeout) {
            return Err(self.txn_failed(
                "add the commit record to the transaction",
                commit.epoch,
                e,
            ));
        }
        crash_point("kafka-offsets-sent");
        if let Err(e) = producer.commit_transaction(timeout) {
            return Err(self.txn_failed("commit the transaction", commit.epoch, e));
        }
        self.in_txn = false;
        self.rows = 0;
        self.last = Some(record);
        Ok(CommitOutcome::Committed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ConnectorContext {
        ConnectorContext {
            pipeline_id: "p".into(),
            base_dir: ".".into(),
            state_dir: Some("chk/connectors".into()),
        }
    }

    #[test]
    fn config_mistakes_are_named() {
        let err = |v: serde_json::Value| {
            tributary_connector::build_sink::<KafkaSink>(&v, &ctx())
                .err()
                .unwrap()
                .to_string()
        };
        let base = serde_json::json!({"bootstrap_servers": "127.0.0.1:1", "topic": "t"});
        let sink = tributary_connector::build_sink::<KafkaSink>(&base, &ctx()).unwrap();
        assert_eq!(sink.delivery(), Delivery::AtLeastOnce);
        let mut avro = base.clone();
        avro["format"] = "avro".into();
        assert!(err(avro).contains("needs schema_registry_url"));
        let mut reserved = base.clone();
        reserved["properties"] = serde_json::json!({"acks": "1"});
        assert!(err(reserved).contains("properties.`acks`"));
        let no_state = ConnectorContext {
            state_dir: None,
            ..ctx()
        };
        let e = tributary_connector::build_sink::<KafkaSink>(&base, &no_state)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("commit_record"), "{e}");
        // Transactions: exactly-once, no local record needed.
        let mut txn = base.clone();
        txn["transactions"] = true.into();
        let sink = tributary_connector::build_sink::<KafkaSink>(&txn, &no_state).unwrap();
        assert_eq!(sink.delivery(), Delivery::ExactlyOnce);
        let mut id_only = base.clone();
        id_only["transactional_id"] = "x".into();
        assert!(err(id_only).contains("for \"transactions\": true"));
    }
}
