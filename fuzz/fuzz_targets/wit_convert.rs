//! The Arrow ⇄ WIT value conversion around every transform call: a batch
//! shown to a guest as rows of WIT values (all fields, or the ones it asked
//! for), and a guest's answer (`keep` / `update` / `insert` with any values,
//! rows that do not exist, fields that are new) assembled back into Arrow.
//! The guest is whatever the fuzzer says it answered: a transform is code
//! Tributary does not control.
//!
//! Input: `arbitrary`-decoded columns of many Arrow types and an emit list.
#![no_main]

use std::sync::Arc;

use arbitrary::Arbitrary;
use arrow_array::builder::{Int64Builder, ListBuilder};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Date32Array, Date64Array, Decimal128Array,
    Float32Array, Float64Array, Int8Array, Int16Array, Int32Array, Int64Array, LargeBinaryArray,
    LargeStringArray, NullArray, RecordBatch, StringArray, StringViewArray, StructArray,
    TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray,
    TimestampSecondArray, UInt8Array, UInt16Array, UInt32Array, UInt64Array,
};
use arrow_schema::{Field, Schema};
use libfuzzer_sys::fuzz_target;
use tributary_wasm_host::fuzzing::{Emit, Value, assemble, to_wit, value_at};

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Type {
    Boolean,
    Int8,
    Int16,
    Int32,
    Int64,
    UInt8,
    UInt16,
    UInt32,
    UInt64,
    Float32,
    Float64,
    Utf8,
    LargeUtf8,
    Utf8View,
    Binary,
    LargeBinary,
    TimestampS,
    TimestampMs,
    TimestampUs { utc: bool },
    TimestampNs,
    Date32,
    Date64,
    Decimal,
    List,
    Struct,
    Null,
}

#[derive(Arbitrary, Debug)]
struct Column {
    name: Name,
    kind: Type,
    nullable: bool,
    cells: Vec<Option<i64>>,
    text: Vec<Option<String>>,
}

/// A field name: one of a few shared ones (so emits name existing columns
/// and each other), or any string.
#[derive(Arbitrary, Debug, Clone)]
enum Name {
    Id,
    Ts,
    N,
    Tag,
    Other(String),
}

