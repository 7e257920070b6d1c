//! The keyed state store a transform imports (`tributary:transform/state`).
//!
//! Owned by the host so it can be checkpointed with the source offsets and
//! survive a guest that traps. Entries may expire in event time: an entry whose
//! `expires_at` is at or before the watermark is evicted after the watermark
//! moves. An ordered index by expiry makes eviction cost proportional to what
//! is evicted.
//!
//! Every call into the guest runs inside a journal ([`KeyedState::begin`]):
//! if the call traps or fails, [`KeyedState::rollback`] undoes its changes, so
//! a discarded instance never leaves half-applied state behind.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq)]
struct Entry {
    value: Vec<u8>,
    expires_at: Option<i64>,
}

/// A key, shared by the map, the expiry index and the journal: one
/// allocation per key instead of one per structure (dedup makes one entry
/// per record, so this is on the hot path).
type Key = Arc<str>;

/// An undo record: the key and what it held before (None: absent).
type Undo = (Key, Option<Entry>);

#[derive(Debug, Default)]
pub struct KeyedState {
    entries: HashMap<Key, Entry>,
    by_expiry: BTreeSet<(i64, Key)>,
    journal: Option<Vec<Undo>>,
}

impl KeyedState {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.entries.get(key).map(|e| e.value.as_slice())
    }

    fn record(&mut self, key: &Key, before: Option<Entry>) {
        if let Some(j) = self.journal.as_mut() {
            j.push((key.clone(), before));
        }
    }

    /// The stored `Key` for `key`, or a new one.
    fn key(&self, key: &str) -> Key {
        self.entries
            .get_key_value(key)
            .map_or_else(|| Key::from(key), |(k, _)| k.clone())
    }

    fn set(&mut self, key: &Key, entry: Option<Entry>) -> Option<Entry> {
        let new_expiry = entry.as_ref().and_then(|e| e.expires_at);
        let old = match entry {
            Some(e) => {
                if let Some(t) = e.expires_at {
                    self.by_expiry.insert((t, key.clone()));
                }
                self.entries.insert(key.clone(), e)
            }
            None => self.entries.remove(key),
        };
        if let Some(t) = old.as_ref().and_then(|e| e.expires_at)
            && new_expiry != Some(t)
        {
            // The new entry may carry the same expiry: then keep its index entry.
            self.by_expiry.remove(&(t, key.clone()));
        }
        old
    }

    pub fn put(&mut self, key: &str, value: Vec<u8>, expires_at: Option<i64>) {
        let key = self.key(key);
        let old = self.set(&key, Some(Entry { value, expires_at }));
        self.record(&key, old);
    }

    pub fn put_if_absent(&mut self, key: &str, value: Vec<u8>, expires_at: Option<i64>) -> bool {
        if self.entries.contains_key(key) {
            return false;
        }
        let key = Key::from(key);
        self.set(&key, Some(Entry { value, expires_at }));
        self.record(&key, None);
        true
    }

    pub fn remove(&mut self, key: &str) -> bool {
        let Some((key, _)) = self.entries.get_key_value(key) else {
            return false;
        };
        let key = key.clone();
        let old = self.set(&key, None);
        self.record(&key, old);
        true
    }

    /// Removes and returns entries expiring at or before `watermark`, oldest
    /// expiry first.
    pub fn take_expired(&mut self, watermark: i64) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        self.expire(watermark, |key, value| {
            out.push((key.to_string(), value.to_vec()))
        });
        out
    }

    /// Removes the entries expiring at or before `watermark` (what the host
    /// does after the watermark moves); returns how many.
    pub fn evict_expired(&mut self, watermark: i64) -> usize {
        let mut n = 0;
        self.expire(watermark, |_, _| n += 1);
        n
    }

    /// Removes entries expiring at or before `watermark`, oldest first,
    /// showing each to `seen`.
    fn expire(&mut self, watermark: i64, mut seen: impl FnMut(&str, &[u8])) {
        while self.by_expiry.first().is_some_and(|(t, _)| *t <= watermark) {
            let Some((_, key)) = self.by_expiry.pop_first() else {
                break;
            };
            // The index holds one entry per stored expiry, so the key is there.
            if let Some(old) = self.entries.remove(&key) {
                seen(&key, &old.value);
                self.record(&key, Some(old));
            }
        }
    }

    /// Starts journaling changes (one guest call).
    pub fn begin(&mut self) {
        self.journal = Some(Vec::new());
    }

    /// Keeps the changes since [`begin`](Self::begin).
    pub fn commit(&mut self) {
        self.journal = None;
    }

    /// Undoes every change since [`begin`](Self::begin).
    pub fn rollback(&mut self) {
        if let Some(journal) = self.journal.take() {
            for (key, before) in journal.into_iter().rev() {
                self.set(&key, before);
            }
        }
    }

    /// Serialises every entry. A hand-written, versioned format (no extra
    /// dependency, and it must stay readable across releases):
    /// `TRBSTAT1 | u64 count | per entry: u32 key len, key, u8 has-expiry,
    /// i64 expiry, u32 value len, value` (little endian).
    pub fn snapshot(&self) -> Vec<u8> {
        let size: usize = self
            .entries
            .iter()
            .map(|(k, e)| 17 + k.len() + e.value.len())
            .sum();
        let mut out = Vec::with_capacity(16 + size);
        out.extend_from_slice(b"TRBSTAT1");
        out.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        let mut keys: Vec<&Key> = self.entries.keys().collect();
        keys.sort_unstable();
        for k in keys {
            let e = &self.entries[k];
            out.extend_from_slice(&(k.len() as u32).to_le_bytes());
            out.extend_from_slice(k.as_bytes());
            out.push(e.expires_at.is_some() as u8);
            out.extend_from_slice(&e.expires_at.unwrap_or(0).to_le_bytes());
            out.extend_from_slice(&(e.value.len() as u32).to_le_bytes());
            out.extend_from_slice(&e.value);
        }
        out
    }

    /// Reads what [`snapshot`](Self::snapshot) wrote; an empty slice is an
    /// empty store.
    pub fn restore(bytes: &[u8]) -> Result<Self, DamagedState> {
        let mut state = Self::default();
        if bytes.is_empty() {
            return Ok(state);
        }
        let mut at = 0usize;
        let mut take = |n: usize| -> Result<&[u8], DamagedState> {
            let s = bytes
                .get(at..at + n)
                .ok_or(DamagedState("transform state is truncated"))?;
            at += n;
            Ok(s)
        };
        if take(8)? != b"TRBSTAT1" {
            return Err(DamagedState("transform state has an unknown format"));
        }
        let count = u64::from_le_bytes(take(8)?.try_into().expect("8 bytes"));
        for _ in 0..count {
            let klen = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
            let key = String::from_utf8(take(klen)?.to_vec())
                .map_err(|_| DamagedState("transform state has a non-UTF-8 key"))?;
            let has = take(1)?[0] == 1;
            let expiry = i64::from_le_bytes(take(8)?.try_into().expect("8 bytes"));
            let vlen = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
            let value = take(vlen)?.to_vec();
            state.set(
                &Key::from(key),
                Some(Entry {
                    value,
                    expires_at: has.then_some(expiry),
                }),
            );
        }
        Ok(state)
    }
}

