//! The WebAssembly face of the transform: the batch's rows go to [`Dedup`]
//! as they came (no copy), verdicts come back as output.

use tributary_transform_sdk::{self as sdk, Batch, DropReason, Output, Transform, state};

use crate::{Dedup, Store, Verdict};

/// The host's store through the SDK.
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

struct DedupGuest(Dedup);

impl Transform for DedupGuest {
    const NAME: &'static str = "dedup";

    fn init(config: sdk::Config) -> Result<Self, String> {
        crate::parse_config(&config).map(|c| DedupGuest(Dedup::new(c)))
    }

    fn fields(&self) -> Option<Vec<String>> {
        self.0.projection()
    }

    fn process(&mut self, batch: &Batch, out: &mut Output) -> Result<(), String> {
        // The names only, once per batch: the rows are passed as they are.
        let fields: Vec<String> = batch.fields().iter().map(|f| f.name.clone()).collect();
        let verdicts = self.0.process(&mut HostStore, &fields, batch.raw_rows())?;
        out.reserve(verdicts.len());
        for (i, verdict) in verdicts.into_iter().enumerate() {
            let row = i as u32;
            match verdict {
                Verdict::Keep => out.keep(row),
                Verdict::Duplicate => out.drop(row, DropReason::Duplicate),
                Verdict::Held => out.drop(row, DropReason::Filtered),
                Verdict::Reject(reason) => out.reject(row, reason),
            }
        }
        Ok(())
    }

    fn on_watermark(&mut self, _watermark: i64, out: &mut Output) -> Result<(), String> {
        for row in self.0.on_watermark(&mut HostStore)? {
            out.insert(row);
        }
        Ok(())
    }
}

tributary_transform_sdk::export_transform!(DedupGuest);
