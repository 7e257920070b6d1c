//! Allocates without bound on every batch: the memory cap must stop it.

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
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(std::hint::black_box(vec![7u8; 1 << 20]));
            }
        }
    }

    export!(G);
}
