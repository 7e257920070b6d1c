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

#[derive(Clone, Debug, PartialEq)]
struct Entry {
    value: Vec<u8>,
    expires_at: Option<i64>,
}

/// An undo record: the key and what it held before (None: absent).
type Undo = (String, Option<Entry>);

#[derive(Debug, Default)]
pub struct KeyedState {
    entries: HashMap<String, Entry>,
    by_expiry: BTreeSet<(i64, String)>,
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

    fn record(&mut self, key: &str, before: Option<Entry>) {
        if let Some(j) = self.journal.as_mut() {
            j.push((key.to_string(), before));
        }
    }

    fn set(&mut self, key: &str, entry: Option<Entry>) -> Option<Entry> {
        let old = match entry {
            Some(e) => {
                if let Some(t) = e.expires_at {
                    self.by_expiry.insert((t, key.to_string()));
                }
                self.entries.insert(key.to_string(), e)
            }
            None => self.entries.remove(key),
        };
        if let Some(Entry {
            expires_at: Some(t),
            ..
        }) = &old
        {
            // The new entry may carry the same expiry: keep its index entry.
            let still = self.entries.get(key).and_then(|e| e.expires_at) == Some(*t);
            if !still {
                self.by_expiry.remove(&(*t, key.to_string()));
            }
        }
        old
    }

    pub fn put(&mut self, key: &str, value: Vec<u8>, expires_at: Option<i64>) {
        let old = self.set(key, Some(Entry { value, expires_at }));
        self.record(key, old);
    }

    pub fn put_if_absent(&mut self, key: &str, value: Vec<u8>, expires_at: Option<i64>) -> bool {
        if self.entries.contains_key(key) {
            return false;
        }
        self.put(key, value, expires_at);
        true
    }

    pub fn remove(&mut self, key: &str) -> bool {
        let old = self.set(key, None);
        let was = old.is_some();
        if was {
            self.record(key, old);
        }
        was
    }

    /// Removes and returns entries expiring at or before `watermark`, oldest
    /// expiry first.
    pub fn take_expired(&mut self, watermark: i64) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some((t, key)) = self.by_expiry.first().cloned() {
            if t > watermark {
                break;
            }
            if let Some(old) = self.set(&key, None) {
                out.push((key.clone(), old.value.clone()));
                self.record(&key, Some(old));
            } else {
                self.by_expiry.remove(&(t, key));
            }
        }
        out
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
        let mut keys: Vec<&String> = self.entries.keys().collect();
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
    pub fn restore(bytes: &[u8]) -> Result<Self, String> {
        let mut state = Self::default();
        if bytes.is_empty() {
            return Ok(state);
        }
        let mut at = 0usize;
        let mut take = |n: usize| -> Result<&[u8], String> {
            let s = bytes
                .get(at..at + n)
                .ok_or("transform state is truncated")?;
            at += n;
            Ok(s)
        };
        if take(8)? != b"TRBSTAT1" {
            return Err("transform state has an unknown format".into());
        }
        let count = u64::from_le_bytes(take(8)?.try_into().expect("8 bytes"));
        for _ in 0..count {
            let klen = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
            let key = String::from_utf8(take(klen)?.to_vec())
                .map_err(|_| "transform state has a non-UTF-8 key")?;
            let has = take(1)?[0] == 1;
            let expiry = i64::from_le_bytes(take(8)?.try_into().expect("8 bytes"));
            let vlen = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
            let value = take(vlen)?.to_vec();
            state.set(
                &key,
                Some(Entry {
                    value,
                    expires_at: has.then_some(expiry),
                }),
            );
        }
        Ok(state)
    }
}

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
                .contains("truncated")
        );
        assert!(KeyedState::restore(b"nonsense!").is_err());
        assert!(KeyedState::restore(&[]).unwrap().is_empty());
    }
}
