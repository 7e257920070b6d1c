//! The Avro decoder against a stub Schema Registry: every type, nesting,
//! schema growth, framing errors and registry failures.

use super::cell::decimal;
use super::schema::map_type;
use super::*;
use crate::confluent;
use crate::error::DecodeError;
use apache_avro::Schema as AvroSchema;
use apache_avro::types::Value as V;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int32Type, Int64Type,
    Time64MicrosecondType, TimestampMicrosecondType,
};
use arrow_array::{Array, StringArray};
use arrow_schema::{DataType, Field, TimeUnit};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::Mutex;
use tributary_connector::UTC;

/// A Schema Registry that answers `GET /schemas/ids/{id}` and nothing
/// else, enough to exercise the lookups of this module. (The real registry
/// and third-party producers are tested end to end elsewhere.)
#[derive(Clone, Default)]
struct Stub {
    schemas: Arc<Mutex<HashMap<u32, String>>>,
    /// When set, every request gets this status instead.
    fail_with: Arc<Mutex<Option<u16>>>,
    requests: Arc<Mutex<usize>>,
    /// Other answers by path (without the query): `/subjects/s/versions/1`.
    paths: Arc<Mutex<HashMap<String, serde_json::Value>>>,
}

impl Stub {
    fn start() -> (Self, String) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        (Self::serve(listener), url)
    }

    fn serve(listener: TcpListener) -> Self {
        let stub = Self::default();
        let s = stub.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                s.answer(conn);
            }
        });
        stub
    }

    fn register(&self, id: u32, schema: &str) {
        self.schemas.lock().unwrap().insert(id, schema.to_string());
    }

    /// Version 1 of `subject`: `schema`, referencing version 1 of each of
    /// the subjects in `references` (registered before it).
    fn register_subject(&self, subject: &str, schema: &str, references: &[&str]) {
        let refs = self.references(references);
        self.paths.lock().unwrap().insert(
            format!("/subjects/{subject}/versions/1"),
            serde_json::json!({"subject": subject, "version": 1, "id": 1000,
                               "schema": schema, "references": refs}),
        );
    }

    /// Schema `id`, referencing version 1 of each of the subjects in
    /// `references`.
    fn register_with_references(&self, id: u32, schema: &str, references: &[&str]) {
        let refs = self.references(references);
        self.paths.lock().unwrap().insert(
            format!("/schemas/ids/{id}"),
            serde_json::json!({"schema": schema, "references": refs}),
        );
    }

    /// A reference to each subject, by the full name of the type its
    /// version 1 defines.
    fn references(&self, subjects: &[&str]) -> Vec<serde_json::Value> {
        let paths = self.paths.lock().unwrap();
        subjects
            .iter()
            .map(|subject| {
                let version = &paths[&format!("/subjects/{subject}/versions/1")];
                let schema: serde_json::Value =
                    serde_json::from_str(version["schema"].as_str().unwrap()).unwrap();
                let name = format!(
                    "{}.{}",
                    schema["namespace"].as_str().unwrap(),
                    schema["name"].as_str().unwrap()
                );
                serde_json::json!({"name": name, "subject": subject, "version": 1})
            })
            .collect()
    }

    fn answer(&self, mut conn: TcpStream) {
        let mut req = Vec::new();
        let mut buf = [0u8; 1024];
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => req.extend_from_slice(&buf[..n]),
            }
        }
        *self.requests.lock().unwrap() += 1;
        let line = String::from_utf8_lossy(&req)
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        let path = line.split_whitespace().nth(1).unwrap_or("");
        let id: Option<u32> = path
            .strip_prefix("/schemas/ids/")
            .and_then(|rest| rest.split('?').next())
            .and_then(|id| id.parse().ok());
        let schema = id.and_then(|id| self.schemas.lock().unwrap().get(&id).cloned());
        let at_path = self
            .paths
            .lock()
            .unwrap()
            .get(path.split('?').next().unwrap_or(""))
            .cloned();
        let fail = *self.fail_with.lock().unwrap();
        let (status, body) = match (fail, schema) {
            (None, None) if at_path.is_some() => ("200 OK".into(), at_path.unwrap()),
            (Some(code), _) => (
                format!("{code} Oops"),
                serde_json::json!({"error_code": 50001, "message": "store is down"}),
            ),
            (None, Some(schema)) => ("200 OK".into(), serde_json::json!({"schema": schema})),
            (None, None) => (
                "404 Not Found".into(),
                serde_json::json!({"error_code": 40403, "message": "Schema not found"}),
            ),
        };
        let body = body.to_string();
        let _ = write!(
            conn,
            "HTTP/1.1 {status}\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
}

