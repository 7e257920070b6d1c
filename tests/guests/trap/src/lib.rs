//! Panics on every batch: the trap must be reported, not crash the host.
//!
//! With config `field` and `equals` it panics only on a batch holding a row
//! whose `field` is the text `equals`, and keeps every row of other batches:
//! a transform that fails on one poison record, for the tests of isolating
//! it (issue 19, scenario 6).

// A test fixture that misbehaves on purpose, below the safe API.
#![allow(unsafe_code)]
#[cfg(target_arch = "wasm32")]
mod guest {
    wit_bindgen::generate!({ path: "../../../wit/v0.1", world: "transform" });

    use std::cell::RefCell;

    use exports::tributary::transform::processor::Guest;
    use tributary::transform::types::{Batch, Emit, Output, Value};

    thread_local! {
        /// The text that makes a batch fail; `None`: every batch fails.
        static POISON: RefCell<Option<String>> = const { RefCell::new(None) };
    }

    struct G;

    impl Guest for G {
        fn init(config: Vec<(String, String)>) -> Result<Option<Vec<String>>, String> {
            let get = |k: &str| {
                config
                    .iter()
                    .find(|(key, _)| key == k)
                    .map(|(_, v)| v.clone())
            };
            match (get("field"), get("equals")) {
                (Some(field), Some(equals)) => {
                    POISON.with(|p| *p.borrow_mut() = Some(equals));
                    Ok(Some(vec![field]))
                }
                (None, None) => Ok(Some(Vec::new())),
                _ => Err("give both `field` and `equals`, or neither".into()),
            }
        }

        fn on_watermark(_watermark: i64) -> Result<Output, String> {
            Ok(Output {
                emit: Vec::new(),
                dropped: Vec::new(),
                rejected: Vec::new(),
            })
        }

        fn process(batch: Batch) -> Result<Output, String> {
            let poison = POISON.with(|p| p.borrow().clone());
            let Some(poison) = poison else {
                panic!("this guest always fails ({} rows)", batch.rows.len());
            };
            let poisoned = batch
                .rows
                .iter()
                .any(|row| matches!(row.first(), Some(Value::Text(t)) if *t == poison));
            if poisoned {
                panic!("a row of this batch of {} is `{poison}`", batch.rows.len());
            }
            Ok(Output {
                emit: (0..batch.rows.len() as u32).map(Emit::Keep).collect(),
                dropped: Vec::new(),
                rejected: Vec::new(),
            })
        }
    }

    export!(G);
}
