//! The keyed state store a transform imports (`tributary:transform/state`).
//!
//! Owned by the host so it can be checkpointed with the source offsets and
//! survive a guest that traps. Entries may expire in event time: an entry whose
//! `expires_at` is at or before the watermark is evicted after the watermark
//! moves.
//!
//! Every call into the guest runs inside a journal ([`KeyedState::begin`]):
//! if the call traps or fails, [`KeyedState::rollback`] undoes its changes, so
//! a discarded instance never leaves half-applied state behind.
//!
//! **Checkpoints.** [`KeyedState::snapshot`] writes every entry;
//! [`KeyedState::changelog`] writes only the keys changed since the last
//! [`KeyedState::clear_changes`] (their new value, or that they are gone), and
//! [`KeyedState::apply_changelog`] replays one over a restored snapshot. An
//! epoch's checkpoint then costs what the epoch changed, not what is alive.
//!
//! **Memory.** The seed's dedup holds one entry per article id for two hours
//! (millions of keys), so an entry is kept small: a 32-byte slot (the key
//! inline when it is at most 24 bytes, and its expiry) in one vector, a 4-byte
//! slot id in a hash table that finds it by key, and a 4-byte slot id in a
//! bucket of its expiry (about eight seconds of event time per bucket) that
//! finds what the watermark has passed. Values live in a side table, and only
//! when they are not empty (dedup's `keep: first` stores none).

use std::collections::BTreeMap;
use std::hash::BuildHasher;

use compact_str::CompactString;
use hashbrown::{DefaultHashBuilder, HashMap, HashTable};

/// The expiry of an entry that has none. An entry stored with
/// `expires_at = Some(i64::MAX)` is kept as one that never expires: no
/// watermark reaches the end of time.
const NEVER: i64 = i64::MAX;

/// Expiry buckets are `2^BUCKET_BITS` wide: about eight seconds in µs. Wide
/// enough that a sparse stream (an event a second) shares a bucket's
/// overhead among several keys; narrow enough that the bucket the watermark
/// is in, read again at every move, stays short in a dense one.
const BUCKET_BITS: u32 = 23;

/// One entry's place. A free slot (`key: None`) waits in the free list.
#[derive(Debug)]
struct Slot {
    key: Option<CompactString>,
    expires: i64,
}

/// An entry as it was: its value and expiry.
type Stored = (Box<[u8]>, i64);

/// An undo record: the key and what it held before (None: absent).
type Undo = (CompactString, Option<Stored>);

#[derive(Debug, Default)]
pub struct KeyedState {
    hasher: DefaultHashBuilder,
    /// Slot ids, found by their key's hash.
    index: HashTable<u32>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Values that are not empty, by slot id.
    values: HashMap<u32, Box<[u8]>>,
    /// Slot ids by `expires >> BUCKET_BITS`. An id whose slot was freed,
    /// reused or given another expiry since is stale: checked when its
    /// bucket is read, dropped then (or when `bucketed` grows too far past
    /// `live` and the buckets are rebuilt).
    buckets: BTreeMap<i64, Vec<u32>>,
    bucketed: usize,
    live: usize,
    journal: Option<Vec<Undo>>,
    /// What changed since the last [`KeyedState::clear_changes`]: the slots
    /// stored into (a bit per slot id, and the ids in the order first
    /// marked) and the keys removed. Slot ids, not keys: marking an insert
    /// costs a bit, not a third copy of the key and a second hash (dedup
    /// marks one per record).
    dirty: Vec<u64>,
    dirty_ids: Vec<u32>,
    removed: Vec<CompactString>,
}

/// What `put` stores: the value and the expiry (`None`: [`NEVER`]).
fn stored(value: Vec<u8>, expires_at: Option<i64>) -> Stored {
    (value.into_boxed_slice(), expires_at.unwrap_or(NEVER))
}

fn bucket(expires: i64) -> i64 {
    expires >> BUCKET_BITS
}

impl KeyedState {
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    fn find(&self, key: &str) -> Option<u32> {
        self.locate(key).1
    }

