//! Kafka for Tributary: a source ([`source`]: every partition of its topics,
//! read with rdkafka, resumed exactly where the sink's last commit says) and
//! an at-least-once sink ([`sink`]: rows produced as JSON or Avro, values
//! encoded by [`encode`]).
//!
//! A message value becomes a row of an Arrow record batch. How a value is read
//! is the [`format`] module: Avro in the Confluent wire format with its writer
//! schema from a Schema Registry ([`format::AvroBatchBuilder`]), or JSON with
//! a declared schema ([`format::JsonBatchBuilder`]). A value that cannot be read
//! is a [`format::DecodeError`]: a bad record for the dead-letter output, or a
//! registry that is unavailable for now.
//!
//! [`decode`] picks the builder from the source's `format` (or takes raw
//! bytes).
//!
//! ```
//! use tributary_kafka::format::AvroBatchBuilder;
//! // Nothing is fetched until the first value arrives.
//! let avro = AvroBatchBuilder::new("http://127.0.0.1:8081").unwrap();
//! assert_eq!(avro.len(), 0);
//! assert!(AvroBatchBuilder::new("127.0.0.1:8081").is_err());
//! ```

pub mod decode;
pub mod encode;
pub mod format;
pub mod sink;
pub mod source;

pub use sink::{KafkaSink, KafkaSinkConfig};
pub use source::{KafkaSource, KafkaSourceConfig};
