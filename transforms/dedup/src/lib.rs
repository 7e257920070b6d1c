//! The built-in dedup transform (`builtin:dedup`).
//!
//! ```json
//! {"name": "dedup", "module": "builtin:dedup",
//!  "config": {"key": "id", "event_time": "published_at", "within": "2 hours", "keep": "first"}}
//! ```
//!
//! `key` and `event_time` name fields; `within` is the dedup window, Spark's
//! watermark delay; `keep` is `"first"` (default) or `"latest"`. The host's
//! keyed store holds one entry per key whose window is open; it expires at the
//! key's first event time + `within`, and the host evicts it once the
//! watermark reaches that, so state stays bounded. A row of that key arriving
//! after the eviction has an event time after the watermark (or the watermark
//! transform upstream dropped it as late), so it is past the old window.
//!
//! - **`first`** — Spark 3.5's `dropDuplicatesWithinWatermark`: the first row
//!   of a key is kept at once; every other row of the key while its entry
//!   lives is dropped as `duplicate` (within one batch too).
//! - **`latest`** — keeps the latest version of each key (largest event time;
//!   on a tie the later arrival) and emits it, with all its fields, when the
//!   watermark closes the key's window. Accounting, per key and window: the
//!   first row is *held*, reported as `filtered` — it leaves the batch now and
//!   comes back as an inserted row at window close, carrying the winning
//!   version; every further row is reported as a `duplicate`, whichever
//!   version wins. So `latest` counts exactly the duplicates `first` counts,
//!   and emits one row per key and window, later. Rows still held when a run
//!   ends stay in the checkpointed state until a later watermark closes their
//!   window (Spark's append mode does the same).
//!
//! A row without a key, or without an event time (or with one that is neither
//! a timestamp nor an int of µs), is rejected with a reason. Dedup relies on a
//! watermark transform upstream: without a watermark nothing ever expires.
//!
//! The logic ([`Dedup`]) is plain Rust over a [`Store`], tested natively
//! against a model of the host's store; the WebAssembly face (`guest`, built
//! for `wasm32` only, on `tributary-transform-sdk`) passes the batch through
//! and turns verdicts into output.

use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

pub mod value;

use tributary_transform_sdk::duration;
pub use value::{KeyText, Value, ValueRef};

/// Which version of a key survives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    First,
    Latest,
}

/// Parsed config.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The field that identifies a record.
    pub key: String,
    /// The field holding the event time.
    pub event_time: String,
    /// The dedup window: a key's entry lives until first event time + this.
    pub within_micros: i64,
    pub keep: Keep,
}

const KEYS: [&str; 4] = ["key", "event_time", "within", "keep"];

/// Reads the config the host passes to `init`.
pub fn parse_config(config: &tributary_transform_sdk::Config) -> Result<Config, String> {
    config.only(&KEYS).map_err(|e| format!("dedup: {e}"))?;
    let get = |k: &str| config.get(k);
    let key = get("key")
        .ok_or("dedup: config needs `key`, the field that identifies a record (e.g. \"id\")")?;
    let event_time = get("event_time")
        .ok_or("dedup: config needs `event_time`, the field holding the event time")?;
    let within = get("within").ok_or(
        "dedup: config needs `within`, the dedup window (the watermark delay, e.g. \"2 hours\")",
    )?;
    let within_micros = duration::parse_micros(within).map_err(|e| format!("dedup: within {e}"))?;
    let keep = match get("keep") {
        None | Some("first") => Keep::First,
        Some("latest") => Keep::Latest,
        Some(other) => {
            return Err(format!(
                "dedup: keep `{other}` must be \"first\" or \"latest\""
            ));
        }
    };
    Ok(Config {
        key: key.to_string(),
        event_time: event_time.to_string(),
        within_micros,
        keep,
    })
}

