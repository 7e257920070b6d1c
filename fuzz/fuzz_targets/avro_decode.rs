//! Confluent-framed Avro values, decoded into Arrow the way the Kafka source
//! does: the framing (`0x00`, schema id), the Avro body read with the writer
//! schema (apache-avro's reader, as `schema_registry_converter` calls it),
//! the value turned into a row, and the batch finished.
//!
//! Input: values separated by `SEP`. Instead of a registry, schema id `n`
//! is `WRITERS[n % WRITERS.len()]`: the seed article schema v1 and v2 (one
//! more column: the batch schema grows), every type, and nesting. Several
//! values per input exercise schema growth across writer versions.
#![no_main]

use std::sync::OnceLock;

use apache_avro::Schema;
use libfuzzer_sys::fuzz_target;
use tributary_formats::avro::AvroBatchBuilder;
use tributary_formats::{DecodeError, confluent};

const SEP: &[u8] = b"|TRIBSEP|";

const ARTICLE_V1: &str = r#"{"type": "record", "name": "Article", "namespace": "demo.news", "fields": [
  {"name": "id", "type": "string"}, {"name": "source", "type": "string"},
  {"name": "title", "type": "string"}, {"name": "url", "type": "string"},
  {"name": "author", "type": ["null", "string"], "default": null},
  {"name": "body", "type": "string"},
  {"name": "published_at", "type": {"type": "long", "logicalType": "timestamp-millis"}}]}"#;

const ARTICLE_V2: &str = r#"{"type": "record", "name": "Article", "namespace": "demo.news", "fields": [
  {"name": "id", "type": "string"}, {"name": "source", "type": "string"},
  {"name": "title", "type": "string"}, {"name": "url", "type": "string"},
  {"name": "author", "type": ["null", "string"], "default": null},
  {"name": "body", "type": "string"},
  {"name": "published_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
  {"name": "language", "type": ["null", "string"], "default": null}]}"#;

const ALL_TYPES: &str = r#"{"type": "record", "name": "All", "namespace": "t", "fields": [
  {"name": "b", "type": "boolean"}, {"name": "i", "type": "int"}, {"name": "l", "type": "long"},
  {"name": "f", "type": "float"}, {"name": "d", "type": "double"}, {"name": "s", "type": "string"},
  {"name": "raw", "type": "bytes"},
  {"name": "fx", "type": {"type": "fixed", "name": "Four", "size": 4}},
  {"name": "e", "type": {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN"]}},
  {"name": "ts_ms", "type": {"type": "long", "logicalType": "timestamp-millis"}},
  {"name": "ts_us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
  {"name": "ts_ns", "type": {"type": "long", "logicalType": "timestamp-nanos"}},
  {"name": "lts_ms", "type": {"type": "long", "logicalType": "local-timestamp-millis"}},
  {"name": "lts_us", "type": {"type": "long", "logicalType": "local-timestamp-micros"}},
  {"name": "lts_ns", "type": {"type": "long", "logicalType": "local-timestamp-nanos"}},
  {"name": "day", "type": {"type": "int", "logicalType": "date"}},
  {"name": "t_ms", "type": {"type": "int", "logicalType": "time-millis"}},
  {"name": "t_us", "type": {"type": "long", "logicalType": "time-micros"}},
  {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
  {"name": "qty", "type": {"type": "fixed", "name": "Q", "size": 8, "logicalType": "decimal", "precision": 18, "scale": 4}},
  {"name": "big", "type": {"type": "bytes", "logicalType": "big-decimal"}},
  {"name": "dur", "type": {"type": "fixed", "name": "D", "size": 12, "logicalType": "duration"}},
  {"name": "uid", "type": {"type": "string", "logicalType": "uuid"}}]}"#;

const NESTED: &str = r#"{"type": "record", "name": "Outer", "fields": [
  {"name": "id", "type": "long"},
  {"name": "inner", "type": ["null", {"type": "record", "name": "Inner", "fields": [
     {"name": "x", "type": "int"}, {"name": "tags", "type": {"type": "array", "items": "string"}}]}]},
  {"name": "attrs", "type": {"type": "map", "values": ["null", "double"]}},
  {"name": "many", "type": {"type": "array", "items": "Inner"}},
  {"name": "either", "type": ["null", "long", "string", "Inner"]},
  {"name": "single", "type": ["int"]},
  {"name": "matrix", "type": {"type": "array", "items": {"type": "array", "items": "int"}}}]}"#;

/// Grows `inner` by a field and `x` from int to long: an allowed widening.
const NESTED_V2: &str = r#"{"type": "record", "name": "Outer", "fields": [
  {"name": "id", "type": "long"},
  {"name": "inner", "type": ["null", {"type": "record", "name": "Inner", "fields": [
     {"name": "x", "type": "long"}, {"name": "tags", "type": {"type": "array", "items": "string"}},
     {"name": "extra", "type": ["null", "float"]}]}]},
  {"name": "attrs", "type": {"type": "map", "values": ["null", "double"]}}]}"#;

/// `id` as a long: cannot hold the articles' string ids (bad records).
const CONFLICT: &str = r#"{"type": "record", "name": "Article", "namespace": "demo.news", "fields": [
  {"name": "id", "type": "long"}, {"name": "title", "type": ["null", "string"]}]}"#;

const WRITERS: &[&str] = &[
    ARTICLE_V1, ARTICLE_V2, ALL_TYPES, NESTED, NESTED_V2, CONFLICT,
];

fn writers() -> &'static [Schema] {
    static PARSED: OnceLock<Vec<Schema>> = OnceLock::new();
    PARSED.get_or_init(|| {
        WRITERS
            .iter()
            .map(|s| Schema::parse_str(s).expect("the fuzz writer schemas parse"))
            .collect()
    })
}

fn split<'a>(data: &'a [u8], sep: &[u8]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    while let Some(i) = rest.windows(sep.len()).position(|w| w == sep) {
        parts.push(&rest[..i]);
        rest = &rest[i + sep.len()..];
    }
    parts.push(rest);
    parts
}

fuzz_target!(|data: &[u8]| {
    // Nothing is fetched: every id is answered by `writers()` below.
    let mut avro = AvroBatchBuilder::for_decoded_values();
    let mut accepted = 0usize;
    for value in split(data, SEP).into_iter().take(64) {
        let id = match confluent::schema_id(value) {
            Ok(id) => id,
            Err(DecodeError::Bad(_)) => continue,
            Err(DecodeError::Unavailable(e)) => panic!("framing said unavailable: {e}"),
        };
        let schema = &writers()[id as usize % WRITERS.len()];
        // The id the builder caches by must always mean the same schema.
        let id = id % WRITERS.len() as u32;
        match avro.push_body(id, schema, &value[5..]) {
            Ok(()) => accepted += 1,
            Err(DecodeError::Bad(_)) => {}
            Err(DecodeError::Unavailable(e)) => panic!("a decoded value was unavailable: {e}"),
        }
    }
    assert_eq!(avro.len(), accepted);
    let batch = avro.finish().expect("accepted rows always make a batch");
    assert_eq!(batch.num_rows(), accepted);
    assert_eq!(batch.schema(), avro.schema());
});