/// Snapshot bytes that [`KeyedState::restore`] cannot read: what is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DamagedState(&'static str);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_order_and_replacement() {
        let mut s = KeyedState::default();
        s.put("b", b"2".to_vec(), Some(20));
        s.put("a", b"1".to_vec(), Some(10));
        s.put("c", b"3".to_vec(), None);
        s.put("b", b"2b".to_vec(), Some(30)); // replaced: the old expiry no longer applies
        assert!(!s.put_if_absent("a", b"x".to_vec(), Some(1)));
        assert_eq!(s.take_expired(25), vec![("a".to_string(), b"1".to_vec())]);
        assert_eq!(s.take_expired(30), vec![("b".to_string(), b"2b".to_vec())]);
        assert_eq!(s.take_expired(i64::MAX), vec![]);
        assert_eq!(s.get("c"), Some(&b"3"[..]));
        assert!(s.remove("c") && !s.remove("c"));
        assert!(s.is_empty());
    }

    #[test]
    fn rollback_undoes_a_failed_call() {
        let mut s = KeyedState::default();
        s.put("keep", b"k".to_vec(), Some(5));
        let before = s.snapshot();
        s.begin();
        s.put("new", b"n".to_vec(), Some(1));
        s.put("keep", b"changed".to_vec(), Some(50));
        assert!(s.remove("keep"));
        let _ = s.take_expired(100);
        s.rollback();
        assert_eq!(s.snapshot(), before);
        assert_eq!(
            s.take_expired(5),
            vec![("keep".to_string(), b"k".to_vec())],
            "the expiry index is restored too"
        );
    }

    /// Random operations against a plain model (a map; expiry by scan):
    /// the same answers, the same contents, and rollbacks undo exactly.
    #[test]
    fn behaves_as_a_plain_map() {
        use proptest::prelude::*;
        use std::collections::BTreeMap;
        type Model = BTreeMap<String, (Vec<u8>, Option<i64>)>;
        fn model_expire(m: &mut Model, w: i64) -> Vec<(String, Vec<u8>)> {
            let mut gone: Vec<(i64, String)> = m
                .iter()
                .filter_map(|(k, (_, t))| t.filter(|t| *t <= w).map(|t| (t, k.clone())))
                .collect();
            gone.sort();
            gone.into_iter()
                .map(|(_, k)| {
                    let (v, _) = m.remove(&k).unwrap();
                    (k, v)
                })
                .collect()
        }
        let op = (0u8..6, 0u8..8, 0i64..20);
        proptest!(|(ops in proptest::collection::vec(op, 1..200))| {
            let mut s = KeyedState::default();
            let mut m = Model::new();
            let mut saved: Option<Model> = None;
            for (kind, k, t) in ops {
                let key = format!("k{k}");
                let expiry = (t % 4 != 0).then_some(t);
                match kind {
                    0 => {
                        s.put(&key, vec![k, t as u8], expiry);
                        m.insert(key, (vec![k, t as u8], expiry));
                    }
                    1 => {
                        let absent = !m.contains_key(&key);
                        prop_assert_eq!(s.put_if_absent(&key, vec![k], expiry), absent);
                        if absent {
                            m.insert(key, (vec![k], expiry));
                        }
                    }
                    2 => prop_assert_eq!(s.remove(&key), m.remove(&key).is_some()),
                    3 => prop_assert_eq!(s.take_expired(t), model_expire(&mut m, t)),
                    4 => {
                        if saved.is_none() {
                            s.begin();
                            saved = Some(m.clone());
                        } else {
                            s.commit();
                            saved = None;
                        }
                    }
                    _ => {
                        if let Some(before) = saved.take() {
                            s.rollback();
                            m = before;
                        } else {
                            prop_assert_eq!(s.evict_expired(t), model_expire(&mut m, t).len());
                        }
                    }
                }
                prop_assert_eq!(s.len(), m.len());
                for (key, (value, _)) in &m {
                    prop_assert_eq!(s.get(key), Some(value.as_slice()));
                }
            }
            // The expiry index matches the entries: everything expires.
            prop_assert_eq!(s.take_expired(i64::MAX), model_expire(&mut m, i64::MAX));
        });
    }

    #[test]
    fn snapshot_round_trip_and_damage() {
        let mut s = KeyedState::default();
        for i in 0..1000 {
            s.put(
                &format!("k{i}"),
                vec![i as u8; i % 7],
                (i % 3 != 0).then_some(i as i64),
            );
        }
        let bytes = s.snapshot();
        let mut r = KeyedState::restore(&bytes).unwrap();
        assert_eq!(r.snapshot(), bytes);
        assert_eq!(r.take_expired(10).len(), s.take_expired(10).len());
        assert!(
            KeyedState::restore(&bytes[..bytes.len() - 3])
                .unwrap_err()
                .to_string()
                .contains("truncated")
        );
        assert!(KeyedState::restore(b"nonsense!").is_err());
        assert!(KeyedState::restore(&[]).unwrap().is_empty());
    }
}