/// `value` in the Confluent wire format with writer schema `id`.
fn framed(id: u32, schema: &str, value: V) -> Vec<u8> {
    let schema = AvroSchema::parse_str(schema).unwrap();
    let mut out = vec![0];
    out.extend_from_slice(&id.to_be_bytes());
    let writer = apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
        .build()
        .unwrap();
    out.extend(writer.write_value_to_vec(value).unwrap());
    out
}

fn record(fields: &[(&str, V)]) -> V {
    V::Record(
        fields
            .iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect(),
    )
}

fn bad(r: Result<(), DecodeError>) -> String {
    match r {
        Err(DecodeError::Bad(reason)) => reason,
        other => panic!("expected Bad, got {other:?}"),
    }
}

fn strings(a: &dyn Array) -> Vec<Option<String>> {
    a.as_any()
        .downcast_ref::<StringArray>()
        .unwrap()
        .iter()
        .map(|s| s.map(str::to_string))
        .collect()
}

const ALL_TYPES: &str = r#"{"type": "record", "name": "All", "namespace": "t", "fields": [
    {"name": "b", "type": "boolean"},
    {"name": "i", "type": "int"},
    {"name": "l", "type": "long"},
    {"name": "f", "type": "float"},
    {"name": "d", "type": "double"},
    {"name": "s", "type": "string"},
    {"name": "raw", "type": "bytes"},
    {"name": "fx", "type": {"type": "fixed", "name": "Four", "size": 4}},
    {"name": "e", "type": {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN"]}},
    {"name": "ts_ms", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "ts_us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "lts_ms", "type": {"type": "long", "logicalType": "local-timestamp-millis"}},
    {"name": "lts_us", "type": {"type": "long", "logicalType": "local-timestamp-micros"}},
    {"name": "day", "type": {"type": "int", "logicalType": "date"}},
    {"name": "t_ms", "type": {"type": "int", "logicalType": "time-millis"}},
    {"name": "t_us", "type": {"type": "long", "logicalType": "time-micros"}},
    {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
    {"name": "qty", "type": {"type": "fixed", "name": "Q", "size": 8, "logicalType": "decimal", "precision": 18, "scale": 4}},
    {"name": "uid", "type": {"type": "string", "logicalType": "uuid"}}
]}"#;

fn all_types_value(price: &[u8]) -> V {
    record(&[
        ("b", V::Boolean(true)),
        ("i", V::Int(-7)),
        ("l", V::Long(1 << 40)),
        ("f", V::Float(1.5)),
        ("d", V::Double(-2.25)),
        ("s", V::String("héllo".into())),
        ("raw", V::Bytes(vec![0, 255])),
        ("fx", V::Fixed(4, vec![1, 2, 3, 4])),
        ("e", V::Enum(1, "GREEN".into())),
        ("ts_ms", V::TimestampMillis(1_767_323_045_123)),
        ("ts_us", V::TimestampMicros(1_767_323_045_123_456)),
        ("lts_ms", V::LocalTimestampMillis(1_000)),
        ("lts_us", V::LocalTimestampMicros(2_000_001)),
        ("day", V::Date(20_455)),
        ("t_ms", V::TimeMillis(3_600_000)),
        ("t_us", V::TimeMicros(1_000_001)),
        ("price", V::Decimal(apache_avro::Decimal::from(price))),
        // -12.3456 at scale 4, sign-extended to 8 bytes.
        (
            "qty",
            V::Decimal(apache_avro::Decimal::from((-123_456i64).to_be_bytes())),
        ),
        (
            "uid",
            V::Uuid("67e55044-10b1-426f-9247-bb680e5fe0c8".parse().unwrap()),
        ),
    ])
}

#[test]
fn every_type_maps_to_its_arrow_type_and_value() {
    let (stub, url) = Stub::start();
    stub.register(1, ALL_TYPES);
    let mut avro = AvroBatchBuilder::new(&url).unwrap();
    // 12345.67 as an unscaled big-endian two's complement integer.
    let price = 1_234_567i32.to_be_bytes();
    avro.push(&framed(1, ALL_TYPES, all_types_value(&price)))
        .unwrap();
    assert_eq!(avro.len(), 1);
    let batch = avro.finish().unwrap();
    assert_eq!(avro.len(), 0);
    let schema = batch.schema();
    let t = |name: &str| schema.field_with_name(name).unwrap().data_type().clone();
    let utc = Some(UTC.into());
    assert_eq!(t("b"), DataType::Boolean);
    assert_eq!(t("i"), DataType::Int32);
    assert_eq!(t("l"), DataType::Int64);
    assert_eq!(t("f"), DataType::Float32);
    assert_eq!(t("d"), DataType::Float64);
    assert_eq!(t("s"), DataType::Utf8);
    assert_eq!(t("raw"), DataType::Binary);
    assert_eq!(t("fx"), DataType::FixedSizeBinary(4));
    assert_eq!(t("e"), DataType::Utf8);
    assert_eq!(
        t("ts_ms"),
        DataType::Timestamp(TimeUnit::Microsecond, utc.clone())
    );
    assert_eq!(t("ts_us"), DataType::Timestamp(TimeUnit::Microsecond, utc));
    assert_eq!(
        t("lts_ms"),
        DataType::Timestamp(TimeUnit::Microsecond, None)
    );
    assert_eq!(
        t("lts_us"),
        DataType::Timestamp(TimeUnit::Microsecond, None)
    );
    assert_eq!(t("day"), DataType::Date32);
    assert_eq!(t("t_ms"), DataType::Time64(TimeUnit::Microsecond));
    assert_eq!(t("t_us"), DataType::Time64(TimeUnit::Microsecond));
    assert_eq!(t("price"), DataType::Decimal128(10, 2));
    assert_eq!(t("qty"), DataType::Decimal128(18, 4));
    assert_eq!(t("uid"), DataType::Utf8);
    assert!(schema.fields().iter().all(|f| f.is_nullable()));

    let col = |name: &str| batch.column_by_name(name).unwrap().clone();
    assert!(col("b").as_boolean().value(0));
    assert_eq!(col("i").as_primitive::<Int32Type>().value(0), -7);
    assert_eq!(col("l").as_primitive::<Int64Type>().value(0), 1 << 40);
    assert_eq!(col("f").as_primitive::<Float32Type>().value(0), 1.5);
    assert_eq!(col("d").as_primitive::<Float64Type>().value(0), -2.25);
    assert_eq!(strings(&col("s")), [Some("héllo".to_string())]);
    assert_eq!(col("raw").as_binary::<i32>().value(0), [0, 255]);
    assert_eq!(col("fx").as_fixed_size_binary().value(0), [1, 2, 3, 4]);
    assert_eq!(strings(&col("e")), [Some("GREEN".to_string())]);
    // Millis and micros both land as µs.
    let ts = |name: &str| {
        col(name)
            .as_primitive::<TimestampMicrosecondType>()
            .value(0)
    };
    assert_eq!(ts("ts_ms"), 1_767_323_045_123_000);
    assert_eq!(ts("ts_us"), 1_767_323_045_123_456);
    assert_eq!(ts("lts_ms"), 1_000_000);
    assert_eq!(ts("lts_us"), 2_000_001);
    assert_eq!(col("day").as_primitive::<Date32Type>().value(0), 20_455);
    let time = |name: &str| col(name).as_primitive::<Time64MicrosecondType>().value(0);
    assert_eq!(time("t_ms"), 3_600_000_000);
    assert_eq!(time("t_us"), 1_000_001);
    let price = col("price");
    let price = price.as_primitive::<Decimal128Type>();
    assert_eq!(price.value(0), 1_234_567);
    assert_eq!(price.value_as_string(0), "12345.67");
    let qty = col("qty");
    assert_eq!(
        qty.as_primitive::<Decimal128Type>().value_as_string(0),
        "-12.3456"
    );
    assert_eq!(
        strings(&col("uid")),
        [Some("67e55044-10b1-426f-9247-bb680e5fe0c8".to_string())]
    );
    // One lookup for the id, then the cache.
    avro.push(&framed(1, ALL_TYPES, all_types_value(&price_bytes(5))))
        .unwrap();
    assert_eq!(*stub.requests.lock().unwrap(), 1);
}

fn price_bytes(x: i32) -> [u8; 4] {
    x.to_be_bytes()
}

#[test]
fn a_decimal_with_too_many_digits_is_bad_and_appends_nothing() {
    let (stub, url) = Stub::start();
    stub.register(1, ALL_TYPES);
    let mut avro = AvroBatchBuilder::new(&url).unwrap();
    avro.push(&framed(1, ALL_TYPES, all_types_value(&price_bytes(-5))))
        .unwrap();
    // 11 digits where decimal(10, 2) allows 10.
    let too_big = 99_999_999_999i64.to_be_bytes();
    let reason = bad(avro.push(&framed(1, ALL_TYPES, all_types_value(&too_big))));
    assert!(reason.contains("field `price`"), "{reason}");
    assert!(reason.contains("more than the 10 digits"), "{reason}");
    assert_eq!(avro.len(), 1);
    let batch = avro.finish().unwrap();
    let price = batch.column_by_name("price").unwrap();
    assert_eq!(
        price.as_primitive::<Decimal128Type>().value_as_string(0),
        "-0.05"
    );
}

#[test]
fn nested_records_arrays_maps_and_unions() {
    let schema = r#"{"type": "record", "name": "Article", "fields": [
        {"name": "author", "type": {"type": "record", "name": "Person", "fields": [
            {"name": "name", "type": "string"},
            {"name": "age", "type": ["null", "int"]}]}},
        {"name": "editor", "type": ["null", "Person"]},
        {"name": "scores", "type": {"type": "array", "items": ["null", "long"]}},
        {"name": "people", "type": {"type": "array", "items": "Person"}},
        {"name": "labels", "type": {"type": "map", "values": "string"}},
        {"name": "maybe", "type": ["string", "null"]},
        {"name": "either", "type": ["int", "string"]},
        {"name": "any", "type": ["null", "int", "string", {"type": "array", "items": "int"}]}
    ]}"#;
    let (stub, url) = Stub::start();
    stub.register(7, schema);
    let mut avro = AvroBatchBuilder::new(&url).unwrap();
    let person = |name: &str, age: Option<i32>| {
        record(&[
            ("name", V::String(name.into())),
            (
                "age",
                match age {
                    Some(a) => V::Union(1, Box::new(V::Int(a))),
                    None => V::Union(0, Box::new(V::Null)),
                },
            ),
        ])
    };
    let labels = |pairs: &[(&str, &str)]| {
        V::Map(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), V::String(v.to_string())))
                .collect(),
        )
    };
    avro.push(&framed(
        7,
        schema,
        record(&[
            ("author", person("ada", Some(36))),
            ("editor", V::Union(0, Box::new(V::Null))),
            (
                "scores",
                V::Array(vec![
                    V::Union(1, Box::new(V::Long(3))),
                    V::Union(0, Box::new(V::Null)),
                ]),
            ),
            (
                "people",
                V::Array(vec![person("bo", None), person("cy", Some(5))]),
            ),
            ("labels", labels(&[("z", "last"), ("a", "first")])),
            ("maybe", V::Union(0, Box::new(V::String("yes".into())))),
            ("either", V::Union(0, Box::new(V::Int(42)))),
            (
                "any",
                V::Union(3, Box::new(V::Array(vec![V::Int(1), V::Int(2)]))),
            ),
        ]),
    ))
    .unwrap();
    avro.push(&framed(
        7,
        schema,
        record(&[
            ("author", person("bea", None)),
            ("editor", V::Union(1, Box::new(person("ed", Some(50))))),
            ("scores", V::Array(vec![])),
            ("people", V::Array(vec![])),
            ("labels", labels(&[])),
            ("maybe", V::Union(1, Box::new(V::Null))),
            ("either", V::Union(1, Box::new(V::String("x".into())))),
            ("any", V::Union(0, Box::new(V::Null))),
        ]),
    ))
    .unwrap();
    let batch = avro.finish().unwrap();
    assert_eq!(batch.num_rows(), 2);
    let schema = batch.schema();

    let person_type = DataType::Struct(
        vec![
            Field::new("name", DataType::Utf8, false),
            Field::new("age", DataType::Int32, true),
        ]
        .into(),
    );
    assert_eq!(
        schema.field_with_name("author").unwrap().data_type(),
        &person_type
    );
    // The named type used a second time (a reference) maps the same.
    assert_eq!(
        schema.field_with_name("editor").unwrap().data_type(),
        &person_type
    );

    let author = batch.column_by_name("author").unwrap().as_struct();
    assert_eq!(
        strings(author.column(0).as_ref()),
        [Some("ada".into()), Some("bea".into())]
    );
    let age = author.column(1).as_primitive::<Int32Type>();
    assert_eq!(age.iter().collect::<Vec<_>>(), [Some(36), None]);

    let editor = batch.column_by_name("editor").unwrap().as_struct();
    assert!(editor.is_null(0));
    assert!(editor.is_valid(1));
    assert_eq!(strings(editor.column(0).as_ref())[1], Some("ed".into()));

    let scores = batch.column_by_name("scores").unwrap().as_list::<i32>();
    let first = scores.value(0);
    assert_eq!(
        first.as_primitive::<Int64Type>().iter().collect::<Vec<_>>(),
        [Some(3), None]
    );
    assert_eq!(scores.value(1).len(), 0);

    let people = batch.column_by_name("people").unwrap().as_list::<i32>();
    let row0 = people.value(0);
    let row0 = row0.as_struct();
    assert_eq!(
        strings(row0.column(0).as_ref()),
        [Some("bo".into()), Some("cy".into())]
    );
    assert_eq!(
        row0.column(1)
            .as_primitive::<Int32Type>()
            .iter()
            .collect::<Vec<_>>(),
        [None, Some(5)]
    );

    let labels = batch.column_by_name("labels").unwrap().as_map();
    assert_eq!(
        schema.field_with_name("labels").unwrap().data_type(),
        &map_type(Field::new("value", DataType::Utf8, false))
    );
    let entries = labels.value(0);
    assert_eq!(
        strings(entries.column(0).as_ref()),
        [Some("a".into()), Some("z".into())]
    );
    assert_eq!(
        strings(entries.column(1).as_ref()),
        [Some("first".into()), Some("last".into())]
    );
    assert_eq!(labels.value(1).len(), 0);

    assert_eq!(
        strings(batch.column_by_name("maybe").unwrap().as_ref()),
        [Some("yes".into()), None]
    );
    // Several non-null branches: the value as JSON text.
    let either = schema.field_with_name("either").unwrap();
    assert_eq!(either.data_type(), &DataType::Utf8);
    assert_eq!(
        strings(batch.column_by_name("either").unwrap().as_ref()),
        [Some("42".into()), Some("\"x\"".into())]
    );
    assert_eq!(
        strings(batch.column_by_name("any").unwrap().as_ref()),
        [Some("[1,2]".into()), None]
    );
}