/// The host's keyed store (`tributary:transform/state`), as the logic needs
/// it. Every entry the logic writes carries an expiry.
pub trait Store {
    fn get(&mut self, key: &str) -> Option<Vec<u8>>;
    fn put(&mut self, key: &str, value: &[u8], expires_at: i64);
    fn put_if_absent(&mut self, key: &str, value: &[u8], expires_at: i64) -> bool;
    /// `put_if_absent` of each key in order, in one call where the store
    /// can (the host's `put-if-absent-many`).
    fn put_if_absent_many(
        &mut self,
        keys: &[Cow<'_, str>],
        value: &[u8],
        expires_at: &[i64],
    ) -> Result<Vec<bool>, String> {
        Ok(keys
            .iter()
            .zip(expires_at)
            .map(|(k, e)| self.put_if_absent(k, value, *e))
            .collect())
    }
    /// Removes and returns the entries expiring at or before the watermark,
    /// oldest expiry first.
    fn take_expired(&mut self) -> Vec<(String, Vec<u8>)>;
}

/// What happens to one input row.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Emitted now, unchanged.
    Keep,
    /// Dropped: its key's window is open and this row is not the one kept.
    Duplicate,
    /// `latest`: the first row of its key's window, reported as `filtered`
    /// now; the window's winning version is inserted when the window closes.
    Held,
    /// Refused with this reason.
    Reject(String),
}

/// A `latest` entry: `HELD_V1 | first expiry (i64) | event time of the held
/// version (i64) | the held row (see [`value`])`, little endian. The expiry is
/// kept in the value so that a replacing version keeps the window's expiry.
const HELD_V1: u8 = 1;
const HELD_HEADER: usize = 17;

fn held_header(v: &[u8]) -> Option<(i64, i64)> {
    if v.len() < HELD_HEADER || v[0] != HELD_V1 {
        return None;
    }
    let num = |at: usize| v[at..at + 8].try_into().ok().map(i64::from_le_bytes);
    Some((num(1)?, num(9)?))
}

fn not_held(key: &str) -> String {
    format!(
        "dedup: the stored state of key `{key}` is not a row held by keep = \"latest\"; the \
         checkpoint was written with another `keep` or by another transform of the same name"
    )
}

/// The transform: its config, and nothing else (all state is the host's).
#[derive(Clone, Debug)]
pub struct Dedup {
    config: Config,
}

/// A key's version while a `latest` batch runs: the window's expiry, the
/// event time of the best version so far and, when that version is a row of
/// this batch, its index (otherwise the stored one still wins).
struct Candidate {
    expires: i64,
    time: i64,
    row: Option<usize>,
}

impl Dedup {
    pub fn new(config: Config) -> Self {
        Self { config }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The fields the host must pass: key and event time for `first`; all of
    /// them for `latest`, which re-emits whole rows.
    pub fn projection(&self) -> Option<Vec<String>> {
        match self.config.keep {
            Keep::First => Some(vec![
                self.config.key.clone(),
                self.config.event_time.clone(),
            ]),
            Keep::Latest => None,
        }
    }

    /// The key and event time of a row, or why it is rejected.
    fn identify(
        &self,
        row: &[Value],
        key_col: Option<usize>,
        time_col: Option<usize>,
    ) -> Result<(String, i64), String> {
        let cell = |col: Option<usize>| {
            col.and_then(|c| row.get(c))
                .map_or(ValueRef::Null, ValueRef::from)
        };
        self.identify_cells(cell(key_col), cell(time_col))
            .map(|(k, t)| (k.into_owned(), t))
    }

    /// The key and event time from a row's two cells, or why the row is
    /// rejected.
    pub fn identify_cells<'a>(
        &self,
        key: ValueRef<'a>,
        time: ValueRef<'_>,
    ) -> Result<(Cow<'a, str>, i64), String> {
        let key =
            value::key_of(key).ok_or_else(|| format!("missing key field `{}`", self.config.key))?;
        let time = match time {
            ValueRef::Timestamp(t) | ValueRef::Int(t) => t,
            ValueRef::Null => {
                return Err(format!(
                    "missing event-time field `{}`",
                    self.config.event_time
                ));
            }
            other => {
                return Err(format!(
                    "event-time field `{}` holds {}, not a timestamp",
                    self.config.event_time,
                    other.kind()
                ));
            }
        };
        Ok((key, time))
    }

    /// One batch: a verdict per row, in order. `fields` names the columns of
    /// `rows`. An error (unreadable state) fails the whole batch.
    pub fn process(
        &self,
        store: &mut impl Store,
        fields: &[String],
        rows: &[Vec<Value>],
    ) -> Result<Vec<Verdict>, String> {
        let col = |name: &str| fields.iter().position(|f| f == name);
        let (key_col, time_col) = (col(&self.config.key), col(&self.config.event_time));
        match self.config.keep {
            Keep::First => self.process_first(
                store,
                rows.iter().map(|row| {
                    self.identify(row, key_col, time_col)
                        .map(|(k, t)| (Cow::Owned(k), t))
                }),
            ),
            Keep::Latest => self.process_latest(store, fields, rows, key_col, time_col),
        }
    }