    /// `key`'s hash and its slot, if stored: looked up once by a call that
    /// then changes the entry (`put-if-absent`, dedup's call per record).
    fn locate(&self, key: &str) -> (u64, Option<u32>) {
        let hash = self.hasher.hash_one(key);
        let slots = &self.slots;
        let id = self
            .index
            .find(hash, |&id| slots[id as usize].key.as_deref() == Some(key))
            .copied();
        (hash, id)
    }

    pub fn get(&self, key: &str) -> Option<&[u8]> {
        let id = self.find(key)?;
        Some(self.values.get(&id).map_or(&[][..], |v| &v[..]))
    }

    /// Sets or removes `key`; returns what it held before.
    fn set(&mut self, key: &str, new: Option<Stored>) -> Option<Stored> {
        self.set_at(self.locate(key), key, new)
    }

    /// [`set`](Self::set) of a key already located.
    fn set_at(&mut self, at: (u64, Option<u32>), key: &str, new: Option<Stored>) -> Option<Stored> {
        let (old, id) = self.apply_at(at, key, new);
        match id {
            Some(id) => self.mark(id),
            // Removed (or absent, which a changelog replays as a no-op).
            None => self.removed.push(CompactString::from(key)),
        }
        old
    }

    /// Notes slot `id` as stored into since the last checkpoint.
    fn mark(&mut self, id: u32) {
        let (word, bit) = (id as usize / 64, 1u64 << (id % 64));
        if word >= self.dirty.len() {
            self.dirty.resize(word + 1, 0);
        }
        if self.dirty[word] & bit == 0 {
            self.dirty[word] |= bit;
            self.dirty_ids.push(id);
        }
    }

    /// [`set`](Self::set) without noting the key as changed: what reading a
    /// checkpoint does (a restored state is the checkpointed one; noting ten
    /// million restored keys would cost as much as the store).
    fn apply(&mut self, key: &str, new: Option<Stored>) -> Option<Stored> {
        self.apply_at(self.locate(key), key, new).0
    }

    /// Sets or removes a located key; returns what it held before and the
    /// slot it is in now (none once removed).
    fn apply_at(
        &mut self,
        (hash, found): (u64, Option<u32>),
        key: &str,
        new: Option<Stored>,
    ) -> (Option<Stored>, Option<u32>) {
        match (found, new) {
            (Some(id), Some((value, expires))) => {
                let old_expires = std::mem::replace(&mut self.slots[id as usize].expires, expires);
                let old_value = self.put_value(id, value);
                if expires != old_expires {
                    self.schedule(id, expires);
                }
                (Some((old_value, old_expires)), Some(id))
            }
            (Some(id), None) => {
                if let Ok(entry) = self.index.find_entry(hash, |&i| i == id) {
                    entry.remove();
                }
                let slot = &mut self.slots[id as usize];
                slot.key = None;
                let expires = slot.expires;
                let value = self.values.remove(&id).unwrap_or_default();
                self.free.push(id);
                self.live -= 1;
                (Some((value, expires)), None)
            }
            (None, Some((value, expires))) => {
                let slot = Slot {
                    key: Some(CompactString::from(key)),
                    expires,
                };
                let id = match self.free.pop() {
                    Some(id) => {
                        self.slots[id as usize] = slot;
                        id
                    }
                    None => {
                        let id = u32::try_from(self.slots.len())
                            .expect("a transform's state holds fewer than 2^32 entries");
                        self.slots.push(slot);
                        id
                    }
                };
                let (hasher, slots) = (&self.hasher, &self.slots);
                self.index.insert_unique(hash, id, |&i| {
                    hasher.hash_one(slots[i as usize].key.as_deref().unwrap_or_default())
                });
                self.put_value(id, value);
                self.schedule(id, expires);
                self.live += 1;
                (None, Some(id))
            }
            (None, None) => (None, None),
        }
    }