const V1: &str = r#"{"type": "record", "name": "Article", "fields": [
    {"name": "id", "type": "string"},
    {"name": "title", "type": "string"},
    {"name": "meta", "type": {"type": "record", "name": "Meta", "fields": [
        {"name": "words", "type": "int"}]}}
]}"#;
/// v1 + an optional `lang`, `meta.source`, and `words` widened to long.
const V2: &str = r#"{"type": "record", "name": "Article", "fields": [
    {"name": "id", "type": "string"},
    {"name": "title", "type": "string"},
    {"name": "meta", "type": {"type": "record", "name": "Meta", "fields": [
        {"name": "words", "type": "long"},
        {"name": "source", "type": ["null", "string"], "default": null}]}},
    {"name": "lang", "type": ["null", "string"], "default": null}
]}"#;
/// `title` changed from string to long: not an evolution we can hold.
const V3: &str = r#"{"type": "record", "name": "Article", "fields": [
    {"name": "id", "type": "string"},
    {"name": "title", "type": "long"}
]}"#;

fn v1(id: &str, words: i32) -> V {
    record(&[
        ("id", V::String(id.into())),
        ("title", V::String(format!("t{id}"))),
        ("meta", record(&[("words", V::Int(words))])),
    ])
}

fn v2(id: &str, lang: &str) -> V {
    record(&[
        ("id", V::String(id.into())),
        ("title", V::String(format!("t{id}"))),
        (
            "meta",
            record(&[
                ("words", V::Long(1 << 33)),
                ("source", V::Union(1, Box::new(V::String("wire".into())))),
            ]),
        ),
        ("lang", V::Union(1, Box::new(V::String(lang.into())))),
    ])
}

