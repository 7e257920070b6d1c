//! The built-in dedup transform (`builtin:dedup`).
//!
//! Config: `key` (field), `event_time` (field), `within` ("2 hours", Spark's
//! watermark delay) and `keep`:
//!
//! - `first` (default) — Spark's `dropDuplicatesWithinWatermark`: the first row
//!   of a key is kept, later rows of that key are dropped as `duplicate`. The
//!   key is remembered in the host's state store until its event time +
//!   `within` is at or before the watermark; the host then evicts it, so state
//!   stays bounded (a row of that key arriving later is late anyway).
//! - `latest` — keeps the latest version of each key (largest event time; on a
//!   tie the later arrival) and emits it once the watermark closes the key's
//!   window (first event time + `within`). The first row of a key is *held*
//!   (counted as filtered until emitted); every further row of the key counts
//!   as a `duplicate`, whichever version wins.
//!
//! Rows without the key or the event time are rejected with a reason. The
//! logic ([`Dedup`]) is plain Rust over a [`Store`], tested natively against a
//! model of the host's store; the WebAssembly bindings are a thin layer.

#[path = "../../watermark/src/duration.rs"]
pub mod duration;

/// Which version of a key survives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    First,
    Latest,
}

/// Parsed config.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub key: String,
    pub event_time: String,
    pub within_micros: i64,
    pub keep: Keep,
}

pub fn parse_config(pairs: &[(String, String)]) -> Result<Config, String> {
    const KEYS: [&str; 4] = ["key", "event_time", "within", "keep"];
    for (k, _) in pairs {
        if !KEYS.contains(&k.as_str()) {
            return Err(format!(
                "dedup: unknown config key `{k}` (expected key, event_time, within, keep)"
            ));
        }
    }
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let key = get("key")
        .ok_or("dedup: config needs `key`, the field that identifies a record (e.g. \"id\")")?;
    let event_time = get("event_time")
        .ok_or("dedup: config needs `event_time`, the field holding the event time")?;
    let within = get("within").ok_or(
        "dedup: config needs `within`, the dedup window (the watermark delay, e.g. \"2 hours\")",
    )?;
    let within_micros =
        duration::parse_micros(&within).map_err(|e| format!("dedup: within {e}"))?;
    let keep = match get("keep").as_deref() {
        None | Some("first") => Keep::First,
        Some("latest") => Keep::Latest,
        Some(other) => {
            return Err(format!(
                "dedup: keep `{other}` must be \"first\" or \"latest\""
            ));
        }
    };
    Ok(Config {
        key,
        event_time,
        within_micros,
        keep,
    })
}

/// The host's keyed state store, as the logic needs it.
pub trait Store {
    fn get(&mut self, key: &str) -> Option<Vec<u8>>;
    fn put(&mut self, key: &str, value: Vec<u8>, expires_at: i64);
    fn put_if_absent(&mut self, key: &str, value: Vec<u8>, expires_at: i64) -> bool;
}

/// What happens to one row.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    Keep,
    Duplicate,
    /// Stored, to be emitted when its window closes (`latest`).
    Held,
    Reject(String),
}

/// One input row, as the logic sees it.
#[derive(Clone, Debug)]
pub struct Row<'a> {
    pub key: Option<&'a str>,
    pub event_time: Option<i64>,
    /// The whole row, encoded by the caller (`latest` stores it).
    pub encoded: &'a [u8],
}

pub struct Dedup {
    pub config: Config,
}

