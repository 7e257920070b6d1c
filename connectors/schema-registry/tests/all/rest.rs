//! Confluent's REST envelopes and error codes, checked on the wire.

use serde_json::json;

use crate::{ARTICLE_BAD_TYPE, ARTICLE_V1, ARTICLE_V2, http, schema_body, start};

#[test]
fn error_codes_match_confluent() {
    let dir = tempfile::tempdir().unwrap();
    let registry = start(dir.path());
    let addr = registry.local_addr();

    let missing = http(addr, "GET", "/subjects/nope/versions", None);
    assert_eq!(
        (missing.status, missing.body["error_code"].clone()),
        (404, json!(40401))
    );
    assert_eq!(missing.body["message"], "Subject 'nope' not found.");
    assert_eq!(
        missing.content_type,
        tributary_schema_registry::CONTENT_TYPE
    );

    let reg = http(
        addr,
        "POST",
        "/subjects/s/versions",
        Some(schema_body(ARTICLE_V1)),
    );
    assert_eq!((reg.status, reg.body.clone()), (200, json!({"id": 1})));

    let no_version = http(addr, "GET", "/subjects/s/versions/9", None);
    assert_eq!(
        (no_version.status, no_version.body["error_code"].clone()),
        (404, json!(40402))
    );
    let bad_version = http(addr, "GET", "/subjects/s/versions/zero", None);
    assert_eq!(
        (bad_version.status, bad_version.body["error_code"].clone()),
        (422, json!(42202))
    );
    let no_schema = http(addr, "GET", "/schemas/ids/77", None);
    assert_eq!(
        (no_schema.status, no_schema.body["error_code"].clone()),
        (404, json!(40403))
    );
    let not_in_subject = http(addr, "POST", "/subjects/s", Some(schema_body(ARTICLE_V2)));
    assert_eq!(not_in_subject.body["error_code"], 40403);

    let garbage = http(
        addr,
        "POST",
        "/subjects/s/versions",
        Some(schema_body("{\"type\":\"recrod\"}")),
    );
    assert_eq!(
        (garbage.status, garbage.body["error_code"].clone()),
        (422, json!(42201))
    );
    let proto = http(
        addr,
        "POST",
        "/subjects/s/versions",
        Some(json!({"schema": "syntax = \"proto3\";", "schemaType": "PROTOBUF"})),
    );
    assert_eq!(proto.body["error_code"], 42201);
    assert!(
        proto.body["message"].as_str().unwrap().contains("AVRO"),
        "{proto:?}"
    );
}

#[test]
fn reads_lookup_config_and_compatibility_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let registry = start(dir.path());
    let addr = registry.local_addr();
    http(
        addr,
        "POST",
        "/subjects/s/versions",
        Some(schema_body(ARTICLE_V1)),
    );
    // Same schema under another subject: same global id.
    let other = http(
        addr,
        "POST",
        "/subjects/t/versions",
        Some(schema_body(ARTICLE_V1)),
    );
    assert_eq!(other.body, json!({"id": 1}));

    let found = http(addr, "POST", "/subjects/s", Some(schema_body(ARTICLE_V1)));
    assert_eq!(found.body["subject"], "s");
    assert_eq!(
        (found.body["id"].clone(), found.body["version"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(found.body["schema"], ARTICLE_V1.trim());

    let raw = http(addr, "GET", "/subjects/s/versions/latest/schema", None);
    assert_eq!(
        raw.body["name"], "Article",
        "raw schema JSON, not a string: {raw:?}"
    );
    let by_id = http(
        addr,
        "GET",
        "/schemas/ids/1?subject=s&fetchMaxId=false",
        None,
    );
    assert_eq!(by_id.body["schema"], ARTICLE_V1.trim());
    let uses = http(addr, "GET", "/schemas/ids/1/versions", None);
    assert_eq!(
        uses.body,
        json!([{"subject":"s","version":1},{"subject":"t","version":1}])
    );
    assert_eq!(http(addr, "GET", "/subjects", None).body, json!(["s", "t"]));

    assert_eq!(
        http(addr, "GET", "/config", None).body,
        json!({"compatibilityLevel": "BACKWARD"})
    );
    let unset = http(addr, "GET", "/config/s", None);
    assert_eq!(unset.body["error_code"], 40408);
    let global = http(addr, "GET", "/config/s?defaultToGlobal=true", None);
    assert_eq!(global.body, json!({"compatibilityLevel": "BACKWARD"}));

    let bad_path = "/compatibility/subjects/s/versions/latest";
    let ok = http(addr, "POST", bad_path, Some(schema_body(ARTICLE_V2)));
    assert_eq!(ok.body, json!({"is_compatible": true}));
    let no = http(
        addr,
        "POST",
        &format!("{bad_path}?verbose=true"),
        Some(schema_body(ARTICLE_BAD_TYPE)),
    );
    assert_eq!(no.body["is_compatible"], false);
    assert!(
        no.body["messages"][0].as_str().unwrap().contains("'title'"),
        "{no:?}"
    );

    // NONE on the subject lets the type change through; the global level is untouched.
    let put = http(
        addr,
        "PUT",
        "/config/s",
        Some(json!({"compatibility": "NONE"})),
    );
    assert_eq!(put.body, json!({"compatibility": "NONE"}));
    assert_eq!(
        http(addr, "GET", "/config/s", None).body,
        json!({"compatibilityLevel": "NONE"})
    );
    let bad_level = http(
        addr,
        "PUT",
        "/config",
        Some(json!({"compatibility": "SIDEWAYS"})),
    );
    assert_eq!(
        (bad_level.status, bad_level.body["error_code"].clone()),
        (422, json!(42203))
    );
    let reg = http(
        addr,
        "POST",
        "/subjects/s/versions",
        Some(schema_body(ARTICLE_BAD_TYPE)),
    );
    assert_eq!(reg.body, json!({"id": 2}));
    let refused = http(
        addr,
        "POST",
        "/subjects/t/versions",
        Some(schema_body(ARTICLE_BAD_TYPE)),
    );
    assert_eq!(refused.status, 409);

    // FULL_TRANSITIVE on t checks every version: v2 is fine both ways.
    http(
        addr,
        "PUT",
        "/config/t",
        Some(json!({"compatibility": "FULL_TRANSITIVE"})),
    );
    let v2 = http(
        addr,
        "POST",
        "/subjects/t/versions",
        Some(schema_body(ARTICLE_V2)),
    );
    assert_eq!(v2.status, 200, "{v2:?}");

    // Soft delete hides the subject; the id still resolves.
    assert_eq!(
        http(addr, "DELETE", "/subjects/s", None).body,
        json!([1, 2])
    );
    assert_eq!(http(addr, "GET", "/subjects", None).body, json!(["t"]));
    assert_eq!(http(addr, "GET", "/schemas/ids/2", None).status, 200);
}

#[test]
fn a_second_registry_on_the_same_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = start(dir.path());
    let second = tributary_schema_registry::RunningRegistry::start(
        "127.0.0.1:0".parse().unwrap(),
        dir.path(),
    );
    let err = second.err().expect("the folder is locked").to_string();
    assert!(err.contains("in use by another registry"), "{err}");
}
