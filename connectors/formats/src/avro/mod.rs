//! Avro message values in the Confluent wire format, decoded into Arrow.
//!
//! A value is `0x00` (the magic byte), the writer schema's id in the Schema
//! Registry (4 bytes, big-endian) and the Avro binary body. The registry is
//! asked for each schema id once (with the schemas it references), through
//! `schema_registry_converter`'s blocking client. The schema is checked before
//! any body is decoded with it: recursive schemas, and ones nested more than
//! 64 levels deep, make their records bad (no column can hold them, and
//! decoding them recursed without bound). apache-avro decodes the body and
//! this module turns the value into a row.
//!
//! **The batch schema is the union of every writer schema seen so far** in this
//! process: top-level fields in first-seen order, every one nullable. When a
//! producer moves to a new writer schema (say v2 adds an optional field), the
//! next batch has one more column and rows written with v1 read null there.
//! Nested records grow the same way. A writer schema that gives a field a type
//! that cannot hold the earlier one (string then long) makes its records bad;
//! the widenings Iceberg allows are taken instead: int → long, float → double,
//! a decimal's precision at the same scale.
//!
//! | Avro | Arrow |
//! |---|---|
//! | boolean, int, long, float, double | Boolean, Int32, Int64, Float32, Float64 |
//! | string, enum (its symbol), uuid | Utf8 |
//! | bytes / fixed(n) | Binary / FixedSizeBinary(n) |
//! | decimal(p, s) on bytes or fixed | Decimal128(p, s) (p ≤ 38, else the record is bad) |
//! | big-decimal | Utf8 (its decimal text) |
//! | date | Date32 |
//! | time-millis, time-micros | Time64(µs) |
//! | timestamp-millis, timestamp-micros | Timestamp(µs, "+00:00") — Iceberg `timestamptz` |
//! | local-timestamp-millis, local-timestamp-micros | Timestamp(µs) — Iceberg `timestamp` |
//! | timestamp-nanos / local-timestamp-nanos | Timestamp(ns, "+00:00") / Timestamp(ns) |
//! | duration | FixedSizeBinary(12), the Avro bytes |
//! | `[null, T]`, `[T, null]`, `[T]` | T, nullable when null is a branch |
//! | a union of several non-null types | **Utf8 holding the value as JSON text** (no branch name) |
//! | record / array / map | Struct / List / Map (Utf8 keys, entries sorted by key) |
//!
//! Neither `schema_registry_converter` nor apache-avro 0.22 turns values into
//! Arrow (`arrow-avro` does, but only for the arrow 60 line), so the mapping is
//! written here.
//!
//! Rows are kept as typed cells until [`AvroBatchBuilder::finish`] and only
//! then appended to Arrow builders: by then the batch schema is final, so a
//! writer schema that adds a column half-way through a batch needs no
//! rebuilding of builders, and a bad record never leaves half a row behind.
//!
//! ```no_run
//! use tributary_formats::{DecodeError, avro::AvroBatchBuilder};
//! # fn messages() -> Vec<Vec<u8>> { Vec::new() }
//! let mut avro = AvroBatchBuilder::new("http://127.0.0.1:8081")?;
//! for value in messages() {
//!     match avro.push(&value) {
//!         Ok(()) => {}
//!         Err(DecodeError::Bad(reason)) => eprintln!("dead-letter: {reason}"),
//!         Err(DecodeError::Unavailable(e)) => return Err(e), // retry later
//!     }
//! }
//! let batch = avro.finish()?;
//! # Ok::<(), tributary_connector::Error>(())
//! ```
//!
//! The registry client is reqwest's blocking one: build and use the builder on
//! a plain thread (the source's), not inside an async task.
//!
//! The module, one concern a file: [`builder`] (values in, batches out, the
//! registry), `schema` (Avro schema → Arrow type), `cell` (Avro value →
//! cell), `merge` (schema evolution), `column` (cells → Arrow arrays),
//! `path` (errors that name the field). The Confluent framing itself is
//! [`crate::confluent`].

pub mod builder;
mod cell;
mod column;
mod merge;
mod path;
mod schema;
#[cfg(test)]
mod tests;

pub use builder::AvroBatchBuilder;