#[test]
fn new_writer_schemas_grow_the_batch_schema() {
    let (stub, url) = Stub::start();
    stub.register(1, V1);
    stub.register(2, V2);
    stub.register(3, V3);
    let mut avro = AvroBatchBuilder::new(&url).unwrap();

    avro.push(&framed(1, V1, v1("a", 10))).unwrap();
    let first = avro.finish().unwrap();
    let names: Vec<_> = first
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["id", "title", "meta"]);

    avro.push(&framed(1, V1, v1("b", 20))).unwrap();
    avro.push(&framed(2, V2, v2("c", "en"))).unwrap();
    avro.push(&framed(1, V1, v1("d", 40))).unwrap();

    // string → long for `title`: bad, naming the field and both types,
    // and the batch is as it was.
    let reason = bad(avro.push(&framed(
        3,
        V3,
        record(&[("id", V::String("e".into())), ("title", V::Long(5))]),
    )));
    assert!(reason.contains("writer schema id 3"), "{reason}");
    assert!(reason.contains("field `title`"), "{reason}");
    assert!(reason.contains("makes it long"), "{reason}");
    assert!(reason.contains("made it string"), "{reason}");
    assert_eq!(avro.len(), 3);

    let batch = avro.finish().unwrap();
    let schema = batch.schema();
    let names: Vec<_> = schema.fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(names, ["id", "title", "meta", "lang"]);
    assert_eq!(
        strings(batch.column_by_name("id").unwrap().as_ref()),
        [Some("b".into()), Some("c".into()), Some("d".into())]
    );
    // v1 rows read null in the column v2 added.
    assert_eq!(
        strings(batch.column_by_name("lang").unwrap().as_ref()),
        [None, Some("en".into()), None]
    );
    let meta = batch.column_by_name("meta").unwrap().as_struct();
    assert_eq!(
        schema.field_with_name("meta").unwrap().data_type(),
        &DataType::Struct(
            vec![
                Field::new("words", DataType::Int64, false),
                Field::new("source", DataType::Utf8, true),
            ]
            .into()
        )
    );
    // int widened to long; the nested field v2 added is null for v1.
    assert_eq!(
        meta.column(0)
            .as_primitive::<Int64Type>()
            .iter()
            .collect::<Vec<_>>(),
        [Some(20), Some(1 << 33), Some(40)]
    );
    assert_eq!(
        strings(meta.column(1).as_ref()),
        [None, Some("wire".into()), None]
    );
}