    /// `first`: each row's key and event time (or why it is rejected) in,
    /// a verdict per row out, with one [`Store::put_if_absent_many`] for
    /// the whole batch.
    pub fn process_first<'a>(
        &self,
        store: &mut impl Store,
        rows: impl Iterator<Item = Result<(Cow<'a, str>, i64), String>>,
    ) -> Result<Vec<Verdict>, String> {
        let mut verdicts = Vec::with_capacity(rows.size_hint().0);
        let (mut keys, mut expiries, mut at) = (Vec::new(), Vec::new(), Vec::new());
        for (i, row) in rows.enumerate() {
            match row {
                Err(reason) => verdicts.push(Verdict::Reject(reason)),
                Ok((key, t)) => {
                    verdicts.push(Verdict::Keep);
                    at.push(i);
                    keys.push(key);
                    expiries.push(t.saturating_add(self.config.within_micros));
                }
            }
        }
        let stored = store.put_if_absent_many(&keys, &[], &expiries)?;
        for (i, stored) in at.into_iter().zip(stored) {
            if !stored {
                verdicts[i] = Verdict::Duplicate;
            }
        }
        Ok(verdicts)
    }

    /// `latest`: decides every row first, then writes each key's winning
    /// version of this batch once (one `put` per key, not per row).
    fn process_latest(
        &self,
        store: &mut impl Store,
        fields: &[String],
        rows: &[Vec<Value>],
        key_col: Option<usize>,
        time_col: Option<usize>,
    ) -> Result<Vec<Verdict>, String> {
        let mut verdicts = Vec::with_capacity(rows.len());
        let mut touched: HashMap<String, Candidate> = HashMap::new();
        let mut order: Vec<String> = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let (key, t) = match self.identify(row, key_col, time_col) {
                Ok(found) => found,
                Err(reason) => {
                    verdicts.push(Verdict::Reject(reason));
                    continue;
                }
            };
            match touched.entry(key) {
                Entry::Occupied(mut e) => {
                    let best = e.get_mut();
                    if t >= best.time {
                        best.time = t;
                        best.row = Some(i);
                    }
                    verdicts.push(Verdict::Duplicate);
                }
                Entry::Vacant(e) => {
                    let candidate = match store.get(e.key()) {
                        Some(stored) => {
                            let (expires, time) =
                                held_header(&stored).ok_or_else(|| not_held(e.key()))?;
                            verdicts.push(Verdict::Duplicate);
                            Candidate {
                                expires,
                                time: time.max(t),
                                row: (t >= time).then_some(i),
                            }
                        }
                        None => {
                            verdicts.push(Verdict::Held);
                            Candidate {
                                expires: t.saturating_add(self.config.within_micros),
                                time: t,
                                row: Some(i),
                            }
                        }
                    };
                    order.push(e.key().clone());
                    e.insert(candidate);
                }
            }
        }
        let mut value = Vec::new();
        for key in order {
            let c = &touched[&key];
            if let Some(i) = c.row {
                value.clear();
                value.push(HELD_V1);
                value.extend_from_slice(&c.expires.to_le_bytes());
                value.extend_from_slice(&c.time.to_le_bytes());
                value::encode_row(&mut value, fields, &rows[i]);
                store.put(&key, &value, c.expires);
            }
        }
        Ok(verdicts)
    }

    /// After the watermark moved: for `latest`, the held version of every key
    /// whose window closed, oldest window first, as whole rows to insert. For
    /// `first`, nothing (the host evicts the expired keys itself).
    pub fn on_watermark(
        &self,
        store: &mut impl Store,
    ) -> Result<Vec<Vec<(String, Value)>>, String> {
        if self.config.keep == Keep::First {
            return Ok(Vec::new());
        }
        store
            .take_expired()
            .into_iter()
            .map(|(key, stored)| {
                held_header(&stored)
                    .and_then(|_| value::decode_row(&stored[HELD_HEADER..]))
                    .ok_or_else(|| not_held(&key))
            })
            .collect()
    }
}

#[cfg(target_arch = "wasm32")]
mod guest;

#[cfg(test)]
mod tests;
