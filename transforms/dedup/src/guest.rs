//! The WebAssembly face of the transform: WIT types in, [`Dedup`] decides,
//! WIT types out. The generated bindings use unsafe code for the canonical
//! ABI (allowed on this module only); nothing here does otherwise.

wit_bindgen::generate!({ path: "../../wit", world: "transform" });

use std::sync::Mutex;

use exports::tributary::transform::processor::Guest;
use tributary::transform::state;
use tributary::transform::types::{
    self as wit, Batch, DropReason, Dropped, Emit, Output, Rejected,
};

use crate::{Dedup, Store, Value, Verdict};

/// Set by `init` (again on a second `init`); the guest is single-threaded.
static DEDUP: Mutex<Option<Dedup>> = Mutex::new(None);

/// The host's store through the WIT imports.
struct HostStore;

impl Store for HostStore {
    fn get(&mut self, key: &str) -> Option<Vec<u8>> {
        state::get(key)
    }
    fn put(&mut self, key: &str, value: &[u8], expires_at: i64) {
        state::put(key, value, Some(expires_at))
    }
    fn put_if_absent(&mut self, key: &str, value: &[u8], expires_at: i64) -> bool {
        state::put_if_absent(key, value, Some(expires_at))
    }
    fn take_expired(&mut self) -> Vec<(String, Vec<u8>)> {
        state::take_expired()
    }
}

fn from_wit(v: wit::Value) -> Value {
    match v {
        wit::Value::Null => Value::Null,
        wit::Value::Boolean(b) => Value::Boolean(b),
        wit::Value::Int(i) => Value::Int(i),
        wit::Value::Float(f) => Value::Float(f),
        wit::Value::Text(s) => Value::Text(s),
        wit::Value::Bytes(b) => Value::Bytes(b),
        wit::Value::Timestamp(t) => Value::Timestamp(t),
        wit::Value::Json(j) => Value::Json(j),
    }
}

fn to_wit(v: Value) -> wit::Value {
    match v {
        Value::Null => wit::Value::Null,
        Value::Boolean(b) => wit::Value::Boolean(b),
        Value::Int(i) => wit::Value::Int(i),
        Value::Float(f) => wit::Value::Float(f),
        Value::Text(s) => wit::Value::Text(s),
        Value::Bytes(b) => wit::Value::Bytes(b),
        Value::Timestamp(t) => wit::Value::Timestamp(t),
        Value::Json(j) => wit::Value::Json(j),
    }
}

fn empty() -> Output {
    Output {
        emit: Vec::new(),
        dropped: Vec::new(),
        rejected: Vec::new(),
    }
}

fn with_dedup<T>(call: &str, f: impl FnOnce(&Dedup) -> Result<T, String>) -> Result<T, String> {
    let guard = DEDUP.lock().map_err(|e| e.to_string())?;
    let dedup = guard
        .as_ref()
        .ok_or_else(|| format!("dedup: {call} called before init"))?;
    f(dedup)
}

struct DedupGuest;

impl Guest for DedupGuest {
    fn init(config: Vec<(String, String)>) -> Result<Option<Vec<String>>, String> {
        let dedup = Dedup::new(crate::parse_config(&config)?);
        let projection = dedup.projection();
        *DEDUP.lock().map_err(|e| e.to_string())? = Some(dedup);
        Ok(projection)
    }

    fn process(batch: Batch) -> Result<Output, String> {
        with_dedup("process", |dedup| {
            let fields: Vec<String> = batch.fields.into_iter().map(|f| f.name).collect();
            let rows: Vec<Vec<Value>> = batch
                .rows
                .into_iter()
                .map(|row| row.into_iter().map(from_wit).collect())
                .collect();
            let verdicts = dedup.process(&mut HostStore, &fields, &rows)?;
            let mut out = empty();
            out.emit.reserve(verdicts.len());
            for (i, verdict) in verdicts.into_iter().enumerate() {
                let row = i as u32;
                let drop = |reason| Dropped { row, reason };
                match verdict {
                    Verdict::Keep => out.emit.push(Emit::Keep(row)),
                    Verdict::Duplicate => out.dropped.push(drop(DropReason::Duplicate)),
                    Verdict::Held => out.dropped.push(drop(DropReason::Filtered)),
                    Verdict::Reject(reason) => out.rejected.push(Rejected { row, reason }),
                }
            }
            Ok(out)
        })
    }

    fn on_watermark(_watermark: i64) -> Result<Output, String> {
        with_dedup("on-watermark", |dedup| {
            let rows = dedup.on_watermark(&mut HostStore)?;
            let mut out = empty();
            out.emit = rows
                .into_iter()
                .map(|row| Emit::Insert(row.into_iter().map(|(n, v)| (n, to_wit(v))).collect()))
                .collect();
            Ok(out)
        })
    }
}

export!(DedupGuest);