    /// Stores a slot's value; returns the one it replaces (empty: none).
    fn put_value(&mut self, id: u32, value: Box<[u8]>) -> Box<[u8]> {
        let old = if value.is_empty() {
            self.values.remove(&id)
        } else {
            self.values.insert(id, value)
        };
        old.unwrap_or_default()
    }

    /// Files slot `id` under its expiry.
    fn schedule(&mut self, id: u32, expires: i64) {
        if expires == NEVER {
            return;
        }
        self.buckets.entry(bucket(expires)).or_default().push(id);
        self.bucketed += 1;
        if self.bucketed > 2 * self.live + 4096 {
            self.rebuild_buckets();
        }
    }

    /// Files every live slot once (drops stale ids).
    fn rebuild_buckets(&mut self) {
        self.buckets.clear();
        self.bucketed = 0;
        for (id, slot) in self.slots.iter().enumerate() {
            if slot.key.is_some() && slot.expires != NEVER {
                self.buckets
                    .entry(bucket(slot.expires))
                    .or_default()
                    .push(id as u32);
                self.bucketed += 1;
            }
        }
    }

    fn journaled(&mut self, at: (u64, Option<u32>), key: &str, new: Option<Stored>) {
        let old = self.set_at(at, key, new);
        if let Some(journal) = self.journal.as_mut() {
            journal.push((CompactString::from(key), old));
        }
    }

    pub fn put(&mut self, key: &str, value: Vec<u8>, expires_at: Option<i64>) {
        self.journaled(self.locate(key), key, Some(stored(value, expires_at)));
    }

    pub fn put_if_absent(&mut self, key: &str, value: Vec<u8>, expires_at: Option<i64>) -> bool {
        let at = self.locate(key);
        if at.1.is_some() {
            return false;
        }
        self.journaled(at, key, Some(stored(value, expires_at)));
        true
    }

