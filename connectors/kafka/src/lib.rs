//! Kafka for Tributary: a source ([`source`]: every partition of its topics,
//! read with rdkafka, resumed exactly where the sink's last commit says) and
//! an at-least-once sink ([`sink`]: rows produced as JSON or Avro).
//!
//! A message value becomes a row of an Arrow record batch, and a row a
//! message value, by the `tributary-formats` crate: Avro in the Confluent
//! wire format with its writer schema from a Schema Registry, JSON with a
//! declared schema, or raw bytes ([`tributary_formats::value::ValueDecoder`],
//! picked by the source's `format`). A value that cannot be read is a
//! [`tributary_formats::DecodeError`]: a bad record for the dead-letter
//! output, or a registry that is unavailable for now.
//!
//! ```
//! use tributary_connector::FromConfig;
//! use tributary_kafka::KafkaSource;
//! assert_eq!(<KafkaSource as FromConfig>::NAME, "kafka source");
//! ```

#![forbid(unsafe_code)]

pub mod security;
pub mod sink;
pub mod source;

pub use sink::{KafkaSink, KafkaSinkConfig};
pub use source::{KafkaSource, KafkaSourceConfig};
