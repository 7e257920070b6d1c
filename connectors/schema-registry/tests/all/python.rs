//! confluent-kafka's own Python client (`SchemaRegistryClient`, `AvroSerializer`)
//! against our registry, via `scripts/check_schema_registry.py`; the payloads it
//! serialises are then decoded here with `schema_registry_converter`, so two
//! independent clients agree on ids and bytes.

use std::path::PathBuf;
use std::process::Command;

use apache_avro::types::Value;
use schema_registry_converter::blocking::avro::AvroDecoder;
use schema_registry_converter::blocking::schema_registry::SrSettings;

use crate::start;

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/check_schema_registry.py")
}

fn field(record: &Value, name: &str) -> Value {
    let Value::Record(fields) = record else {
        panic!("not a record: {record:?}")
    };
    fields.iter().find(|(n, _)| n == name).unwrap().1.clone()
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn confluent_python_client_registers_serialises_and_we_decode() {
    let Some(python) = std::env::var_os("TRIBUTARY_PYTHON") else {
        eprintln!(
            "SKIPPED confluent_python_client_registers_serialises_and_we_decode: TRIBUTARY_PYTHON is unset \
             (scripts/test.sh sets it to a venv with confluent-kafka[avro,schemaregistry])"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let registry = start(dir.path());
    let output = Command::new(&python)
        .arg(script())
        .args(["--url", &registry.url()])
        .output()
        .expect("run the Python check");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "check_schema_registry.py failed ({}):\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(stdout.trim().lines().last().unwrap_or(""))
            .unwrap_or_else(|e| panic!("last stdout line is not JSON ({e}): {stdout}"));
    eprintln!("confluent-kafka client report: {report}");
    assert_eq!(report["v1_id"], 1, "{report}");
    assert_eq!(report["v2_id"], 2, "{report}");
    assert_eq!(report["incompatible_status"], 409, "{report}");

    let decoder = AvroDecoder::new(SrSettings::new(registry.url()));
    let v1_bytes = hex(report["v1_payload_hex"].as_str().unwrap());
    let v2_bytes = hex(report["v2_payload_hex"].as_str().unwrap());
    assert_eq!(&v1_bytes[..5], &[0, 0, 0, 0, 1], "magic byte and id 1");
    assert_eq!(&v2_bytes[..5], &[0, 0, 0, 0, 2], "magic byte and id 2");
    let v1 = decoder
        .decode(Some(&v1_bytes))
        .expect("decode the v1 payload")
        .value;
    let v2 = decoder
        .decode(Some(&v2_bytes))
        .expect("decode the v2 payload")
        .value;
    assert_eq!(field(&v1, "id"), Value::String("py-1".into()));
    assert_eq!(
        field(&v1, "title"),
        Value::String("Written by Python".into())
    );
    assert_eq!(
        field(&v1, "published_at"),
        Value::TimestampMillis(1_767_225_600_000)
    );
    assert_eq!(field(&v2, "id"), Value::String("py-2".into()));
    assert_eq!(
        field(&v2, "lang"),
        Value::Union(1, Box::new(Value::String("de".into())))
    );
}
