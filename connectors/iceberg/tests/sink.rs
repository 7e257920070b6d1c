//! The Iceberg sink against real catalogs: SQLite (the embedded default) and
//! PostgreSQL on 127.0.0.1:5432; the same checks for both.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{
    Array, ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use serde_json::json;
use tributary_connector::{CommitOutcome, ConnectorContext, EpochCommit, Offsets, Sink};
use tributary_iceberg::IcebergSink;

fn batch(ids: &[&str], extra: Option<&[i64]>) -> RecordBatch {
    let mut fields = vec![
        Field::new("id", DataType::Utf8, false),
        Field::new(
            "published_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
            true,
        ),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(ids.to_vec())),
        Arc::new(
            TimestampMicrosecondArray::from(vec![1_000_000i64; ids.len()]).with_timezone("+00:00"),
        ),
    ];
    if let Some(extra) = extra {
        fields.push(Field::new("score", DataType::Int64, true));
        columns.push(Arc::new(Int64Array::from(extra.to_vec())));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

fn commit(epoch: u64, position: u64) -> EpochCommit {
    EpochCommit {
        pipeline_id: "p1".into(),
        epoch,
        offsets: Offsets::new(json!({"position": position, "note": "quoted \"json\""})),
        watermark_micros: Some(epoch as i64 * 10),
    }
}

fn sink(catalog_uri: &str, warehouse: &std::path::Path, table: &str) -> IcebergSink {
    let config = serde_json::from_value(json!({
        "catalog_uri": catalog_uri, "warehouse": warehouse, "table": table,
    }))
    .unwrap();
    IcebergSink::new(config, &ConnectorContext::default()).unwrap()
}

fn ids(sink: &mut IcebergSink) -> Vec<String> {
    let mut out: Vec<String> = sink
        .scan_all()
        .unwrap()
        .iter()
        .flat_map(|b| {
            let col = b.column_by_name("id").unwrap().as_string::<i32>().clone();
            (0..col.len()).map(move |i| col.value(i).to_string())
        })
        .collect();
    out.sort();
    out
}

/// The whole contract, against one catalog.
fn contract(catalog_uri: &str, warehouse: &std::path::Path, table: &str) {
    let mut s = sink(catalog_uri, warehouse, table);
    assert_eq!(s.last_commit("p1").unwrap(), None, "no table yet");
    s.write(&batch(&["a", "b"], None)).unwrap();
    // Staged data is invisible until the commit.
    let mut reader = sink(catalog_uri, warehouse, table);
    assert!(ids(&mut reader).is_empty());
    assert_eq!(s.commit(&commit(1, 2)).unwrap(), CommitOutcome::Committed);
    assert_eq!(ids(&mut reader), ["a", "b"]);

    // A restarted run sees the commit, offsets intact.
    let mut s = sink(catalog_uri, warehouse, table);
    assert_eq!(s.last_commit("p1").unwrap(), Some(commit(1, 2)));
    assert_eq!(s.last_commit("other-pipeline").unwrap(), None);

    // The same epoch again (a crash after the commit): not written twice.
    s.write(&batch(&["a", "b"], None)).unwrap();
    assert_eq!(
        s.commit(&commit(1, 2)).unwrap(),
        CommitOutcome::AlreadyCommitted
    );
    assert_eq!(ids(&mut reader), ["a", "b"]);

    // A new optional field becomes a column; older rows read as null.
    s.write(&batch(&["c"], Some(&[7]))).unwrap();
    assert_eq!(s.commit(&commit(2, 3)).unwrap(), CommitOutcome::Committed);
    let rows: Vec<RecordBatch> = reader.scan_all().unwrap();
    let mut scores: Vec<(String, Option<i64>)> = rows
        .iter()
        .flat_map(|b| {
            let id = b.column_by_name("id").unwrap().as_string::<i32>().clone();
            let score = b
                .column_by_name("score")
                .expect("the new column")
                .as_primitive::<arrow_array::types::Int64Type>()
                .clone();
            (0..b.num_rows()).map(move |i| {
                (
                    id.value(i).to_string(),
                    score.is_valid(i).then(|| score.value(i)),
                )
            })
        })
        .collect();
    scores.sort();
    assert_eq!(
        scores,
        [
            ("a".into(), None),
            ("b".into(), None),
            ("c".into(), Some(7))
        ]
    );

    // An epoch with nothing to write still records its offsets.
    assert_eq!(s.commit(&commit(3, 10)).unwrap(), CommitOutcome::Committed);
    assert_eq!(
        sink(catalog_uri, warehouse, table)
            .last_commit("p1")
            .unwrap(),
        Some(commit(3, 10))
    );
    assert_eq!(s.row_count(), Some(3));

    // A value that does not fit its column is refused with the record, the
    // field, the value and the column's type (under the `dead-letter` policy
    // the pipeline sends that record to the dead letters and commits the
    // rest: tests/all/iceberg_sink.rs).
    let clash = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("score", DataType::Utf8, true),
        ])),
        vec![
            Arc::new(StringArray::from(vec!["d"])),
            Arc::new(StringArray::from(vec!["high"])),
        ],
    )
    .unwrap();
    let err = s.write(&clash).unwrap_err().to_string();
    assert!(
        err.contains("record 0 of the batch cannot be written")
            && err.contains("field `score`: the value high does not fit the column's type long"),
        "{err}"
    );
}

#[test]
fn sqlite_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let uri = format!("sqlite:{}", dir.path().join("cat/catalog.db").display());
    contract(&uri, &dir.path().join("wh"), "demo.news.articles");
}

