//! The plugin ABI, version 1: what a connector in a shared library (`cdylib`)
//! exports, and what the host calls. Shared by the host and the SDK; nothing
//! in it is a Rust type with an unstable layout.
//!
//! A plugin exports two C symbols:
//!
//! - `tributary_plugin_abi_version() -> u32`, called first: the host refuses
//!   a plugin whose answer is not [`ABI_VERSION`] before it reads anything else;
//! - `tributary_plugin_v1() -> *const PluginV1`: the function table.
//!
//! Across the boundary: configs, contexts, commits and descriptions are JSON
//! bytes; record batches go through the Arrow C Data Interface (a struct
//! array whose children are the columns); errors are a status code and a
//! UTF-8 message. Memory is freed by whoever allocated it: a [`Buf`] the
//! plugin fills is released with the plugin's `free_buf`, an Arrow array with
//! its own `release` callback. No allocator, async runtime or panic crosses:
//! the SDK turns a panic into [`PANIC`].

use std::ffi::c_void;

pub use arrow_data::ffi::FFI_ArrowArray;
pub use arrow_schema::ffi::FFI_ArrowSchema;

/// The ABI version this crate speaks.
pub const ABI_VERSION: u32 = 1;

/// Symbol of `extern "C" fn() -> u32`, the plugin's ABI version.
pub const VERSION_SYMBOL: &[u8] = b"tributary_plugin_abi_version\0";
/// Symbol of `extern "C" fn() -> *const PluginV1`.
pub const ENTRY_SYMBOL_V1: &[u8] = b"tributary_plugin_v1\0";

/// Status codes of table calls. An error's code is its kind, plus
/// [`RETRYABLE`] when retrying the same call may succeed.
pub const OK: i32 = 0;
pub const ERR_CONFIG: i32 = 1;
pub const ERR_EXTERNAL: i32 = 2;
pub const ERR_DATA: i32 = 3;
pub const ERR_INTERNAL: i32 = 4;
/// The plugin panicked; its handle must not be used again.
pub const PANIC: i32 = 5;
pub const RETRYABLE: i32 = 0x100;

/// Bytes owned by the side that filled them (the plugin): read them, then
/// hand them back to the plugin's `free_buf`.
#[repr(C)]
#[derive(Debug)]
pub struct Buf {
    pub ptr: *mut u8,
    pub len: usize,
    pub cap: usize,
}

impl Buf {
    pub const EMPTY: Buf = Buf {
        ptr: std::ptr::null_mut(),
        len: 0,
        cap: 0,
    };
}

/// What `delivery` answers.
pub const DELIVERY_AT_LEAST_ONCE: u32 = 0;
pub const DELIVERY_EXACTLY_ONCE: u32 = 1;

/// What `commit` reports in its `outcome`.
pub const OUTCOME_COMMITTED: u32 = 0;
pub const OUTCOME_ALREADY_COMMITTED: u32 = 1;

/// The function table of a v1 plugin (sinks only in v1). Every function but
/// `free_buf` and `close` returns a status code, and on an error fills `err`
/// with the message.
#[repr(C)]
#[derive(Debug)]
pub struct PluginV1 {
    /// [`ABI_VERSION`] again, as a check that the table is what it claims.
    pub abi_version: u32,
    /// JSON `{"name", "kind", "description", "config_schema"}` into `out`.
    pub describe: unsafe extern "C" fn(out: *mut Buf, err: *mut Buf) -> i32,
    /// Builds a sink from its config (JSON object) and context (JSON
    /// `{"pipeline_id", "base_dir", "state_dir"}`); its handle goes to `handle`.
    pub open: unsafe extern "C" fn(
        config: *const u8,
        config_len: usize,
        context: *const u8,
        context_len: usize,
        handle: *mut *mut c_void,
        err: *mut Buf,
    ) -> i32,
    /// JSON of the last committed epoch for the pipeline (`null`: none).
    pub last_commit: unsafe extern "C" fn(
        handle: *mut c_void,
        pipeline: *const u8,
        pipeline_len: usize,
        out: *mut Buf,
        err: *mut Buf,
    ) -> i32,
    /// Stages a batch. The plugin takes the array (it moves it out and leaves
    /// a released one behind); the schema stays the host's.
    pub write: unsafe extern "C" fn(
        handle: *mut c_void,
        array: *mut FFI_ArrowArray,
        schema: *const FFI_ArrowSchema,
        err: *mut Buf,
    ) -> i32,
    /// Commits an epoch (JSON of the commit); `outcome` says whether it was
    /// committed now or had been already.
    pub commit: unsafe extern "C" fn(
        handle: *mut c_void,
        commit: *const u8,
        commit_len: usize,
        outcome: *mut u32,
        err: *mut Buf,
    ) -> i32,
    /// The guarantee the sink gives ([`DELIVERY_AT_LEAST_ONCE`] or
    /// [`DELIVERY_EXACTLY_ONCE`]); the host refuses a pipeline asking for more.
    pub delivery: unsafe extern "C" fn(handle: *mut c_void, out: *mut u32, err: *mut Buf) -> i32,
    /// Where the data goes, in words, into `out`.
    pub describe_sink:
        unsafe extern "C" fn(handle: *mut c_void, out: *mut Buf, err: *mut Buf) -> i32,
    /// Drops the sink.
    pub close: unsafe extern "C" fn(handle: *mut c_void),
    /// Frees a `Buf` the plugin filled.
    pub free_buf: unsafe extern "C" fn(buf: Buf),
}
