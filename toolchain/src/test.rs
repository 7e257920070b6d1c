//! `tributary transform test`: run a module on JSON-lines records, without
//! a pipeline, and report what came out, what was dropped and what it cost.

use crate::ToolchainError;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tributary_formats::rows::{FieldKind, FieldSpec, JsonRows, UnknownFields};
use tributary_wasm_host::sandbox::{DEFAULT_CALL_TIMEOUT_MS, DEFAULT_MEMORY_MB};
use tributary_wasm_host::{
    Limits, TransformChain, TransformEngine, TransformSpec, format_micros, rows_as_json,
};

use crate::inspect::read_module;

/// The column type a sample value suggests (RFC 3339 text is a timestamp).
fn kind_of(v: &Value) -> FieldKind {
    match v {
        Value::Bool(_) => FieldKind::Boolean,
        Value::Number(n) if n.is_i64() => FieldKind::Long,
        Value::Number(_) => FieldKind::Double,
        Value::String(s) if chrono::DateTime::parse_from_rfc3339(s).is_ok() => FieldKind::Timestamp,
        Value::Array(_) | Value::Object(_) => FieldKind::Json,
        _ => FieldKind::String,
    }
}

/// What `test` found.
#[derive(Debug)]
pub struct TestReport {
    pub output: Vec<Value>,
    pub summary: String,
}

/// Runs `module` with `config` over the JSON-lines records of `input` (the
/// columns inferred from the records, in batches of `batch_size`).
pub fn test(
    engine: &TransformEngine,
    module: &str,
    input: &Path,
    config: Map<String, Value>,
    batch_size: usize,
) -> Result<TestReport, ToolchainError> {
    let text = std::fs::read_to_string(input)
        .map_err(|e| format!("cannot read {}: {e}", input.display()))?;
    let mut records = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(o)) => records.push(o),
            _ => return Err(format!("{}:{}: not a JSON object", input.display(), n + 1).into()),
        }
    }
    if records.is_empty() {
        return Err(format!("{} holds no records", input.display()).into());
    }
    // Columns: every field seen, typed by its first non-null value.
    let mut fields: Vec<FieldSpec> = Vec::new();
    for r in &records {
        for (k, v) in r {
            match fields.iter_mut().find(|f| &f.name == k) {
                Some(f) if f.kind == FieldKind::String && !v.is_null() && !v.is_string() => {
                    f.kind = kind_of(v)
                }
                Some(_) => {}
                None => fields.push(FieldSpec {
                    name: k.clone(),
                    kind: kind_of(v),
                    required: false,
                }),
            }
        }
    }
    let bytes = read_module(module)?;
    let mut chain = TransformChain::new(
        engine,
        vec![TransformSpec {
            name: "under-test".into(),
            bytes,
            config: Value::Object(config),
            limits: Limits::from_config(DEFAULT_MEMORY_MB, DEFAULT_CALL_TIMEOUT_MS),
        }],
    )
    .map_err(|e| e.to_string())?;
    let mut rows =
        JsonRows::new("input", fields, UnknownFields::Ignore).map_err(|e| e.to_string())?;
    let mut output = Vec::new();
    let (mut late, mut duplicates, mut filtered) = (0usize, 0u64, 0u64);
    let mut rejected = Vec::new();
    let mut spent = Duration::ZERO;
    for chunk in records.chunks(batch_size.max(1)) {
        for r in chunk {
            rows.push_object(r)
                .map_err(|e| format!("a record does not fit the inferred columns: {e}"))?;
        }
        let batch = rows.finish().map_err(|e| e.to_string())?;
        let started = Instant::now();
        let out = chain.run(&batch).map_err(|e| e.to_string())?;
        spent += started.elapsed();
        for b in &out.batches {
            output.extend(rows_as_json(b));
        }
        late += out.late.len();
        duplicates += out.duplicates;
        filtered += out.filtered;
        rejected.extend(
            out.rejected
                .into_iter()
                .map(|r| format!("  rejected: {} — {}", r.reason, r.record)),
        );
    }
    let per_record = spent.as_secs_f64() * 1e6 / records.len() as f64;
    let mut summary = format!(
        "in {} out {} | dropped: late {late}, duplicate {duplicates}, filtered {filtered} | rejected {} | \
         state entries {} | watermark {} | {per_record:.2} µs per record\n",
        records.len(),
        output.len(),
        rejected.len(),
        chain.state_entries(),
        chain.watermark().map_or("none".to_string(), format_micros),
    );
    for r in rejected {
        summary.push_str(&r);
        summary.push('\n');
    }
    Ok(TestReport { output, summary })
}