#[test]
fn postgres_catalog() {
    if std::env::var_os("TRIBUTARY_SKIP_POSTGRES").is_some() {
        eprintln!("SKIPPED: PostgreSQL catalog (TRIBUTARY_SKIP_POSTGRES is set)");
        return;
    }
    let base = std::env::var("TRIBUTARY_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let dir = tempfile::tempdir().unwrap();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    contract(&base, &dir.path().join("wh"), &format!("t{nanos}.articles"));
}

#[test]
fn config_errors_name_the_field() {
    let ctx = ConnectorContext::default();
    let err = tributary_connector::build_sink::<tributary_iceberg::IcebergSink>(
        &json!({"catalog_uri": "sqlite:x.db", "warehouse": "w", "table": "articles"}),
        &ctx,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("table `articles` must be `namespace.table`"),
        "{err}"
    );
    let err = tributary_connector::build_sink::<tributary_iceberg::IcebergSink>(
        &json!({"catalog_uri": "http://rest", "warehouse": "w", "table": "a.b"}),
        &ctx,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("catalog_uri `http://rest` is not supported"),
        "{err}"
    );
    let err = tributary_connector::build_sink::<tributary_iceberg::IcebergSink>(
        &json!({"catalog_uri": "sqlite:x.db", "warehouse": "w", "tabel": "a.b"}),
        &ctx,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("unknown field `tabel`"), "{err}");
}

/// What the Avro decoder produces for nested and logical types (structs,
/// lists, maps, decimals, dates, times, binary) has no Iceberg field ids in
/// its nested fields and uses other child names: the sink creates the table
/// from it, writes it, and a scan gives the same values back.
#[test]
fn nested_and_logical_types_round_trip() {
    use arrow_array::builder::{
        Decimal128Builder, Int32Builder, ListBuilder, MapBuilder, StringBuilder,
    };
    use arrow_array::{BinaryArray, Date32Array, StructArray, Time64MicrosecondArray};
    use arrow_schema::Fields;

    let dir = tempfile::tempdir().unwrap();
    let catalog = format!("sqlite:{}", dir.path().join("catalog.db").display());
    let mut s = sink(&catalog, dir.path(), "demo.nested");

    let author_fields = Fields::from(vec![
        Field::new("name", DataType::Utf8, true),
        Field::new("age", DataType::Int32, true),
    ]);
    let author = StructArray::new(
        author_fields.clone(),
        vec![
            Arc::new(StringArray::from(vec![Some("ann"), None])),
            Arc::new(arrow_array::Int32Array::from(vec![Some(41), Some(7)])),
        ],
        None,
    );
    let mut tags = ListBuilder::new(StringBuilder::new());
    tags.values().append_value("x");
    tags.values().append_value("y");
    tags.append(true);
    tags.append(false);
    let tags = tags.finish();
    let mut counts = MapBuilder::new(None, StringBuilder::new(), Int32Builder::new());
    counts.keys().append_value("views");
    counts.values().append_value(3);
    counts.append(true).unwrap();
    counts.append(true).unwrap();
    let counts = counts.finish();
    let mut price = Decimal128Builder::new()
        .with_precision_and_scale(10, 2)
        .unwrap();
    price.append_value(12345);
    price.append_null();
    let price = price.finish();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new("author", author.data_type().clone(), true),
        Field::new("tags", tags.data_type().clone(), true),
        Field::new("counts", counts.data_type().clone(), true),
        Field::new("price", price.data_type().clone(), true),
        Field::new("day", DataType::Date32, true),
        Field::new("at", DataType::Time64(TimeUnit::Microsecond), true),
        Field::new("blob", DataType::Binary, true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec!["n1", "n2"])),
            Arc::new(author),
            Arc::new(tags),
            Arc::new(counts),
            Arc::new(price),
            Arc::new(Date32Array::from(vec![Some(20454), None])),
            Arc::new(Time64MicrosecondArray::from(vec![
                Some(3_600_000_000),
                None,
            ])),
            Arc::new(BinaryArray::from(vec![Some(&b"\x00\x01"[..]), None])),
        ],
    )
    .unwrap();
    s.write(&batch).unwrap();
    // A second batch of the same shape goes into the existing table.
    s.write(&batch).unwrap();
    assert_eq!(s.commit(&commit(1, 2)).unwrap(), CommitOutcome::Committed);

    let back = s.scan_all().unwrap();
    let rows: usize = back.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(rows, 4);
    let b = &back[0];
    let author = b.column_by_name("author").unwrap().as_struct();
    assert_eq!(
        author
            .column_by_name("name")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "ann"
    );
    let tags = b.column_by_name("tags").unwrap().as_list::<i32>();
    assert_eq!(tags.value(0).as_string::<i32>().value(1), "y");
    assert!(tags.is_null(1));
    let counts = b.column_by_name("counts").unwrap().as_map();
    assert_eq!(
        counts
            .value(0)
            .column(1)
            .as_primitive::<arrow_array::types::Int32Type>()
            .value(0),
        3
    );
    let price = b
        .column_by_name("price")
        .unwrap()
        .as_primitive::<arrow_array::types::Decimal128Type>();
    assert_eq!(price.value(0), 12345);
    assert!(matches!(price.data_type(), DataType::Decimal128(10, 2)));
    let day = b
        .column_by_name("day")
        .unwrap()
        .as_primitive::<arrow_array::types::Date32Type>();
    assert_eq!(day.value(0), 20454);
    assert_eq!(
        b.column_by_name("blob")
            .unwrap()
            .as_binary::<i64>()
            .value(0),
        b"\x00\x01"
    );
}
