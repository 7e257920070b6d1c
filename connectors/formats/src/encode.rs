//! Arrow rows → Kafka message values for the `kafka` sink: JSON objects, or
//! Avro records with a schema derived from the Arrow schema.
//!
//! | Arrow | Avro |
//! |---|---|
//! | Boolean | `boolean` |
//! | Int8, Int16, Int32, UInt8, UInt16 | `int` |
//! | Int64, UInt32, UInt64 (must fit) | `long` |
//! | Float16, Float32 / Float64 | `float` / `double` |
//! | Utf8, LargeUtf8, Utf8View | `string` |
//! | Binary, LargeBinary | `bytes` |
//! | Date32 | `int` + `date` |
//! | Timestamp s, ms / µs, ns (with a time zone) | `long` + `timestamp-millis` / `timestamp-micros` (ns truncated) |
//! | the same without a time zone | `local-timestamp-millis` / `local-timestamp-micros` |
//!
//! A nullable column becomes `["null", T]` with default `null`. Other types
//! (lists, structs, decimals) have no mapping yet: such a pipeline is refused
//! at its first batch with the column's name; use `"format": "json"`.

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Schema, TimeUnit};
use serde_json::{Value as Json, json};
use tributary_connector::{Error, Result};

use crate::error::BadRecord;

type AvroValue = apache_avro::types::Value;

/// The Avro record schema for rows of `schema`, named after `name` (made a
/// valid Avro name).
pub fn avro_schema(schema: &Schema, name: &str) -> Result<Json> {
    let mut fields = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let base = avro_type(field.data_type()).ok_or_else(|| {
            Error::config(format!(
                "kafka sink: column `{}` is {}, which has no Avro mapping in this sink yet; \
                 use \"format\": \"json\", or a transform that turns it into a string",
                field.name(),
                field.data_type()
            ))
        })?;
        fields.push(if field.is_nullable() {
            json!({"name": field.name(), "type": ["null", base], "default": null})
        } else {
            json!({"name": field.name(), "type": base})
        });
    }
    let mut avro_name: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if !avro_name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        avro_name.insert(0, '_');
    }
    Ok(json!({"type": "record", "name": avro_name, "fields": fields}))
}