#[test]
fn framing_and_body_errors_are_bad_records() {
    let (stub, url) = Stub::start();
    stub.register(1, V1);
    let mut avro = AvroBatchBuilder::new(&url).unwrap();
    let good = framed(1, V1, v1("a", 1));

    let mut magic = good.clone();
    magic[0] = 1;
    assert!(bad(avro.push(&magic)).contains("first byte is 0x01, not the Confluent magic byte"));
    assert!(bad(avro.push(br#"{"id": 1}"#)).contains("first byte is 0x7b"));
    assert!(bad(avro.push(&[])).contains("empty value"));
    assert!(bad(avro.push(&[0, 0, 0])).contains("too short"));

    let truncated = &good[..good.len() - 3];
    let reason = bad(avro.push(truncated));
    assert!(
        reason.contains("does not decode with writer schema id 1"),
        "{reason}"
    );
    assert_eq!(avro.len(), 0);
    avro.push(&good).unwrap();
    assert_eq!(avro.finish().unwrap().num_rows(), 1);
}

#[test]
fn a_top_level_schema_that_is_not_a_record_is_bad() {
    let (stub, url) = Stub::start();
    stub.register(4, r#""string""#);
    let mut avro = AvroBatchBuilder::new(&url).unwrap();
    let payload = framed(4, r#""string""#, V::String("hi".into()));
    let reason = bad(avro.push(&payload));
    assert_eq!(
        reason,
        "writer schema id 4: the top-level Avro schema must be a record, not string"
    );
    // Cached: asking again does not hit the registry again.
    bad(avro.push(&payload));
    assert_eq!(*stub.requests.lock().unwrap(), 1);
    assert_eq!(avro.finish().unwrap().num_columns(), 0);
}

#[test]
fn a_recursive_schema_is_bad() {
    let schema = r#"{"type": "record", "name": "Node", "fields": [
        {"name": "next", "type": ["null", "Node"]}]}"#;
    let (stub, url) = Stub::start();
    stub.register(5, schema);
    let mut avro = AvroBatchBuilder::new(&url).unwrap();
    let reason = bad(avro.push(&framed(
        5,
        schema,
        record(&[("next", V::Union(0, Box::new(V::Null)))]),
    )));
    assert!(reason.contains("field `next`"), "{reason}");
    assert!(reason.contains("`Node` contains itself"), "{reason}");
}

/// A record that must contain itself has no finite value: decoding any
/// body with it recursed until the stack overflowed and the process died
/// (found by the `avro_schema` fuzz target). It must be refused before any
/// body is decoded.
#[test]
fn a_record_that_must_contain_itself_is_bad_before_decoding() {
    let (stub, url) = Stub::start();
    stub.register(
        6,
        r#"{"type": "record", "name": "A", "fields": [{"name": "a", "type": "A"}]}"#,
    );
    let mut avro = AvroBatchBuilder::new(&url).unwrap();
    for body in [&[][..], &[2, 2, 2][..]] {
        let mut payload = confluent::header(6).to_vec();
        payload.extend_from_slice(body);
        let reason = bad(avro.push(&payload));
        assert!(reason.contains("`A` contains itself"), "{reason}");
    }
}

/// A linked list (`next: ["null", Node]`) is a valid recursive schema; a
/// body of a million "one more node" bytes nested a million deep in the
/// decoder. Refused by its schema, whatever the body.
#[test]
fn a_long_body_of_a_recursive_schema_is_bad_not_a_stack_overflow() {
    let schema = r#"{"type": "record", "name": "Node", "fields": [
        {"name": "next", "type": ["null", "Node"]}]}"#;
    let (stub, url) = Stub::start();
    stub.register(7, schema);
    let mut avro = AvroBatchBuilder::new(&url).unwrap();
    let mut payload = confluent::header(7).to_vec();
    payload.extend(std::iter::repeat_n(2u8, 1_000_000));
    payload.push(0);
    let reason = bad(avro.push(&payload));
    assert!(reason.contains("`Node` contains itself"), "{reason}");
}

/// Named types may refer to each other without any nesting in the JSON, so
/// a schema's depth is not bounded by the JSON parser's depth limit: 10,000
/// records each holding the next is refused with its depth named, not
/// mapped (or decoded) by recursion 10,000 deep.
#[test]
fn a_schema_nested_ten_thousand_deep_is_bad() {
    let depth = 10_000;
    // The definitions sit side by side as fields of the top-level record,
    // R9999 first: R0's field refers to R1, R1's to R2, ... so the last
    // field, R0, is 10,000 deep.
    let fields: Vec<String> = (0..depth)
        .map(|i| {
            let next = if i + 1 < depth {
                format!("\"R{}\"", i + 1)
            } else {
                "\"long\"".to_string()
            };
            format!(
                r#"{{"name": "f{}", "type": {{"type": "record", "name": "R{i}", "fields": [{{"name": "v", "type": {next}}}]}}}}"#,
                depth - 1 - i
            )
        })
        .rev()
        .collect();
    let schema = format!(
        r#"{{"type": "record", "name": "Top", "fields": [{}]}}"#,
        fields.join(",")
    );
    let (stub, url) = Stub::start();
    stub.register(8, &schema);
    let mut avro = AvroBatchBuilder::new(&url).unwrap();
    let mut payload = confluent::header(8).to_vec();
    payload.extend(std::iter::repeat_n(0u8, 20_000));
    let reason = bad(avro.push(&payload));
    assert!(reason.contains("levels deep"), "{reason}");
}

/// A writer schema whose field types are defined in other registered
/// schemas (Confluent's schema references), the one it references
/// referencing a third.
#[test]
fn a_schema_with_references_decodes() {
    let address = r#"{"type": "record", "name": "Address", "namespace": "geo",
        "fields": [{"name": "city", "type": "string"}, {"name": "at", "type": "geo.Point"}]}"#;
    let point = r#"{"type": "record", "name": "Point", "namespace": "geo",
        "fields": [{"name": "lat", "type": "double"}]}"#;
    let person = r#"{"type": "record", "name": "Person", "fields": [
        {"name": "name", "type": "string"}, {"name": "home", "type": "geo.Address"}]}"#;
    let (stub, url) = Stub::start();
    stub.register_subject("point", point, &[]);
    stub.register_subject("address", address, &["point"]);
    stub.register_with_references(9, person, &["address"]);
    // The same types written out in one schema: the bytes are the same.
    let inline = r#"{"type": "record", "name": "Person", "fields": [
        {"name": "name", "type": "string"},
        {"name": "home", "type": {"type": "record", "name": "Address", "namespace": "geo",
            "fields": [{"name": "city", "type": "string"},
                       {"name": "at", "type": {"type": "record", "name": "Point",
                            "fields": [{"name": "lat", "type": "double"}]}}]}}]}"#;
    let value = record(&[
        ("name", V::String("Ada".into())),
        (
            "home",
            record(&[
                ("city", V::String("London".into())),
                ("at", record(&[("lat", V::Double(51.5))])),
            ]),
        ),
    ]);
    let payload = framed(9, inline, value);
    let mut avro = AvroBatchBuilder::new(&url).unwrap();
    avro.push(&payload).unwrap();
    let batch = avro.finish().unwrap();
    let home = batch.column_by_name("home").unwrap().as_struct();
    assert_eq!(
        strings(home.column_by_name("city").unwrap()),
        [Some("London".into())]
    );
    let at = home.column_by_name("at").unwrap().as_struct();
    let lat = at
        .column_by_name("lat")
        .unwrap()
        .as_primitive::<Float64Type>();
    assert_eq!(lat.value(0), 51.5);
}

