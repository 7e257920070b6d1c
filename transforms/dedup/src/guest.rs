//! The WebAssembly face of the transform: the batch's cells go to [`Dedup`]
//! as they came (no copy), verdicts come back as output.

use std::borrow::Cow;

use tributary_transform_sdk::{self as sdk, Batch, DropReason, Output, Transform, ValueRef, state};

use crate::{Dedup, Keep, Store, Verdict};

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
    fn put_if_absent_many(
        &mut self,
        keys: &[Cow<'_, str>],
        value: &[u8],
        expires_at: &[i64],
    ) -> Result<Vec<bool>, String> {
        state::put_if_absent_many(keys, value, expires_at)
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
        let verdicts = match self.0.config().keep {
            // `first` reads its two cells in place from the batch's columns
            // (text keys are not copied) and asks the host about every key
            // in one call.
            Keep::First => {
                let (key, time) = (
                    batch.find(&self.0.config().key),
                    batch.find(&self.0.config().event_time),
                );
                self.0.process_first(
                    &mut HostStore,
                    batch.rows().map(|row| {
                        let get = |c: Option<sdk::Column>| c.map_or(ValueRef::Null, |c| row.get(c));
                        self.0.identify_cells(get(key), get(time))
                    }),
                )?
            }
            Keep::Latest => {
                let fields: Vec<String> = batch.fields().iter().map(|f| f.name.clone()).collect();
                self.0.process(&mut HostStore, &fields, batch.raw_rows())?
            }
        };
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
