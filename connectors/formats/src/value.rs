//! The value format a source decodes, chosen by its `format` field (Avro,
//! JSON or bytes), and one decoder type over all three (the builders live in
//! [`crate::avro`] and [`crate::json`]).

use std::sync::Arc;

use arrow_array::ArrayRef;
use arrow_array::builder::BinaryBuilder;
use arrow_schema::{DataType, Field};
use serde::Deserialize;
use tributary_connector::{Error, RecordBatch, Result, Schema, SchemaRef};

use crate::avro::AvroBatchBuilder;
use crate::error::DecodeError;
use crate::json::JsonBatchBuilder;
use crate::registry::RegistryAccess;
use crate::rows::{FieldSpec, UnknownFields};

/// How message values are encoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueFormat {
    /// Confluent wire format: magic byte 0, 4-byte schema id, Avro body.
    #[default]
    Avro,
    /// One JSON object per message, read with a declared schema.
    Json,
    /// No decoding: one binary column `value` with the message value as it
    /// is (to move opaque payloads, and to measure consuming alone).
    Bytes,
}

/// Decodes values into the rows of the next batch.
pub enum ValueDecoder {
    Avro(Box<AvroBatchBuilder>),
    Json(JsonBatchBuilder),
    Bytes(BinaryBuilder),
}

impl ValueDecoder {
    /// Checks that the format's own fields are there (and only those):
    /// `schema_registry_url` for Avro, `schema` for JSON, neither for bytes.
    pub fn new(
        format: ValueFormat,
        schema_registry_url: Option<&str>,
        schema: Option<&[FieldSpec]>,
    ) -> Result<Self> {
        let access = schema_registry_url.map(RegistryAccess::new);
        Self::with_registry(format, access.as_ref(), schema)
    }

    /// As [`ValueDecoder::new`], the registry given with its credentials
    /// and CA.
    pub fn with_registry(
        format: ValueFormat,
        registry: Option<&RegistryAccess>,
        schema: Option<&[FieldSpec]>,
    ) -> Result<Self> {
        let schema_registry_url = registry.map(|r| r.url.as_str());
        match format {
            ValueFormat::Avro => {
                if schema.is_some() {
                    return Err(Error::config(
                        "kafka source: `schema` is for \"format\": \"json\"; Avro values carry their schema \
                         (from schema_registry_url): remove `schema`",
                    ));
                }
                let url = schema_registry_url.unwrap_or("");
                if url.trim().is_empty() {
                    return Err(Error::config(
                        "kafka source: \"format\": \"avro\" needs schema_registry_url, e.g. \"http://localhost:8081\" \
                         (or set \"format\": \"json\" with a `schema`)",
                    ));
                }
                let access = registry.expect("a URL means a registry");
                Ok(Self::Avro(Box::new(AvroBatchBuilder::with_access(access)?)))
            }
            ValueFormat::Json => {
                if schema_registry_url.is_some() {
                    return Err(Error::config(
                        "kafka source: schema_registry_url is for \"format\": \"avro\"; remove it or set the format to avro",
                    ));
                }
                let Some(schema) = schema else {
                    return Err(Error::config(
                        "kafka source: \"format\": \"json\" needs `schema`, the columns to read, e.g. \
                         [{\"name\": \"id\", \"type\": \"string\"}, {\"name\": \"published_at\", \"type\": \"timestamp\"}]",
                    ));
                };
                Ok(Self::Json(JsonBatchBuilder::new(
                    schema.to_vec(),
                    UnknownFields::Ignore,
                )?))
            }
            ValueFormat::Bytes => {
                if schema_registry_url.is_some() || schema.is_some() {
                    return Err(Error::config(
                        "kafka source: \"format\": \"bytes\" takes values as they are: remove schema_registry_url and schema",
                    ));
                }
                Ok(Self::Bytes(BinaryBuilder::new()))
            }
        }
    }

    pub fn push(&mut self, payload: &[u8]) -> Result<(), DecodeError> {
        match self {
            Self::Avro(b) => b.push(payload),
            Self::Json(b) => b.push(payload),
            Self::Bytes(b) => {
                b.append_value(payload);
                Ok(())
            }
        }
    }

    pub fn finish(&mut self) -> Result<RecordBatch> {
        match self {
            Self::Avro(b) => b.finish(),
            Self::Json(b) => b.finish(),
            Self::Bytes(b) => {
                let column: ArrayRef = Arc::new(b.finish());
                RecordBatch::try_new(bytes_schema(), vec![column])
                    .map_err(|e| Error::internal(format!("kafka source: bytes batch: {e}")))
            }
        }
    }

    /// The schema of the rows so far (Avro: grows as writer schemas arrive).
    pub fn schema(&self) -> SchemaRef {
        match self {
            Self::Avro(b) => b.schema(),
            Self::Json(b) => b.schema(),
            Self::Bytes(_) => bytes_schema(),
        }
    }
}

fn bytes_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(
        "value",
        DataType::Binary,
        false,
    )]))
}
