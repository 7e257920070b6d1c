//! Kafka Connect's shapes and ours: offsets as Connect's
//! `[{"partition": {...}, "offset": {...}}]` list and back.

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};

/// Our offsets as Connect's `[{"partition", "offset"}]` list: one entry per
/// Kafka partition for the `kafka` source, else one entry holding them all.
pub(crate) fn to_connect(kind: &str, offsets: Option<&Value>) -> Value {
    let Some(offsets) = offsets.filter(|o| !o.is_null()) else {
        return json!([]);
    };
    if kind == "kafka"
        && let Some(topics) = offsets.as_object()
    {
        let mut out = Vec::new();
        for (topic, parts) in topics {
            for (p, o) in parts.as_object().into_iter().flatten() {
                out.push(json!({
                    "partition": {"kafka_topic": topic, "kafka_partition": p.parse::<i64>().unwrap_or(-1)},
                    "offset": {"kafka_offset": o},
                }));
            }
        }
        return Value::Array(out);
    }
    json!([{"partition": {}, "offset": offsets}])
}

/// A Connect `{"offsets": [...]}` body as our offsets: Kafka partitions are
/// merged into the committed ones (those not named keep theirs).
pub(crate) fn from_connect(
    kind: &str,
    body: &Value,
    committed: Option<&Value>,
) -> ApiResult<Value> {
    let list = body["offsets"].as_array().ok_or_else(|| {
        ApiError::bad_request(
            "the body must be {\"offsets\": [{\"partition\": {...}, \"offset\": {...}}]}",
        )
    })?;
    if let Some(entry) = list.iter().find(|e| !e["partition"].is_object()) {
        return Err(ApiError::bad_request(format!(
            "offset entry {entry} needs a \"partition\" object: {{}} for a `{kind}` source, \
             {{\"kafka_topic\": \"t\", \"kafka_partition\": 0}} for kafka"
        )));
    }
    if kind != "kafka" {
        return match list.as_slice() {
            // A source's offsets are an object; anything else would fail
            // (or silently rewind) the connector at its next start.
            [one] if one["offset"].is_object() => Ok(one["offset"].clone()),
            [one] => Err(ApiError::bad_request(format!(
                "offset {} must be an object, the source's offsets as GET …/offsets shows them;                  to start from the beginning, DELETE …/offsets",
                one["offset"]
            ))),
            _ => Err(ApiError::bad_request(format!(
                "a `{kind}` source has one offset entry: {{\"offsets\": [{{\"partition\": {{}}, \"offset\": <its offsets>}}]}}"
            ))),
        };
    }
    let mut merged = committed
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for entry in list {
        let topic = entry["partition"]["kafka_topic"].as_str();
        let partition = entry["partition"]["kafka_partition"].as_i64();
        let offset = entry["offset"]["kafka_offset"].as_i64();
        let (Some(topic), Some(partition), Some(offset)) = (topic, partition, offset) else {
            return Err(ApiError::bad_request(format!(
                "offset entry {entry} must be {{\"partition\": {{\"kafka_topic\": \"t\", \"kafka_partition\": 0}}, \
                 \"offset\": {{\"kafka_offset\": 42}}}}"
            )));
        };
        if offset < 0 {
            return Err(ApiError::bad_request(format!(
                "kafka_offset {offset} is negative"
            )));
        }
        merged
            .entry(topic.to_string())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .map(|parts| parts.insert(partition.to_string(), json!(offset)));
    }
    Ok(Value::Object(merged))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_offsets_convert_both_ways_and_merge() {
        let ours = json!({"t": {"0": 10, "1": 20}});
        let connect = to_connect("kafka", Some(&ours));
        assert_eq!(connect.as_array().unwrap().len(), 2);
        assert_eq!(
            connect[0],
            json!({"partition": {"kafka_topic": "t", "kafka_partition": 0}, "offset": {"kafka_offset": 10}})
        );
        let patch = json!({"offsets": [{"partition": {"kafka_topic": "t", "kafka_partition": 1}, "offset": {"kafka_offset": 5}}]});
        assert_eq!(
            from_connect("kafka", &patch, Some(&ours)).unwrap(),
            json!({"t": {"0": 10, "1": 5}})
        );
        let bad = json!({"offsets": [{"partition": {"kafka_topic": "t"}, "offset": {}}]});
        assert!(from_connect("kafka", &bad, Some(&ours)).is_err());
        assert_eq!(to_connect("generator", None), json!([]));
        let gen_patch = json!({"offsets": [{"partition": {}, "offset": {"position": 7}}]});
        assert_eq!(
            from_connect("generator", &gen_patch, None).unwrap(),
            json!({"position": 7})
        );
    }

    /// Found by Schemathesis: an `offset` that is not an object (or is
    /// missing) was stored as the source's offsets, to fail or rewind the
    /// connector at its next start.
    #[test]
    fn a_non_kafka_offset_must_be_an_object() {
        for offset in [json!([null, null]), json!(7), json!("x"), Value::Null] {
            let patch = json!({"offsets": [{"partition": {}, "offset": offset}]});
            let err = from_connect("generator", &patch, None).unwrap_err();
            assert!(err.to_string().contains("DELETE"), "{err}");
        }
        let missing = json!({"offsets": [{"partition": {}}]});
        assert!(from_connect("generator", &missing, None).is_err());
        // Connect's partitions are objects too (`{}` for a non-Kafka source).
        let partition = json!({"offsets": [{"partition": [null, null], "offset": {}}]});
        let err = from_connect("generator", &partition, None).unwrap_err();
        assert!(err.to_string().contains("partition"), "{err}");
    }
}