fn avro_type(t: &DataType) -> Option<Json> {
    let logical = |base: &str, logical: &str| json!({"type": base, "logicalType": logical});
    Some(match t {
        DataType::Boolean => json!("boolean"),
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::UInt8 | DataType::UInt16 => {
            json!("int")
        }
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => json!("long"),
        DataType::Float16 | DataType::Float32 => json!("float"),
        DataType::Float64 => json!("double"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => json!("string"),
        DataType::Binary | DataType::LargeBinary => json!("bytes"),
        DataType::Date32 => logical("int", "date"),
        DataType::Timestamp(unit, tz) => {
            let local = if tz.is_some() { "" } else { "local-" };
            let precision = match unit {
                TimeUnit::Second | TimeUnit::Millisecond => "millis",
                TimeUnit::Microsecond | TimeUnit::Nanosecond => "micros",
            };
            logical("long", &format!("{local}timestamp-{precision}"))
        }
        _ => return None,
    })
}

/// Row `row` of `batch` as an Avro record value for [`avro_schema`]'s schema.
pub fn avro_record(batch: &RecordBatch, row: usize) -> Result<AvroValue> {
    let schema = batch.schema();
    let mut fields = Vec::with_capacity(batch.num_columns());
    for (field, col) in schema.fields().iter().zip(batch.columns()) {
        let value = if col.is_null(row) {
            AvroValue::Null
        } else {
            avro_value(col, row)
                .map_err(|m| Error::data(format!("kafka sink: column `{}`: {m}", field.name())))?
        };
        let value = if field.is_nullable() {
            let branch = u32::from(value != AvroValue::Null);
            AvroValue::Union(branch, Box::new(value))
        } else {
            value
        };
        fields.push((field.name().clone(), value));
    }
    Ok(AvroValue::Record(fields))
}

fn avro_value(col: &ArrayRef, row: usize) -> std::result::Result<AvroValue, BadRecord> {
    let local = |tz: &Option<std::sync::Arc<str>>| tz.is_none();
    Ok(match col.data_type() {
        DataType::Boolean => AvroValue::Boolean(col.as_boolean().value(row)),
        DataType::Int8 => AvroValue::Int(col.as_primitive::<Int8Type>().value(row).into()),
        DataType::Int16 => AvroValue::Int(col.as_primitive::<Int16Type>().value(row).into()),
        DataType::Int32 => AvroValue::Int(col.as_primitive::<Int32Type>().value(row)),
        DataType::UInt8 => AvroValue::Int(col.as_primitive::<UInt8Type>().value(row).into()),
        DataType::UInt16 => AvroValue::Int(col.as_primitive::<UInt16Type>().value(row).into()),
        DataType::Int64 => AvroValue::Long(col.as_primitive::<Int64Type>().value(row)),
        DataType::UInt32 => AvroValue::Long(col.as_primitive::<UInt32Type>().value(row).into()),
        DataType::UInt64 => {
            let v = col.as_primitive::<UInt64Type>().value(row);
            AvroValue::Long(i64::try_from(v).map_err(|_| format!("{v} does not fit an Avro long"))?)
        }
        DataType::Float16 => {
            AvroValue::Float(col.as_primitive::<Float16Type>().value(row).to_f32())
        }
        DataType::Float32 => AvroValue::Float(col.as_primitive::<Float32Type>().value(row)),
        DataType::Float64 => AvroValue::Double(col.as_primitive::<Float64Type>().value(row)),
        DataType::Utf8 => AvroValue::String(col.as_string::<i32>().value(row).to_string()),
        DataType::LargeUtf8 => AvroValue::String(col.as_string::<i64>().value(row).to_string()),
        DataType::Utf8View => AvroValue::String(col.as_string_view().value(row).to_string()),
        DataType::Binary => AvroValue::Bytes(col.as_binary::<i32>().value(row).to_vec()),
        DataType::LargeBinary => AvroValue::Bytes(col.as_binary::<i64>().value(row).to_vec()),
        DataType::Date32 => AvroValue::Date(col.as_primitive::<Date32Type>().value(row)),
        DataType::Timestamp(unit, tz) => {
            let (v, millis) = match unit {
                TimeUnit::Second => (
                    col.as_primitive::<TimestampSecondType>().value(row) * 1000,
                    true,
                ),
                TimeUnit::Millisecond => (
                    col.as_primitive::<TimestampMillisecondType>().value(row),
                    true,
                ),
                TimeUnit::Microsecond => (
                    col.as_primitive::<TimestampMicrosecondType>().value(row),
                    false,
                ),
                TimeUnit::Nanosecond => (
                    col.as_primitive::<TimestampNanosecondType>().value(row) / 1000,
                    false,
                ),
            };
            match (millis, local(tz)) {
                (true, false) => AvroValue::TimestampMillis(v),
                (false, false) => AvroValue::TimestampMicros(v),
                (true, true) => AvroValue::LocalTimestampMillis(v),
                (false, true) => AvroValue::LocalTimestampMicros(v),
            }
        }
        other => return Err(format!("{other} has no Avro mapping").into()),
    })
}

/// Every row of `batch` as one JSON object (bytes without a newline).
pub fn json_values(batch: &RecordBatch) -> Result<Vec<Vec<u8>>> {
    let mut lines = Vec::new();
    let mut writer = arrow_json::writer::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, arrow_json::writer::LineDelimited>(&mut lines);
    writer
        .write(batch)
        .and_then(|()| writer.finish())
        .map_err(|e| Error::data(format!("kafka sink: cannot write rows as JSON: {e}")))?;
    drop(writer);
    // JSON escapes newlines inside strings: every '\n' ends a row.
    Ok(lines
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect())
}

/// Each row's key: the `field` column's value as text (`None` for a null).
pub fn keys(batch: &RecordBatch, field: &str) -> Result<Vec<Option<String>>> {
    let col = batch.column_by_name(field).ok_or_else(|| {
        Error::config(format!(
            "kafka sink: key_field `{field}` is not a column of the rows ({})",
            batch
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let format = arrow_cast::display::ArrayFormatter::try_new(col.as_ref(), &Default::default())
        .map_err(|e| Error::config(format!("kafka sink: key_field `{field}`: {e}")))?;
    Ok((0..batch.num_rows())
        .map(|i| (!col.is_null(i)).then(|| format.value(i).to_string()))
        .collect())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, StringArray, TimestampMicrosecondArray};
    use arrow_schema::Field;

    use super::*;

    fn batch() -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("n", DataType::Int64, true),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
                false,
            ),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(vec!["a", "b"])),
                Arc::new(Int64Array::from(vec![Some(1), None])),
                Arc::new(TimestampMicrosecondArray::from(vec![5, 6]).with_timezone("+00:00")),
            ],
        )
        .unwrap()
    }

    #[test]
    fn avro_round_trips_through_the_derived_schema() {
        let b = batch();
        let json = avro_schema(&b.schema(), "articles.v1").unwrap();
        assert_eq!(json["name"], "articles_v1");
        let schema = apache_avro::Schema::parse(&json).unwrap();
        for row in 0..2 {
            let value = avro_record(&b, row).unwrap();
            let mut bytes = Vec::new();
            apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
                .build()
                .unwrap()
                .write_value(&mut bytes, value.clone())
                .unwrap();
            let back = apache_avro::reader::datum::GenericDatumReader::builder(&schema)
                .build()
                .unwrap()
                .read_value(&mut bytes.as_slice())
                .unwrap();
            assert_eq!(back, value);
        }
        let AvroValue::Record(fields) = avro_record(&b, 1).unwrap() else {
            panic!("a record")
        };
        assert_eq!(fields[1].1, AvroValue::Union(0, Box::new(AvroValue::Null)));
        assert_eq!(fields[2].1, AvroValue::TimestampMicros(6));
    }

    #[test]
    fn json_and_keys() {
        let b = batch();
        let values = json_values(&b).unwrap();
        let second: Json = serde_json::from_slice(&values[1]).unwrap();
        assert_eq!(second["id"], "b");
        assert_eq!(second["n"], Json::Null);
        assert_eq!(keys(&b, "n").unwrap(), [Some("1".to_string()), None]);
        assert!(
            keys(&b, "nope")
                .unwrap_err()
                .to_string()
                .contains("id, n, at")
        );
    }
}
