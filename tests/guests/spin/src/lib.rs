//! Loops forever on every batch: the time limit must stop it.

// A test fixture that misbehaves on purpose, below the safe API.
#![allow(unsafe_code)]
#[cfg(target_arch = "wasm32")]
mod guest {
    wit_bindgen::generate!({ path: "../../../wit/v0.1", world: "transform" });

    use exports::tributary::transform::processor::Guest;
    use tributary::transform::types::{Batch, Output};

    struct G;

    impl Guest for G {
        fn init(_config: Vec<(String, String)>) -> Result<Option<Vec<String>>, String> {
            Ok(Some(Vec::new()))
        }

        fn on_watermark(_watermark: i64) -> Result<Output, String> {
            Ok(Output {
                emit: Vec::new(),
                dropped: Vec::new(),
                rejected: Vec::new(),
            })
        }

        fn process(_batch: Batch) -> Result<Output, String> {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
    }

    export!(G);
}
