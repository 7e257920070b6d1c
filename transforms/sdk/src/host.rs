//! The host's services, as plain functions. They work only inside the host
//! (built for `wasm32`); called natively, for example from a unit test, they
//! panic. Test logic against a trait of your own, as the built-in transforms
//! do, and call these from the transform's [`Transform`](crate::Transform)
//! impl.

/// The transform instance's keyed store: owned by the host and saved with
/// every checkpoint, so it survives a trap and a restart.
///
/// An entry can carry an event-time expiry (µs): once the watermark reaches
/// it, the host evicts the entry (after `on_watermark` had a chance to
/// [`take_expired`]), so state stays bounded.
pub mod state {
    use crate::bindings::tributary::transform::{state as wit, types::Packed};

    /// The value stored under `key`.
    pub fn get(key: &str) -> Option<Vec<u8>> {
        wit::get(key)
    }

    /// Stores `value` under `key`, replacing any earlier value.
    pub fn put(key: &str, value: &[u8], expires_at: Option<i64>) {
        wit::put(key, value, expires_at)
    }

    /// Stores `value` only if `key` is absent; true when it was stored.
    pub fn put_if_absent(key: &str, value: &[u8], expires_at: Option<i64>) -> bool {
        wit::put_if_absent(key, value, expires_at)
    }

    /// [`put_if_absent`] for many keys in one host call: key `i` is stored
    /// with `value` and `expires_at[i]` when absent; the answer says, per
    /// key, whether it was stored (a key repeated in `keys` is stored once).
    pub fn put_if_absent_many<K: AsRef<str>>(
        keys: &[K],
        value: &[u8],
        expires_at: &[i64],
    ) -> Result<Vec<bool>, String> {
        if keys.len() != expires_at.len() {
            return Err(format!(
                "state::put_if_absent_many: {} keys but {} expiries",
                keys.len(),
                expires_at.len()
            ));
        }
        let mut packed = Packed {
            offsets: Vec::with_capacity(keys.len() + 1),
            data: Vec::new(),
        };
        packed.offsets.push(0);
        for key in keys {
            packed.data.extend_from_slice(key.as_ref().as_bytes());
            packed.offsets.push(packed.data.len() as u32);
        }
        let stored = wit::put_if_absent_many(&packed, value, expires_at);
        if stored.len() != keys.len() {
            return Err(format!(
                "state::put_if_absent_many: the host answered {} of {} keys",
                stored.len(),
                keys.len()
            ));
        }
        Ok(stored)
    }

    /// Removes `key`; true when it was there.
    pub fn remove(key: &str) -> bool {
        wit::remove(key)
    }

    /// The number of entries.
    pub fn len() -> u64 {
        wit::len()
    }

    /// Removes and returns every entry whose expiry is at or before the
    /// current watermark, oldest expiry first.
    pub fn take_expired() -> Vec<(String, Vec<u8>)> {
        wit::take_expired()
    }
}

/// The pipeline's event-time watermark, µs since the Unix epoch. It never
/// moves back; proposals take effect once the batch has gone through every
/// transform, so within a batch every transform sees the same value.
pub mod watermark {
    use crate::bindings::tributary::transform::watermark as wit;

    /// The current watermark; none until some transform has advanced it.
    pub fn current() -> Option<i64> {
        wit::current()
    }

    /// Proposes a new watermark; the host keeps the largest proposal.
    pub fn advance(to: i64) {
        wit::advance(to)
    }
}

/// Lines in the host's log, tagged with the transform's name.
pub mod log {
    use crate::bindings::tributary::transform::log::{Level, write};

    pub fn debug(message: &str) {
        write(Level::Debug, message)
    }

    pub fn info(message: &str) {
        write(Level::Info, message)
    }

    pub fn warn(message: &str) {
        write(Level::Warn, message)
    }

    pub fn error(message: &str) {
        write(Level::Error, message)
    }
}
