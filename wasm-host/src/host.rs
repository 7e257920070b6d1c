//! [`Host`]: what one guest's `Store` holds (WASI context, limiter, keyed
//! state, watermark) and the host side of the WIT imports (`state`,
//! `watermark`, `log`).

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::sandbox::Limiter;
use crate::state::KeyedState;
use crate::{bindings, bindings_v1};

/// What a guest's `Store` holds.
pub struct Host {
    pub(crate) wasi: WasiCtx,
    /// What the guest printed to stderr (a panic message, say), to explain a trap.
    pub(crate) stderr: wasmtime_wasi::p2::pipe::MemoryOutputPipe,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: Limiter,
    pub(crate) state: KeyedState,
    pub(crate) watermark: Option<i64>,
    pub(crate) proposal: Option<i64>,
    pub(crate) name: String,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The host side of one version's imports. The two versions import the same
/// functions (0.2.0 adds `put-if-absent-many`), with types generated once
/// per version: one body, instantiated for each.
macro_rules! host_imports {
    ($version:ident) => {
        impl $version::tributary::transform::types::Host for Host {}

        impl $version::tributary::transform::state::Host for Host {
            fn get(&mut self, key: String) -> Option<Vec<u8>> {
                self.state.get(&key).map(<[u8]>::to_vec)
            }
            fn put(&mut self, key: String, value: Vec<u8>, expires_at: Option<i64>) {
                self.state.put(&key, value, expires_at)
            }
            fn put_if_absent(
                &mut self,
                key: String,
                value: Vec<u8>,
                expires_at: Option<i64>,
            ) -> bool {
                self.state.put_if_absent(&key, value, expires_at)
            }
            fn remove(&mut self, key: String) -> bool {
                self.state.remove(&key)
            }
            fn len(&mut self) -> u64 {
                self.state.len() as u64
            }
            fn take_expired(&mut self) -> Vec<(String, Vec<u8>)> {
                match self.watermark {
                    Some(w) => self.state.take_expired(w),
                    None => Vec::new(),
                }
            }
            host_imports!(@many $version);
        }

        impl $version::tributary::transform::watermark::Host for Host {
            fn current(&mut self) -> Option<i64> {
                self.watermark
            }
            fn advance(&mut self, to: i64) {
                self.proposal = Some(self.proposal.map_or(to, |p| p.max(to)));
            }
        }

        impl $version::tributary::transform::log::Host for Host {
            fn write(&mut self, level: $version::tributary::transform::log::Level, message: String) {
                use $version::tributary::transform::log::Level;
                let t = &self.name;
                match level {
                    Level::Debug => tracing::debug!(transform = %t, "{message}"),
                    Level::Info => tracing::info!(transform = %t, "{message}"),
                    Level::Warn => tracing::warn!(transform = %t, "{message}"),
                    Level::Error => tracing::error!(transform = %t, "{message}"),
                }
            }
        }
    };
    (@many bindings_v1) => {};
    (@many bindings) => {
        fn put_if_absent_many(
            &mut self,
            keys: bindings::tributary::transform::types::Packed,
            value: Vec<u8>,
            expires_at: Vec<i64>,
        ) -> Vec<bool> {
            let Some(keys) = unpack_keys(&keys, expires_at.len()) else {
                return Vec::new();
            };
            keys.into_iter()
                .zip(expires_at)
                .map(|(key, expires)| self.state.put_if_absent(key, value.clone(), Some(expires)))
                .collect()
        }
    };
}

host_imports!(bindings_v1);
host_imports!(bindings);

/// The keys of a `put-if-absent-many` call, or none when they are malformed
/// (offsets out of order or past the data, a key not UTF-8, or not one
/// expiry per key).
fn unpack_keys(
    keys: &bindings::tributary::transform::types::Packed,
    n: usize,
) -> Option<Vec<&str>> {
    if keys.offsets.len() != n + 1 {
        return None;
    }
    keys.offsets
        .windows(2)
        .map(|w| {
            let bytes = keys.data.get(w[0] as usize..w[1] as usize)?;
            std::str::from_utf8(bytes).ok()
        })
        .collect()
}
