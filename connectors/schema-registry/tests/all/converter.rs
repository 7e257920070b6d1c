//! `schema_registry_converter` 6.0.0 (the Rust client Kafka users reach for)
//! against our registry: encode with v1 and v2, decode both, refuse an
//! incompatible v3, and find everything again after a restart.

use apache_avro::types::Value;
use schema_registry_converter::blocking::avro::{AvroDecoder, AvroEncoder};
use schema_registry_converter::blocking::schema_registry::{SrSettings, post_schema};
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};

use crate::{ARTICLE_BAD_TYPE, ARTICLE_V1, ARTICLE_V2, http, start};

const TOPIC: &str = "articles.raw.v1";
const SUBJECT: &str = "articles.raw.v1-value";

fn supplied(schema: &str) -> SuppliedSchema {
    SuppliedSchema::new(None, SchemaType::Avro, schema.to_owned())
}

/// The encoder caches the schema per subject, so a second version through the
/// same encoder would silently reuse the first: one encoder per version.
fn encode(url: &str, schema: &str, values: Vec<(&str, Value)>) -> Vec<u8> {
    let encoder = AvroEncoder::new(SrSettings::new(url.to_owned()));
    let strategy =
        SubjectNameStrategy::TopicNameStrategyWithSchema(TOPIC.into(), false, supplied(schema));
    encoder.encode(values, &strategy).expect("encode")
}

fn schema_id(payload: &[u8]) -> u32 {
    assert_eq!(payload[0], 0, "Confluent magic byte");
    u32::from_be_bytes(payload[1..5].try_into().unwrap())
}

fn field<'a>(record: &'a Value, name: &str) -> &'a Value {
    let Value::Record(fields) = record else {
        panic!("not a record: {record:?}")
    };
    &fields.iter().find(|(n, _)| n == name).unwrap().1
}

#[test]
fn converter_encodes_v1_and_v2_refuses_type_change_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let registry = start(dir.path());
    let url = registry.url();

    let v1_bytes = encode(
        &url,
        ARTICLE_V1,
        vec![
            ("id", Value::String("a-1".into())),
            ("title", Value::String("Rivers".into())),
            ("published_at", Value::TimestampMillis(1_767_225_600_000)),
        ],
    );
    let v2_bytes = encode(
        &url,
        ARTICLE_V2,
        vec![
            ("id", Value::String("a-2".into())),
            ("title", Value::String("Deltas".into())),
            ("published_at", Value::TimestampMillis(1_767_225_601_000)),
            (
                "lang",
                Value::Union(1, Box::new(Value::String("en".into()))),
            ),
        ],
    );
    assert_eq!(schema_id(&v1_bytes), 1, "first schema gets id 1");
    assert_eq!(schema_id(&v2_bytes), 2, "v2 is a new schema, id 2");

    let decoder = AvroDecoder::new(SrSettings::new(url.clone()));
    let v1 = decoder.decode(Some(&v1_bytes)).expect("decode v1").value;
    let v2 = decoder.decode(Some(&v2_bytes)).expect("decode v2").value;
    assert_eq!(field(&v1, "id"), &Value::String("a-1".into()));
    assert_eq!(field(&v1, "title"), &Value::String("Rivers".into()));
    assert_eq!(
        field(&v1, "published_at"),
        &Value::TimestampMillis(1_767_225_600_000)
    );
    assert_eq!(field(&v2, "id"), &Value::String("a-2".into()));
    assert_eq!(
        field(&v2, "lang"),
        &Value::Union(1, Box::new(Value::String("en".into())))
    );

    // Registering v1 again (another encoder, same text) answers the same id.
    let again = post_schema(
        &SrSettings::new(url.clone()),
        SUBJECT.into(),
        supplied(ARTICLE_V1),
    )
    .expect("re-register v1");
    assert_eq!(again.id, 1);

    // v3 changes title string -> int: the client sees the refusal and the reason.
    let refused = post_schema(
        &SrSettings::new(url.clone()),
        SUBJECT.into(),
        supplied(ARTICLE_BAD_TYPE),
    )
    .expect_err("type change must be refused");
    let text = refused.to_string();
    assert!(text.contains("409"), "status in the client's error: {text}");
    assert!(text.contains("'title'"), "field named: {text}");
    // And on the wire: HTTP 409, error_code 409, Confluent's content type.
    let reply = http(
        registry.local_addr(),
        "POST",
        &format!("/subjects/{SUBJECT}/versions"),
        Some(crate::schema_body(ARTICLE_BAD_TYPE)),
    );
    assert_eq!(reply.status, 409, "{reply:?}");
    assert_eq!(reply.body["error_code"], 409);
    assert_eq!(reply.content_type, tributary_schema_registry::CONTENT_TYPE);
    let message = reply.body["message"].as_str().unwrap().to_lowercase();
    assert!(
        message.contains("'title'") && message.contains("'string'") && message.contains("'int'"),
        "the reason names the field and both types: {message}"
    );

    // Restart on the same folder: ids, versions and payload decoding survive.
    drop(registry);
    let registry = start(dir.path());
    let reply = http(
        registry.local_addr(),
        "GET",
        &format!("/subjects/{SUBJECT}/versions"),
        None,
    );
    assert_eq!(reply.body, serde_json::json!([1, 2]));
    let latest = http(
        registry.local_addr(),
        "GET",
        &format!("/subjects/{SUBJECT}/versions/latest"),
        None,
    );
    assert_eq!(
        (latest.body["id"].clone(), latest.body["version"].clone()),
        (2.into(), 2.into())
    );
    let decoder = AvroDecoder::new(SrSettings::new(registry.url()));
    let v1 = decoder
        .decode(Some(&v1_bytes))
        .expect("decode v1 after restart")
        .value;
    assert_eq!(field(&v1, "title"), &Value::String("Rivers".into()));
    // A new schema after the restart continues the id sequence instead of reusing 1.
    let other = post_schema(
        &SrSettings::new(registry.url()),
        "other-value".into(),
        supplied(r#"{"type":"record","name":"Other","fields":[{"name":"x","type":"long"}]}"#),
    )
    .unwrap();
    assert_eq!(other.id, 3);
}