/// A schema apache-avro parses but whose canonical form it cannot write
/// (a union branch with `"fields": 4`): naming it in the message panicked
/// inside apache-avro (found by the `avro_schema` fuzz target).
#[test]
fn a_schema_apache_avro_cannot_print_is_named_without_panicking() {
    let text = r#"{"type": [{"name": "pUic", "type": {"typde": "record", "name": "Mney",
        "fields": 4, "type": "enum", "name": "C.or", "symbols": ["G"]}}]}"#;
    let schema = AvroSchema::parse_str(text).unwrap();
    let mut avro = AvroBatchBuilder::for_decoded_values();
    let reason = bad(avro.push_body(1, &schema, &[0]));
    assert!(reason.contains("must be a record, not a union"), "{reason}");
}

#[test]
fn an_unknown_schema_id_is_bad() {
    let (_stub, url) = Stub::start();
    let mut avro = AvroBatchBuilder::new(&url).unwrap();
    let reason = bad(avro.push(&framed(99, V1, v1("a", 1))));
    assert!(
        reason.starts_with("writer schema id 99 is not in the schema registry"),
        "{reason}"
    );
    assert!(reason.contains("40403"), "{reason}");
}

#[test]
fn an_unreachable_registry_is_unavailable_and_retryable_and_not_cached() {
    // A port with nobody listening: bind, note the port, let it go.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let mut avro = AvroBatchBuilder::new(&url).unwrap();
    let payload = framed(1, V1, v1("a", 1));
    match avro.push(&payload) {
        Err(DecodeError::Unavailable(e)) => {
            assert!(e.is_retryable(), "{e}");
            assert_eq!(e.kind(), tributary_connector::ErrorKind::External);
            assert!(e.message().contains("is unavailable"), "{e}");
            assert!(e.message().contains(&url), "{e}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(avro.len(), 0);

    // The registry comes back on the same address: the same message reads.
    let stub = Stub::serve(TcpListener::bind(("127.0.0.1", port)).unwrap());
    stub.register(1, V1);
    avro.push(&payload).unwrap();
    assert_eq!(avro.len(), 1);
}

#[test]
fn a_registry_5xx_is_unavailable_and_does_not_poison_the_cache() {
    let (stub, url) = Stub::start();
    stub.register(1, V1);
    let mut avro = AvroBatchBuilder::new(&url).unwrap();
    let payload = framed(1, V1, v1("a", 1));
    // 500 is one the decoder itself would cache as permanent.
    for code in [500, 503] {
        *stub.fail_with.lock().unwrap() = Some(code);
        match avro.push(&payload) {
            Err(DecodeError::Unavailable(e)) => assert!(e.is_retryable(), "{e}"),
            other => panic!("{code}: expected Unavailable, got {other:?}"),
        }
    }
    *stub.fail_with.lock().unwrap() = Some(401);
    match avro.push(&payload) {
        Err(DecodeError::Unavailable(e)) => {
            assert!(!e.is_retryable(), "{e}");
            assert!(e.message().contains("credentials"), "{e}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    *stub.fail_with.lock().unwrap() = None;
    avro.push(&payload).unwrap();
    assert_eq!(avro.len(), 1);
}

#[test]
fn a_404_without_40403_is_a_wrong_url_not_a_bad_record() {
    let (stub, url) = Stub::start();
    *stub.fail_with.lock().unwrap() = Some(404);
    let mut avro = AvroBatchBuilder::new(&format!("{url}/")).unwrap();
    match avro.push(&framed(1, V1, v1("a", 1))) {
        Err(DecodeError::Unavailable(e)) => {
            assert_eq!(e.kind(), tributary_connector::ErrorKind::Config);
            assert!(e.message().contains("base URL"), "{e}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[test]
fn urls_are_checked_and_a_second_registry_url_is_tried() {
    let err = AvroBatchBuilder::new("http://a:1,localhost:8081").unwrap_err();
    assert_eq!(
        err.message(),
        "kafka source: schema registry URL `localhost:8081` must start with http:// or https://"
    );
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let (stub, url) = Stub::start();
    stub.register(1, V1);
    let mut avro = AvroBatchBuilder::new(&format!("{dead_url}, {url}")).unwrap();
    avro.push(&framed(1, V1, v1("a", 1))).unwrap();
    assert_eq!(avro.len(), 1);
}

#[test]
fn a_null_only_field_takes_a_later_type() {
    let v1 = r#"{"type": "record", "name": "R", "fields": [{"name": "x", "type": "null"}]}"#;
    let v2 =
        r#"{"type": "record", "name": "R", "fields": [{"name": "x", "type": ["null", "long"]}]}"#;
    let (stub, url) = Stub::start();
    stub.register(1, v1);
    stub.register(2, v2);
    let mut avro = AvroBatchBuilder::new(&url).unwrap();
    avro.push(&framed(1, v1, record(&[("x", V::Null)])))
        .unwrap();
    avro.push(&framed(
        2,
        v2,
        record(&[("x", V::Union(1, Box::new(V::Long(9))))]),
    ))
    .unwrap();
    let batch = avro.finish().unwrap();
    assert_eq!(batch.schema().field(0).data_type(), &DataType::Int64);
    let x = batch.column(0).as_primitive::<Int64Type>();
    assert_eq!(x.iter().collect::<Vec<_>>(), [None, Some(9)]);
}

#[test]
fn the_builder_can_move_to_the_source_thread() {
    fn send<T: Send>() {}
    send::<AvroBatchBuilder>();
    send::<crate::json::JsonBatchBuilder>();
}

#[test]
fn decimals_convert_exactly_at_the_edges() {
    let d = |bytes: &[u8], p| decimal(&apache_avro::Decimal::from(bytes), p);
    assert_eq!(d(&[0xff], 2).unwrap(), -1);
    assert_eq!(d(&[0x00, 0x80], 3).unwrap(), 128);
    assert_eq!(d(&[], 1).unwrap(), 0);
    // 10^38 - 1 fits 38 digits; sign-extended past 16 bytes it still does.
    let max = 10i128.pow(38) - 1;
    let mut wide = vec![0u8; 4];
    wide.extend(max.to_be_bytes());
    assert_eq!(d(&wide, 38).unwrap(), max);
    let mut neg = vec![0xffu8; 4];
    neg.extend((-max).to_be_bytes());
    assert_eq!(d(&neg, 38).unwrap(), -max);
    assert!(d(&(10i128.pow(38)).to_be_bytes(), 38).is_err());
    let mut huge = vec![1u8];
    huge.extend([0u8; 16]);
    assert!(d(&huge, 38).is_err());
    assert!(d(&[0x03, 0xe8], 3).is_err()); // 1000 has 4 digits
}