impl Dedup {
    pub fn decide(&self, store: &mut impl Store, row: &Row<'_>) -> Decision {
        let Some(key) = row.key else {
            return Decision::Reject(format!("missing key field `{}`", self.config.key));
        };
        let Some(t) = row.event_time else {
            return Decision::Reject(format!(
                "missing event-time field `{}`",
                self.config.event_time
            ));
        };
        let expires = t.saturating_add(self.config.within_micros);
        match self.config.keep {
            Keep::First => {
                if store.put_if_absent(key, Vec::new(), expires) {
                    Decision::Keep
                } else {
                    Decision::Duplicate
                }
            }
            Keep::Latest => match store.get(key) {
                None => {
                    store.put(key, held(expires, t, row.encoded), expires);
                    Decision::Held
                }
                Some(old) => {
                    let (old_expires, old_t) = held_header(&old);
                    if t >= old_t {
                        store.put(key, held(old_expires, t, row.encoded), old_expires);
                    }
                    Decision::Duplicate
                }
            },
        }
    }
}

/// `latest` keeps `expires (i64 LE) | event time (i64 LE) | encoded row`.
fn held(expires: i64, t: i64, row: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 + row.len());
    v.extend_from_slice(&expires.to_le_bytes());
    v.extend_from_slice(&t.to_le_bytes());
    v.extend_from_slice(row);
    v
}

fn held_header(v: &[u8]) -> (i64, i64) {
    let num = |r: std::ops::Range<usize>| {
        v.get(r)
            .and_then(|b| b.try_into().ok())
            .map_or(i64::MIN, i64::from_le_bytes)
    };
    (num(0..8), num(8..16))
}

/// The encoded row inside a stored `latest` value.
pub fn held_row(v: &[u8]) -> &[u8] {
    v.get(16..).unwrap_or_default()
}

