//! The `curate` example (drop blocked sources, mask the author, count the
//! title's words) written against the older contract,
//! `tributary:transform@0.1.0`, on the raw bindings: rows of values in, an
//! `emit` list out. Hosts still run such components; the golden tests
//! (`tests/all/golden.rs`) check that this one answers exactly as the 0.2.0
//! examples do.

#![allow(unsafe_code)]
#[cfg(target_arch = "wasm32")]
mod guest {
    wit_bindgen::generate!({ path: "../../../wit/v0.1", world: "transform" });

    use std::cell::RefCell;

    use exports::tributary::transform::processor::Guest;
    use tributary::transform::types::{Batch, DropReason, Dropped, Emit, Output, Value};

    thread_local! {
        static BLOCKED: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    }

    fn empty() -> Output {
        Output {
            emit: Vec::new(),
            dropped: Vec::new(),
            rejected: Vec::new(),
        }
    }

    /// Words as Python's `str.split()` counts them (as the examples do).
    fn word_count(text: &str) -> usize {
        text.split(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
            .filter(|w| !w.is_empty())
            .count()
    }

    struct G;

    impl Guest for G {
        fn init(config: Vec<(String, String)>) -> Result<Option<Vec<String>>, String> {
            for (key, value) in config {
                match key.as_str() {
                    "block_sources" => BLOCKED.with(|b| {
                        *b.borrow_mut() = value
                            .split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    }),
                    other => return Err(format!("unknown config key `{other}`")),
                }
            }
            Ok(Some(vec!["source".into(), "title".into(), "author".into()]))
        }

        fn process(batch: Batch) -> Result<Output, String> {
            let mut out = empty();
            let blocked = BLOCKED.with(|b| b.borrow().clone());
            for (i, row) in batch.rows.iter().enumerate() {
                let text = |c: usize| match row.get(c) {
                    Some(Value::Text(s)) => Some(s.as_str()),
                    _ => None,
                };
                let row_number = i as u32;
                if text(0).is_some_and(|s| blocked.iter().any(|b| b == s)) {
                    out.dropped.push(Dropped {
                        row: row_number,
                        reason: DropReason::Filtered,
                    });
                    continue;
                }
                let words = text(1).map_or(0, word_count);
                let mut sets = vec![("title_words".to_string(), Value::Int(words as i64))];
                if let Some(first) = text(2).and_then(|a| a.chars().next()) {
                    sets.push(("author".to_string(), Value::Text(format!("{first}***"))));
                }
                out.emit.push(Emit::Update((row_number, sets)));
            }
            Ok(out)
        }

        fn on_watermark(_watermark: i64) -> Result<Output, String> {
            Ok(empty())
        }
    }

    export!(G);
}