    pub fn remove(&mut self, key: &str) -> bool {
        let at = self.locate(key);
        if at.1.is_none() {
            return false;
        }
        self.journaled(at, key, None);
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

    /// Removes entries expiring at or before `watermark`, oldest first (by
    /// key among equal expiries), showing each to `seen`.
    fn expire(&mut self, watermark: i64, mut seen: impl FnMut(&str, &[u8])) {
        let last = bucket(watermark);
        let mut due: Vec<u32> = Vec::new();
        let slots = &self.slots;
        // An id is due when its slot is live and expires by the watermark;
        // it stays filed when its slot is live and expires later in this
        // bucket; otherwise it is stale.
        let mut sort = |b: i64, id: u32| -> bool {
            let slot = &slots[id as usize];
            if slot.key.is_none() {
                return false;
            }
            if slot.expires <= watermark && slot.expires != NEVER {
                due.push(id);
                return false;
            }
            slot.expires != NEVER && bucket(slot.expires) == b
        };
        let mut dropped = 0;
        while let Some(entry) = self.buckets.first_entry() {
            if *entry.key() >= last {
                break;
            }
            let (b, ids) = entry.remove_entry();
            dropped += ids.len();
            for id in ids {
                sort(b, id);
            }
        }
        if let Some(ids) = self.buckets.get_mut(&last) {
            let before = ids.len();
            ids.retain(|&id| sort(last, id));
            dropped += before - ids.len();
            if ids.is_empty() {
                self.buckets.remove(&last);
            }
        }
        self.bucketed -= dropped;
        if due.is_empty() {
            return;
        }
        due.sort_unstable();
        due.dedup();
        let mut gone: Vec<(i64, CompactString)> = due
            .into_iter()
            .map(|id| {
                let slot = &self.slots[id as usize];
                (slot.expires, slot.key.clone().expect("a due slot is live"))
            })
            .collect();
        gone.sort_unstable();
        for (_, key) in gone {
            let old = self.set(&key, None);
            if let Some((value, _)) = &old {
                seen(&key, value);
            }
            if let Some(journal) = self.journal.as_mut() {
                journal.push((key, old));
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

    /// Live entries, sorted by key: `(key, value, expiry)`. Sorts 4-byte
    /// slot ids, not the entries: a snapshot of millions of keys should not
    /// need a copy of the index on the side.
    fn sorted(&self) -> impl Iterator<Item = (&str, &[u8], i64)> {
        let mut ids: Vec<u32> = (0..self.slots.len() as u32)
            .filter(|&id| self.slots[id as usize].key.is_some())
            .collect();
        let key = |id: &u32| self.slots[*id as usize].key.as_deref().unwrap_or_default();
        ids.sort_unstable_by(|a, b| key(a).cmp(key(b)));
        ids.into_iter().map(move |id| {
            let slot = &self.slots[id as usize];
            let value = self.values.get(&id).map_or(&[][..], |v| &v[..]);
            (slot.key.as_deref().unwrap_or_default(), value, slot.expires)
        })
    }

    /// Serialises every entry. A hand-written, versioned format (no extra
    /// dependency, and it must stay readable across releases):
    /// `TRBSTAT1 | u64 count | per entry: u32 key len, key, u8 has-expiry,
    /// i64 expiry, u32 value len, value` (little endian).
    pub fn snapshot(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.snapshot_len());
        self.write_snapshot(&mut out)
            .expect("writing to a Vec cannot fail");
        out
    }

    /// The length of [`snapshot`](Self::snapshot), without making it.
    pub fn snapshot_len(&self) -> usize {
        let keys: usize = self
            .slots
            .iter()
            .filter_map(|slot| slot.key.as_ref())
            .map(|k| 17 + k.len())
            .sum();
        16 + keys + self.values.values().map(|v| v.len()).sum::<usize>()
    }

    /// Writes [`snapshot`](Self::snapshot) to `w` entry by entry: a store
    /// that streams it never holds the whole snapshot in memory.
    pub fn write_snapshot(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        w.write_all(SNAPSHOT)?;
        w.write_all(&(self.live as u64).to_le_bytes())?;
        let mut entry = Vec::with_capacity(64);
        for (key, value, expires) in self.sorted() {
            entry.clear();
            write_entry(&mut entry, key, Some((value, expires)), false);
            w.write_all(&entry)?;
        }
        Ok(())
    }

    /// Changes since the last [`clear_changes`](Self::clear_changes): slots
    /// stored into and keys removed (a key removed and stored again counts
    /// twice).
    pub fn changes(&self) -> usize {
        self.dirty_ids.len() + self.removed.len()
    }

    /// Forgets what changed: the state as it is now is checkpointed.
    pub fn clear_changes(&mut self) {
        for id in self.dirty_ids.drain(..) {
            self.dirty[id as usize / 64] &= !(1u64 << (id % 64));
        }
        self.removed = Vec::new();
    }

    /// What changed since the last [`clear_changes`](Self::clear_changes),
    /// replayed in order: first every key removed, then every key stored
    /// into with its entry now (a key removed and stored again ends stored;
    /// a key stored and then removed ends removed, its slot skipped):
    /// `TRBDELT1 | u64 count | per entry: u32 key len, key, u8 kind (0
    /// removed, 1 no expiry, 2 with expiry), then when present i64 expiry,
    /// u32 value len, value` (little endian). Removing an absent key is a
    /// no-op on replay, so a key may be listed as removed more than once.
    pub fn changelog(&self) -> Vec<u8> {
        let stored: Vec<u32> = self
            .dirty_ids
            .iter()
            .copied()
            .filter(|&id| self.slots[id as usize].key.is_some())
            .collect();
        let count = self.removed.len() + stored.len();
        let mut out = Vec::with_capacity(16 + count * 32);
        out.extend_from_slice(CHANGELOG);
        out.extend_from_slice(&(count as u64).to_le_bytes());
        for key in &self.removed {
            write_entry(&mut out, key, None, true);
        }
        for id in stored {
            let slot = &self.slots[id as usize];
            let value = self.values.get(&id).map_or(&[][..], |v| &v[..]);
            let key = slot.key.as_deref().unwrap_or_default();
            write_entry(&mut out, key, Some((value, slot.expires)), true);
        }
        out
    }

    /// Reads what [`snapshot`](Self::snapshot) wrote; an empty slice is an
    /// empty store.
    pub fn restore(bytes: &[u8]) -> Result<Self, DamagedState> {
        let mut state = Self::default();
        if !bytes.is_empty() {
            state.read(bytes, SNAPSHOT)?;
        }
        state.clear_changes();
        Ok(state)
    }

    /// Replays what [`changelog`](Self::changelog) wrote over this state
    /// (the state of the checkpoint the changelog was taken after).
    pub fn apply_changelog(&mut self, bytes: &[u8]) -> Result<(), DamagedState> {
        self.read(bytes, CHANGELOG)?;
        self.clear_changes();
        Ok(())
    }

    fn read(&mut self, bytes: &[u8], magic: &[u8; 8]) -> Result<(), DamagedState> {
        let mut at = 0usize;
        let mut take = |n: usize| -> Result<&[u8], DamagedState> {
            let s = bytes
                .get(at..at.checked_add(n).ok_or(TRUNCATED)?)
                .ok_or(TRUNCATED)?;
            at += n;
            Ok(s)
        };
        if take(8)? != magic {
            return Err(DamagedState(if magic == SNAPSHOT {
                "transform state has an unknown format"
            } else {
                "transform changelog has an unknown format"
            }));
        }
        let count = u64::from_le_bytes(take(8)?.try_into().expect("8 bytes"));
        if magic == SNAPSHOT {
            // At most one entry per 17 bytes: a damaged count cannot make
            // this reserve more than the input could hold.
            let entries = (count as usize).min(bytes.len() / 17);
            self.slots.reserve_exact(entries);
            let (hasher, slots) = (&self.hasher, &self.slots);
            self.index.reserve(entries, |&i| {
                hasher.hash_one(slots[i as usize].key.as_deref().unwrap_or_default())
            });
        }
        for _ in 0..count {
            let klen = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
            let key = std::str::from_utf8(take(klen)?)
                .map_err(|_| DamagedState("transform state has a non-UTF-8 key"))?;
            // A snapshot says 0 (no expiry) or 1 (expiry); a changelog 0
            // (removed), 1 (no expiry) or 2 (expiry).
            let kind = take(1)?[0].saturating_add(u8::from(magic == SNAPSHOT));
            if kind == 0 {
                self.apply(key, None);
                continue;
            }
            if kind > 2 {
                return Err(DamagedState("transform state has an unknown entry kind"));
            }
            let expiry = i64::from_le_bytes(take(8)?.try_into().expect("8 bytes"));
            let vlen = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
            let value: Box<[u8]> = take(vlen)?.into();
            let expires = if kind == 2 { expiry } else { NEVER };
            self.apply(key, Some((value, expires)));
        }
        if at != bytes.len() {
            return Err(DamagedState("transform state has trailing bytes"));
        }
        Ok(())
    }
}

const SNAPSHOT: &[u8; 8] = b"TRBSTAT1";
const CHANGELOG: &[u8; 8] = b"TRBDELT1";
const TRUNCATED: DamagedState = DamagedState("transform state is truncated");

/// One entry of a snapshot (`changelog` false: a has-expiry byte, 0 or 1)
/// or a changelog (a kind byte: 0 removed, 1 no expiry, 2 expiry).
fn write_entry(out: &mut Vec<u8>, key: &str, entry: Option<(&[u8], i64)>, changelog: bool) {
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    let Some((value, expires)) = entry else {
        out.push(0);
        return;
    };
    out.push(u8::from(expires != NEVER) + u8::from(changelog));
    out.extend_from_slice(&if expires == NEVER { 0 } else { expires }.to_le_bytes());
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(value);
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

    /// Random operations with checkpoints among them, full or changelog:
    /// the last full snapshot plus the changelogs after it always rebuild
    /// the state exactly (the same snapshot, the same expiries to come).
    #[test]
    fn changelogs_over_a_snapshot_rebuild_the_state() {
        use proptest::prelude::*;
        let op = (0u8..6, 0u8..12, 0i64..40);
        proptest!(|(ops in proptest::collection::vec(op, 1..300))| {
            let mut s = KeyedState::default();
            let mut full = s.snapshot();
            let mut logs: Vec<Vec<u8>> = Vec::new();
            let rebuild = |full: &[u8], logs: &[Vec<u8>]| {
                let mut r = KeyedState::restore(full).unwrap();
                for log in logs {
                    r.apply_changelog(log).unwrap();
                }
                r
            };
            for (kind, k, t) in ops {
                let key = format!("key-{k}");
                let expiry = (t % 5 != 0).then_some(t);
                match kind {
                    0 => s.put(&key, vec![k; (t % 3) as usize], expiry),
                    1 => {
                        s.put_if_absent(&key, Vec::new(), expiry);
                    }
                    2 => {
                        s.remove(&key);
                    }
                    3 => {
                        s.evict_expired(t);
                    }
                    4 => {
                        logs.push(s.changelog());
                        s.clear_changes();
                        let r = rebuild(&full, &logs);
                        prop_assert_eq!(r.snapshot(), s.snapshot());
                    }
                    _ => {
                        if t % 4 == 0 {
                            full = s.snapshot();
                            logs.clear();
                            s.clear_changes();
                        } else {
                            // A failed guest call: its changes are undone.
                            s.begin();
                            s.put(&key, vec![9], Some(t));
                            s.take_expired(t / 2);
                            s.rollback();
                        }
                    }
                }
            }
            logs.push(s.changelog());
            let mut r = rebuild(&full, &logs);
            prop_assert_eq!(r.snapshot(), s.snapshot());
            prop_assert_eq!(r.take_expired(i64::MAX - 1), s.take_expired(i64::MAX - 1));
        });
    }

    #[test]
    fn a_changelog_holds_only_what_changed() {
        let mut s = KeyedState::default();
        for i in 0..10_000 {
            s.put_if_absent(&format!("id-{i}"), Vec::new(), Some(i));
        }
        s.clear_changes();
        s.put_if_absent("new", Vec::new(), Some(5));
        assert!(s.remove("id-7"));
        assert_eq!(s.evict_expired(2), 3);
        assert_eq!(s.changes(), 5);
        let log = s.changelog();
        assert!(log.len() < 200, "{} bytes for 5 changes", log.len());
        let mut r = KeyedState::default();
        for i in 0..10_000 {
            r.put_if_absent(&format!("id-{i}"), Vec::new(), Some(i));
        }
        r.apply_changelog(&log).unwrap();
        assert_eq!(r.snapshot(), s.snapshot());
        assert!(r.apply_changelog(&log[..log.len() - 1]).is_err());
        assert!(
            r.apply_changelog(&s.snapshot()).is_err(),
            "a snapshot is not a changelog"
        );
    }

    /// A snapshot written before the store was rebuilt (keys in a map, an
    /// expiry set) still restores: the format did not change.
    #[test]
    fn reads_a_snapshot_of_the_earlier_store() {
        let mut old = Vec::new();
        old.extend_from_slice(b"TRBSTAT1");
        old.extend_from_slice(&2u64.to_le_bytes());
        for (key, has, expiry, value) in [("a", 1u8, 7i64, &b"x"[..]), ("b", 0, 0, &b""[..])] {
            old.extend_from_slice(&(key.len() as u32).to_le_bytes());
            old.extend_from_slice(key.as_bytes());
            old.push(has);
            old.extend_from_slice(&expiry.to_le_bytes());
            old.extend_from_slice(&(value.len() as u32).to_le_bytes());
            old.extend_from_slice(value);
        }
        let mut s = KeyedState::restore(&old).unwrap();
        assert_eq!(s.snapshot(), old);
        assert_eq!(s.take_expired(7), vec![("a".to_string(), b"x".to_vec())]);
        assert_eq!(s.get("b"), Some(&b""[..]));
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
        assert_eq!(bytes.len(), s.snapshot_len());
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