/// The WebAssembly face. The generated bindings use unsafe code for the
/// canonical ABI; nothing else here does.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod guest {
    wit_bindgen::generate!({ path: "../../wit", world: "transform" });

    use exports::tributary::transform::processor::Guest;
    use tributary::transform::state;
    use tributary::transform::types::{Batch, DropReason, Dropped, Emit, Output, Rejected, Value};

    use super::{Decision, Dedup, Keep, Row};

    static DEDUP: std::sync::OnceLock<Dedup> = std::sync::OnceLock::new();

    struct HostStore;
    impl super::Store for HostStore {
        fn get(&mut self, key: &str) -> Option<Vec<u8>> {
            state::get(key)
        }
        fn put(&mut self, key: &str, value: Vec<u8>, expires_at: i64) {
            state::put(key, &value, Some(expires_at))
        }
        fn put_if_absent(&mut self, key: &str, value: Vec<u8>, expires_at: i64) -> bool {
            state::put_if_absent(key, &value, Some(expires_at))
        }
    }

    fn key_text(v: &Value) -> Option<String> {
        match v {
            Value::Null => None,
            Value::Text(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Timestamp(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Boolean(b) => Some(b.to_string()),
            Value::Bytes(b) => Some(b.iter().map(|x| format!("{x:02x}")).collect()),
            Value::Json(j) => Some(j.clone()),
        }
    }

    fn time(v: &Value) -> Option<i64> {
        match v {
            Value::Timestamp(t) | Value::Int(t) => Some(*t),
            _ => None,
        }
    }

    // A row for `latest`: per field, u32 LE name length, name, a tag byte, and
    // the value (i64/f64 LE, a bool byte, or u32 LE length + bytes).
    fn encode(names: &[String], row: &[Value]) -> Vec<u8> {
        let mut out = Vec::new();
        let put_bytes = |out: &mut Vec<u8>, b: &[u8]| {
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(b);
        };
        for (name, v) in names.iter().zip(row) {
            put_bytes(&mut out, name.as_bytes());
            match v {
                Value::Null => out.push(0),
                Value::Boolean(b) => out.extend_from_slice(&[1, *b as u8]),
                Value::Int(i) => {
                    out.push(2);
                    out.extend_from_slice(&i.to_le_bytes())
                }
                Value::Float(f) => {
                    out.push(3);
                    out.extend_from_slice(&f.to_le_bytes())
                }
                Value::Text(s) => {
                    out.push(4);
                    put_bytes(&mut out, s.as_bytes())
                }
                Value::Bytes(b) => {
                    out.push(5);
                    put_bytes(&mut out, b)
                }
                Value::Timestamp(t) => {
                    out.push(6);
                    out.extend_from_slice(&t.to_le_bytes())
                }
                Value::Json(j) => {
                    out.push(7);
                    put_bytes(&mut out, j.as_bytes())
                }
            }
        }
        out
    }

    fn decode(mut b: &[u8]) -> Option<Vec<(String, Value)>> {
        fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
            let (head, tail) = (b.get(..n)?, b.get(n..)?);
            *b = tail;
            Some(head)
        }
        fn bytes(b: &mut &[u8]) -> Option<Vec<u8>> {
            let n = u32::from_le_bytes(take(b, 4)?.try_into().ok()?) as usize;
            Some(take(b, n)?.to_vec())
        }
        fn i64_(b: &mut &[u8]) -> Option<i64> {
            Some(i64::from_le_bytes(take(b, 8)?.try_into().ok()?))
        }
        let mut out = Vec::new();
        while !b.is_empty() {
            let name = String::from_utf8(bytes(&mut b)?).ok()?;
            let v = match take(&mut b, 1)?[0] {
                0 => Value::Null,
                1 => Value::Boolean(take(&mut b, 1)?[0] != 0),
                2 => Value::Int(i64_(&mut b)?),
                3 => Value::Float(f64::from_bits(i64_(&mut b)? as u64)),
                4 => Value::Text(String::from_utf8(bytes(&mut b)?).ok()?),
                5 => Value::Bytes(bytes(&mut b)?),
                6 => Value::Timestamp(i64_(&mut b)?),
                7 => Value::Json(String::from_utf8(bytes(&mut b)?).ok()?),
                _ => return None,
            };
            out.push((name, v));
        }
        Some(out)
    }

    struct DedupGuest;

    impl Guest for DedupGuest {
        fn init(config: Vec<(String, String)>) -> Result<Option<Vec<String>>, String> {
            let c = super::parse_config(&config)?;
            let projection = match c.keep {
                Keep::First => Some(vec![c.key.clone(), c.event_time.clone()]),
                Keep::Latest => None,
            };
            let _ = DEDUP.set(Dedup { config: c });
            Ok(projection)
        }

        fn process(batch: Batch) -> Result<Output, String> {
            let dedup = DEDUP.get().ok_or("dedup: process called before init")?;
            let names: Vec<String> = batch.fields.iter().map(|f| f.name.clone()).collect();
            let pos = |name: &str| names.iter().position(|n| n == name);
            let (ki, ti) = (pos(&dedup.config.key), pos(&dedup.config.event_time));
            let mut out = Output {
                emit: Vec::with_capacity(batch.rows.len()),
                dropped: Vec::new(),
                rejected: Vec::new(),
            };
            let mut store = HostStore;
            for (i, row) in batch.rows.iter().enumerate() {
                let key = ki.and_then(|k| key_text(&row[k]));
                let encoded = if dedup.config.keep == Keep::Latest {
                    encode(&names, row)
                } else {
                    Vec::new()
                };
                let r = Row {
                    key: key.as_deref(),
                    event_time: ti.and_then(|t| time(&row[t])),
                    encoded: &encoded,
                };
                let row = i as u32;
                match dedup.decide(&mut store, &r) {
                    Decision::Keep => out.emit.push(Emit::Keep(row)),
                    Decision::Duplicate => out.dropped.push(Dropped {
                        row,
                        reason: DropReason::Duplicate,
                    }),
                    Decision::Held => {}
                    Decision::Reject(reason) => out.rejected.push(Rejected { row, reason }),
                }
            }
            Ok(out)
        }

        fn on_watermark(_watermark: i64) -> Result<Output, String> {
            let mut out = Output {
                emit: Vec::new(),
                dropped: Vec::new(),
                rejected: Vec::new(),
            };
            let dedup = DEDUP
                .get()
                .ok_or("dedup: on-watermark called before init")?;
            if dedup.config.keep == Keep::Latest {
                for (key, value) in state::take_expired() {
                    let row = decode(super::held_row(&value))
                        .ok_or_else(|| format!("dedup: stored row of key `{key}` is unreadable"))?;
                    out.emit.push(Emit::Insert(row));
                }
            }
            Ok(out)
        }
    }

    export!(DedupGuest);
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use super::*;

    /// A model of the host's store: values with expiry, evicted when the
    /// watermark reaches them; `snapshot`/`restore` as the host checkpoints.
    #[derive(Clone, Default, Debug, PartialEq)]
    struct Model {
        map: HashMap<String, (Vec<u8>, i64)>,
    }
    impl Store for Model {
        fn get(&mut self, key: &str) -> Option<Vec<u8>> {
            self.map.get(key).map(|(v, _)| v.clone())
        }
        fn put(&mut self, key: &str, value: Vec<u8>, expires_at: i64) {
            self.map.insert(key.into(), (value, expires_at));
        }
        fn put_if_absent(&mut self, key: &str, value: Vec<u8>, expires_at: i64) -> bool {
            if self.map.contains_key(key) {
                return false;
            }
            self.map.insert(key.into(), (value, expires_at));
            true
        }
    }
    impl Model {
        fn take_expired(&mut self, wm: i64) -> BTreeMap<String, Vec<u8>> {
            let gone: Vec<String> = self
                .map
                .iter()
                .filter(|(_, (_, e))| *e <= wm)
                .map(|(k, _)| k.clone())
                .collect();
            gone.into_iter()
                .map(|k| {
                    let v = self.map.remove(&k).unwrap().0;
                    (k, v)
                })
                .collect()
        }
    }

    fn dedup(keep: Keep) -> Dedup {
        Dedup {
            config: Config {
                key: "id".into(),
                event_time: "t".into(),
                within_micros: 100,
                keep,
            },
        }
    }

    /// Runs batches of (key, time) through dedup with a watermark of max − 100
    /// moved between batches (as the host does), returning what each row became
    /// and what `latest` emitted.
    fn run(
        d: &Dedup,
        store: &mut Model,
        wm: &mut Option<i64>,
        batches: &[Vec<(u8, i64)>],
    ) -> Vec<String> {
        let mut log = Vec::new();
        for batch in batches {
            let mut max = None;
            for (k, t) in batch {
                let key = format!("k{k}");
                let enc = format!("{key}@{t}").into_bytes();
                let dec = d.decide(
                    store,
                    &Row {
                        key: Some(&key),
                        event_time: Some(*t),
                        encoded: &enc,
                    },
                );
                log.push(format!("{key}@{t}:{dec:?}"));
                max = Some(max.map_or(*t, |m: i64| m.max(*t)));
            }
            if let Some(m) = max {
                let proposal = m - 100;
                if wm.is_none_or(|w| proposal > w) {
                    *wm = Some(proposal);
                    for (k, v) in store.take_expired(proposal) {
                        log.push(format!(
                            "emit {k} {}",
                            String::from_utf8_lossy(held_row(&v))
                        ));
                    }
                }
            }
        }
        log
    }

    #[test]
    fn first_keeps_the_first_and_rejects_rows_without_key_or_time() {
        let d = dedup(Keep::First);
        let mut s = Model::default();
        let r = |k: Option<&'static str>, t| Row {
            key: k,
            event_time: t,
            encoded: &[],
        };
        assert_eq!(d.decide(&mut s, &r(Some("a"), Some(1))), Decision::Keep);
        assert_eq!(
            d.decide(&mut s, &r(Some("a"), Some(50))),
            Decision::Duplicate
        );
        assert_eq!(
            d.decide(&mut s, &r(None, Some(5))),
            Decision::Reject("missing key field `id`".into())
        );
        assert_eq!(
            d.decide(&mut s, &r(Some("b"), None)),
            Decision::Reject("missing event-time field `t`".into())
        );
        assert_eq!(
            s.map["a"].1, 101,
            "the key expires at its event time + within"
        );
    }

    #[test]
    fn latest_emits_the_latest_version_when_the_window_closes() {
        let d = dedup(Keep::Latest);
        let (mut s, mut wm) = (Model::default(), None);
        let log = run(
            &d,
            &mut s,
            &mut wm,
            &[
                vec![(1, 10), (1, 30), (1, 20)],
                vec![(2, 150)],
                vec![(3, 400)],
            ],
        );
        assert!(log.contains(&"emit k1 k1@30".to_string()), "{log:?}");
        assert!(log.contains(&"emit k2 k2@150".to_string()), "{log:?}");
        assert!(
            !log.iter().any(|l| l.starts_with("emit k3")),
            "k3's window is still open: {log:?}"
        );
    }

    #[test]
    fn config_errors_name_the_key() {
        let base = |extra: (&str, &str)| {
            let mut v: Vec<(String, String)> = vec![
                ("key".into(), "id".into()),
                ("event_time".into(), "t".into()),
                ("within".into(), "1h".into()),
            ];
            v.push((extra.0.into(), extra.1.into()));
            parse_config(&v)
        };
        assert_eq!(base(("keep", "latest")).unwrap().keep, Keep::Latest);
        assert!(
            base(("keep", "last"))
                .unwrap_err()
                .contains("\"first\" or \"latest\"")
        );
        assert!(
            base(("window", "1h"))
                .unwrap_err()
                .contains("unknown config key `window`")
        );
        assert!(
            parse_config(&[("event_time".into(), "t".into())])
                .unwrap_err()
                .contains("`key`")
        );
    }

    fn arb_batches() -> impl proptest::strategy::Strategy<Value = Vec<Vec<(u8, i64)>>> {
        proptest::collection::vec(
            proptest::collection::vec((0u8..12, 0i64..1000), 0..15),
            0..12,
        )
    }

    proptest::proptest! {
        /// `first` never keeps a key twice while the key's window is open.
        #[test]
        fn no_duplicate_within_the_window(batches in arb_batches()) {
            let d = dedup(Keep::First);
            // With every time inside one window nothing can be evicted, so no
            // key may be kept twice.
            let small: Vec<Vec<(u8, i64)>> = batches.iter().map(|b| b.iter().map(|(k, t)| (*k, t % 100)).collect()).collect();
            let (mut s2, mut wm2) = (Model::default(), None);
            let log2 = run(&d, &mut s2, &mut wm2, &small);
            let keys: Vec<&str> = log2.iter().filter(|l| l.ends_with(":Keep")).map(|l| l.split('@').next().unwrap()).collect();
            let unique: std::collections::HashSet<&&str> = keys.iter().collect();
            proptest::prop_assert_eq!(keys.len(), unique.len());
        }

        /// Restoring a snapshot taken after `a` and then running `b` gives
        /// the same output as running `a ++ b` in one go.
        #[test]
        fn restore_snapshot_then_b_equals_a_then_b(a in arb_batches(), b in arb_batches(), latest in proptest::bool::ANY) {
            let d = dedup(if latest { Keep::Latest } else { Keep::First });
            let (mut s, mut wm) = (Model::default(), None);
            let mut whole = run(&d, &mut s, &mut wm, &a);
            whole.extend(run(&d, &mut s, &mut wm, &b));

            let (mut s1, mut wm1) = (Model::default(), None);
            let mut split = run(&d, &mut s1, &mut wm1, &a);
            let (mut restored, mut wm2) = (s1.clone(), wm1);
            split.extend(run(&d, &mut restored, &mut wm2, &b));
            proptest::prop_assert_eq!(split, whole);
        }
    }
}