impl Name {
    fn text(&self) -> String {
        match self {
            Name::Id => "id".into(),
            Name::Ts => "ts".into(),
            Name::N => "n".into(),
            Name::Tag => "tag".into(),
            Name::Other(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
enum V {
    Null,
    Boolean(bool),
    Int(i64),
    Float(f64),
    Text(String),
    Bytes(Vec<u8>),
    Timestamp(i64),
    Json(String),
}

impl V {
    fn wit(&self) -> Value {
        match self.clone() {
            V::Null => Value::Null,
            V::Boolean(b) => Value::Boolean(b),
            V::Int(i) => Value::Int(i),
            V::Float(f) => Value::Float(f),
            V::Text(s) => Value::Text(s),
            V::Bytes(b) => Value::Bytes(b),
            V::Timestamp(t) => Value::Timestamp(t),
            V::Json(s) => Value::Json(s),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum E {
    Keep(u32),
    Update(u32, Vec<(Name, V)>),
    Insert(Vec<(Name, V)>),
}

#[derive(Arbitrary, Debug)]
struct Input {
    rows: u8,
    columns: Vec<Column>,
    project: Option<Vec<Name>>,
    emit: Vec<E>,
}

fn array(c: &Column, n: usize) -> ArrayRef {
    let int = |i: usize| -> Option<i64> { c.cells.get(i).copied().flatten() };
    let ints = || (0..n).map(int);
    let text = |i: usize| -> Option<String> { c.text.get(i).cloned().flatten() };
    let texts = || (0..n).map(text).collect::<Vec<_>>();
    match c.kind {
        Type::Boolean => Arc::new(
            ints()
                .map(|v| v.map(|v| v & 1 == 1))
                .collect::<BooleanArray>(),
        ),
        Type::Int8 => Arc::new(ints().map(|v| v.map(|v| v as i8)).collect::<Int8Array>()),
        Type::Int16 => Arc::new(ints().map(|v| v.map(|v| v as i16)).collect::<Int16Array>()),
        Type::Int32 => Arc::new(ints().map(|v| v.map(|v| v as i32)).collect::<Int32Array>()),
        Type::Int64 => Arc::new(ints().collect::<Int64Array>()),
        Type::UInt8 => Arc::new(ints().map(|v| v.map(|v| v as u8)).collect::<UInt8Array>()),
        Type::UInt16 => Arc::new(ints().map(|v| v.map(|v| v as u16)).collect::<UInt16Array>()),
        Type::UInt32 => Arc::new(ints().map(|v| v.map(|v| v as u32)).collect::<UInt32Array>()),
        Type::UInt64 => Arc::new(ints().map(|v| v.map(|v| v as u64)).collect::<UInt64Array>()),
        Type::Float32 => Arc::new(
            ints()
                .map(|v| v.map(|v| f32::from_bits(v as u32)))
                .collect::<Float32Array>(),
        ),
        Type::Float64 => Arc::new(
            ints()
                .map(|v| v.map(|v| f64::from_bits(v as u64)))
                .collect::<Float64Array>(),
        ),
        Type::Utf8 => Arc::new(StringArray::from(texts())),
        Type::LargeUtf8 => Arc::new(LargeStringArray::from(texts())),
        Type::Utf8View => Arc::new(StringViewArray::from(texts())),
        Type::Binary => Arc::new(BinaryArray::from_iter(
            texts().into_iter().map(|t| t.map(String::into_bytes)),
        )),
        Type::LargeBinary => Arc::new(LargeBinaryArray::from_iter(
            texts().into_iter().map(|t| t.map(String::into_bytes)),
        )),
        Type::TimestampS => Arc::new(ints().collect::<TimestampSecondArray>()),
        Type::TimestampMs => Arc::new(ints().collect::<TimestampMillisecondArray>()),
        Type::TimestampUs { utc } => {
            let a = ints().collect::<TimestampMicrosecondArray>();
            Arc::new(if utc { a.with_timezone("+00:00") } else { a })
        }
        Type::TimestampNs => Arc::new(ints().collect::<TimestampNanosecondArray>()),
        Type::Date32 => Arc::new(ints().map(|v| v.map(|v| v as i32)).collect::<Date32Array>()),
        Type::Date64 => Arc::new(ints().collect::<Date64Array>()),
        Type::Decimal => Arc::new(
            ints()
                .map(|v| v.map(i128::from))
                .collect::<Decimal128Array>()
                .with_precision_and_scale(38, 4)
                .expect("a valid decimal type"),
        ),
        Type::List => {
            let mut b = ListBuilder::new(Int64Builder::new());
            for i in 0..n {
                match int(i) {
                    None => b.append_null(),
                    Some(v) => {
                        b.values().append_value(v);
                        b.values().append_null();
                        b.append(true);
                    }
                }
            }
            Arc::new(b.finish())
        }
        Type::Struct => {
            let a: ArrayRef = Arc::new(ints().collect::<Int64Array>());
            let s: ArrayRef = Arc::new(StringArray::from(texts()));
            Arc::new(StructArray::from(vec![
                (Arc::new(Field::new("a", a.data_type().clone(), true)), a),
                (Arc::new(Field::new("s", s.data_type().clone(), true)), s),
            ]))
        }
        Type::Null => Arc::new(NullArray::new(n)),
    }
}

fuzz_target!(|input: Input| {
    let n = usize::from(input.rows % 17);
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for c in input.columns.iter().take(12) {
        let name = c.name.text();
        if fields.iter().any(|f: &Field| f.name() == &name) {
            continue;
        }
        let a = array(c, n);
        // A column with nulls must be nullable (Arrow refuses it otherwise).
        let nullable = c.nullable || a.null_count() > 0 || a.data_type().is_null();
        fields.push(Field::new(name, a.data_type().clone(), nullable));
        columns.push(a);
    }
    let Ok(batch) = RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        columns,
        &arrow_array::RecordBatchOptions::new().with_row_count(Some(n)),
    ) else {
        return;
    };

    // What the guest sees.
    let all = to_wit(&batch, None);
    assert_eq!(all.fields.len(), batch.num_columns());
    assert_eq!(all.rows.len(), n);
    assert!(all.rows.iter().all(|r| r.len() == batch.num_columns()));
    if let Some(names) = &input.project {
        let names: Vec<String> = names.iter().map(Name::text).collect();
        let some = to_wit(&batch, Some(&names));
        assert_eq!(some.fields.len(), names.len());
        assert!(some.rows.iter().all(|r| r.len() == names.len()));
    }

    // What it answers.
    let emit: Vec<Emit> = input
        .emit
        .iter()
        .take(64)
        .map(|e| {
            let assigns = |a: &Vec<(Name, V)>| -> Vec<(String, Value)> {
                a.iter().take(8).map(|(k, v)| (k.text(), v.wit())).collect()
            };
            match e {
                E::Keep(i) => Emit::Keep(*i),
                E::Update(i, a) => Emit::Update((*i, assigns(a))),
                E::Insert(a) => Emit::Insert(assigns(a)),
            }
        })
        .collect();
    let emitted = emit.len();
    let Ok(assembled) = assemble(&batch, emit) else {
        return;
    };
    let out = &assembled.batch;
    assert_eq!(
        out.num_rows() + assembled.refused.len(),
        emitted,
        "every emitted row is in the output or refused"
    );
    // The input's fields come first, in order, with their types.
    for (i, f) in batch.schema().fields().iter().enumerate() {
        assert_eq!(out.schema().field(i).name(), f.name());
        assert_eq!(out.schema().field(i).data_type(), f.data_type());
    }
    // Every output cell can be shown to the next transform.
    for c in out.columns() {
        for r in 0..out.num_rows() {
            let _ = value_at(c.as_ref(), r);
        }
    }
});
